// `skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]`: create a container from an image and run it in the
// foreground. Parses and validates every flag before anything is created (docker's wording, exit
// 125), then hands over to the runtime. Kept lean: this is the hot path of `run --rm IMAGE true`.

import {
  bool,
  bytesFlag,
  cpusFlag,
  intFlag,
  invalidValue,
  list,
  type OptionSpec,
  parseArgs,
  type Parsed,
  requireArgs,
  RESOURCE_OPTIONS,
  str,
} from "./args.ts";
import type { Verb } from "./context.ts";
import { SkiffError } from "../errors.ts";
import { validateCapabilityFlags } from "../runtime/caps.ts";
import type { ResourceSettings } from "../runtime/container.ts";
import type { RunRequest } from "../engine/create_run.ts";
import type { StartReply } from "../engine/detach.ts";
import type { ImageStore } from "../image/store.ts";
import { parseMountFlag, parseVolumeFlag } from "../runtime/mountflag.ts";
import { environment, readListFile } from "./envflags.ts";
import { parseRestartPolicy } from "../runtime/restart.ts";
import { logConfigOf } from "../runtime/logs.ts";
import { parseSignal } from "../runtime/signals.ts";
import { checkSeccompProfiles, securityOptFlags } from "./security_opt.ts";
import { MAX_ID } from "../runtime/user.ts";

const OPTIONS: OptionSpec[] = [
  { name: "name", kind: "string" },
  { name: "rm", kind: "bool" },
  { name: "pull", kind: "string" },
  { name: "detach", short: "d", kind: "bool" },
  { name: "env", short: "e", kind: "list" },
  { name: "env-file", kind: "list" },
  { name: "workdir", short: "w", kind: "string" },
  { name: "user", short: "u", kind: "string" },
  { name: "entrypoint", kind: "string" },
  { name: "hostname", short: "h", kind: "string" },
  { name: "interactive", short: "i", kind: "bool" },
  { name: "tty", short: "t", kind: "bool" },
  { name: "label", short: "l", kind: "list" },
  { name: "label-file", kind: "list" },
  { name: "privileged", kind: "bool" },
  { name: "cap-add", kind: "list" },
  { name: "cap-drop", kind: "list" },
  { name: "read-only", kind: "bool" },
  { name: "security-opt", kind: "list" },
  ...RESOURCE_OPTIONS,
  { name: "cpu-period", kind: "string" },
  { name: "cpu-quota", kind: "string" },
  { name: "memory-reservation", kind: "string" },
  { name: "memory-swappiness", kind: "string" },
  { name: "oom-kill-disable", kind: "bool" },
  { name: "device-cgroup-rule", kind: "list" },
  { name: "group-add", kind: "list" },
  { name: "add-host", kind: "list" },
  { name: "dns", kind: "list" },
  { name: "dns-search", kind: "list" },
  { name: "dns-option", kind: "list", aliases: ["dns-opt"] },
  { name: "sig-proxy", kind: "bool" },
  { name: "shm-size", kind: "string" },
  { name: "tmpfs", kind: "list" },
  { name: "volume", short: "v", kind: "list" },
  { name: "mount", kind: "list" },
  { name: "restart", kind: "string" },
  { name: "log-driver", kind: "string" },
  { name: "log-opt", kind: "list" },
  { name: "stop-signal", kind: "string" },
  { name: "stop-timeout", kind: "string" },
];

