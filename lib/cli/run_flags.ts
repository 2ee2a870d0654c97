// `run`'s flags, shared with `create`: the option table and their parsing into a RunRequest,
// validated with docker's wording before anything is created. Kept lean: `run --rm IMAGE true`
// loads it.

import {
  bool,
  bytesFlag,
  cpusFlag,
  intFlag,
  invalidValue,
  list,
  type Parsed,
  requireArgs,
  str,
} from "./args.ts";
import { ClientCheckError, SkiffError, UsageError } from "../errors.ts";
import { validateCapabilityFlags } from "../runtime/caps.ts";
import type { ResourceSettings } from "../state/types.ts";
import type { RunRequest } from "../engine/create_run.ts";
import { parseMountFlag, parseVolumeFlag, parseVolumesFrom } from "../runtime/mountflag.ts";
import { parsePlatform, type Platform } from "../registry/mediatypes.ts";
import { parseGoDuration } from "../format/duration.ts";
import type { HealthConfig } from "../state/types.ts";
import { environment, readListFile } from "./envflags.ts";
import { parseRestartPolicy } from "../runtime/restart.ts";
import { logConfigOf } from "../runtime/logs.ts";
import { parseSignal } from "../runtime/signals.ts";
import { securityOptFlags } from "./security_opt.ts";
import { MAX_ID } from "../runtime/spec.ts";
import { checkPortsForMode, portSettings } from "../network/ports.ts";
import { aliasProblem, macAddressFlag, parseNetworkMode, requestedIp } from "../network/mode.ts";
import { parseLink } from "../network/links.ts";
import {
  oomScoreAdjProblem,
  parseUlimit,
  sysctlFlagProblem,
  type Ulimit,
} from "../runtime/process_limits.ts";
import { type DeviceMapping, parseDeviceFlag } from "../cgroups/devices.ts";
import { parseThrottleDevice, parseWeightDevice, THROTTLE_FIELDS, THROTTLE_FLAGS } from "../cgroups/blkio.ts";
import { cgroupParentProblem } from "../cgroups/parent.ts";
import { parseNamespaceFlags } from "../runtime/nsmodes.ts";

export { RUN_OPTIONS } from "./run_options.ts";

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

/** --network-alias: each becomes a field of the other members' /etc/hosts (names.ts aliasProblem). */
function networkAliases(entries: string[]): string[] {
  for (const entry of entries) {
    const why = aliasProblem(entry);
    if (why) throw invalid(goQuote(entry).slice(1, -1), "--network-alias", why);
  }
  return entries;
}

/**
 * --link NAME[:ALIAS] (lib/network/links.ts): docker's CLI's format checks, skiff's alias check, and
 * its refusal outside the default bridge and user networks; kept as given.
 */
function links(entries: string[], mode: string): string[] | undefined {
  for (const entry of entries) {
    try {
      parseLink(entry);
    } catch (e) {
      throw invalid(goQuote(entry).slice(1, -1), "--link", (e as Error).message);
    }
  }
  if (entries.length && (mode === "none" || mode === "host" || mode.startsWith("container:"))) {
    throw new ClientCheckError("links are only supported for user-defined networks");
  }
  return entries.length ? entries : undefined;
}

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
    // "host-gateway": the daemon's host-gateway-ip, resolved when /etc/hosts is written (ipam.ts)
    if (ip !== "host-gateway" && !isIpAddress(ip)) {
      throw invalid(entry, "--add-host", `invalid IP address in add-host: "${ip}"`);
    }
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

/** --ulimit NAME=SOFT[:HARD]: a name given again replaces its limit (docker keeps one per name). */
function ulimits(entries: string[]): Ulimit[] | null {
  const byName = new Map<string, Ulimit>();
  for (const entry of entries) {
    let limit: Ulimit;
    try {
      limit = parseUlimit(entry);
    } catch (e) {
      throw invalid(entry, "--ulimit", (e as Error).message);
    }
    byName.set(limit.Name, limit);
  }
  return byName.size ? [...byName.values()] : null;
}

/** --sysctl KEY=VALUE, docker's allow-list (namespaces are checked at start, as runc does). */
function sysctls(entries: string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const why = sysctlFlagProblem(entry);
    if (why) throw invalid(entry, "--sysctl", why);
    const eq = entry.indexOf("=");
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return entries.length ? out : undefined;
}

/** --oom-score-adj: an integer; the range is the daemon's check (not a usage error). */
function oomScoreAdj(value: string | undefined): number | undefined {
  const adj = intFlag("run", value, "--oom-score-adj");
  const why = adj === undefined ? undefined : oomScoreAdjProblem(adj);
  if (why) throw new SkiffError(why);
  return adj;
}

