// skiff info [-f FORMAT] (and `system info`): docker's `info` (lib/inspect/info.ts has the data), its
// text layout for the lines skiff has, `--format` on docker's struct (`{{.ServerVersion}}`,
// `{{json .}}`), the daemon's warnings on stderr. Scripts use `docker info >/dev/null` to ask
// whether the engine is there: it is, whenever skiff runs.

import type { Verb } from "./context.ts";
import { UsageError } from "../errors.ts";
import { bool, parseArgs, str } from "./args.ts";
import { formatFloatG } from "../format/gofloat.ts";
import { howToStartMyself } from "../runtime/self.ts";

const HELP = `Usage:  skiff info [OPTIONS]

Display system-wide information

Options:
  -f, --format string   Format the output using the given Go template`;

/** go-units BytesSize: binary units, four significant digits ("23.54GiB"). */
function bytesSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
  let size = bytes, i = 0;
  while (size >= 1024 && i < units.length - 1) {
    size /= 1024;
    i++;
  }
  return `${formatFloatG(size, 4)}${units[i]}`;
}

const info: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "info", options: [{ name: "format", short: "f", kind: "string" }] });
  if (bool(p, "help")) {
    console.log(HELP);
    return 0;
  }
  if (p.positionals.length) throw new UsageError(`"skiff info" accepts no arguments.`, "info", true);
  const format = str(p, "format");
  // a template that does not parse fails before anything is read (docker's exit 64)
  const template = format && format !== "json"
    ? (await import("../format/template.ts")).inspectTemplate(
      (await import("../format/template.ts")).unescapeFormat(format),
    )
    : undefined;
  const self = howToStartMyself();
  const { systemInfo } = await import("../inspect/info.ts");
  const { registrySettingsFromEnvironment } = await import("./registry_settings.ts");
  const i = await systemInfo(ctx.root, {
    // every source skiff reads them from: daemon.json, SKIFF_INSECURE_REGISTRIES, --insecure-registry
    insecureRegistries: [...registrySettingsFromEnvironment(ctx.insecureRegistries).insecure],
    executable: self.kind === "exe" ? self.exe : self.deno,
  });
  const clientInfo = { Debug: false, Context: "default", Plugins: [], Warnings: null };
  if (format !== undefined && format !== "") {
    const { goJson, goStruct } = await import("../format/template.ts");
    const data = goStruct("system.info", { ...i, ClientInfo: goStruct("*system.clientInfo", clientInfo) });
    console.log(format === "json" ? goJson(data) : template!.execute(data));
    return 0;
  }
  const lines = [
    "Client:",
    " Context:    default",
    " Debug Mode: false",
    "",
    "Server:",
    ` Containers: ${i.Containers}`,
    `  Running: ${i.ContainersRunning}`,
    `  Paused: ${i.ContainersPaused}`,
    `  Stopped: ${i.ContainersStopped}`,
    ` Images: ${i.Images}`,
    ` Server Version: ${i.ServerVersion}`,
    ` Storage Driver: ${i.Driver}`,
    ...i.DriverStatus.map(([k, v]) => `  ${k}: ${v}`),
    ` Logging Driver: ${i.LoggingDriver}`,
    ` Cgroup Driver: ${i.CgroupDriver}`,
    ` Cgroup Version: ${i.CgroupVersion}`,
    " Plugins:",
    `  Volume: ${i.Plugins.Volume.join(" ")}`,
    `  Network: ${i.Plugins.Network.join(" ")}`,
    `  Log: ${i.Plugins.Log.join(" ")}`,
    ` Swarm: ${i.Swarm.LocalNodeState}`,
    ` Runtimes: ${Object.keys(i.Runtimes).join(" ")}`,
    ` Default Runtime: ${i.DefaultRuntime}`,
    ` Init Binary: ${i.InitBinary}`,
    " Security Options:",
    ...i.SecurityOptions.flatMap((o) => {
      const fields = Object.fromEntries(o.split(",").map((kv) => kv.split("=")));
      return [`  ${fields.name}`, ...(fields.profile ? [`   Profile: ${fields.profile}`] : [])];
    }),
    ` Kernel Version: ${i.KernelVersion}`,
    ` Operating System: ${i.OperatingSystem}`,
    ` OSType: ${i.OSType}`,
    ` Architecture: ${i.Architecture}`,
    ` CPUs: ${i.NCPU}`,
    ` Total Memory: ${bytesSize(i.MemTotal)}`,
    ` Name: ${i.Name}`,
    ` ID: ${i.ID}`,
    ` Docker Root Dir: ${i.DockerRootDir}`,
    " Debug Mode: false",
    ...(i.HttpProxy ? [` HTTP Proxy: ${i.HttpProxy}`] : []),
    ...(i.HttpsProxy ? [` HTTPS Proxy: ${i.HttpsProxy}`] : []),
    ...(i.NoProxy ? [` No Proxy: ${i.NoProxy}`] : []),
    ` Registry: ${i.IndexServerAddress}`,
    " Labels:",
    " Experimental: false",
    " Insecure Registries:",
    // docker's order: the registries named by host first, then the CIDRs
    ...Object.values(i.RegistryConfig.IndexConfigs).filter((c) => !c.Secure).map((c) => `  ${c.Name}`),
    ...i.RegistryConfig.InsecureRegistryCIDRs.map((r) => `  ${r}`),
    ` Live Restore Enabled: ${i.LiveRestoreEnabled}`,
    "",
    "",
  ];
  Deno.stdout.writeSync(new TextEncoder().encode(lines.join("\n")));
  for (const w of i.Warnings ?? []) console.error(w);
  return 0;
};
export default info;
