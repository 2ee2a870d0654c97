// `export`: the container's merged filesystem as a tar stream, read from its overlay directories
// (no mount needed, running or stopped).

import { writeTar } from "../image/tar.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { unionEntries, upperDir } from "./layers.ts";

/** Writes the tar to `sink` entry by entry, then the end marker. Sync (large files in memory each). */
export function exportContainer(
  root: StateRoot,
  record: ContainerRecord,
  sink: (bytes: Uint8Array) => void,
): void {
  for (const entry of unionEntries([upperDir(root, record), ...record.LowerDirs])) {
    sink(writeTar([entry], { endMarker: false }));
  }
  sink(new Uint8Array(1024));
}
