// Filesystem helpers shared by cp, volumes, export, diff and commit: path resolution inside a
// container root (symlinks never lead to the host), a metadata-preserving tree copy, and sizes.
// Synchronous only: cp runs them after unshare(CLONE_NEWNS) for a stopped container.

import { lchown, lutimes, makedev, mkfifo, mknod, S_IFBLK, S_IFCHR } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";

export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;

export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

/** The parts of a path, without empty and "." components. */
export function pathParts(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

/**
 * The host path of `path` inside `root`, following symlinks as if `root` were / (absolute targets
 * re-rooted, ".." never above root), lstat by lstat so the kernel never follows a link itself.
 * With `followFinal` false the last component is kept as named even when it is a symlink.
 */
export function resolveInRoot(root: string, path: string, followFinal = true): string {
  const pending = pathParts(path);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = `${root}/${[...resolved, part].join("/")}`;
    const isLast = pending.length === 0;
    const info = lstatOrNull(candidate);
    if (!info?.isSymlink || (isLast && !followFinal)) {
      resolved.push(part);
      continue;
    }
    if (++links > 255) throw new SkiffError(`too many levels of symbolic links: ${path}`);
    const target = Deno.readLinkSync(candidate);
    if (target.startsWith("/")) resolved.length = 0;
    pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
  }
  return resolved.length ? `${root}/${resolved.join("/")}` : root;
}

export interface CopyOptions {
  /** Keep the source's uid/gid (cp -a, volume copy-up); otherwise new entries belong to `owner`. */
  preserveOwner: boolean;
  owner?: { uid: number; gid: number };
  /** Follow a symlink given as the source itself (cp -L); links inside a tree are always kept. */
  followTop?: boolean;
}

function setMetadata(path: string, info: Deno.FileInfo, opts: CopyOptions): void {
  const uid = opts.preserveOwner ? info.uid ?? 0 : opts.owner?.uid ?? 0;
  const gid = opts.preserveOwner ? info.gid ?? 0 : opts.owner?.gid ?? 0;
  lchown(path, uid, gid);
  // chown clears setuid bits: chmod after it; a symlink has no mode of its own
  if (!info.isSymlink) Deno.chmodSync(path, (info.mode ?? 0o644) & 0o7777);
  const mtime = Math.floor((info.mtime?.getTime() ?? Date.now()) / 1000);
  const atime = Math.floor((info.atime?.getTime() ?? Date.now()) / 1000);
  lutimes(path, atime, mtime);
}

/** Removes whatever is at `path` (not following a symlink), unless it is a directory. */
function replaceNonDir(path: string): Deno.FileInfo | null {
  const existing = lstatOrNull(path);
  if (existing && !existing.isDirectory) {
    Deno.removeSync(path);
    return null;
  }
  return existing;
}

/**
 * Copies `src` (file, directory tree, symlink, device, fifo) to `dest`, merging into an existing
 * directory, replacing other existing entries. Never follows a symlink inside the tree; new files
 * are created with O_EXCL so an entry swapped for a symlink meanwhile makes the copy fail, not
 * write through it.
 */
export function copyTree(src: string, dest: string, opts: CopyOptions): void {
  const info = opts.followTop ? Deno.statSync(src) : Deno.lstatSync(src);
  copyEntry(src, dest, info, opts, new Map());
}

function copyEntry(
  src: string,
  dest: string,
  info: Deno.FileInfo,
  opts: CopyOptions,
  links: Map<string, string>,
): void {
  const type = (info.mode ?? 0) & S_IFMT;
  if (info.isDirectory) {
    const existing = lstatOrNull(dest);
    if (existing && !existing.isDirectory) Deno.removeSync(dest);
    if (!existing?.isDirectory) Deno.mkdirSync(dest, { mode: 0o700 });
    for (const entry of Deno.readDirSync(src)) {
      const child = `${src}/${entry.name}`;
      copyEntry(child, `${dest}/${entry.name}`, Deno.lstatSync(child), opts, links);
    }
    setMetadata(dest, info, opts);
    return;
  }
  if (replaceNonDir(dest)) {
    throw new SkiffError(`cannot overwrite directory "${dest}" with non-directory "${src}"`);
  }
  if (info.isFile && (info.nlink ?? 1) > 1) {
    const key = `${info.dev}:${info.ino}`;
    const first = links.get(key);
    if (first) {
      Deno.linkSync(first, dest);
      return;
    }
    links.set(key, dest);
  }
  if (info.isSymlink) {
    Deno.symlinkSync(Deno.readLinkSync(src), dest);
  } else if (info.isFile) {
    const from = Deno.openSync(src, { read: true });
    try {
      const to = Deno.openSync(dest, { write: true, createNew: true, mode: 0o600 });
      try {
        const buf = new Uint8Array(1 << 16);
        for (let n; (n = from.readSync(buf)) !== null && n > 0;) {
          for (let off = 0; off < n;) off += to.writeSync(buf.subarray(off, n));
        }
      } finally {
        to.close();
      }
    } finally {
      from.close();
    }
  } else if (type === S_IFCHR || type === S_IFBLK) {
    const rdev = info.rdev ?? 0;
    mknod(dest, type | 0o600, makedev((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)));
  } else if (type === S_IFIFO) {
    mkfifo(dest, 0o600);
  } else {
    return; // sockets are not copied (docker skips them too)
  }
  setMetadata(dest, info, opts);
}

/** Bytes of regular file data below `path` (0 when it is missing). */
export function treeSize(path: string): number {
  const info = lstatOrNull(path);
  if (!info) return 0;
  if (!info.isDirectory) return info.isFile ? info.size : 0;
  let total = 0;
  for (const e of Deno.readDirSync(path)) total += treeSize(`${path}/${e.name}`);
  return total;
}

/** True when `path` is a directory with nothing in it. */
export function isEmptyDir(path: string): boolean {
  try {
    for (const _ of Deno.readDirSync(path)) return false;
    return true;
  } catch {
    return false;
  }
}