/** --device: docker's CLI checks; the nodes are read from the host when the container starts. */
function devices(entries: string[]): DeviceMapping[] | null {
  const out = entries.map((entry) => {
    try {
      return parseDeviceFlag(entry);
    } catch (e) {
      throw new UsageError((e as Error).message, "run");
    }
  });
  return out.length ? out : null;
}

/**
 * --blkio-weight-device and --device-read-bps/-write-bps/-read-iops/-write-iops, with docker's CLI
 * words; a field is present only when its flag was given (an absent one costs `run` no probe of
 * the host's cgroups). The devices are looked up on the host when the container starts.
 */
function blkioDeviceFlags(parsed: Parsed): Partial<ResourceSettings> {
  const out: Partial<ResourceSettings> = {};
  const parseEach = <T>(flag: string, parse: (value: string) => T): T[] =>
    list(parsed, flag).map((value) => {
      try {
        return parse(value);
      } catch (e) {
        throw invalid(value, `--${flag}`, (e as Error).message);
      }
    });
  const weights = parseEach("blkio-weight-device", parseWeightDevice);
  if (weights.length) out.BlkioWeightDevice = weights;
  for (const field of THROTTLE_FIELDS) {
    const { flag, iops } = THROTTLE_FLAGS[field];
    const rates = parseEach(flag, (value) => parseThrottleDevice(value, iops));
    if (rates.length) out[field] = rates;
  }
  return out;
}

/** --cgroup-parent: kept as given (docker's inspect shows it so), refused only where it would break another container. */
function cgroupParent(value: string | undefined): Partial<ResourceSettings> {
  if (!value) return {};
  const why = cgroupParentProblem(value);
  if (why) throw new SkiffError(why);
  return { CgroupParent: value };
}

/**
 * Everything `run` needs from its flags, validated; nothing is created yet. `attach` false (create):
 * no terminal is needed for -it now.
 */
export function runRequest(parsed: Parsed, attach = true): RunRequest {
  requireArgs(parsed, "run", 1);
  checkIgnoredFlags(parsed);
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
    Devices: devices(list(parsed, "device")),
    ...blkioDeviceFlags(parsed),
    ...cgroupParent(str(parsed, "cgroup-parent")),
  };

  const tty = bool(parsed, "tty"), interactive = bool(parsed, "interactive");
  if (attach && tty && interactive && !Deno.stdin.isTerminal()) {
    throw new SkiffError("the input device is not a TTY", 1); // docker's wording and exit code
  }
  const entrypoint = str(parsed, "entrypoint");
  const mountFlags = list(parsed, "mount").map(parseMountFlag);
  const volumeSpecs = list(parsed, "volume");
  const restartPolicy = parseRestartPolicy(str(parsed, "restart"));
  if (restartPolicy.Name !== "no" && bool(parsed, "rm")) {
    throw new ClientCheckError("Conflicting options: --restart and --rm");
  }
  const stopSignal = str(parsed, "stop-signal");
  if (stopSignal !== undefined) parseSignal(stopSignal);
  return {
    imageRef,
    volumes: [
      ...volumeSpecs.map(parseVolumeFlag),
      ...mountFlags.flatMap((m) => m.type === "tmpfs" ? [] : [m.volume]),
    ],
    signalProxy: parsed.options["sig-proxy"] !== false,
    ...platformFlag(str(parsed, "platform")),
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
      // docker's StdinOnce: -i attached closes stdin at the client's end; run -d -i keeps it open
      stdinOnce: interactive && !bool(parsed, "detach"),
      labels: labels([...list(parsed, "label-file").flatMap(readListFile), ...list(parsed, "label")]),
      autoRemove: bool(parsed, "rm"),
      privileged,
      readOnlyRootfs: bool(parsed, "read-only"),
      capAdd,
      capDrop,
      securityOpt: securityOptFlags(list(parsed, "security-opt")),
      resources,
      groupAdd: groupAdd(list(parsed, "group-add")),
      volumesFrom: volumesFrom(list(parsed, "volumes-from")),
      // as docker's CLI splits them: a -v with a colon is a bind (or named volume), one without an
      // anonymous volume (Config.Volumes); each --mount is kept as sent
      binds: volumeSpecs.filter((v) => v.includes(":")),
      anonymousVolumes: volumeSpecs.filter((v) => !v.includes(":")),
      apiMounts: mountFlags.map((m) => m.api),
      healthcheck: healthcheck(parsed),
      cidFile: str(parsed, "cidfile") || undefined,
      attach: attachStreams(parsed),
      domainname: str(parsed, "domainname") || undefined,
      networkMode: parseNetworkMode(str(parsed, "network")),
      macAddress: macAddressFlag(str(parsed, "mac-address")),
      links: links(list(parsed, "link"), parseNetworkMode(str(parsed, "network"))),
      networkAliases: networkAliases(list(parsed, "network-alias")),
      ip: requestedIp(str(parsed, "ip")),
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
      ports: portSettings(list(parsed, "publish"), bool(parsed, "publish-all"), list(parsed, "expose")),
      ulimits: ulimits(list(parsed, "ulimit")),
      sysctls: sysctls(list(parsed, "sysctl")),
      oomScoreAdj: oomScoreAdj(str(parsed, "oom-score-adj")),
      namespaceModes: parseNamespaceFlags({
        ipc: str(parsed, "ipc"),
        pid: str(parsed, "pid"),
        uts: str(parsed, "uts"),
        userns: str(parsed, "userns"),
        cgroupns: str(parsed, "cgroupns"),
      }),
      init: parsed.options["init"] as boolean | undefined, // unset: HostConfig.Init stays out (null)
    },
  };
}

