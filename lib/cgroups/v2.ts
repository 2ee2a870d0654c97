// cgroup v2: one directory, <mount>/<parent>/<id>, with the controllers enabled down the path
// through cgroup.subtree_control. v2 has no devices files: the allow-list is an eBPF program
// attached to the directory.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import {
  BPF_CGROUP_DEVICE,
  BPF_F_ALLOW_MULTI,
  bpfLoadCgroupDeviceProgram,
  bpfProgAttach,
  close,
  O,
  open,
} from "../../ffi/libc.ts";
import type { CgroupLimits, CgroupStats, CgroupUpdate, ContainerCgroup } from "./limits.ts";
import { CPU_PERIOD_US, effectiveMemorySwap, throttleEntries } from "./limits.ts";
import { assembleDeviceFilter, DEFAULT_ALLOWED_DEVICES, type DeviceRule } from "./devices.ts";
import { ioMaxLines } from "./blkio.ts";
import {
  exists,
  killUntilEmpty,
  makeInParent,
  mkdirIfAbsent,
  readKeyed,
  readNumber,
  readOptional,
  readPids,
  removeCgroupDir,
  removeParentIfEmpty,
  waitFor,
  writeValue,
  writeValueAsync,
} from "./fs.ts";

export const V2_MOUNT = "/sys/fs/cgroup";

/** Controllers skiff enables for containers when the host offers them (limits and stats). */
const WANTED = ["cpuset", "cpu", "io", "memory", "pids"] as const;

class V2Cgroup implements ContainerCgroup {
  readonly driver = "v2" as const;
  /** keepParent: a parent the user named (--cgroup-parent) is left in place, as docker leaves it */
  constructor(readonly dir: string, private readonly keepParent: boolean) {}

  applyLimits(limits: CgroupLimits): void {
    const enabled = new Set(words(readOptional(join(this.dir, "cgroup.controllers"))));
    for (const [controller, flag] of requiredControllers(limits)) {
      if (!enabled.has(controller)) {
        throw new SkiffError(
          `cgroup v2 controller "${controller}" is not available on this host: cannot apply ${flag}`,
        );
      }
    }
    applyLimits(this.dir, limits);
  }

  get paths(): string[] {
    return [this.dir];
  }

  addProcess(pid: number): void {
    writeValue(join(this.dir, "cgroup.procs"), pid);
  }

  addProcessAsync(pid: number): Promise<void> {
    return writeValueAsync(join(this.dir, "cgroup.procs"), pid);
  }

  pids(): number[] {
    return readPids(join(this.dir, "cgroup.procs"));
  }

  freeze(): void {
    writeValue(join(this.dir, "cgroup.freeze"), 1);
    waitFor(() => this.frozen(), "the container to freeze");
  }

  thaw(): void {
    writeValue(join(this.dir, "cgroup.freeze"), 0);
  }

  frozen(): boolean {
    return readKeyed(join(this.dir, "cgroup.events")).get("frozen") === 1;
  }

  stats(): CgroupStats {
    const file = (name: string) => join(this.dir, name);
    const io = { read: 0, write: 0 };
    // "<major>:<minor> rbytes=N wbytes=N rios=N ..." per device
    for (const line of (readOptional(file("io.stat")) ?? "").split("\n")) {
      for (const field of line.trim().split(/\s+/).slice(1)) {
        const [key, value] = field.split("=");
        if (key === "rbytes") io.read += Number(value);
        if (key === "wbytes") io.write += Number(value);
      }
    }
    const usage = readNumber(file("memory.current"));
    return {
      memoryUsage: Math.max(0, usage - (readKeyed(file("memory.stat")).get("inactive_file") ?? 0)),
      memoryLimit: readNumber(file("memory.max")),
      cpuNanos: (readKeyed(file("cpu.stat")).get("usage_usec") ?? 0) * 1000,
      pids: readNumber(file("pids.current")),
      blockReadBytes: io.read,
      blockWriteBytes: io.write,
    };
  }

