// Container cgroups: the resource limits docker users know (--memory, --memory-swap, --cpus,
// --cpu-shares, --cpuset-cpus/-mems, --pids-limit, --blkio-weight, and the rarer --cpu-period/-quota,
// --memory-reservation/-swappiness, --oom-kill-disable, --device-*-bps/iops), the devices allow-list
// (v1 devices files; an eBPF program on v2), pause (freezer) and stats counters, on cgroup v1
// (separate or co-mounted hierarchies, plus the unified directory of a hybrid host) and on pure v2.
//
// Everything is synchronous: the runtime may call this right after setns (see platform notes).
// Cgroups are created at absolute paths under the hierarchy roots (<mount>/skiff/<id>), never
// relative to the caller's own cgroup.

import { readOptional } from "./fs.ts";
import { type CgroupLimits, type CgroupView, type ContainerCgroup, validateLimits } from "./limits.ts";
import { createV1, openV1, v1ContainerView } from "./v1.ts";
import { createV2, openV2, V2_MOUNT } from "./v2.ts";

export * from "./limits.ts";

/** Whose containers: the parent group every container's cgroup is made in (a state root has one). */
export interface CgroupOwner {
  cgroupParent: string;
}

let driverCache: "v1" | "v2" | undefined;
/** v2 when the unified hierarchy is mounted at /sys/fs/cgroup and offers controllers; else v1. */
export function cgroupDriver(): "v1" | "v2" {
  driverCache ??= (readOptional(`${V2_MOUNT}/cgroup.controllers`) ?? "") !== "" ? "v2" : "v1";
  return driverCache;
}

/**
 * Creates the container's cgroup(s) and applies the limits. Throws a SkiffError with docker's
 * wording for an impossible limit, leaving nothing created.
 */
export function createCgroup(root: CgroupOwner, id: string, limits: CgroupLimits): ContainerCgroup {
  validateLimits(limits);
  return cgroupDriver() === "v2"
    ? createV2(V2_MOUNT, root.cgroupParent, id, limits)
    : createV1(root.cgroupParent, id, limits);
}

/**
 * What to mount at /sys/fs/cgroup inside the container so that it sees its own limits
 * (/sys/fs/cgroup/memory/memory.limit_in_bytes on v1, /sys/fs/cgroup/memory.max on v2).
 */
export function containerCgroupView(root: CgroupOwner, id: string): CgroupView {
  if (cgroupDriver() === "v1") return v1ContainerView(root.cgroupParent, id);
  return {
    binds: [{ source: `${V2_MOUNT}/${root.cgroupParent}/${id}`, target: "/sys/fs/cgroup" }],
    symlinks: [],
  };
}

/** The cgroup(s) of an existing (or already removed) container, for cleanup and OOM checks. */
export function openCgroup(root: CgroupOwner, id: string): ContainerCgroup {
  return cgroupDriver() === "v2" ? openV2(V2_MOUNT, root.cgroupParent, id) : openV1(root.cgroupParent, id);
}

export { DEFAULT_ALLOWED_DEVICES, type DeviceRule, parseDeviceCgroupRule } from "./devices.ts";
