// Creating a container: the record (docker's inspect shape) and its directory with the overlay dirs
// and the files bound over /etc/hostname, /etc/hosts and /etc/resolv.conf.

import { NotFoundError, SkiffError } from "../errors.ts";
import { createContainer, findContainer } from "../state/containers.ts";
import {
  checkEndpointOptions,
  checkMacForMode,
  DEFAULT_HOSTS,
  hostsFile,
  isUserNetwork,
  joinedContainer,
} from "../network/mode.ts";
import { resolveHostGateway, userNetworkState } from "../network/ipam.ts";
import type { StateRoot } from "../state/root.ts";
import {
  type ContainerRecord,
  type HealthConfig,
  type HostConfig,
  type ImageRecord,
  initialState,
  type MountPoint,
  type ResourceSettings,
} from "../state/types.ts";
import { canonicalCapabilityList } from "./caps.ts";
import type { ApiMount } from "./mountflag.ts";
import type { PortSettings } from "../network/ports.ts";
import { containerOfMode, defaultCgroupnsMode, type NamespaceModes } from "./nsmodes.ts";
import { DEFAULT_MASKED_PATHS, DEFAULT_PATH, DEFAULT_READONLY_PATHS, DEFAULT_SHM_SIZE } from "./spec.ts";

export interface CreateRequest {
  /** A fresh id from newContainerId(); one is made when absent. */
  id?: string;
  image: ImageRecord;
  /** The reference the user gave (docker's Config.Image). */
  imageRef: string;
  /** Unpacked layer dirs, top-most first. */
  lowerDirs: string[];
  name?: string;
  /** Arguments after IMAGE; empty = the image's Cmd. */
  command: string[];
  /** undefined = the image's; [] (from `--entrypoint ""`) clears it. */
  entrypoint?: string[];
  /** KEY=VALUE from -e/--env-file, in order, applied over the image's Env. */
  env: string[];
  workingDir?: string;
  user?: string;
  hostname?: string;
  tty: boolean;
  interactive: boolean;
  /** docker's StdinOnce: the end of an attached stdin closes the container's (-i, but not run -d). */
  stdinOnce?: boolean;
  labels: Record<string, string>;
  autoRemove: boolean;
  privileged: boolean;
  readOnlyRootfs: boolean;
  capAdd: string[];
  capDrop: string[];
  /** --security-opt, as HostConfig.SecurityOpt keeps it (lib/cli/security_opt.ts). */
  securityOpt?: string[];
  resources: ResourceSettings;
  /** --group-add */
  groupAdd?: string[];
  /** --volumes-from as given (its mounts are in `mounts`) */
  volumesFrom?: string[];
  /** --cidfile (HostConfig.ContainerIDFile) */
  cidFile?: string;
  /** -a/--attach (Config.AttachStdin/Stdout/Stderr); absent: stdout and stderr, stdin with -i */
  attach?: { stdin: boolean; stdout: boolean; stderr: boolean };
  /** --domainname (Config.Domainname) */
  domainname?: string;
  /** --health-* / --no-healthcheck (merged over the image's HEALTHCHECK) */
  healthcheck?: HealthConfig;
  /** --init / --init=false (HostConfig.Init); undefined when not given. */
  init?: boolean;
  /** --network: "bridge" (docker's default), "none", "host", "container:NAME" (lib/network/mode.ts) */
  networkMode?: string;
  /** --network-alias, --ip: a user-defined network's endpoint (lib/network/names.ts) */
  networkAliases?: string[];
  ip?: string;
  /** --mac-address as given, checked (lib/network/mode.ts macAddressFlag) */
  macAddress?: string;
  /** --link values as given, checked (lib/network/links.ts parseLink) */
  links?: string[];
  /** --add-host, validated "host:ip" */
  extraHosts?: string[];
  /** --dns, --dns-search, --dns-option */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --shm-size in bytes; 0 = docker's 64 MiB */
  shmSize?: number;
  /** --tmpfs: path -> options */
  tmpfs?: Record<string, string>;
  /** -v binds and volumes, prepared by mounts.ts */
  mounts?: MountPoint[];
  /**
   * The -v and --mount values as docker keeps them for inspect: HostConfig.Binds (each -v with a
   * colon, as given), HostConfig.Mounts (each --mount as docker's CLI sends it), Config.Volumes (each
   * -v without one: an anonymous volume). The mounts themselves are in `mounts` and `tmpfs`.
   */
  binds?: string[];
  apiMounts?: ApiMount[];
  anonymousVolumes?: string[];
  /** --restart, --log-driver/--log-opt (validated) */
  restartPolicy?: HostConfig["RestartPolicy"];
  logConfig?: HostConfig["LogConfig"];
  /** --stop-signal (else the image's), --stop-timeout seconds */
  stopSignal?: string;
  stopTimeout?: number;
  /** -p, -P, --expose (lib/network/ports.ts) */
  ports?: PortSettings;
  /** --ulimit, --sysctl, --oom-score-adj (validated: lib/runtime/process_limits.ts) */
  ulimits?: HostConfig["Ulimits"];
  sysctls?: HostConfig["Sysctls"];
  oomScoreAdj?: number;
  /** --ipc, --pid, --uts, --userns, --cgroupns, checked (lib/runtime/nsmodes.ts) */
  namespaceModes?: NamespaceModes;
}

