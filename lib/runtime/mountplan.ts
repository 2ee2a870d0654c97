// The container's mounts as a plan: pure data derived from its record, the one place the overlay
// (lower, upper, work and merged dirs; its mount data is spec.ts overlayMountData), the -v binds
// and volumes and the --tmpfs mounts are worked out. The init stage (rootfs.ts) and `cp` of a
// stopped container (container/cp.ts) execute it; nothing here touches the system, so it is
// unit-tested without root.

import type { ContainerRecord } from "../state/types.ts";
import type { OverlayPlan } from "./spec.ts";

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
      copyUp: m.Type === "volume" && !m.NoCopy && !m.Mode.split(",").includes("nocopy"),
    })),
    tmpfs: Object.entries(record.HostConfig.Tmpfs ?? {}).map(([path, options]) => ({ path, options })),
  };
}