const USAGE = `Usage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]

Create and run a new container from an image

Options:
      --add-host list           Add a custom host-to-IP mapping (host:ip)
      --blkio-weight uint16     Block IO (relative weight), between 10 and 1000, or 0 to disable
      --cap-add list            Add Linux capabilities
      --cap-drop list           Drop Linux capabilities
  -c, --cpu-shares int          CPU shares (relative weight)
      --cpu-period int          Limit CPU CFS (Completely Fair Scheduler) period
      --cpu-quota int           Limit CPU CFS (Completely Fair Scheduler) quota
      --cpus decimal            Number of CPUs
      --cpuset-cpus string      CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string      MEMs in which to allow execution (0-3, 0,1)
  -d, --detach                  Run container in background and print container ID
      --device-cgroup-rule list Add a rule to the cgroup allowed devices list
      --dns list                Set custom DNS servers
      --dns-option list         Set DNS options
      --dns-search list         Set custom DNS search domains
      --entrypoint string       Overwrite the default ENTRYPOINT of the image
  -e, --env list                Set environment variables
      --env-file list           Read in a file of environment variables
      --group-add list          Add additional groups to join
  -h, --hostname string         Container host name
  -i, --interactive             Keep STDIN open even if not attached
  -l, --label list              Set meta data on a container
      --label-file list         Read in a line delimited file of labels
      --log-driver string       Logging driver for the container (json-file, none)
      --log-opt list            Log driver options (max-size, max-file)
  -m, --memory bytes            Memory limit
      --memory-reservation bytes Memory soft limit
      --memory-swap bytes       Swap limit equal to memory plus swap: '-1' to enable unlimited swap
      --memory-swappiness int   Tune container memory swappiness (0 to 100) (default -1)
      --name string             Assign a name to the container
      --oom-kill-disable        Disable OOM Killer
      --pids-limit int          Tune container pids limit (set -1 for unlimited)
      --privileged              Give extended privileges to this container
      --read-only               Mount the container's root filesystem as read only
      --restart string          Restart policy to apply when a container exits (default "no")
      --pull string             Pull image before running ("always", "missing", "never") (default "missing")
      --rm                      Automatically remove the container when it exits
      --security-opt list       Security Options
      --shm-size bytes          Size of /dev/shm
      --sig-proxy               Proxy received signals to the process (default true)
      --stop-signal string      Signal to stop the container
      --stop-timeout int        Timeout (in seconds) to stop a container
      --tmpfs list              Mount a tmpfs directory (PATH[:OPTIONS])
  -t, --tty                     Allocate a pseudo-TTY
  -u, --user string             Username or UID (format: <name|uid>[:<group|gid>])
  -v, --volume list             Bind mount a volume ([SOURCE:]DESTINATION[:MODE])
      --mount mount             Attach a filesystem mount to the container
  -w, --workdir string          Working directory inside the container
`;

const invalid = (value: string, flag: string, why: string) => invalidValue("run", value, flag, why);

function isIpAddress(text: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) return v4.slice(1).every((octet) => Number(octet) <= 255);
  return text.includes(":") && /^[0-9a-fA-F:.]+$/.test(text);
}

/** --tmpfs PATH[:OPTIONS] → { PATH: OPTIONS }; the path must be absolute. */
function tmpfsMounts(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const colon = entry.indexOf(":");
    const path = colon === -1 ? entry : entry.slice(0, colon);
    if (!path.startsWith("/") || path === "/") {
      throw new SkiffError(
        `invalid mount config for type "tmpfs": invalid mount path: '${path}' mount path must be absolute`,
      );
    }
    out[path] = colon === -1 ? "" : entry.slice(colon + 1);
  }
  return out;
}

/** Go's %q of a string, as pflag quotes a flag's value (a newline stays on one line). */
const goQuote = (value: string) => JSON.stringify(value);
/** Whitespace or control characters: what would start a new line or field in a file of the container. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const LINE_BREAKING = /[\s\x00-\x1f\x7f]/;

/** --add-host host:ip (docker also takes host=ip), checked as docker does. */
function extraHosts(entries: string[]): string[] {
  return entries.map((entry) => {
    const sep = entry.search(/[:=]/);
    const host = sep > 0 ? entry.slice(0, sep) : "";
    const ip = sep > 0 ? entry.slice(sep + 1).replace(/^\[(.*)\]$/, "$1") : "";
    // the name becomes a field of an /etc/hosts line: no blank or newline may end it early
    if (!host || !ip || LINE_BREAKING.test(host)) {
      throw invalid(goQuote(entry).slice(1, -1), "--add-host", `bad format for add-host: ${goQuote(entry)}`);
    }
    if (!isIpAddress(ip)) throw invalid(entry, "--add-host", `invalid IP address in add-host: "${ip}"`);
    return `${host}:${ip}`;
  });
}