/** Applies KEY=VALUE entries over a list: same key replaces in place, new keys are appended. */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const key = entry.split("=", 1)[0];
    const i = out.findIndex((e) => e.split("=", 1)[0] === key);
    if (i === -1) out.push(entry);
    else out[i] = entry;
  }
  return out;
}

const join = (dir: string, name: string) => `${dir}/${name}`;

/**
 * The container's resolv.conf: the host's without loopback name servers (unreachable from the
 * container; docker falls back to public ones then), each part replaced by --dns, --dns-search,
 * --dns-option when given.
 */
function containerResolvConf(
  dns: string[],
  search: string[],
  options: string[],
  hostNetwork: boolean,
): string {
  let host = "";
  try {
    host = Deno.readTextFileSync("/etc/resolv.conf");
  } catch { /* no resolv.conf on the host */ }
  const lines = host.split("\n");
  const keyword = (l: string) => l.trim().split(/\s+/)[0];
  // on the host's network a loopback resolver is reachable: docker keeps it
  let servers = lines.filter((l) => keyword(l) === "nameserver").map((l) => l.trim().split(/\s+/)[1])
    .filter((ip) => ip && (hostNetwork || (!ip.startsWith("127.") && ip !== "::1")));
  if (dns.length) servers = dns;
  if (servers.length === 0) servers = ["8.8.8.8", "8.8.4.4"];
  // `--dns-search .` alone: no search domains at all, not even the host's (docker)
  const searchLines = search.length
    ? search.join(" ") === "." ? [] : [`search ${search.join(" ")}`]
    : lines.filter((l) => keyword(l) === "search" || keyword(l) === "domain");
  const optionLines = options.length
    ? [`options ${options.join(" ")}`]
    : lines.filter((l) => keyword(l) === "options");
  return [...servers.map((ip) => `nameserver ${ip}`), ...searchLines, ...optionLines].join("\n") + "\n";
}

/**
 * Config.Healthcheck as docker's daemon merges it: the image's, each field the --health-* flags give
 * in its place (a Test, a non-zero duration or retry count).
 */
export function healthcheckOf(user?: HealthConfig, fromImage?: HealthConfig): { Healthcheck?: HealthConfig } {
  const image = fromImage && checkedHealthcheck(fromImage);
  if (!user || !image) return user ?? image ? { Healthcheck: user ?? image } : {};
  const merged: HealthConfig = { ...image };
  if (user.Test?.length) merged.Test = user.Test;
  for (const key of ["Interval", "Timeout", "StartPeriod", "Retries"] as const) {
    if (user[key]) merged[key] = user[key];
  }
  return { Healthcheck: merged };
}

/**
 * An image's HEALTHCHECK as the record's shape allows it (image configs are anybody's JSON): a test
 * of strings, durations and retries as non-negative safe integers; anything else is left out.
 */