/** docker's refusals of ports in a network mode (exit 125); its warnings go to stderr. */
export function warnAboutPorts(request: RunRequest): void {
  const mode = request.container.networkMode ?? "bridge";
  for (const warning of checkPortsForMode(mode, request.container.ports)) {
    console.error(`WARNING: ${warning}`);
  }
}

/**
 * docker's daemon discards a limit the host's cgroups cannot apply (no BFQ: no --blkio-weight) and
 * the CLI prints its warning; the probe is loaded only when a limit is asked for.
 */
export async function adaptLimitsToHost(request: RunRequest): Promise<void> {
  const resources = request.container.resources;
  const asked = (v: unknown) =>
    v !== undefined && v !== null && v !== 0 && v !== "" && v !== false && v !== -1;
  if (!Object.values(resources).some(asked)) return;
  const support = await import("../cgroups/support.ts");
  if (!support.asksForLimits(resources)) return;
  const host = support.hostSupport();
  const refusal = support.unsupportedError(resources, host);
  if (refusal) throw new SkiffError(refusal);
  // the limits are derived from the resources later (cgroupLimitsOf), so what is discarded here is not applied
  for (const warning of support.discardUnsupported(resources, host)) console.error(`WARNING: ${warning}`);
}

/** --volumes-from: checked here (docker's daemon words), the sources looked up when the container is made. */
function volumesFrom(specs: string[]): string[] | undefined {
  for (const spec of specs) parseVolumesFrom(spec);
  return specs.length ? specs : undefined;
}

/** --platform OS/ARCH[/VARIANT], with docker's words for one it cannot read (run 125, create 1). */
function platformFlag(value: string | undefined): { platform?: Platform } {
  if (!value) return {};
  try {
    return { platform: parsePlatform(value) };
  } catch (e) {
    if (!(e instanceof SkiffError)) throw e;
    throw new SkiffError(`error parsing specified platform: ${e.message}`);
  }
}

/**
 * -a/--attach STDIN|STDOUT|STDERR (any case), as docker's CLI reads it: without -a both output
 * streams; -i attaches stdin whatever -a says; with -d nothing is attached (Config.Attach* false)
 * and -a is refused (exit 1, as docker's).
 */
function attachStreams(parsed: Parsed): { stdin: boolean; stdout: boolean; stderr: boolean } | undefined {
  const given = list(parsed, "attach").map((a) => {
    const stream = a.toLowerCase();
    if (!["stdin", "stdout", "stderr"].includes(stream)) {
      throw invalidValue("run", a, "-a, --attach", "valid streams are STDIN, STDOUT and STDERR");
    }
    return stream;
  });
  if (bool(parsed, "detach")) {
    if (given.length) throw new SkiffError("Conflicting options: -a and -d", 1);
    return { stdin: false, stdout: false, stderr: false }; // docker's run -d attaches nothing
  }
  if (!given.length) return undefined;
  return {
    stdin: given.includes("stdin") || bool(parsed, "interactive"),
    stdout: given.includes("stdout"),
    stderr: given.includes("stderr"),
  };
}

