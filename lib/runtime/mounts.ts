// The volumes of a container: parsed -v/--mount flags (mountflag.ts) and the image's VOLUMEs become
// the record's Mounts (docker's inspect shape), creating the volumes they name; the init stage
// mounts them from there.

import { SkiffError } from "../errors.ts";
import { exists } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { MountPoint } from "../state/types.ts";
import { findContainer } from "../state/containers.ts";
import type { VolumeFlag, VolumesFrom } from "./mountflag.ts";

export interface PreparedMounts {
  mounts: MountPoint[];
  /** Anonymous volumes made for these mounts: to remove again if the container cannot be created. */
  createdVolumes: string[];
}

/**
 * --volumes-from: the binds and volumes of other containers (any state), at their destinations, as
 * docker's daemon copies them: each keeps its source, propagation and read-only flag (`:ro` makes
 * them all read-only), its Mode is empty and the new container's image files are never copied into
 * it (docker's CopyData false: a `:ro` user must not fill another container's empty volume). Only the
 * sources' records are read, which their containers cannot change.
 */
export function mountsFrom(root: StateRoot, sources: VolumesFrom[]): MountPoint[] {
  const byDestination = new Map<string, MountPoint>();
  for (const source of sources) {
    for (const m of findContainer(root, source.container).Mounts ?? []) {
      if (m.Type === "tmpfs") continue;
      byDestination.set(m.Destination, { ...m, Mode: "", RW: m.RW && !source.readOnly, NoCopy: true });
    }
  }
  return [...byDestination.values()];
}

/**
 * Turns -v flags and the image's VOLUMEs (those no flag, --volumes-from mount or --tmpfs covers)
 * into Mounts, creating named volumes that do not exist yet, anonymous volumes, and missing bind
 * sources (as docker's -v does). A flag's mount takes the place of an inherited one at its
 * destination (docker's order: volumes-from, then binds).
 */
export async function prepareMounts(
  root: StateRoot,
  flags: VolumeFlag[],
  imageVolumes: string[],
  tmpfsPaths: string[],
  inherited: MountPoint[] = [],
): Promise<PreparedMounts> {
  const seen = new Set<string>();
  for (const f of flags) {
    if (seen.has(f.destination)) throw new SkiffError(`Duplicate mount point: ${f.destination}`);
    seen.add(f.destination);
    // before anything is created: a volume made for an earlier flag would be left behind
    if (f.mustExist && !exists(f.source!)) {
      throw new SkiffError(
        `invalid mount config for type "bind": bind source path does not exist: ${f.source}`,
      );
    }
  }
  const kept = inherited.filter((m) => !seen.has(m.Destination));
  for (const m of kept) seen.add(m.Destination);
  const implicit = imageVolumes.map((v) => v.replace(/(.)\/+$/, "$1"))
    .filter((dest) => !seen.has(dest) && !tmpfsPaths.includes(dest));
  const wanted: VolumeFlag[] = [
    ...flags,
    ...implicit.map((destination) => ({
      type: "volume" as const,
      destination,
      readOnly: false,
      mode: "",
      noCopy: false,
      propagation: "",
    })),
  ];
  if (wanted.length === 0) return { mounts: kept, createdVolumes: [] };

  const needsStore = wanted.some((w) => w.type === "volume");
  const store = needsStore ? await import("../volume/store.ts") : undefined;
  const mounts: MountPoint[] = [...kept];
  const createdVolumes: string[] = [];
  try {
    for (const w of wanted) {
      if (w.type === "bind") {
        try {
          Deno.statSync(w.source!);
        } catch {
          Deno.mkdirSync(w.source!, { recursive: true, mode: 0o755 }); // docker's -v makes it
        }
        mounts.push({
          Type: "bind",
          Source: w.source!,
          Destination: w.destination,
          Mode: w.mode,
          RW: !w.readOnly,
          Propagation: w.propagation,
          ...(w.bindRecursive ? { BindRecursive: w.bindRecursive } : {}),
        });
        continue;
      }
      const volume = w.source
        ? await store!.ensureVolume(root, w.source)
        : await store!.anonymousVolume(root);
      if (!w.source) createdVolumes.push(volume.name);
      mounts.push({
        Type: "volume",
        Name: volume.name,
        Source: volume.mountpoint,
        Destination: w.destination,
        Driver: "local",
        Mode: w.mode,
        RW: !w.readOnly,
        Propagation: w.propagation,
        // --mount's volume-nocopy (-v's nocopy is in the mode, as docker shows it)
        ...(w.noCopy ? { NoCopy: true as const } : {}),
      });
    }
  } catch (e) {
    await discardVolumes(root, createdVolumes);
    throw e;
  }
  return { mounts, createdVolumes };
}

/** Removes anonymous volumes made for a container that was never created. */
export async function discardVolumes(root: StateRoot, names: string[]): Promise<void> {
  if (names.length === 0) return;
  const store = await import("../volume/store.ts");
  for (const name of names) {
    try {
      await store.removeVolume(root, name, true);
    } catch { /* already gone */ }
  }
}