function checkedHealthcheck(hc: HealthConfig): HealthConfig | undefined {
  if (typeof hc !== "object" || hc === null) return undefined;
  const out: HealthConfig = {};
  if (Array.isArray(hc.Test) && hc.Test.every((t) => typeof t === "string")) out.Test = hc.Test;
  for (const key of ["Interval", "Timeout", "StartPeriod", "Retries"] as const) {
    const v = hc[key];
    if (Number.isSafeInteger(v) && v! >= 0) out[key] = v;
  }
  return out;
}

/** Config.ExposedPorts: the image's EXPOSE and the request's, as docker merges them (absent: none). */
function exposedPorts(
  image: Record<string, unknown> | undefined,
  asked: Record<string, Record<string, never>> | undefined,
): { ExposedPorts?: Record<string, Record<string, never>> } {
  const ports: Record<string, Record<string, never>> = {};
  for (const key of Object.keys(image ?? {})) ports[key.includes("/") ? key : `${key}/tcp`] = {};
  Object.assign(ports, asked ?? {});
  return Object.keys(ports).length ? { ExposedPorts: ports } : {};
}

/** The lines /etc/hosts, /etc/resolv.conf and /etc/hostname get in a network mode, as docker writes them. */
function networkFiles(
  root: StateRoot,
  req: CreateRequest,
  mode: string,
): { hosts: string; resolvConf: string; hostname?: string } {
  const joined = joinedContainer(mode);
  if (joined !== undefined) {
    // docker refuses what would contradict the joined container's network, then shares its files
    if (req.hostname) throw new SkiffError("conflicting options: hostname and the network mode");
    if (req.extraHosts?.length) {
      throw new SkiffError("conflicting options: custom host-to-IP mapping and the network mode");
    }
    if (req.dns?.length || req.dnsSearch?.length || req.dnsOptions?.length) {
      throw new SkiffError("conflicting options: dns and the network mode");
    }
    const other = findContainer(root, joined);
    const read = (file: string) => {
      try {
        return Deno.readTextFileSync(join(root.container(other.Id), file));
      } catch {
        return "";
      }
    };
    return { hosts: read("hosts"), resolvConf: read("resolv.conf"), hostname: other.Config.Hostname };
  }
  const resolvConf = containerResolvConf(
    req.dns ?? [],
    req.dnsSearch ?? [],
    req.dnsOptions ?? [],
    mode === "host",
  );
  if (mode === "host") {
    // the host's own files: its hostname, its /etc/hosts with the --add-host lines after it
    let hosts = "";
    try {
      hosts = Deno.readTextFileSync("/etc/hosts");
    } catch { /* none on the host */ }
    if (hosts && !hosts.endsWith("\n")) hosts += "\n";
    return {
      hosts: hosts + hostsFile(resolveHostGateway(root, req.extraHosts ?? [])).slice(DEFAULT_HOSTS.length),
      resolvConf,
      hostname: req.hostname || Deno.hostname(),
    };
  }
  if (isUserNetwork(mode) && !userNetworkState(root, mode)) {
    throw new NotFoundError(`network ${mode} not found`);
  }
  // the container's own address line is added when it starts (engine/network.ts)
  return { hosts: hostsFile(resolveHostGateway(root, req.extraHosts ?? [])), resolvConf };
}

