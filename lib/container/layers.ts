// Reading a container's filesystem without mounting it: the changes in its overlay upper dir (diff,
// commit) and the union of upper and image layers (export), computed by walking the directories as
// overlayfs would merge them: the top-most layer wins, a whiteout (0/0 char device) hides the name
// below it, an opaque directory (trusted.overlay.opaque=y) hides everything below it.
// The upper dir changes under a running container: every walk holds directory fds and reads each
// name through them (lib/fs), so a name swapped for a symlink never leads out of the layer.

import { join } from "node:path";
import { lgetxattr } from "../../ffi/libc.ts";
import {
  closeFd,
  ENOENT,
  isOpaqueDir,
  openHostDir,
  readDirNames,
  type Stat,
  statAt,
  tryOpenDirAt,
} from "../fs/at.ts";
import { dirsBelow, isWhiteoutStat, mergedNames, readNode, tarBase, tarEntryOf } from "../fs/tree.ts";
import type { TarWriteEntry } from "../image/tar.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { lstatOrNull } from "./fstree.ts";

const S_IFCHR = 0o020000;
const S_IFMT = 0o170000;

/** Files the runtime creates in the upper dir only as mount points for its own binds. */
const PLACEHOLDER_FILES = new Set(["etc/hostname", "etc/hosts", "etc/resolv.conf"]);

export const upperDir = (root: StateRoot, record: ContainerRecord) =>
  join(root.container(record.Id), "upper");

export function isWhiteout(info: Deno.FileInfo): boolean {
  return ((info.mode ?? 0) & S_IFMT) === S_IFCHR && (info.rdev ?? 0) === 0;
}

export function isOpaque(path: string): boolean {
  try {
    const value = lgetxattr(path, "trusted.overlay.opaque");
    return value !== null && new TextDecoder().decode(value) === "y";
  } catch {
    return false;
  }
}

/** An empty regular file the runtime put there to bind /etc/hosts etc. over: not a user change. */
function isPlaceholder(rel: string, stat: Stat): boolean {
  return PLACEHOLDER_FILES.has(rel) && stat.type === "file" && stat.size === 0;
}

/** A layer directory's fd, or undefined when it is missing. */
function openLayer(path: string): number | undefined {
  try {
    return openHostDir(path);
  } catch (e) {
    if ((e as { errno?: number }).errno === ENOENT) return undefined;
    throw e;
  }
}

/** True when `rel` exists in the merged view of `lowers` (top-most first). */
function existsInLowers(lowers: string[], rel: string): boolean {
  const parts = rel.split("/");
  for (const dir of lowers) {
    const info = lstatOrNull(join(dir, rel));
    if (info) return !isWhiteout(info);
    // absent here: the deepest ancestor this layer has decides whether it hides the layers below
    for (let i = parts.length - 1; i > 0; i--) {
      const ancestor = join(dir, ...parts.slice(0, i));
      const st = lstatOrNull(ancestor);
      if (!st) continue;
      if (!st.isDirectory || isOpaque(ancestor)) return false;
      break;
    }
  }
  return false;
}

export interface Change {
  kind: "A" | "C" | "D";
  /** absolute path in the container */
  path: string;
}

/** docker diff: what the upper dir adds (A), changes (C) and deletes (D), sorted by path. */
export function containerChanges(root: StateRoot, record: ContainerRecord): Change[] {
  const changes: Change[] = [];
  const lowers = record.LowerDirs;
  // returns true when something below `rel` was reported
  const walk = (dirFd: number, rel: string, parentIsNew: boolean): boolean => {
    let reported = false;
    for (const name of readDirNames(dirFd)) {
      const childRel = rel ? `${rel}/${name}` : name;
      const stat = statAt(dirFd, name);
      if (!stat) continue;
      if (isWhiteoutStat(stat)) {
        changes.push({ kind: "D", path: `/${childRel}` });
        reported = true;
        continue;
      }
      if (isPlaceholder(childRel, stat)) continue;
      const isNew = parentIsNew || !existsInLowers(lowers, childRel);
      if (stat.type === "dir") {
        const fd = tryOpenDirAt(dirFd, name);
        if (fd < 0) continue; // swapped meanwhile: no longer a directory
        let below: boolean, opaque: boolean;
        try {
          below = walk(fd, childRel, isNew);
          opaque = isOpaqueDir(fd);
        } finally {
          closeFd(fd);
        }
        if (isNew || below || opaque) {
          changes.push({ kind: isNew ? "A" : "C", path: `/${childRel}` });
          reported = true;
        }
        continue;
      }
      changes.push({ kind: isNew ? "A" : "C", path: `/${childRel}` });
      reported = true;
    }
    return reported;
  };
  const upper = openLayer(upperDir(root, record));
  if (upper !== undefined) {
    try {
      walk(upper, "", false);
    } finally {
      closeFd(upper);
    }
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The upper dir as an OCI layer (commit): whiteouts become `.wh.NAME`, opaque directories get a
 * `.wh..wh..opq` entry, the runtime's placeholder files are left out. Sorted, so the same changes
 * give the same diffID.
 */
export function* upperLayerEntries(upper: string): Generator<TarWriteEntry> {
  const links = new Map<string, string>();
  function* walk(dirFd: number, rel: string): Generator<TarWriteEntry> {
    for (const name of readDirNames(dirFd).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const node = readNode({ dir: dirFd, name });
      if (!node) continue;
      try {
        if (isWhiteoutStat(node.stat)) {
          yield {
            ...tarBase(node.stat),
            name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`,
            type: "file",
            mode: 0o644,
          };
          continue;
        }
        if (isPlaceholder(path, node.stat)) continue;
        const entry = tarEntryOf(node, path, links);
        if (entry) yield entry;
        if (node.dirFd !== undefined) {
          if (isOpaqueDir(node.dirFd)) {
            yield { ...tarBase(node.stat), name: `${path}/.wh..wh..opq`, type: "file", mode: 0o644 };
          }
          yield* walk(node.dirFd, path);
        }
      } finally {
        if (node.dirFd !== undefined) closeFd(node.dirFd);
      }
    }
  }
  const fd = openLayer(upper);
  if (fd === undefined) return;
  try {
    yield* walk(fd, "");
  } finally {
    closeFd(fd);
  }
}

/**
 * The container's merged filesystem (export): `layers` top-most first (upper, then the image's
 * layer dirs), merged as overlayfs does, as tar entries in name order.
 */
export function* unionEntries(layers: string[]): Generator<TarWriteEntry> {
  const links = new Map<string, string>();
  // dirFds: the same directory in each layer that still contributes, top-most first
  function* walk(dirFds: number[], rel: string): Generator<TarWriteEntry> {
    const names = mergedNames(dirFds).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { name, layer } of names) {
      const path = rel ? `${rel}/${name}` : name;
      const node = readNode({ dir: dirFds[layer], name });
      if (!node) continue;
      let below: number[] = [];
      try {
        const entry = tarEntryOf(node, path, links);
        if (entry) yield entry;
        if (node.dirFd === undefined) continue;
        // the same directory in lower layers contributes until a layer hides it
        below = dirsBelow(dirFds, layer, name, node.dirFd);
        yield* walk([node.dirFd, ...below], path);
      } finally {
        for (const fd of below) closeFd(fd);
        if (node.dirFd !== undefined) closeFd(node.dirFd);
      }
    }
  }
  const fds: number[] = [];
  try {
    for (const layer of layers) {
      const fd = openLayer(layer);
      if (fd !== undefined) fds.push(fd);
    }
    yield* walk(fds, "");
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}
