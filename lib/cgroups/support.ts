// What the host's cgroups can apply, and docker's answer to a limit they cannot: the daemon's
// verifyPlatformContainerResources discards such a limit with a warning (`docker run --blkio-weight
// 300` on a disk without BFQ prints "WARNING: Your kernel does not support Block I/O weight or the
// cgroup is not mounted. Weight discarded." and runs the container; inspect then shows 0). The
// probe reads the hierarchy roots as docker's sysinfo does; the planning is pure.

import { join } from "../path.ts";
import { type HostResources, MIN_MEMORY } from "./limits.ts";
import { exists, readOptional } from "./fs.ts";
import { hierarchies } from "./v1.ts";

/** docker's sysinfo.SysInfo, for the limits skiff offers. */
export interface HostSupport {
  memoryLimit: boolean;
  swapLimit: boolean;
  memoryReservation: boolean;
  memorySwappiness: boolean;
  oomKillDisable: boolean;
  pidsLimit: boolean;
  cpuShares: boolean;
  cpuCfs: boolean;
  cpuset: boolean;
  blkioWeight: boolean;
  blkioWeightDevice: boolean;
  blkioReadBpsDevice: boolean;
  blkioWriteBpsDevice: boolean;
  blkioReadIOpsDevice: boolean;
  blkioWriteIOpsDevice: boolean;
}

/** The HostConfig fields docker adjusts to the host (docker's names and meanings). */
export type Resources = Pick<
  HostResources,
  | "Memory"
  | "MemorySwap"
  | "NanoCpus"
  | "CpuShares"
  | "CpuPeriod"
  | "CpuQuota"
  | "CpusetCpus"
  | "CpusetMems"
  | "PidsLimit"
  | "BlkioWeight"
  | "MemoryReservation"
  | "MemorySwappiness"
  | "OomKillDisable"
  | "BlkioWeightDevice"
  | "BlkioDeviceReadBps"
  | "BlkioDeviceWriteBps"
  | "BlkioDeviceReadIOps"
  | "BlkioDeviceWriteIOps"
>;

/** Whether any of the resources asks for something the host must support (the probe's cost is skipped otherwise). */
export function asksForLimits(r: Partial<Resources>): boolean {
  return !!(r.Memory || (r.MemorySwap ?? 0) > 0 || r.NanoCpus || r.CpuShares || r.CpuPeriod || r.CpuQuota ||
    r.CpusetCpus || r.CpusetMems || (r.PidsLimit ?? 0) > 0 || r.BlkioWeight || r.MemoryReservation ||
    (r.MemorySwappiness ?? null) !== null || r.OomKillDisable || !!r.BlkioWeightDevice?.length ||
    !!r.BlkioDeviceReadBps?.length || !!r.BlkioDeviceWriteBps?.length || !!r.BlkioDeviceReadIOps?.length ||
    !!r.BlkioDeviceWriteIOps?.length);
}

/**
 * docker's verifyPlatformContainerResources, the discarding half: each limit the host cannot
 * apply is reset as docker resets it, with docker's warning (the CLI prints them as `WARNING: ...`).
 */
export function discardUnsupported(r: Partial<Resources>, host: HostSupport): string[] {
  const warnings: string[] = [];
  // a limit below docker's minimum is refused even where it would be discarded (validateLimits)
  if ((r.Memory ?? 0) >= MIN_MEMORY && !host.memoryLimit) {
    warnings.push(
      "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
    );
    r.Memory = 0;
    r.MemorySwap = -1;
  }
  if ((r.Memory ?? 0) > 0 && r.MemorySwap !== -1 && !host.swapLimit) {
    warnings.push(
      "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
    );
    r.MemorySwap = -1;
  }
  if ((r.MemorySwappiness ?? null) !== null && !host.memorySwappiness) {
    warnings.push(
      "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
    );
    r.MemorySwappiness = null;
  }
  if ((r.MemoryReservation ?? 0) > 0 && !host.memoryReservation) {
    warnings.push(
      "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
    );
    r.MemoryReservation = 0;
  }
  if (r.OomKillDisable && !host.oomKillDisable) {
    warnings.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
    r.OomKillDisable = false;
  }
  if (r.OomKillDisable && !r.Memory) {
    warnings.push(
      "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.",
    );
  }
  if ((r.PidsLimit ?? 0) > 0 && !host.pidsLimit) {
    warnings.push(
      "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
    );
    r.PidsLimit = null;
  }
  // --cpus on a host without CFS is an error in docker, not a warning (checkUnsupported below)
  if ((r.CpuShares ?? 0) > 0 && !host.cpuShares) {
    warnings.push("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.");
    r.CpuShares = 0;
  }
  if ((r.CpuPeriod || r.CpuQuota) && !host.cpuCfs) {
    warnings.push("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.");
    r.CpuPeriod = 0;
    r.CpuQuota = 0;
  }
  if ((r.CpusetCpus || r.CpusetMems) && !host.cpuset) {
    warnings.push("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.");
    r.CpusetCpus = "";
    r.CpusetMems = "";
  }
  if ((r.BlkioWeight ?? 0) > 0 && !host.blkioWeight) {
    warnings.push(
      "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
    );
    r.BlkioWeight = 0;
  }
  // per-device weights and throttles: discarded to an empty list, as docker keeps them
  const perDevice = [
    [
      "BlkioWeightDevice",
      host.blkioWeightDevice,
      "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
    ],
    [
      "BlkioDeviceReadBps",
      host.blkioReadBpsDevice,
      "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
    ],
    [
      "BlkioDeviceWriteBps",
      host.blkioWriteBpsDevice,
      "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
    ],
    [
      "BlkioDeviceReadIOps",
      host.blkioReadIOpsDevice,
      "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
    ],
    [
      "BlkioDeviceWriteIOps",
      host.blkioWriteIOpsDevice,
      "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
    ],
  ] as const;
  for (const [field, supported, warning] of perDevice) {
    if (r[field]?.length && !supported) {
      warnings.push(warning);
      r[field] = [];
    }
  }
  return warnings;
}