/** Creates the container's record and directory. Throws SkiffError for name conflicts and empty commands. */
export async function createContainerFromImage(
  root: StateRoot,
  req: CreateRequest,
): Promise<ContainerRecord> {
  const imageConfig = req.image.config.config ?? {};
  const entrypoint = req.entrypoint !== undefined
    ? (req.entrypoint.length ? req.entrypoint : null)
    : (imageConfig.Entrypoint?.length ? imageConfig.Entrypoint : null);
  // an explicit --entrypoint drops the image's Cmd, as docker does
  const cmd = req.command.length
    ? req.command
    : req.entrypoint !== undefined
    ? null
    : (imageConfig.Cmd?.length ? imageConfig.Cmd : null);
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw new SkiffError("No command specified");

  const imageEnv = imageConfig.Env ?? [];
  const env = mergeEnv(
    imageEnv.some((e) => e.startsWith("PATH=")) ? imageEnv : [`PATH=${DEFAULT_PATH}`, ...imageEnv],
    req.env,
  );
  const workingDir = req.workingDir || imageConfig.WorkingDir || "/";
  if (!workingDir.startsWith("/")) {
    throw new SkiffError(`the working directory '${workingDir}' is invalid, it needs to be an absolute path`);
  }

  let networkMode = req.networkMode ?? "bridge";
  if (isUserNetwork(networkMode)) {
    // by name, id or id prefix, kept by name (docker shows the network's name)
    const network = userNetworkState(root, networkMode);
    if (!network) throw new NotFoundError(`network ${networkMode} not found`);
    networkMode = network.Network!.Name;
  }
  checkEndpointOptions(networkMode, req.ip, req.networkAliases ?? []);
  checkMacForMode(networkMode, req.macAddress);
  const files = networkFiles(root, req, networkMode);
  // --link: on the default bridge by the linked containers' ids; on a user network as given
  // (loaded only then: a run without links does not load them)
  let linked: ContainerRecord["LinkedContainers"];
  if (networkMode === "bridge" && req.links?.length) {
    const [{ parseLink }, { resolveLinks }] = await Promise.all([
      import("../network/links.ts"),
      import("../network/linked.ts"),
    ]);
    linked = resolveLinks(root, req.links.flatMap((l) => parseLink(l) ?? []));
  }
  const userLinks = isUserNetwork(networkMode) && req.links?.length ? req.links : undefined;
  const namespaceModes = resolveNamespaceModes(root, req);

  return await createContainer(root, req.name, (id, name, dir) => {
    const hostname = files.hostname ?? (req.hostname || id.slice(0, 12));
    for (const sub of ["upper", "work", "merged"]) Deno.mkdirSync(join(dir, sub), { mode: 0o755 });
    Deno.writeTextFileSync(join(dir, "hostname"), `${hostname}\n`);
    Deno.writeTextFileSync(join(dir, "hosts"), files.hosts);
    Deno.writeTextFileSync(join(dir, "resolv.conf"), files.resolvConf);
    const record: ContainerRecord = {
      Id: id,
      Created: new Date().toISOString(),
      Path: argv[0],
      Args: argv.slice(1),
      State: initialState(),
      Image: req.image.id,
      Name: `/${name}`,
      RestartCount: 0,
      Driver: "overlay2",
      ...(req.networkAliases?.length ? { NetworkAliases: { [networkMode]: req.networkAliases } } : {}),
      ...(req.ip ? { NetworkIps: { [networkMode]: req.ip } } : {}),
      ...(linked ? { LinkedContainers: linked } : {}),
      ...(userLinks ? { NetworkLinks: { [networkMode]: userLinks } } : {}),
      HostConfig: {
        AutoRemove: req.autoRemove,
        Privileged: req.privileged,
        ReadonlyRootfs: req.readOnlyRootfs,
        CapAdd: canonicalCapabilityList(req.capAdd),
        CapDrop: canonicalCapabilityList(req.capDrop),
        SecurityOpt: req.securityOpt?.length ? req.securityOpt : null,
        NetworkMode: networkMode,
        ...req.resources,
        GroupAdd: req.groupAdd?.length ? req.groupAdd : null,
        ...(req.volumesFrom?.length ? { VolumesFrom: req.volumesFrom } : {}),
        ...(req.binds?.length ? { Binds: req.binds } : {}),
        ...(req.apiMounts?.length ? { Mounts: req.apiMounts } : {}),
        ...(req.cidFile ? { ContainerIDFile: req.cidFile } : {}),
        ExtraHosts: req.extraHosts?.length ? req.extraHosts : null,
        Dns: req.dns ?? [],
        DnsSearch: req.dnsSearch ?? [],
        DnsOptions: req.dnsOptions ?? [],
        ShmSize: req.shmSize || DEFAULT_SHM_SIZE,
        Tmpfs: req.tmpfs && Object.keys(req.tmpfs).length ? req.tmpfs : null,
        MaskedPaths: req.privileged ? [] : DEFAULT_MASKED_PATHS,
        ReadonlyPaths: req.privileged ? [] : DEFAULT_READONLY_PATHS,
        RestartPolicy: req.restartPolicy ?? { Name: "no", MaximumRetryCount: 0 },
        LogConfig: req.logConfig ?? { Type: "json-file", Config: {} },
        PortBindings: req.ports?.portBindings ?? {},
        PublishAllPorts: req.ports?.publishAll ?? false,
        Ulimits: req.ulimits?.length ? req.ulimits : null,
        ...(req.sysctls && Object.keys(req.sysctls).length ? { Sysctls: req.sysctls } : {}),
        OomScoreAdj: req.oomScoreAdj ?? 0,
        ...namespaceModes,
        ...(req.init !== undefined ? { Init: req.init } : {}),
      },
      Config: {
        Hostname: hostname,
        Domainname: req.domainname ?? "",
        User: req.user ?? imageConfig.User ?? "",
        AttachStdin: req.attach?.stdin ?? req.interactive,
        AttachStdout: req.attach?.stdout ?? true,
        AttachStderr: req.attach?.stderr ?? true,
        Tty: req.tty,
        OpenStdin: req.interactive,
        StdinOnce: req.stdinOnce ?? req.interactive,
        Env: env,
        Cmd: cmd,
        Image: req.imageRef,
        Volumes: configVolumes(req.anonymousVolumes, imageConfig.Volumes),
        WorkingDir: req.workingDir || imageConfig.WorkingDir || "",
        Entrypoint: entrypoint,
        ...(req.macAddress ? { MacAddress: req.macAddress } : {}),
        Labels: { ...(imageConfig.Labels ?? {}), ...req.labels },
        StopSignal: req.stopSignal ?? imageConfig.StopSignal,
        ...(req.stopTimeout !== undefined ? { StopTimeout: req.stopTimeout } : {}),
        ...exposedPorts(imageConfig.ExposedPorts, req.ports?.exposedPorts),
        ...healthcheckOf(req.healthcheck, imageConfig.Healthcheck),
        ...(Array.isArray(imageConfig.Shell) && imageConfig.Shell.length &&
            imageConfig.Shell.every((a) => typeof a === "string")
          ? { Shell: imageConfig.Shell }
          : {}),
      },
      LowerDirs: req.lowerDirs,
    };
    if (req.mounts?.length) {
      record.Mounts = req.mounts;
      // the caller copied the image's files into the empty volumes before (create_run.ts)
      record.VolumesCopiedAtCreate = true;
    }
    return record;
  }, req.id);
}

