// `skiff version [-f FORMAT]`: docker's shape (Client and Server, with `--format '{{.Server.Version}}'`
// and `{{json .}}`), so scripts that ask docker for its version get an answer. skiff has no daemon:
// the "server" is the engine in this same program. The template module loads only for --format.

import type { Verb } from "./context.ts";
import { VERSION } from "../version.ts";
import { UsageError } from "../errors.ts";

/** The docker API version whose object shapes skiff's inspect and events follow. */
const API_VERSION = "1.43";

function versionInfo() {
  const arch = Deno.build.arch === "x86_64"
    ? "amd64"
    : Deno.build.arch === "aarch64"
    ? "arm64"
    : Deno.build.arch;
  const runtime = `deno ${Deno.version.deno}`;
  return {
    Client: {
      Platform: { Name: "skiff" },
      Version: VERSION,
      ApiVersion: API_VERSION,
      DefaultAPIVersion: API_VERSION,
      GitCommit: "",
      GoVersion: runtime,
      Os: "linux",
      Arch: arch,
      BuildTime: "",
      Context: "default",
    },
    Server: {
      Platform: { Name: "skiff" },
      Components: [{ Name: "Engine", Version: VERSION, Details: { ApiVersion: API_VERSION } }],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: "1.12",
      GitCommit: "",
      GoVersion: runtime,
      Os: "linux",
      Arch: arch,
      KernelVersion: Deno.osRelease(),
      BuildTime: "",
    },
  };
}

function formatFlag(args: string[]): string | undefined {
  let format: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-f" || a === "--format") {
      if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: ${a}`, "version");
      format = args[++i];
    } else if (a.startsWith("--format=")) format = a.slice(9);
    else if (a.startsWith("-f") && a.length > 2) format = a.slice(2);
    else if (a === "-h" || a === "--help") format = "\0help";
    else if (a.startsWith("-")) throw new UsageError(`unknown flag: ${a}`, "version");
    else throw new UsageError(`"skiff version" accepts no arguments.`, "version", true);
  }
  return format;
}

const version: Verb = async (args) => {
  const format = formatFlag(args);
  if (format === "\0help") {
    console.log(`Usage:  skiff version [OPTIONS]

Show the skiff version information

Options:
  -f, --format string   Format output using a custom template:
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given Go template`);
    return 0;
  }
  const info = versionInfo();
  if (format !== undefined && format !== "") {
    const { goJson, goStruct, inspectTemplate, unescapeFormat } = await import("../format/template.ts");
    // typed as docker's: a field that is not there is an error, not "<no value>"
    goStruct("types.Version", info.Server);
    goStruct("client.Version", info.Client);
    goStruct("system.versionInfo", info);
    if (format === "json") {
      console.log(goJson(info));
      return 0;
    }
    console.log(inspectTemplate(unescapeFormat(format)).execute(info));
    return 0;
  }
  const c = info.Client, s = info.Server;
  console.log(`Client:
 Version:           ${c.Version}
 API version:       ${c.ApiVersion}
 Go version:        ${c.GoVersion}
 OS/Arch:           ${c.Os}/${c.Arch}
 Context:           ${c.Context}

Server: skiff (no daemon: each command runs the engine itself)
 Engine:
  Version:          ${s.Version}
  API version:      ${s.ApiVersion} (minimum version ${s.MinAPIVersion})
  Go version:       ${s.GoVersion}
  OS/Arch:          ${s.Os}/${s.Arch}
  Kernel version:   ${s.KernelVersion}`);
  return 0;
};
export default version;
