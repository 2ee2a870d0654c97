// The limit values, docker's validation of them, and host facts used by that validation.

import { ClientCheckError, SkiffError } from "../errors.ts";
import {
  type DeviceMapping,
  deviceNodeRule,
  deviceNumbers,
  type DeviceRule,
  hostDevices,
  parseDeviceCgroupRule,
} from "./devices.ts";
import { osMessage, readOptional } from "./fs.ts";
import {
  THROTTLE_FIELDS,
  THROTTLE_FLAGS,
  type ThrottleDevice,
  type ThrottleKind,
  type WeightDevice,
} from "./blkio.ts";

/**
 * The resource fields of docker's HostConfig (the container record's, `run`'s flags, an API's
 * request body), by docker's names: what `cgroupLimitsOf` reads.
 */
export interface HostResources {
  Memory: number;
  MemorySwap: number;
  NanoCpus: number;
  CpuShares: number;
  CpusetCpus: string;
  CpusetMems: string;
  PidsLimit: number | null;
  BlkioWeight: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  MemoryReservation?: number;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean;
  DeviceCgroupRules?: string[] | null;
  Privileged: boolean;
  /** --device: the nodes' rules are gathered from the host (docker's error when one is missing) */
  Devices?: DeviceMapping[] | null;
  /** --cgroup-parent as given (lib/cgroups/parent.ts); absent or "": skiff's own parent */
  CgroupParent?: string;
  /** --blkio-weight-device, --device-read-bps/-write-bps/-read-iops/-write-iops (host paths as given) */
  BlkioWeightDevice?: WeightDevice[] | null;
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
}

/**
 * "MAJ:MIN" of a host path as docker's daemon reads it (stat, following symlinks: any file's
 * st_rdev, so a non-device is 0:0 and the kernel refuses its line with ENODEV, as under docker);
 * undefined when it cannot be stat'ed (the start reports it: blkioDeviceProblem).
 */
function hostDeviceNumber(path: string): string | undefined {
  try {
    const { major, minor } = deviceNumbers(Deno.statSync(path).rdev ?? 0);
    return `${major}:${minor}`;
  } catch {
    return undefined;
  }
}

/**
 * docker's error for a --blkio-weight-device or --device-*-bps/iops path it cannot stat when the
 * container starts (daemon getBlkioThrottleDevices): "stat /dev/x: no such file or directory",
 * which its CLI gives exit 127; undefined when all are there.
 */
export function blkioDeviceProblem(host: HostResources): SkiffError | undefined {
  const paths = [
    ...(host.BlkioWeightDevice ?? []).map((d) => d.Path),
    ...THROTTLE_FIELDS.flatMap((field) => (host[field] ?? []).map((d) => d.Path)),
  ];
  for (const path of paths) {
    try {
      Deno.statSync(path);
    } catch (e) {
      const missing = e instanceof Deno.errors.NotFound;
      const why = missing ? "no such file or directory" : osMessage(e);
      return new SkiffError(`stat ${path}: ${why}`, missing ? 127 : 125);
    }
  }
}