/** docker's opts.ValidateDNSSearch: "." or a domain name (a trailing dot and blanks dropped). */
function dnsSearchDomains(entries: string[]): string[] {
  return entries.map((entry) => {
    const value = entry.replace(/^ +| +$/g, "");
    if (value === ".") return value;
    const label = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    const m = new RegExp(`^(${label}(?:\\.${label})*)\\.?\\s*$`).exec(value);
    if (!/[a-zA-Z]/.test(value) || !m || m[1].length >= 255) {
      throw invalid(
        goQuote(entry).slice(1, -1),
        "--dns-search",
        `${goQuote(value).slice(1, -1)} is not a valid domain`,
      );
    }
    return m[1];
  });
}

/** --dns-option: one word each on resolv.conf's options line. */
function dnsOptions(entries: string[]): string[] {
  for (const entry of entries) {
    if (entry === "" || LINE_BREAKING.test(entry)) {
      throw invalid(
        goQuote(entry).slice(1, -1),
        "--dns-option",
        `${goQuote(entry)} is not a valid DNS option`,
      );
    }
  }
  return entries;
}

/** -h: the name goes into /etc/hostname and /etc/hosts, and sethostname takes at most 64 bytes. */
function hostname(value: string | undefined): string | undefined {
  if (value !== undefined && (LINE_BREAKING.test(value) || new TextEncoder().encode(value).length > 64)) {
    throw new SkiffError(`invalid hostname format: ${goQuote(value).slice(1, -1)}`);
  }
  return value;
}

/** --group-add: names are looked up at start; a gid must be in runc's range (no silent wrap). */
function groupAdd(entries: string[]): string[] {
  for (const entry of entries) {
    if (/^\d+$/.test(entry) && Number(entry) > MAX_ID) {
      throw new SkiffError(`uids and gids must be in range 0-${MAX_ID}`);
    }
  }
  return entries;
}

function labels(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const key = eq === -1 ? entry : entry.slice(0, eq);
    if (key === "") throw new SkiffError(`invalid label '${entry}': empty name`);
    out[key] = eq === -1 ? "" : entry.slice(eq + 1);
  }
  return out;
}

