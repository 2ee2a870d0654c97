// The container's mounts as a plan: pure data derived from its record, the one place the overlay
// (lower, upper, work, merged dirs and its mount data), the -v binds and volumes and the --tmpfs
// mounts are worked out. The init stage (rootfs.ts) and `cp` of a stopped container
// (container/cp.ts) execute it; nothing here touches the system, so it is unit-tested without root.
// Type imports only: the init stage loads this.

import type { ContainerRecord } from "../state/types.ts";

/** An overlay root: read-only without an upper dir. */
export interface OverlayPlan {
  /** Top-most first. */
  lowerDirs: string[];
  upperDir?: string;
  workDir?: string;
  /** Where it is mounted. */
  target: string;
}

export interface BindPlan {
  source: string;
  destination: string;
  readOnly: boolean;
  /** docker 25's bind-recursive: "enabled" makes read-only mounts recursively so where the kernel can */
  recursive?: "enabled" | "disabled" | "writable" | "readonly";
  /** docker copies the image's files into an empty volume, never into a bind. */
  copyUp: boolean;
}

export interface MountPlan {
  rootfs: OverlayPlan;
  binds: BindPlan[];
  tmpfs: { path: string; options: string }[];
}

/** A container's directories under its state directory `containerDir`. */
export const containerPaths = (containerDir: string) => ({
  upperDir: `${containerDir}/upper`,
  workDir: `${containerDir}/work`,
  mergedDir: `${containerDir}/merged`,
});

/**
 * The mounts of a container: its overlay over `layers` (the image's layer dirs, top-most first) with
 * its own upper dir, its binds and volumes, its tmpfs mounts. `readOnly`: the overlay for reading
 * a stopped container (cp): the upper dir becomes the top lower layer, so nothing is written.
 */
export function mountsFor(
  record: Pick<ContainerRecord, "Mounts" | "HostConfig">,
  layers: string[],
  containerDir: string,
  readOnly = false,
): MountPlan {
  const { upperDir, workDir, mergedDir } = containerPaths(containerDir);
  return {
    rootfs: readOnly
      ? { lowerDirs: [upperDir, ...layers], target: mergedDir }
      : { lowerDirs: layers, upperDir, workDir, target: mergedDir },
    binds: (record.Mounts ?? []).filter((m) => m.Type !== "tmpfs").map((m) => ({
      source: m.Source,
      destination: m.Destination,
      readOnly: !m.RW,
      recursive: m.BindRecursive ?? "enabled",
      copyUp: m.Type === "volume" && !m.Mode.split(",").includes("nocopy"),
    })),
    tmpfs: Object.entries(record.HostConfig.Tmpfs ?? {}).map(([path, options]) => ({ path, options })),
  };
}

/** The mount data is limited to one page. */
export const MAX_MOUNT_DATA = 4000;

/**
 * The overlay's mount data. When the full lowerdir paths do not fit in a page, the lowerdirs are
 * named "0:1:..." instead, and `links` says which directory each name must be a symlink to (the
 * executor makes them in a directory of its own and mounts with that as its working directory:
 * overlay resolves relative lowerdirs against it).
 */
export function overlayMountData(plan: OverlayPlan): { data: string; links?: string[] } {
  const options = (lower: string) =>
    plan.upperDir === undefined
      ? `lowerdir=${lower}`
      : `lowerdir=${lower},upperdir=${plan.upperDir},workdir=${plan.workDir}`;
  const full = options(plan.lowerDirs.join(":"));
  if (full.length <= MAX_MOUNT_DATA) return { data: full };
  return { data: options(plan.lowerDirs.map((_, i) => String(i)).join(":")), links: plan.lowerDirs };
}