/** The throttles of a HostConfig with their devices' numbers; a path that cannot be stat'ed adds none. */
function blkioThrottleOf(host: HostResources): CgroupLimits["blkioThrottle"] {
  const out: NonNullable<CgroupLimits["blkioThrottle"]> = {};
  for (const field of THROTTLE_FIELDS) {
    const rates = (host[field] ?? []).flatMap(({ Path, Rate }) => {
      const device = hostDeviceNumber(Path);
      return device ? [{ device, rate: Rate }] : [];
    });
    if (rates.length) out[THROTTLE_FLAGS[field].kind] = rates;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * --device-cgroup-rule's rules, then those of --device's nodes; undefined when there are none. A
 * device that cannot be read adds no rule here: the start reads the devices again for the init
 * stage and fails there with docker's error, once the container exists (docker creates it, then
 * its start fails).
 */
function deviceRulesOf(host: HostResources): DeviceRule[] | undefined {
  const nodeRules = (m: DeviceMapping) => {
    try {
      return hostDevices(m).map((node) => deviceNodeRule(node, m.CgroupPermissions));
    } catch {
      return [];
    }
  };
  const rules = [
    ...host.DeviceCgroupRules?.map(parseDeviceCgroupRule) ?? [],
    ...(host.Devices ?? []).flatMap(nodeRules),
  ];
  return host.DeviceCgroupRules || rules.length ? rules : undefined;
}

/**
 * The one mapping from HostConfig to the cgroup limits: `run`, the supervisor's start and `update`
 * derive a container's limits here, so a field added to one is added to all.
 */
export function cgroupLimitsOf(host: HostResources): CgroupLimits {
  return {
    memory: host.Memory,
    memorySwap: host.MemorySwap,
    nanoCpus: host.NanoCpus,
    cpuShares: host.CpuShares,
    cpusetCpus: host.CpusetCpus,
    cpusetMems: host.CpusetMems,
    pidsLimit: host.PidsLimit ?? undefined,
    blkioWeight: host.BlkioWeight,
    cpuPeriod: host.CpuPeriod,
    cpuQuota: host.CpuQuota,
    memoryReservation: host.MemoryReservation,
    memorySwappiness: host.MemorySwappiness ?? undefined,
    oomKillDisable: host.OomKillDisable,
    deviceRules: deviceRulesOf(host),
    privileged: host.Privileged,
    blkioThrottle: blkioThrottleOf(host),
    blkioWeightDevices: host.BlkioWeightDevice?.length
      ? host.BlkioWeightDevice.flatMap(({ Path, Weight }) => {
        const device = hostDeviceNumber(Path);
        return device ? [{ device, weight: Weight }] : [];
      })
      : undefined,
  };
}

export interface CgroupLimits {
  /** bytes; 0/undefined: unlimited */
  memory?: number;
  /** bytes of memory+swap; -1 unlimited; 0/undefined: docker's default of 2 × memory */
  memorySwap?: number;
  /** cpus × 1e9 */
  nanoCpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** > 0: limit; 0 / -1 / undefined: unlimited */
  pidsLimit?: number;
  /** 10..1000 */
  blkioWeight?: number;
  /** devices: allow all */
  privileged: boolean;
  // Less common docker flags; optional, so callers that do not offer them need not change.
  /** --cpu-period, µs (1000..1000000); not with nanoCpus */
  cpuPeriod?: number;
  /** --cpu-quota, µs per period (>= 1000, or -1 unlimited); not with nanoCpus */
  cpuQuota?: number;
  /** --memory-reservation: soft limit in bytes (v1 memory.soft_limit_in_bytes, v2 memory.low) */
  memoryReservation?: number;
  /** --memory-swappiness 0..100; -1/undefined: the host's default (cgroup v1 only) */
  memorySwappiness?: number;
  /** --oom-kill-disable (cgroup v1 only) */
  oomKillDisable?: boolean;
  /** extra allowed devices (--device-cgroup-rule, --device), after docker's default list */
  deviceRules?: DeviceRule[];
  /** --device-read-bps, --device-write-bps (bytes/s), --device-read-iops, --device-write-iops */
  blkioThrottle?: Partial<Record<ThrottleKind, DeviceRate[]>>;
  /** --blkio-weight-device: per-device weights (10..1000; 0 sets nothing, as runc skips it) */
  blkioWeightDevices?: { device: string; weight: number }[];
}

/** A per-device rate: `device` is a host device's "MAJ:MIN" (hostDeviceNumber). */
export interface DeviceRate {
  device: string;
  rate: number;
}

/** The throttle entries by kind, checked: [kind, "MAJ:MIN", rate]. */
export function throttleEntries(limits: CgroupLimits): [ThrottleKind, string, number][] {
  const out: [ThrottleKind, string, number][] = [];
  for (const kind of ["readBps", "writeBps", "readIops", "writeIops"] as const) {
    for (const { device, rate } of limits.blkioThrottle?.[kind] ?? []) {
      if (!Number.isSafeInteger(rate) || rate < 0) {
        throw new SkiffError(`invalid ${kind} rate ${rate} for device ${device}: must be a positive integer`);
      }
      out.push([kind, device, rate]);
    }
  }
  return out;
}

export interface ContainerCgroup {
  readonly driver: "v1" | "v2";
  /** Every cgroup directory of this container (one per v1 hierarchy, or the one v2 directory). */
  readonly paths: string[];
  addProcess(pid: number): void;
  /** addProcess on Deno's blocking pool: the first cgroup.procs write waits for an RCU grace period. */
  addProcessAsync(pid: number): Promise<void>;
  oomKilled(): boolean;
  /** kills what is left (SIGKILL, or cgroup.kill on v2), waits until empty, rmdirs; idempotent; never throws for an already-removed cgroup */
  destroy(): void;
  pids(): number[];
  /** Freezes every process (docker pause); returns once the kernel reports the group frozen. */
  freeze(): void;
  /** Thaws a frozen group (docker unpause). */
  thaw(): void;
  frozen(): boolean;
  /** Usage counters for `stats`; fields the host lacks are 0. */
  stats(): CgroupStats;
  /** `docker update`: writes the given values to the live cgroup; absent fields stay as they are. */
  update(values: CgroupUpdate): void;
  /**
   * The limits of the container that takes over a group made ahead without any (a warm
   * supervisor's spare PID 1 waits in it: lib/engine/monitor.ts); docker's words when one cannot be.
   */
  applyLimits(limits: CgroupLimits): void;
}

/**
 * New values for a live cgroup (docker update). Unlike CgroupLimits these are final values: memory
 * 0 and pidsLimit <= 0 mean unlimited, memorySwap is memory+swap (-1 unlimited), nanoCpus 0 lifts
 * the CPU quota.
 */
export interface CgroupUpdate {
  memory?: number;
  memorySwap?: number;
  nanoCpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
  /** --cpu-period / --cpu-quota in µs (quota -1: none) */
  cpuPeriod?: number;
  cpuQuota?: number;
  memoryReservation?: number;
}

/**
 * The container's own cgroups as it should see them under /sys/fs/cgroup (what runc mounts, and
 * what JVMs and other runtimes read to size themselves): each source bind-mounted at its target
 * (read-only unless privileged) and the symlinks, on a tmpfs at /sys/fs/cgroup unless a bind's
 * target is /sys/fs/cgroup itself (v2).
 */
export interface CgroupView {
  binds: { source: string; target: string }[];
  /** link: absolute path in the container; target: the relative name it points to */
  symlinks: { link: string; target: string }[];
}

/** What docker stats shows of a container's cgroup. */
export interface CgroupStats {
  /** bytes in use, without reclaimable inactive file cache (docker's "MEM USAGE") */
  memoryUsage: number;
  /** bytes; 0 when unlimited */
  memoryLimit: number;
  /** total CPU time used, nanoseconds */
  cpuNanos: number;
  pids: number;
  blockReadBytes: number;
  blockWriteBytes: number;
}

/** Docker refuses smaller memory limits (daemon/daemon_unix.go linuxMinMemory). */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** CFS period docker uses for --cpus. */
export const CPU_PERIOD_US = 100_000;

/** Online CPUs of the host (docker's sysinfo.NumCPU for --cpus validation). */
export function hostCpuCount(): number {
  const online = readOptional("/sys/devices/system/cpu/online");
  if (online) {
    try {
      return parseCpuList(online).size;
    } catch { /* fall through */ }
  }
  return navigator.hardwareConcurrency;
}

/** The CPUs a container may be pinned to (the root cpuset), as a list like "0-3". */
export function hostCpusetCpus(): string {
  return readOptional("/sys/fs/cgroup/cpuset/cpuset.effective_cpus") ||
    readOptional("/sys/fs/cgroup/cpuset.cpus.effective") ||
    readOptional("/sys/devices/system/cpu/online") || `0-${hostCpuCount() - 1}`;
}

/** The memory nodes a container may use, as a list like "0". */
export function hostCpusetMems(): string {
  return readOptional("/sys/fs/cgroup/cpuset/cpuset.effective_mems") ||
    readOptional("/sys/fs/cgroup/cpuset.mems.effective") ||
    readOptional("/sys/devices/system/node/online") || "0";
}

/**
 * Docker's checks of the limits (daemon verifyPlatformContainerResources), with its wording. The
 * CLI may call this before creating anything; createCgroup calls it too.
 */
export function validateLimits(limits: CgroupLimits): void {
  const { memory = 0, memorySwap = 0, nanoCpus = 0, cpuShares = 0, blkioWeight = 0 } = limits;
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new SkiffError(`invalid ${name}: ${value} is not an integer`);
    }
  }
  if (memory < 0) throw new SkiffError(`invalid memory limit: ${memory}`);
  if (memory !== 0 && memory < MIN_MEMORY) throw new SkiffError("Minimum memory limit allowed is 6MB");
  if (memory > 0 && memorySwap > 0 && memorySwap < memory) {
    throw new SkiffError("Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  if (memory === 0 && memorySwap > 0) {
    throw new SkiffError("You should always set the Memory limit when using Memoryswap limit, see usage");
  }
  if (memorySwap < -1) throw new SkiffError(`invalid memory-swap limit: ${memorySwap}`);
  const cpus = hostCpuCount();
  // the kernel's minimum CFS quota is 1 ms of a 100 ms period: 0.01 CPUs
  if (nanoCpus < 0 || nanoCpus > cpus * 1e9 || (nanoCpus > 0 && nanoCpus < 1e7)) {
    throw new SkiffError(
      `Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`,
    );
  }
  if (cpuShares < 0) {
    throw new SkiffError(`invalid CPU shares (${cpuShares}): value must be a positive integer`);
  }
  if (blkioWeight !== 0 && (blkioWeight < 10 || blkioWeight > 1000)) {
    throw new SkiffError("Range of blkio weight is from 10 to 1000");
  }
  const { cpuPeriod = 0, cpuQuota = 0, memoryReservation = 0, memorySwappiness = -1 } = limits;
  if (nanoCpus > 0 && cpuPeriod > 0) {
    throw new SkiffError("Conflicting options: Nano CPUs and CPU Period cannot both be set");
  }
  if (nanoCpus > 0 && cpuQuota > 0) {
    throw new SkiffError("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
  }
  if (cpuPeriod !== 0 && (cpuPeriod < 1000 || cpuPeriod > 1_000_000)) {
    throw new SkiffError(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    );
  }
  if (cpuQuota > 0 && cpuQuota < 1000) {
    throw new SkiffError("CPU cfs quota can not be less than 1ms (i.e. 1000)");
  }
  if (cpuQuota < -1) throw new SkiffError(`invalid CPU quota: ${cpuQuota}`);
  if (memoryReservation < 0) throw new SkiffError(`invalid memory reservation: ${memoryReservation}`);
  if (memoryReservation > 0 && memoryReservation < MIN_MEMORY) {
    throw new SkiffError("Minimum memory reservation allowed is 6MB");
  }
  if (memory > 0 && memoryReservation > memory) {
    throw new SkiffError("Minimum memory limit can not be less than memory reservation limit, see usage");
  }
  if (memorySwappiness !== -1 && (memorySwappiness < 0 || memorySwappiness > 100)) {
    throw new ClientCheckError(`Invalid value: ${memorySwappiness}, valid memory swappiness range is 0-100`);
  }
  throttleEntries(limits);
  if (limits.cpusetCpus !== undefined && limits.cpusetCpus !== "") {
    checkSubset(limits.cpusetCpus, hostCpusetCpus(), "cpuset cpus", "CPUs");
  }
  if (limits.cpusetMems !== undefined && limits.cpusetMems !== "") {
    checkSubset(limits.cpusetMems, hostCpusetMems(), "cpuset mems", "memory nodes");
  }
}

function checkSubset(requested: string, available: string, what: string, noun: string): void {
  let wanted: Set<number>;
  try {
    wanted = parseCpuList(requested);
  } catch {
    throw new SkiffError(`Invalid value ${requested} for ${what}`);
  }
  const have = parseCpuList(available);
  if ([...wanted].some((n) => !have.has(n))) {
    throw new SkiffError(
      `Requested ${noun} are not available - requested ${requested}, available: ${available}`,
    );
  }
}

/** Parses a kernel cpu/node list ("0-3,5,7-8"); throws on bad syntax. */
export function parseCpuList(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad cpu list ${list}`);
    const from = Number(m[1]), to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 65536) throw new Error(`bad cpu list ${list}`);
    for (let n = from; n <= to; n++) out.add(n);
  }
  return out;
}

/** Docker's default: with only --memory set, memory+swap is twice the memory. */
export function effectiveMemorySwap(limits: CgroupLimits): { value: number; explicit: boolean } | null {
  const memory = limits.memory ?? 0;
  const swap = limits.memorySwap ?? 0;
  if (swap === -1) return { value: -1, explicit: true };
  if (swap > 0) return { value: swap, explicit: true };
  if (memory > 0) return { value: 2 * memory, explicit: false };
  return null;
}