/** Everything `run` needs from its flags, validated; nothing is created yet. */
function runRequest(parsed: Parsed): RunRequest {
  requireArgs(parsed, "run", 1);
  const [imageRef, ...command] = parsed.positionals;
  for (const ip of list(parsed, "dns")) {
    if (!isIpAddress(ip)) throw invalid(ip, "--dns", `${ip} is not an ip address`);
  }
  const capAdd = list(parsed, "cap-add"), capDrop = list(parsed, "cap-drop");
  validateCapabilityFlags(capAdd, capDrop);
  const privileged = bool(parsed, "privileged");

  const pidsLimit = intFlag("run", str(parsed, "pids-limit"), "--pids-limit");
  const swappiness = intFlag("run", str(parsed, "memory-swappiness"), "--memory-swappiness");
  const deviceRules = list(parsed, "device-cgroup-rule");
  const resources: ResourceSettings = {
    Memory: bytesFlag("run", str(parsed, "memory"), "-m, --memory"),
    MemorySwap: bytesFlag("run", str(parsed, "memory-swap"), "--memory-swap", true),
    NanoCpus: cpusFlag("run", str(parsed, "cpus")),
    CpuShares: intFlag("run", str(parsed, "cpu-shares"), "-c, --cpu-shares") ?? 0,
    CpusetCpus: str(parsed, "cpuset-cpus") ?? "",
    CpusetMems: str(parsed, "cpuset-mems") ?? "",
    PidsLimit: pidsLimit !== undefined && pidsLimit > 0 ? pidsLimit : null,
    BlkioWeight: intFlag("run", str(parsed, "blkio-weight"), "--blkio-weight", true) ?? 0,
    CpuPeriod: intFlag("run", str(parsed, "cpu-period"), "--cpu-period") ?? 0,
    CpuQuota: intFlag("run", str(parsed, "cpu-quota"), "--cpu-quota") ?? 0,
    MemoryReservation: bytesFlag("run", str(parsed, "memory-reservation"), "--memory-reservation"),
    MemorySwappiness: swappiness === undefined || swappiness === -1 ? null : swappiness,
    OomKillDisable: bool(parsed, "oom-kill-disable"),
    DeviceCgroupRules: deviceRules.length ? deviceRules : null,
  };

  const tty = bool(parsed, "tty"), interactive = bool(parsed, "interactive");
  if (tty && interactive && !Deno.stdin.isTerminal()) {
    throw new SkiffError("the input device is not a TTY", 1); // docker's wording and exit code
  }
  const entrypoint = str(parsed, "entrypoint");
  const mountFlags = list(parsed, "mount").map(parseMountFlag);
  const restartPolicy = parseRestartPolicy(str(parsed, "restart"));
  if (restartPolicy.Name !== "no" && bool(parsed, "rm")) {
    throw new SkiffError("Conflicting options: --restart and --rm");
  }
  const stopSignal = str(parsed, "stop-signal");
  if (stopSignal !== undefined) parseSignal(stopSignal);
  return {
    imageRef,
    volumes: [
      ...list(parsed, "volume").map(parseVolumeFlag),
      ...mountFlags.flatMap((m) => m.type === "tmpfs" ? [] : [m.volume]),
    ],
    signalProxy: parsed.options["sig-proxy"] !== false,
    container: {
      name: str(parsed, "name"),
      command,
      entrypoint: entrypoint === undefined ? undefined : entrypoint === "" ? [] : [entrypoint],
      env: environment([...list(parsed, "env-file").flatMap(readListFile), ...list(parsed, "env")]),
      workingDir: str(parsed, "workdir"),
      user: str(parsed, "user"),
      hostname: hostname(str(parsed, "hostname")),
      tty,
      interactive,
      labels: labels([...list(parsed, "label-file").flatMap(readListFile), ...list(parsed, "label")]),
      autoRemove: bool(parsed, "rm"),
      privileged,
      readOnlyRootfs: bool(parsed, "read-only"),
      capAdd,
      capDrop,
      securityOpt: securityOptFlags(list(parsed, "security-opt")),
      resources,
      groupAdd: groupAdd(list(parsed, "group-add")),
      extraHosts: extraHosts(list(parsed, "add-host")),
      dns: list(parsed, "dns"),
      dnsSearch: dnsSearchDomains(list(parsed, "dns-search")),
      dnsOptions: dnsOptions(list(parsed, "dns-option")),
      shmSize: bytesFlag("run", str(parsed, "shm-size"), "--shm-size"),
      tmpfs: {
        ...tmpfsMounts(list(parsed, "tmpfs")),
        ...Object.fromEntries(mountFlags.flatMap((m) => m.type === "tmpfs" ? [[m.path, m.options]] : [])),
      },
      restartPolicy,
      logConfig: logConfigOf(str(parsed, "log-driver"), list(parsed, "log-opt")),
      stopSignal,
      stopTimeout: intFlag("run", str(parsed, "stop-timeout"), "--stop-timeout"),
    },
  };
}

/**
 * docker's daemon discards a limit the host's cgroups cannot apply (no BFQ: no --blkio-weight) and
 * the CLI prints its warning; the probe is loaded only when a limit is asked for.
 */