/** docker's Config.Volumes: the anonymous -v paths and the image's VOLUMEs; null when none. */
function configVolumes(
  anonymous: string[] | undefined,
  image: Record<string, unknown> | null | undefined,
): Record<string, Record<string, never>> | null {
  const paths = [...(anonymous ?? []), ...Object.keys(image ?? {})];
  return paths.length ? Object.fromEntries(paths.map((p) => [p, {}])) : null;
}

/**
 * HostConfig's namespace modes as docker's daemon keeps them: container:NAME by the container's full
 * id (it must exist; running is checked at start), the cgroup namespace mode from the host when
 * not given, --uts host refused with a hostname.
 */
function resolveNamespaceModes(root: StateRoot, req: CreateRequest): NamespaceModes {
  const modes: NamespaceModes = {
    IpcMode: "private",
    PidMode: "",
    UTSMode: "",
    UsernsMode: "",
    CgroupnsMode: "",
    ...req.namespaceModes,
  };
  if (modes.UTSMode === "host" && req.hostname) {
    throw new SkiffError("conflicting options: hostname and the UTS mode");
  }
  for (const key of ["IpcMode", "PidMode"] as const) {
    const ref = containerOfMode(modes[key]);
    if (ref !== undefined) modes[key] = `container:${findContainer(root, ref).Id}`;
  }
  if (!modes.CgroupnsMode) {
    let controllers = "";
    try {
      controllers = Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers");
    } catch { /* cgroup v1 or hybrid: no unified hierarchy at /sys/fs/cgroup */ }
    modes.CgroupnsMode = defaultCgroupnsMode(controllers.trim() !== "");
  }
  return modes;
}
