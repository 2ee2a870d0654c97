// The container's mounts as a plan: pure data derived from its record, the one place the overlay
// (lower, upper, work and merged dirs; its mount data is spec.ts overlayMountData), the -v binds
// and volumes and the --tmpfs mounts are worked out. The init stage (rootfs.ts) and `cp` of a
// stopped container (container/cp.ts) execute it; nothing here touches the system, so it is
// unit-tested without root.

import type { ContainerRecord, MountPoint } from "../state/types.ts";
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

/**
 * Whether docker gives the volume of this mount the image's files at its destination while the
 * volume is empty: a volume's, unless `nocopy` (-v's mode, --mount's volume-nocopy) or inherited
 * with --volumes-from; never a bind's or a tmpfs's.
 */
export const getsImageFiles = (m: MountPoint) =>
  m.Type === "volume" && !m.NoCopy && !m.Mode.split(",").includes("nocopy");

/** A container's directories under its state directory `containerDir`. */
export const containerPaths = (containerDir: string) => ({
  upperDir: `${containerDir}/upper`,
  workDir: `${containerDir}/work`,
  mergedDir: `${containerDir}/merged`,
});

/**
 * The mounts of a container: its overlay over `layers` (the image's layer dirs, top-most first) with
 * its own upper dir, its binds and volumes, its tmpfs mounts. `readOnly`: the overlay for reading
 * a stopped container (cp): the upper dir becomes the top lower layer, so nothing is written. A
 * volume is copied up at start only for a record made before skiff did that at create.
 */
export function mountsFor(
  record: Pick<ContainerRecord, "Mounts" | "HostConfig" | "VolumesCopiedAtCreate">,
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
      copyUp: !record.VolumesCopiedAtCreate && getsImageFiles(m),
    })),
    tmpfs: Object.entries(record.HostConfig.Tmpfs ?? {}).map(([path, options]) => ({ path, options })),
  };
}
