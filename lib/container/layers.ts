// Reading a container's filesystem without mounting it: the changes in its overlay upper dir (diff,
// commit) and the union of upper and image layers (export), computed by walking the directories as
// overlayfs would merge them: the top-most layer wins, a whiteout (0/0 char device) hides the name
// below it, an opaque directory (trusted.overlay.opaque=y) hides everything below it.

import { join } from "node:path";
import { lgetxattr } from "../../ffi/libc.ts";
import type { TarWriteEntry } from "../image/tar.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { lstatOrNull, S_IFIFO, S_IFMT } from "./fstree.ts";

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

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
function isPlaceholder(rel: string, info: Deno.FileInfo): boolean {
  return PLACEHOLDER_FILES.has(rel) && info.isFile && info.size === 0;
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
  const walk = (dir: string, rel: string, parentIsNew: boolean): boolean => {
    let reported = false;
    for (const entry of Deno.readDirSync(dir)) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const abs = join(dir, entry.name);
      const info = Deno.lstatSync(abs);
      if (isWhiteout(info)) {
        changes.push({ kind: "D", path: `/${childRel}` });
        reported = true;
        continue;
      }
      if (isPlaceholder(childRel, info)) continue;
      const isNew = parentIsNew || !existsInLowers(lowers, childRel);
      if (info.isDirectory) {
        const below = walk(abs, childRel, isNew);
        if (isNew || below || isOpaque(abs)) {
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
  const upper = upperDir(root, record);
  if (lstatOrNull(upper)?.isDirectory) walk(upper, "", false);
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function tarBase(info: Deno.FileInfo) {
  return {
    mode: (info.mode ?? 0) & 0o7777,
    uid: info.uid ?? 0,
    gid: info.gid ?? 0,
    mtime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
  };
}

/** One file as a tar entry (data read into memory); undefined for sockets. */
export function tarEntry(
  abs: string,
  name: string,
  info: Deno.FileInfo,
  links: Map<string, string>,
): TarWriteEntry | undefined {
  const base = { ...tarBase(info), name };
  const type = (info.mode ?? 0) & S_IFMT;
  if (info.isDirectory) return { ...base, name: `${name}/`, type: "dir" };
  if (info.isSymlink) return { ...base, type: "symlink", linkname: Deno.readLinkSync(abs) };
  if (info.isFile && (info.nlink ?? 1) > 1) {
    const key = `${info.dev}:${info.ino}`;
    const first = links.get(key);
    if (first) return { ...base, type: "link", linkname: first };
    links.set(key, name);
  }
  if (info.isFile) return { ...base, type: "file", data: Deno.readFileSync(abs) };
  if (type === S_IFCHR || type === S_IFBLK) {
    const rdev = info.rdev ?? 0;
    return {
      ...base,
      type: type === S_IFCHR ? "char" : "block",
      devmajor: (rdev >> 8) & 0xfff,
      devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    };
  }
  if (type === S_IFIFO) return { ...base, type: "fifo" };
  return undefined;
}

/**
 * The upper dir as an OCI layer (commit): whiteouts become `.wh.NAME`, opaque directories get a
 * `.wh..wh..opq` entry, the runtime's placeholder files are left out. Sorted, so the same changes
 * give the same diffID.
 */
export function* upperLayerEntries(upper: string): Generator<TarWriteEntry> {
  const links = new Map<string, string>();
  function* walk(dir: string, rel: string): Generator<TarWriteEntry> {
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    for (const name of names) {
      const abs = join(dir, name);
      const path = rel ? `${rel}/${name}` : name;
      const info = Deno.lstatSync(abs);
      if (isWhiteout(info)) {
        yield {
          ...tarBase(info),
          name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`,
          type: "file",
          mode: 0o644,
        };
        continue;
      }
      if (isPlaceholder(path, info)) continue;
      const entry = tarEntry(abs, path, info, links);
      if (entry) yield entry;
      if (info.isDirectory) {
        if (isOpaque(abs)) {
          yield { ...tarBase(info), name: `${path}/.wh..wh..opq`, type: "file", mode: 0o644 };
        }
        yield* walk(abs, path);
      }
    }
  }
  if (lstatOrNull(upper)?.isDirectory) yield* walk(upper, "");
}

/**
 * The container's merged filesystem (export): `layers` top-most first (upper, then the image's
 * layer dirs), merged as overlayfs does, as tar entries in name order.
 */
export function* unionEntries(layers: string[]): Generator<TarWriteEntry> {
  const links = new Map<string, string>();
  function* walk(dirs: string[], rel: string): Generator<TarWriteEntry> {
    // name -> index of the layer that provides it (or -1 when whited out)
    const owner = new Map<string, number>();
    for (let i = 0; i < dirs.length; i++) {
      const dir = dirs[i];
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(dir)];
      } catch {
        continue;
      }
      for (const e of entries) {
        if (owner.has(e.name)) continue;
        owner.set(e.name, isWhiteout(Deno.lstatSync(join(dir, e.name))) ? -1 : i);
      }
      if (isOpaque(dir)) break;
    }
    for (const name of [...owner.keys()].sort()) {
      const i = owner.get(name)!;
      if (i < 0) continue;
      const abs = join(dirs[i], name);
      const path = rel ? `${rel}/${name}` : name;
      const info = Deno.lstatSync(abs);
      const entry = tarEntry(abs, path, info, links);
      if (entry) yield entry;
      if (!info.isDirectory) continue;
      // the same directory in lower layers contributes until a layer hides it
      const below: string[] = [abs];
      for (const dir of dirs.slice(i + 1)) {
        const other = lstatOrNull(join(dir, name));
        if (!other) continue;
        if (!other.isDirectory) break;
        below.push(join(dir, name));
        if (isOpaque(join(dir, name))) break;
      }
      if (isOpaque(abs)) below.length = 1;
      yield* walk(below, path);
    }
  }
  yield* walk(layers, "");
}
