// cgroup v1: one directory per hierarchy, <mount>/<parent>/<id>. Hierarchies are found in
// mountinfo, so separate mounts (cpu, cpuacct, ...) and co-mounts (cpu,cpuacct) both work. On a
// hybrid host the container also gets a directory in the unified (cgroup2) hierarchy: it adds
// cgroup.kill and exit detection (cgroup.events) for free.

import { basename, join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { readMountInfo } from "../mountinfo.ts";
import type { CgroupLimits, CgroupStats, CgroupUpdate, CgroupView, ContainerCgroup } from "./limits.ts";
import { CPU_PERIOD_US, effectiveMemorySwap, hostCpusetMems, throttleEntries } from "./limits.ts";
import { DEFAULT_ALLOWED_DEVICES, v1RuleLines } from "./devices.ts";
import { THROTTLE_KINDS } from "./blkio.ts";
import {
  exists,
  killUntilEmpty,
  makeDir,
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
  writeValues,
} from "./fs.ts";

/** The v1 controllers a container joins (docker's set, minus those these hosts lack). */
const CONTROLLERS = ["memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"] as const;
type Controller = typeof CONTROLLERS[number];

interface Hierarchies {
  /** controller -> mount point of its hierarchy */
  byController: Map<Controller, string>;
  /** mount point of the cgroup2 hierarchy of a hybrid host, if any */
  unified?: string;
}

let hierarchiesCache: Hierarchies | undefined;
/** The host's v1 hierarchies by controller (from mountinfo; read once per process). */
export function hierarchies(): Hierarchies {
  if (hierarchiesCache) return hierarchiesCache;
  const byController = new Map<Controller, string>();
  let unified: string | undefined;
  for (const m of readMountInfo()) {
    // a hierarchy mounted from a sub-cgroup (container, cgroup namespace) is not the host's root
    if (m.root !== "/") continue;
    if (m.fsType === "cgroup2") unified ??= m.mountPoint;
    if (m.fsType !== "cgroup") continue;
    for (const option of m.superOptions.split(",")) {
      const c = CONTROLLERS.find((name) => name === option);
      if (c && !byController.has(c)) byController.set(c, m.mountPoint);
    }
  }
  hierarchiesCache = { byController, unified };
  return hierarchiesCache;
}

/** Which controllers each limit needs; a missing one is an error, not a silently ignored flag. */
function requiredControllers(limits: CgroupLimits): Map<Controller, string> {
  const need = new Map<Controller, string>();
  if (limits.memory || limits.memorySwap) need.set("memory", "--memory");
  if (limits.memoryReservation) need.set("memory", "--memory-reservation");
  if ((limits.memorySwappiness ?? -1) !== -1) need.set("memory", "--memory-swappiness");
  if (limits.oomKillDisable) need.set("memory", "--oom-kill-disable");
  if (limits.cpuPeriod || limits.cpuQuota) need.set("cpu", "--cpu-period/--cpu-quota");
  if (limits.nanoCpus) need.set("cpu", "--cpus");
  if (limits.cpuShares) need.set("cpu", "--cpu-shares");
  if (limits.cpusetCpus) need.set("cpuset", "--cpuset-cpus");
  if (limits.cpusetMems) need.set("cpuset", "--cpuset-mems");
  if ((limits.pidsLimit ?? 0) > 0) need.set("pids", "--pids-limit");
  if (limits.blkioWeight) need.set("blkio", "--blkio-weight");
  if (Object.values(limits.blkioThrottle ?? {}).some((l) => l?.length)) {
    need.set("blkio", "--device-*-bps/iops");
  }
  if (limits.blkioWeightDevices?.some((d) => d.weight > 0)) need.set("blkio", "--blkio-weight-device");
  // without the devices controller an unprivileged container could open every host device
  if (!limits.privileged) need.set("devices", "the devices allow-list");
  return need;
}

class V1Cgroup implements ContainerCgroup {
  readonly driver = "v1" as const;
  constructor(
    /** controller -> this container's directory */
    private readonly dirs: Map<Controller, string>,
    private readonly unifiedDir: string | undefined,
    /** a parent the user named (--cgroup-parent): left in place, as docker leaves it */
    private readonly keepParent: boolean,
  ) {}

  applyLimits(limits: CgroupLimits): void {
    checkControllers(limits);
    applyLimits(this.dirs, limits);
  }

  get paths(): string[] {
    const all = [...new Set(this.dirs.values())];
    if (this.unifiedDir) all.push(this.unifiedDir);
    return all;
  }

  private dir(c: Controller): string | undefined {
    return this.dirs.get(c);
  }

  addProcess(pid: number): void {
    for (const path of this.paths) writeValue(join(path, "cgroup.procs"), pid);
  }

  async addProcessAsync(pid: number): Promise<void> {
    // all at once: each write is three round trips (open, write, close) through the event loop,
    // which the caller keeps busy meanwhile; one after the other the join took ~12 ms after the go
    // (settled, not all: none is still under way when the caller undoes a failed join)
    const results = await Promise.allSettled(
      this.paths.map((path) => writeValueAsync(join(path, "cgroup.procs"), pid)),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const path of this.paths) for (const pid of readPids(join(path, "cgroup.procs"))) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  freeze(): void {
    const state = this.freezerState();
    writeValue(state, "FROZEN");
    waitFor(() => readOptional(state) === "FROZEN", "the container to freeze");
  }

  thaw(): void {
    writeValue(this.freezerState(), "THAWED");
  }

  frozen(): boolean {
    const freezer = this.dir("freezer");
    return !!freezer && readOptional(join(freezer, "freezer.state")) === "FROZEN";
  }

  private freezerState(): string {
    const freezer = this.dir("freezer");
    if (!freezer) throw new SkiffError('cgroup v1 controller "freezer" is not mounted: cannot pause');
    return join(freezer, "freezer.state");
  }

  stats(): CgroupStats {
    const file = (c: Controller, name: string) => join(this.dir(c) ?? "/nonexistent", name);
    const memoryStat = readKeyed(file("memory", "memory.stat"));
    const usage = readNumber(file("memory", "memory.usage_in_bytes"));
    const io = { read: 0, write: 0 };
    // "<major>:<minor> Read <bytes>" per device, then "Total <bytes>"
    for (
      const line of (readOptional(file("blkio", "blkio.throttle.io_service_bytes_recursive")) ?? "").split(
        "\n",
      )
    ) {
      const [device, op, bytes] = line.trim().split(/\s+/);
      if (!device?.includes(":")) continue;
      if (op === "Read") io.read += Number(bytes);
      if (op === "Write") io.write += Number(bytes);
    }
    return {
      memoryUsage: Math.max(0, usage - (memoryStat.get("total_inactive_file") ?? 0)),
      memoryLimit: readNumber(file("memory", "memory.limit_in_bytes")),
      cpuNanos: readNumber(file("cpuacct", "cpuacct.usage")),
      pids: readNumber(file("pids", "pids.current")),
      blockReadBytes: io.read,
      blockWriteBytes: io.write,
    };
  }

  update(values: CgroupUpdate): void {
    const at = (c: Controller, file: string) => {
      const dir = this.dir(c);
      if (!dir) throw new SkiffError(`cgroup v1 controller "${c}" is not mounted: cannot update ${file}`);
      return join(dir, file);
    };
    if (values.cpusetCpus) writeValue(at("cpuset", "cpuset.cpus"), values.cpusetCpus);
    if (values.cpusetMems) writeValue(at("cpuset", "cpuset.mems"), values.cpusetMems);
    // the kernel keeps memory <= memory+swap at every step: raise memsw first, lower it last
    const memory = values.memory === undefined ? undefined : values.memory || -1;
    const swap = values.memorySwap;
    const memsw = this.dir("memory") ? join(this.dir("memory")!, "memory.memsw.limit_in_bytes") : "";
    const writeSwap = () => {
      if (swap === undefined) return;
      if (exists(memsw)) writeValue(memsw, swap);
      else if (swap !== -1) {
        throw new SkiffError(
          "Your kernel does not support swap limit capabilities (no memory.memsw.limit_in_bytes): cannot apply --memory-swap",
        );
      }
    };
    // readNumber gives 0 for the kernel's "unlimited" value
    const currentSwap = exists(memsw) ? readNumber(memsw) || Infinity : Infinity;
    const swapFirst = swap !== undefined && (swap === -1 || swap > currentSwap);
    if (swapFirst) writeSwap();
    if (memory !== undefined) writeValue(at("memory", "memory.limit_in_bytes"), memory);
    if (!swapFirst) writeSwap();
    if (values.nanoCpus !== undefined) {
      writeValue(at("cpu", "cpu.cfs_period_us"), CPU_PERIOD_US);
      writeValue(
        at("cpu", "cpu.cfs_quota_us"),
        values.nanoCpus ? Math.round((values.nanoCpus * CPU_PERIOD_US) / 1e9) : -1,
      );
    }
    if (values.cpuPeriod) writeValue(at("cpu", "cpu.cfs_period_us"), values.cpuPeriod);
    if (values.cpuQuota) writeValue(at("cpu", "cpu.cfs_quota_us"), values.cpuQuota);
    if (values.cpuShares) writeValue(at("cpu", "cpu.shares"), values.cpuShares);
    if (values.memoryReservation) {
      writeValue(at("memory", "memory.soft_limit_in_bytes"), values.memoryReservation);
    }
    if (values.pidsLimit !== undefined) {
      writeValue(at("pids", "pids.max"), values.pidsLimit > 0 ? values.pidsLimit : "max");
    }
    if (values.blkioWeight) {
      const file = ["blkio.weight", "blkio.bfq.weight"].map((f) => at("blkio", f)).find(exists);
      if (!file) throw new SkiffError("Your kernel does not support Block I/O weight (no blkio.weight)");
      writeValue(file, values.blkioWeight);
    }
  }

  oomKilled(): boolean {
    const memory = this.dir("memory");
    if (!memory) return false;
    const control = readKeyed(join(memory, "memory.oom_control"));
    const kills = control.get("oom_kill");
    if (kills !== undefined) return kills > 0;
    // kernels before 4.13 have no oom_kill counter: a group at its limit and under OOM is the best sign
    return control.get("under_oom") === 1 || Number(readOptional(join(memory, "memory.failcnt")) ?? 0) > 0;
  }

  destroy(): void {
    // every process of a container joins every hierarchy: when the unified group says it is empty,
    // an exited container costs no thaw, no kill and no cgroup.procs reads
    const events = this.unifiedDir ? readKeyed(join(this.unifiedDir, "cgroup.events")) : undefined;
    let removed = false;
    if (events?.get("populated") === 0) {
      try {
        for (const path of this.paths) removeCgroupDir(path, 200);
        removed = true;
      } catch { /* a process sits in a v1 group only (a half-done join): kill it below */ }
    }
    if (!removed) {
      this.killAll();
      // children of the parent dirs first is not needed: a container dir has no sub-groups of ours
      for (const path of this.paths) removeCgroupDir(path);
    }
    if (!this.keepParent) { for (const path of this.paths) removeParentIfEmpty(path); }
  }

  private killAll(): void {
    // a frozen (paused) process cannot die: thaw first
    const freezer = this.dir("freezer");
    if (freezer && exists(join(freezer, "freezer.state"))) {
      try {
        writeValue(join(freezer, "freezer.state"), "THAWED");
      } catch { /* removed meanwhile */ }
    }
    if (this.unifiedDir && exists(join(this.unifiedDir, "cgroup.kill"))) {
      try {
        writeValue(join(this.unifiedDir, "cgroup.kill"), 1);
      } catch { /* removed meanwhile */ }
    }
    killUntilEmpty(() => this.pids());
  }
}

/** Directories of every hierarchy for <parent>/<id>. */
function layout(parent: string, id: string): { dirs: Map<Controller, string>; unified?: string } {
  const h = hierarchies();
  const dirs = new Map<Controller, string>();
  for (const [c, mount] of h.byController) dirs.set(c, join(mount, parent, id));
  return { dirs, unified: h.unified ? join(h.unified, parent, id) : undefined };
}

export function openV1(parent: string, id: string, keepParent: boolean): ContainerCgroup {
  const { dirs, unified } = layout(parent, id);
  return new V1Cgroup(dirs, unified, keepParent);
}

/** A cpuset group starts with empty cpus and mems and takes no process until they are set. */
function inheritCpuset(dir: string): void {
  // by file, not by controller name: cpuset may be co-mounted with other controllers
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    if (exists(join(dir, file)) && !readOptional(join(dir, file))) {
      writeValue(join(dir, file), readOptional(join(dir, "..", file)) ?? "");
    }
  }
}

/** Makes each missing level of <mount>/<parent> (--cgroup-parent a/b/c), top down, a cpuset level with its parent's cpus and mems. */
function makeParent(mount: string, parent: string): void {
  let dir = mount;
  for (const part of parent.split("/").filter(Boolean)) {
    dir = join(dir, part);
    mkdirIfAbsent(dir);
    inheritCpuset(dir);
  }
}

/**
 * mkdir of the container's group. The parent (<mount>/<parent>) is made only when missing: it
 * exists after the first container, and checking it for every run costs 3 calls per hierarchy.
 */
function makeGroup(mount: string, parent: string, id: string): string {
  const dir = join(mount, parent, id);
  const made = makeDir(dir);
  if (made === "made") return dir;
  if (made === "exists") throw new SkiffError(`cgroup ${dir} already exists`);
  return makeInParent(join(mount, parent), () => {
    makeParent(mount, parent);
    if (!mkdirIfAbsent(dir)) throw new SkiffError(`cgroup ${dir} already exists`);
    return dir;
  });
}

export function createV1(
  parent: string,
  id: string,
  limits: CgroupLimits,
  keepParent: boolean,
): ContainerCgroup {
  const h = hierarchies();
  checkControllers(limits);
  const { dirs, unified } = layout(parent, id);
  const created: string[] = [];
  const cgroup = new V1Cgroup(dirs, unified, keepParent);
  try {
    // a Set: co-mounted controllers share one directory
    const mounts = new Set([...h.byController.values(), ...(h.unified ? [h.unified] : [])]);
    for (const mount of mounts) created.push(makeGroup(mount, parent, id));
    applyLimits(dirs, limits);
    return cgroup;
  } catch (e) {
    for (const dir of created.reverse()) {
      try {
        removeCgroupDir(dir, 500);
        if (!keepParent) removeParentIfEmpty(dir);
      } catch { /* best effort; the original error matters more */ }
    }
    throw e;
  }
}

function checkControllers(limits: CgroupLimits): void {
  const h = hierarchies();
  for (const [controller, flag] of requiredControllers(limits)) {
    if (!h.byController.has(controller)) {
      throw new SkiffError(`cgroup v1 controller "${controller}" is not mounted: cannot apply ${flag}`);
    }
  }
}

function applyLimits(dirs: Map<Controller, string>, limits: CgroupLimits): void {
  const at = (c: Controller, file: string) => join(dirs.get(c)!, file);

  // cpuset first: a v1 cpuset group without cpus and mems cannot take processes
  if (dirs.has("cpuset")) {
    const parentDir = join(dirs.get("cpuset")!, "..");
    let parentCpus = readOptional(join(parentDir, "cpuset.cpus"));
    let parentMems = readOptional(join(parentDir, "cpuset.mems"));
    if (!parentCpus || !parentMems) {
      // a parent made by someone else (or left half-made) may still be empty, or a level above it
      const mount = hierarchies().byController.get("cpuset")!;
      makeParent(mount, parentDir.slice(mount.length));
      parentCpus = readOptional(join(parentDir, "cpuset.cpus"));
      parentMems = readOptional(join(parentDir, "cpuset.mems"));
    }
    writeValue(at("cpuset", "cpuset.cpus"), limits.cpusetCpus || parentCpus || "");
    writeValue(at("cpuset", "cpuset.mems"), limits.cpusetMems || parentMems || hostCpusetMems());
  }

  if (limits.memory) writeValue(at("memory", "memory.limit_in_bytes"), limits.memory);
  const swap = effectiveMemorySwap(limits);
  if (swap) {
    const memsw = at("memory", "memory.memsw.limit_in_bytes");
    if (exists(memsw)) writeValue(memsw, swap.value);
    else if (swap.explicit && swap.value !== -1) {
      throw new SkiffError(
        "Your kernel does not support swap limit capabilities (no memory.memsw.limit_in_bytes): cannot apply --memory-swap",
      );
    }
  }

  if (limits.memoryReservation) {
    writeValue(at("memory", "memory.soft_limit_in_bytes"), limits.memoryReservation);
  }
  if (limits.memorySwappiness !== undefined && limits.memorySwappiness !== -1) {
    writeValue(at("memory", "memory.swappiness"), limits.memorySwappiness);
  }
  if (limits.oomKillDisable) writeValue(at("memory", "memory.oom_control"), 1);

  if (limits.nanoCpus) {
    writeValue(at("cpu", "cpu.cfs_period_us"), CPU_PERIOD_US);
    writeValue(at("cpu", "cpu.cfs_quota_us"), Math.round((limits.nanoCpus * CPU_PERIOD_US) / 1e9));
  }
  if (limits.cpuPeriod) writeValue(at("cpu", "cpu.cfs_period_us"), limits.cpuPeriod);
  if (limits.cpuQuota) writeValue(at("cpu", "cpu.cfs_quota_us"), limits.cpuQuota);
  if (limits.cpuShares) writeValue(at("cpu", "cpu.shares"), limits.cpuShares);

  if ((limits.pidsLimit ?? 0) > 0) writeValue(at("pids", "pids.max"), limits.pidsLimit!);

  if (limits.blkioWeight) {
    // blkio.weight belongs to the removed CFQ scheduler; BFQ's file replaces it on newer kernels
    const file = ["blkio.weight", "blkio.bfq.weight"].map((f) => at("blkio", f)).find(exists);
    if (!file) {
      throw new SkiffError(
        "Your kernel does not support Block I/O weight (no blkio.weight or blkio.bfq.weight)",
      );
    }
    writeValue(file, limits.blkioWeight);
  }

  // runc's order: the weights, then the throttles, one "MAJ:MIN VALUE" line per write
  const weighted = limits.blkioWeightDevices?.filter((d) => d.weight > 0) ?? [];
  if (weighted.length) {
    const file = ["blkio.bfq.weight_device", "blkio.weight_device"].map((f) => at("blkio", f)).find(exists);
    if (!file) {
      throw new SkiffError(
        "Your kernel does not support Block I/O weight_device (no blkio.weight_device or blkio.bfq.weight_device)",
      );
    }
    writeValues(file, weighted.map((d) => `${d.device} ${d.weight}`));
  }
  for (const [kind, device, rate] of throttleEntries(limits)) {
    writeValue(at("blkio", THROTTLE_KINDS[kind].v1File), `${device} ${rate}`);
  }

  if (dirs.has("devices")) {
    if (limits.privileged) writeValue(at("devices", "devices.allow"), "a");
    else {
      writeValue(at("devices", "devices.deny"), "a");
      writeValues(
        at("devices", "devices.allow"),
        [...DEFAULT_ALLOWED_DEVICES, ...limits.deviceRules ?? []].flatMap(v1RuleLines),
      );
    }
  }
}

/**
 * What a container should see at /sys/fs/cgroup on a v1 host (runc's layout): each hierarchy's
 * container directory bound at /sys/fs/cgroup/<mount name>, and a symlink per controller of a
 * co-mounted hierarchy (cpu -> cpu,cpuacct).
 */
export function v1ContainerView(parent: string, id: string): CgroupView {
  const h = hierarchies();
  const binds: CgroupView["binds"] = [];
  const symlinks: CgroupView["symlinks"] = [];
  const seen = new Set<string>();
  for (const [controller, mount] of h.byController) {
    const name = basename(mount);
    if (!seen.has(mount)) {
      seen.add(mount);
      binds.push({ source: join(mount, parent, id), target: `/sys/fs/cgroup/${name}` });
    }
    if (controller !== name) symlinks.push({ link: `/sys/fs/cgroup/${controller}`, target: name });
  }
  if (h.unified) {
    binds.push({ source: join(h.unified, parent, id), target: `/sys/fs/cgroup/${basename(h.unified)}` });
  }
  return { binds, symlinks };
}
