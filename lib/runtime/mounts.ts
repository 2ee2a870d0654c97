// `run -v`: docker's [SOURCE:]DESTINATION[:MODE] for binds (absolute host source), named volumes and
// anonymous volumes, plus the image's VOLUMEs. The result is the record's Mounts (docker's inspect
// shape); the init stage mounts them from there.

import { SkiffError } from "../errors.ts";
import { exists } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { MountPoint } from "../state/types.ts";

export interface VolumeFlag {
  type: "bind" | "volume";
  /** Host path (bind) or volume name (volume); undefined for an anonymous volume. */
  source?: string;
  destination: string;
  readOnly: boolean;
  /** The mode as given ("ro", "ro,z", "nocopy", ...): docker's Mode field. */
  mode: string;
  /** Volumes only: do not copy the image's files into an empty volume. */
  noCopy: boolean;
  propagation: string;
  /** --mount's binds: a missing source is an error (-v creates it). */
  mustExist?: boolean;
}

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function isMode(text: string): boolean {
  return text.split(",").every((m) => ["ro", "rw", "z", "Z", "nocopy", ...PROPAGATIONS].includes(m));
}

/** Parses one -v value, with docker's messages for what it refuses. */
export function parseVolumeFlag(spec: string): VolumeFlag {
  const invalid = (why?: string) =>
    new SkiffError(`invalid volume specification: '${spec}'${why ? `: ${why}` : ""}`);
  const parts = spec.split(":");
  let source: string | undefined, destination: string, mode = "";
  if (parts.length === 1) destination = parts[0];
  else if (parts.length === 2 && isMode(parts[1]) && parts[0].startsWith("/")) [destination, mode] = parts;
  else if (parts.length === 2) [source, destination] = parts;
  else if (parts.length === 3) [source, destination, mode] = parts;
  else throw invalid();
  if (source === "") throw invalid();
  if (!destination.startsWith("/")) {
    throw invalid(`invalid mount path: '${destination}' mount path must be absolute`);
  }
  if (destination.replace(/\/+$/, "") === "") throw invalid("destination can't be '/'");
  if (mode && !isMode(mode)) throw new SkiffError(`invalid mode: ${mode}`);
  const modes = mode ? mode.split(",") : [];
  const type = source?.startsWith("/") ? "bind" : "volume";
  if (type === "volume" && source !== undefined && !VOLUME_NAME.test(source)) {
    throw new SkiffError(
      `create ${source}: "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  if (type === "bind" && modes.includes("nocopy")) throw new SkiffError(`invalid mode: ${mode}`);
  return {
    type,
    source,
    destination: destination.replace(/(.)\/+$/, "$1"),
    readOnly: modes.includes("ro"),
    mode,
    noCopy: modes.includes("nocopy"),
    propagation: modes.find((m) => PROPAGATIONS.includes(m)) ?? (type === "bind" ? "rprivate" : ""),
  };
}

export interface PreparedMounts {
  mounts: MountPoint[];
  /** Anonymous volumes made for these mounts: to remove again if the container cannot be created. */
  createdVolumes: string[];
}

/**
 * Turns -v flags and the image's VOLUMEs (those no flag or --tmpfs covers) into Mounts, creating
 * named volumes that do not exist yet, anonymous volumes, and missing bind sources (as docker's -v
 * does).
 */
export async function prepareMounts(
  root: StateRoot,
  flags: VolumeFlag[],
  imageVolumes: string[],
  tmpfsPaths: string[],
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
  if (wanted.length === 0) return { mounts: [], createdVolumes: [] };

  const needsStore = wanted.some((w) => w.type === "volume");
  const store = needsStore ? await import("../volume/store.ts") : undefined;
  const mounts: MountPoint[] = [];
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