async function adaptLimitsToHost(request: RunRequest): Promise<void> {
  const resources = request.container.resources;
  const asked = (v: unknown) =>
    v !== undefined && v !== null && v !== 0 && v !== "" && v !== false && v !== -1;
  if (!Object.values(resources).some(asked)) return;
  const support = await import("../cgroups/support.ts");
  if (!support.asksForLimits(resources)) return;
  const host = support.hostSupport();
  const refusal = support.unsupportedError(resources, host);
  if (refusal) throw new SkiffError(refusal);
  // the limits are derived from the resources later, so what is discarded here is not applied
  for (const warning of support.discardUnsupported(resources, host)) console.error(`WARNING: ${warning}`);
}

/** run -d: the supervisor starts the created container; prints its id once its command runs. */
async function runDetached(ctx: Parameters<Verb>[1], id: string): Promise<number> {
  const { startDetached } = await import("../engine/detach.ts");
  return reportDetached(await startDetached(ctx.root, id), id);
}

/** Prints the id as `run -d` does (the supervisor's, or the one this process created), or fails. */
function reportDetached(reply: StartReply, createdId?: string): number {
  if (!reply.ok) {
    // the supervisor could not create it: the same line and code as when the CLI fails to
    if (reply.phase === "create") throw new SkiffError(reply.error, reply.exitCode);
    console.error(`skiff: unable to start container process: ${reply.error}`);
    return reply.exitCode;
  }
  console.log(reply.id ?? createdId);
  return 0;
}

/**
 * run -d of an image that is here: the supervisor creates and starts the container, so this
 * process loads next to nothing. undefined: the image must be pulled first (the CLI's own path).
 */
async function runDetachedBySupervisor(
  ctx: Parameters<Verb>[1],
  request: RunRequest,
): Promise<number | undefined> {
  const { runDetachedRequest } = await import("../engine/detach.ts");
  const reply = await runDetachedRequest(ctx.root, request);
  if (!reply.ok && reply.imageMissing) return undefined;
  return reportDetached(reply);
}

const run: Verb = async (args, ctx) => {
  const parsed = parseArgs(args, { verb: "run", options: OPTIONS, stopAtPositional: 1 });
  if (bool(parsed, "help")) {
    console.log(USAGE);
    return 0;
  }
  const detach = bool(parsed, "detach");
  const request = runRequest(parsed);
  await checkSeccompProfiles(request.container.securityOpt ?? []);
  await adaptLimitsToHost(request);
  const pullFlag = str(parsed, "pull");
  if (detach && (pullFlag === undefined || pullFlag === "missing")) {
    const code = await runDetachedBySupervisor(ctx, request);
    if (code !== undefined) return code;
  }

  const { Engine } = await import("../engine/engine.ts");
  const engine = new Engine({ root: ctx.root });
  // a missing image is pulled first (docker's --pull=missing); pull.ts loads only then
  const image = async (store: ImageStore) =>
    (pullFlag === undefined || pullFlag === "missing") && store.find(request.imageRef) ||
    await (await import("./pull.ts")).imageForRun(ctx, store, request.imageRef, pullFlag);
  if (detach) {
    // the image had to be pulled (or --pull always): this process creates, the supervisor starts
    const { ImageStore } = await import("../image/store.ts");
    const id = await engine.create(request, await image(new ImageStore(ctx.root)));
    return await runDetached(ctx, id);
  }
  const outcome = await engine.runForeground({
    request,
    image,
    // skiff's own stdio, its terminal following the container's pty (runtime/stdio.ts ContainerIO)
    io: { stdin: Deno.stdin, stdout: Deno.stdout, stderr: Deno.stderr, terminal: true },
    // a --rm container is not logged: docker logs it, but nobody can read that log once it is
    // removed, and skipping it keeps `run --rm` as fast as before
    keepLog: !request.container.autoRemove && request.container.logConfig?.Type !== "none",
  });
  if (outcome.error) console.error(`skiff: unable to start container process: ${outcome.error}`);
  return outcome.exitCode;
};

export default run;