/** docker's one refusal among these checks (exit 125 from run). */
export function unsupportedError(r: Partial<Resources>, host: HostSupport): string | undefined {
  if ((r.NanoCpus ?? 0) > 0 && !host.cpuCfs) {
    return "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted";
  }
}

let supportCache: HostSupport | undefined;

/** What this host's cgroups offer, probed once per process. */
export function hostSupport(): HostSupport {
  supportCache ??= (readOptional("/sys/fs/cgroup/cgroup.controllers") ?? "") !== "" ? probeV2() : probeV1();
  return supportCache;
}

/** docker's sysinfo on cgroup v1: the controller's mount and the files at its root. */
function probeV1(): HostSupport {
  const mounts = hierarchies().byController;
  const has = (controller: "memory" | "cpu" | "blkio", file: string) => {
    const mount = mounts.get(controller);
    return mount !== undefined && exists(join(mount, file));
  };
  return {
    memoryLimit: mounts.has("memory"),
    swapLimit: has("memory", "memory.memsw.limit_in_bytes"),
    memoryReservation: has("memory", "memory.soft_limit_in_bytes"),
    memorySwappiness: has("memory", "memory.swappiness"),
    oomKillDisable: has("memory", "memory.oom_control"),
    pidsLimit: mounts.has("pids"),
    cpuShares: has("cpu", "cpu.shares"),
    cpuCfs: has("cpu", "cpu.cfs_quota_us"),
    cpuset: mounts.has("cpuset"),
    // blkio.weight belongs to the removed CFQ scheduler; BFQ's file replaces it on newer kernels
    blkioWeight: has("blkio", "blkio.weight") || has("blkio", "blkio.bfq.weight"),
    blkioWeightDevice: has("blkio", "blkio.weight_device") || has("blkio", "blkio.bfq.weight_device"),
    // the throttle files need CONFIG_BLK_DEV_THROTTLING
    blkioReadBpsDevice: has("blkio", "blkio.throttle.read_bps_device"),
    blkioWriteBpsDevice: has("blkio", "blkio.throttle.write_bps_device"),
    blkioReadIOpsDevice: has("blkio", "blkio.throttle.read_iops_device"),
    blkioWriteIOpsDevice: has("blkio", "blkio.throttle.write_iops_device"),
  };
}

/**
 * cgroup v2: the controllers the root offers. v2 has no swappiness and no OOM-killer switch (docker
 * discards both). Swap and weight files exist only below the root: they are looked for in this
 * process's own group when the controller is enabled there, and else assumed present, as docker does.
 */
function probeV2(): HostSupport {
  const words = (path: string) => new Set((readOptional(path) ?? "").split(/\s+/).filter(Boolean));
  const controllers = words("/sys/fs/cgroup/cgroup.controllers");
  const own = /^0::(\/.*)$/m.exec(readOptional("/proc/self/cgroup") ?? "")?.[1] ?? "/";
  const ownControllers = own === "/"
    ? new Set<string>()
    : words(join("/sys/fs/cgroup", own, "cgroup.controllers"));
  const offers = (controller: string, ...files: string[]) =>
    controllers.has(controller) &&
    (!ownControllers.has(controller) || files.some((f) => exists(join("/sys/fs/cgroup", own, f))));
  return {
    memoryLimit: controllers.has("memory"),
    swapLimit: offers("memory", "memory.swap.max"),
    memoryReservation: controllers.has("memory"),
    memorySwappiness: false,
    oomKillDisable: false,
    pidsLimit: controllers.has("pids"),
    cpuShares: controllers.has("cpu"),
    cpuCfs: controllers.has("cpu"),
    cpuset: controllers.has("cpuset"),
    blkioWeight: offers("io", "io.bfq.weight", "io.weight"),
    // docker's cgroup v2 sysinfo: all of these with the io controller (runc writes a device's
    // weight only where BFQ is)
    blkioWeightDevice: controllers.has("io"),
    blkioReadBpsDevice: controllers.has("io"),
    blkioWriteBpsDevice: controllers.has("io"),
    blkioReadIOpsDevice: controllers.has("io"),
    blkioWriteIOpsDevice: controllers.has("io"),
  };
}