/**
 * Flags docker takes that change nothing here, and its refusals of their other values: --isolation
 * (Linux has "default" only), --runtime (skiff is the runtime; "runc", docker's default name, is
 * taken too), --volume-driver (local), --storage-opt (overlay over xfs with pquota only: never
 * here), --kernel-memory (deprecated: a warning), --disable-content-trust (no notary is asked),
 * --ip6 (no network here has IPv6; docker ignores it there too), --gpus (refused: no GPU driver).
 */
export function checkIgnoredFlags(parsed: Parsed): void {
  const isolation = str(parsed, "isolation");
  if (isolation && isolation.toLowerCase() !== "default") {
    throw new SkiffError(`Invalid isolation: "${isolation}" - linux only supports 'default'`);
  }
  const runtime = str(parsed, "runtime");
  if (runtime && runtime !== "runc" && runtime !== "skiff") {
    throw new SkiffError(`Unknown runtime specified ${runtime}`);
  }
  const driver = str(parsed, "volume-driver");
  if (driver && driver !== "local") {
    throw new SkiffError(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
  }
  const storage = list(parsed, "storage-opt");
  for (const opt of storage) {
    if (!opt.includes("=")) throw new ClientCheckError("invalid storage option");
  }
  if (storage.length) {
    throw new SkiffError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
  }
  if (str(parsed, "kernel-memory") !== undefined) {
    bytesFlag("run", str(parsed, "kernel-memory"), "--kernel-memory");
    console.error(
      "WARNING: Specifying a kernel memory limit is deprecated and will be removed in a future release.",
    );
  }
  if (parsed.options["disable-content-trust"] === false) {
    throw new SkiffError("error contacting notary server: content trust is not supported by skiff");
  }
  const gpus = str(parsed, "gpus");
  if (gpus !== undefined) {
    // docker's CLI checks the keys; its daemon then finds no driver for GPUs (no nvidia runtime here)
    for (const field of gpus.split(",")) {
      const key = field.includes("=") ? field.slice(0, field.indexOf("=")) : undefined;
      if (key !== undefined && !["count", "device", "driver", "capabilities", "options"].includes(key)) {
        throw new ClientCheckError(
          `invalid argument "${gpus}" for "--gpus" flag: unexpected key '${key}' in '${field}'`,
        );
      }
    }
    throw new SkiffError(`could not select device driver "" with capabilities: [[gpu]]`);
  }
  // --ip6: taken and unused, as docker does on a network without IPv6 (skiff's networks are IPv4)
}

/**
 * --health-cmd/-interval/-timeout/-start-period/-retries and --no-healthcheck as docker's CLI reads
 * them (its refusals exit 125), then its daemon's check of the durations (under 1ms refused); what
 * is not given comes from the image's HEALTHCHECK when the container is made.
 */
function healthcheck(parsed: Parsed): HealthConfig | undefined {
  const duration = (name: string) => {
    const value = str(parsed, name);
    if (value === undefined) return 0;
    try {
      return parseGoDuration(value);
    } catch (e) {
      throw invalidValue("run", value, `--${name}`, (e as Error).message);
    }
  };
  const cmd = str(parsed, "health-cmd") ?? "";
  const interval = duration("health-interval"), timeout = duration("health-timeout");
  const startPeriod = duration("health-start-period");
  const retries = intFlag("run", str(parsed, "health-retries"), "--health-retries") ?? 0;
  const any = cmd !== "" || interval !== 0 || timeout !== 0 || startPeriod !== 0 || retries !== 0;
  if (bool(parsed, "no-healthcheck")) {
    if (any) throw new ClientCheckError("--no-healthcheck conflicts with --health-* options");
    return { Test: ["NONE"] };
  }
  if (!any) return undefined;
  for (
    const [value, name] of [[interval, "interval"], [timeout, "timeout"], [retries, "retries"], [
      startPeriod,
      "start-period",
    ]] as const
  ) {
    if (value < 0) throw new ClientCheckError(`--health-${name} cannot be negative`);
  }
  for (
    const [value, name] of [[interval, "Interval"], [timeout, "Timeout"], [
      startPeriod,
      "StartPeriod",
    ]] as const
  ) {
    if (value !== 0 && value < 1e6) throw new SkiffError(`${name} in Healthcheck cannot be less than 1ms`);
  }
  return {
    ...(cmd ? { Test: ["CMD-SHELL", cmd] } : {}),
    ...(interval ? { Interval: interval } : {}),
    ...(timeout ? { Timeout: timeout } : {}),
    ...(startPeriod ? { StartPeriod: startPeriod } : {}),
    ...(retries ? { Retries: retries } : {}),
  };
}