  update(values: CgroupUpdate): void {
    const at = (file: string) => join(this.dir, file);
    if (values.cpusetCpus) writeValue(at("cpuset.cpus"), values.cpusetCpus);
    if (values.cpusetMems) writeValue(at("cpuset.mems"), values.cpusetMems);
    if (values.memory !== undefined) writeValue(at("memory.max"), values.memory || "max");
    if (values.memorySwap !== undefined && exists(at("memory.swap.max"))) {
      // v2 limits swap alone; docker's value is memory + swap
      const memory = values.memory ?? readNumber(at("memory.max"));
      writeValue(
        at("memory.swap.max"),
        values.memorySwap === -1 ? "max" : Math.max(0, values.memorySwap - memory),
      );
    }
    if (values.nanoCpus !== undefined) {
      const quota = values.nanoCpus ? Math.round((values.nanoCpus * CPU_PERIOD_US) / 1e9) : "max";
      writeValue(at("cpu.max"), `${quota} ${CPU_PERIOD_US}`);
    }
    if (values.cpuPeriod || values.cpuQuota) {
      // cpu.max holds both: the one not given stays as it is
      const [quota, period] = (readOptional(at("cpu.max")) ?? `max ${CPU_PERIOD_US}`).trim().split(/\s+/);
      const newQuota = values.cpuQuota ? (values.cpuQuota > 0 ? values.cpuQuota : "max") : quota;
      writeValue(at("cpu.max"), `${newQuota} ${values.cpuPeriod || period}`);
    }
    if (values.cpuShares) writeValue(at("cpu.weight"), sharesToWeight(values.cpuShares));
    if (values.memoryReservation) writeValue(at("memory.low"), values.memoryReservation);
    if (values.pidsLimit !== undefined) {
      writeValue(at("pids.max"), values.pidsLimit > 0 ? values.pidsLimit : "max");
    }
    if (values.blkioWeight) {
      if (exists(at("io.bfq.weight"))) writeValue(at("io.bfq.weight"), values.blkioWeight);
      else if (exists(at("io.weight"))) writeValue(at("io.weight"), blkioToIoWeight(values.blkioWeight));
      else throw new SkiffError("Your kernel does not support Block I/O weight (no io.weight)");
    }
  }

  oomKilled(): boolean {
    return (readKeyed(join(this.dir, "memory.events")).get("oom_kill") ?? 0) > 0;
  }

  destroy(): void {
    if (!exists(this.dir)) return;
    // cgroup.kill (5.14+) kills frozen and forking processes alike; older kernels: kill one by one
    if (exists(join(this.dir, "cgroup.kill"))) {
      try {
        writeValue(join(this.dir, "cgroup.kill"), 1);
      } catch { /* removed meanwhile */ }
    }
    killUntilEmpty(() => this.pids());
    removeCgroupDir(this.dir);
    if (!this.keepParent) removeParentIfEmpty(this.dir);
  }
}

export function openV2(mount: string, parent: string, id: string, keepParent: boolean): ContainerCgroup {
  return new V2Cgroup(join(mount, parent, id), keepParent);
}

/** Which controller each limit needs; a missing one is an error, not a silently ignored flag. */
function requiredControllers(limits: CgroupLimits): Map<string, string> {
  const need = new Map<string, string>();
  if (limits.memory || (limits.memorySwap ?? 0) > 0) need.set("memory", "--memory");
  if (limits.memoryReservation) need.set("memory", "--memory-reservation");
  if (limits.cpuPeriod || limits.cpuQuota) need.set("cpu", "--cpu-period/--cpu-quota");
  if (limits.nanoCpus) need.set("cpu", "--cpus");
  if (limits.cpuShares) need.set("cpu", "--cpu-shares");
  if (limits.cpusetCpus) need.set("cpuset", "--cpuset-cpus");
  if (limits.cpusetMems) need.set("cpuset", "--cpuset-mems");
  if ((limits.pidsLimit ?? 0) > 0) need.set("pids", "--pids-limit");
  if (limits.blkioWeight) need.set("io", "--blkio-weight");
  if (Object.values(limits.blkioThrottle ?? {}).some((l) => l?.length)) need.set("io", "--device-*-bps/iops");
  if (limits.blkioWeightDevices?.some((d) => d.weight > 0)) need.set("io", "--blkio-weight-device");
  return need;
}

const words = (s: string | null) => (s ?? "").split(/\s+/).filter(Boolean);

/**
 * Creates <mount>/<parent>/<id>. `mount` is a parameter so that the v2 code can also be exercised
 * on a hybrid host's /sys/fs/cgroup/unified (which offers no resource controllers).
 */
export function createV2(
  mount: string,
  parent: string,
  id: string,
  limits: CgroupLimits,
  keepParent: boolean,
): ContainerCgroup {
  const available = new Set(words(readOptional(join(mount, "cgroup.controllers"))));
  const required = requiredControllers(limits);
  for (const [controller, flag] of required) {
    if (!available.has(controller)) {
      throw new SkiffError(
        `cgroup v2 controller "${controller}" is not available on this host: cannot apply ${flag}`,
      );
    }
  }
  const parentDir = join(mount, parent);
  // every level from the root to the parent (--cgroup-parent a/b/c has three)
  const levels = [mount];
  for (const part of parent.split("/").filter(Boolean)) levels.push(join(levels[levels.length - 1], part));
  const dir = makeInParent(parentDir, () => {
    for (const level of levels.slice(1)) mkdirIfAbsent(level);
    // enable down the path: the root's subtree_control gives the first level the controllers,
    // each level's the next, the parent's the container
    for (const dir of levels) {
      const enabled = new Set(words(readOptional(join(dir, "cgroup.subtree_control"))));
      for (const c of WANTED.filter((c) => available.has(c) && !enabled.has(c))) {
        try {
          writeValue(join(dir, "cgroup.subtree_control"), `+${c}`);
        } catch (e) {
          if (!required.has(c)) continue; // only wanted for stats: do without
          // v2's "no internal processes" rule: e.g. inside a container whose cgroup root holds processes
          throw /busy/i.test((e as Error).message)
            ? new SkiffError(
              `cannot enable the ${c} controller in ${dir}: the cgroup holds processes of its own (move them to a child cgroup first)`,
            )
            : e;
        }
      }
    }
    const dir = join(parentDir, id);
    if (!mkdirIfAbsent(dir)) throw new SkiffError(`cgroup ${dir} already exists`);
    return dir;
  });
  try {
    applyLimits(dir, limits);
  } catch (e) {
    try {
      removeCgroupDir(dir, 500);
      if (!keepParent) removeParentIfEmpty(dir);
    } catch { /* best effort; the original error matters more */ }
    throw e;
  }
  return new V2Cgroup(dir, keepParent);
}

/** runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000). */
export function sharesToWeight(shares: number): number {
  const clamped = Math.min(262144, Math.max(2, shares));
  return 1 + Math.floor(((clamped - 2) * 9999) / 262142);
}

/** runc's conversion of a blkio weight (10..1000) to io.weight (1..10000). */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

function applyLimits(dir: string, limits: CgroupLimits): void {
  const at = (file: string) => join(dir, file);
  if (limits.cpusetCpus) writeValue(at("cpuset.cpus"), limits.cpusetCpus);
  if (limits.cpusetMems) writeValue(at("cpuset.mems"), limits.cpusetMems);

  if (limits.memory) writeValue(at("memory.max"), limits.memory);
  const swap = effectiveMemorySwap(limits);
  if (swap) {
    // v2 limits swap alone; docker's value is memory + swap
    const value = swap.value === -1 ? "max" : swap.value - (limits.memory ?? 0);
    if (exists(at("memory.swap.max"))) writeValue(at("memory.swap.max"), value);
    else if (swap.explicit && swap.value !== -1) {
      throw new SkiffError(
        "Your kernel does not support swap limit capabilities (no memory.swap.max): cannot apply --memory-swap",
      );
    }
  }

  if (limits.memoryReservation) writeValue(at("memory.low"), limits.memoryReservation);
  // v2 has neither per-group swappiness nor a switch for the OOM killer
  if ((limits.memorySwappiness ?? -1) !== -1) {
    throw new SkiffError("cgroup v2 has no memory swappiness setting: cannot apply --memory-swappiness");
  }
  if (limits.oomKillDisable) {
    throw new SkiffError("cgroup v2 cannot disable the OOM killer: cannot apply --oom-kill-disable");
  }

  if (limits.nanoCpus) {
    writeValue(at("cpu.max"), `${Math.round((limits.nanoCpus * CPU_PERIOD_US) / 1e9)} ${CPU_PERIOD_US}`);
  } else if (limits.cpuPeriod || limits.cpuQuota) {
    const quota = !limits.cpuQuota || limits.cpuQuota === -1 ? "max" : limits.cpuQuota;
    writeValue(at("cpu.max"), `${quota} ${limits.cpuPeriod || CPU_PERIOD_US}`);
  }
  if (limits.cpuShares) writeValue(at("cpu.weight"), sharesToWeight(limits.cpuShares));

  if ((limits.pidsLimit ?? 0) > 0) writeValue(at("pids.max"), limits.pidsLimit!);

  if (limits.blkioWeight) {
    if (exists(at("io.bfq.weight"))) writeValue(at("io.bfq.weight"), limits.blkioWeight);
    else if (exists(at("io.weight"))) writeValue(at("io.weight"), blkioToIoWeight(limits.blkioWeight));
    else {throw new SkiffError(
        "Your kernel does not support Block I/O weight (no io.bfq.weight or io.weight)",
      );}
  }

  // runc's: only BFQ takes per-device weights (none is written without it), as "MAJ:MIN WEIGHT"
  const weighted = limits.blkioWeightDevices?.filter((d) => d.weight > 0) ?? [];
  if (weighted.length && exists(at("io.bfq.weight"))) {
    for (const d of weighted) writeValue(at("io.bfq.weight"), `${d.device} ${d.weight}`);
  }
  for (const line of ioMaxLines(throttleEntries(limits))) writeValue(at("io.max"), line);

  if (!limits.privileged) attachDeviceFilter(dir, [...DEFAULT_ALLOWED_DEVICES, ...limits.deviceRules ?? []]);
}

/** Loads an allow-list as an eBPF program and attaches it to the directory. */
export function attachDeviceFilter(dir: string, rules: readonly DeviceRule[]): void {
  let prog = -1, cgroupFd = -1;
  try {
    prog = bpfLoadCgroupDeviceProgram(assembleDeviceFilter(rules));
    cgroupFd = open(dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    // the attachment keeps the program alive after both fds are closed
    bpfProgAttach(cgroupFd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI);
  } catch (e) {
    throw new SkiffError(`cannot install the devices allow-list on ${dir}: ${(e as Error).message}`);
  } finally {
    if (cgroupFd >= 0) close(cgroupFd);
    if (prog >= 0) close(prog);
  }
}
