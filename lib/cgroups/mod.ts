// Container cgroups: the resource limits docker users know (--memory, --memory-swap, --cpus,
// --cpu-shares, --cpuset-cpus/-mems, --pids-limit, --blkio-weight, and the rarer --cpu-period/-quota,
// --memory-reservation/-swappiness, --oom-kill-disable, --device-*-bps/iops), the devices allow-list
// (v1 devices files; an eBPF program on v2), pause (freezer) and stats counters, on cgroup v1
// (separate or co-mounted hierarchies, plus the unified directory of a hybrid host) and on pure v2.
//
// Everything is synchronous: the runtime may call this right after setns (see platform notes).
// Cgroups are created at absolute paths under the hierarchy roots (<mount>/<parent>/<id>), never
// relative to the caller's own cgroup. The parent is skiff's own ("skiff", removed with its last
// container) or the container's --cgroup-parent (parent.ts; kept, as docker keeps it): every path
// that opens a container's cgroup passes its HostConfig, so the recorded parent is the one used.

import { exists, readOptional } from "./fs.ts";
import { type CgroupLimits, type CgroupView, type ContainerCgroup, validateLimits } from "./limits.ts";
import { createV1, hierarchies, openV1, v1ContainerView } from "./v1.ts";
import { createV2, openV2, V2_MOUNT } from "./v2.ts";
import { cgroupParentPath, cgroupParentProblem } from "./parent.ts";
import { SkiffError } from "../errors.ts";
import { join } from "../path.ts";

export * from "./limits.ts";

/** Whose containers: the default parent group every container's cgroup is made in (a state root has one). */
export interface CgroupOwner {
  cgroupParent: string;
}

/**
 * What places a container's cgroups: its HostConfig (CgroupParent, docker's --cgroup-parent), or
 * undefined when its record is unreadable or was never written (the cgroup is then looked for).
 */
export type CgroupPlacement = { CgroupParent?: string } | undefined;

interface Place {
  /** relative to each hierarchy's root ("" is the root) */
  parent: string;
  /** the user's parent, left in place when the container goes */
  keepParent: boolean;
}

function placeOf(root: CgroupOwner, host: { CgroupParent?: string }): Place {
  if (!host.CgroupParent) return { parent: root.cgroupParent, keepParent: false };
  const parent = cgroupParentPath(host.CgroupParent);
  return { parent, keepParent: parent !== root.cgroupParent };
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
export function createCgroup(
  root: CgroupOwner,
  id: string,
  limits: CgroupLimits,
  host: { CgroupParent?: string },
): ContainerCgroup {
  validateLimits(limits);
  // checked again here, not only by the CLI: a record changed on disk must not nest a container
  // inside another's cgroup (whose removal would kill it)
  const problem = host.CgroupParent ? cgroupParentProblem(host.CgroupParent) : undefined;
  if (problem) throw new SkiffError(problem);
  const { parent, keepParent } = placeOf(root, host);
  return cgroupDriver() === "v2"
    ? createV2(V2_MOUNT, parent, id, limits, keepParent)
    : createV1(parent, id, limits, keepParent);
}

/**
 * What to mount at /sys/fs/cgroup inside the container so that it sees its own limits
 * (/sys/fs/cgroup/memory/memory.limit_in_bytes on v1, /sys/fs/cgroup/memory.max on v2).
 */
export function containerCgroupView(
  root: CgroupOwner,
  id: string,
  host: { CgroupParent?: string },
): CgroupView {
  const { parent } = placeOf(root, host);
  if (cgroupDriver() === "v1") return v1ContainerView(parent, id);
  return { binds: [{ source: join(V2_MOUNT, parent, id), target: "/sys/fs/cgroup" }], symlinks: [] };
}

/** The cgroup(s) of an existing (or already removed) container, for cleanup and OOM checks. */
export function openCgroup(root: CgroupOwner, id: string, host: CgroupPlacement): ContainerCgroup {
  const { parent, keepParent } = host ? placeOf(root, host) : findPlace(root, id);
  return cgroupDriver() === "v2" ? openV2(V2_MOUNT, parent, id, keepParent) : openV1(parent, id, keepParent);
}

const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** How deep and how wide findPlace looks: far beyond any --cgroup-parent in use, bounded all the same. */
const SEARCH_DEPTH = 16, SEARCH_GROUPS = 100_000;

/**
 * Where the cgroup of a container without a readable record is: skiff's own parent, else the
 * group named by its id anywhere in one hierarchy (every container has a group in each), found
 * breadth first. Not found: skiff's parent (opening it finds nothing to release).
 */
function findPlace(root: CgroupOwner, id: string): Place {
  const fallback = { parent: root.cgroupParent, keepParent: false };
  const mount = cgroupDriver() === "v2"
    ? V2_MOUNT
    : hierarchies().unified ?? hierarchies().byController.values().next().value;
  if (!mount || exists(join(mount, root.cgroupParent, id))) return fallback;
  let level = [""];
  let seen = 0;
  for (let depth = 0; depth < SEARCH_DEPTH && level.length && seen < SEARCH_GROUPS; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(join(mount, rel))];
      } catch {
        continue; // removed meanwhile
      }
      for (const entry of entries) {
        if (!entry.isDirectory) continue;
        if (entry.name === id) return { parent: rel, keepParent: rel !== root.cgroupParent };
        if (++seen > SEARCH_GROUPS) break;
        // never into a container's own group: a container may make groups in it (privileged, or
        // with CAP_SYS_ADMIN), and one named by another's id must not be taken for that one's; no
        // parent of a container's group is one (cgroupParentProblem)
        if (CONTAINER_ID.test(entry.name)) continue;
        next.push(rel ? `${rel}/${entry.name}` : entry.name);
      }
    }
    level = next;
  }
  return fallback;
}

export { DEFAULT_ALLOWED_DEVICES, type DeviceRule, parseDeviceCgroupRule } from "./devices.ts";
