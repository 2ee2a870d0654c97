// An image's file tree as overlayfs would merge its unpacked layers, read without mounting: the
// top-most layer that has a name wins, a whiteout (0/0 char device) hides it, an opaque directory
// hides the layers below. Every lookup goes through directory fds with O_NOFOLLOW; symlinks are
// resolved here, as paths inside the image (an absolute target or `..` never leaves its root), so a
// hostile base image's links only ever name other paths of the same image.

import { closeFd, isOpaqueDir, openHostDir, readLinkAt, type Stat, statAt, tryOpenDirAt } from "../fs/at.ts";
import { isWhiteoutStat as isWhiteout, mergedDirs, readNode } from "../fs/tree.ts";
import { SkiffError } from "../errors.ts";

export interface Found {
  stat: Stat;
  /** the layer (index into the view's layers) that provides it */
  layer: number;
}

/**
 * The directory steps (one component in one layer) one resolve() may take. A real path takes tens;
 * a hostile image's symlink that points back into a chain 300 directories deep took 90 s of the
 * supervisor's thread (every lookup walks from the root, in each layer, for each of 255 links).
 * Past it, the path counts as a loop (ELOOP), which the kernel would find too.
 */
const RESOLVE_LOOKUPS = 50_000;

export class UnionView {
  private fds: number[];

  /** `layerDirs` top-most first (ImageStore.layerDirs). */
  constructor(layerDirs: string[]) {
    this.fds = [];
    try {
      for (const d of layerDirs) this.fds.push(openHostDir(d));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  close(): void {
    for (const fd of this.fds) closeFd(fd);
    this.fds = [];
  }

  /** What is left of resolve()'s lookups (RESOLVE_LOOKUPS), while one runs. */
  private budget: number | undefined;

  /** The entry at `parts` (no symlink followed), or null when the merged tree has none. */
  lookup(parts: string[]): Found | null {
    if (this.budget !== undefined && (this.budget -= parts.length * this.fds.length + 1) < 0) {
      throw new SkiffError("too many levels of symbolic links");
    }
    if (parts.length === 0) {
      for (let i = 0; i < this.fds.length; i++) {
        const st = statAt(this.fds[i], "");
        if (st) return { stat: st, layer: i };
      }
      return null;
    }
    for (let i = 0; i < this.fds.length; i++) {
      // walk the parent directories in this layer
      let fd = this.fds[i];
      const opened: number[] = [];
      let hiddenBelow = false;
      try {
        let reached = true;
        for (let k = 0; k < parts.length - 1; k++) {
          const st = statAt(fd, parts[k]);
          if (!st) {
            reached = false;
            break;
          }
          if (st.type !== "dir") return null; // a file, link or whiteout here hides the path
          const next = tryOpenDirAt(fd, parts[k]);
          if (next < 0) return null;
          opened.push(next);
          fd = next;
          if (isOpaqueDir(fd)) hiddenBelow = true;
        }
        if (reached) {
          const st = statAt(fd, parts.at(-1)!);
          if (st) return isWhiteout(st) ? null : { stat: st, layer: i };
          if (hiddenBelow) return null;
        }
      } finally {
        for (const o of opened) closeFd(o);
      }
    }
    return null;
  }

  /**
   * Resolves `path` inside the image: every symlink along it (the last one too when `followLast`)
   * is followed as a path of the image. Returns the resolved components.
   */
  resolve(path: string, followLast = true): string[] {
    this.budget = RESOLVE_LOOKUPS;
    try {
      return this.resolveSteps(path, followLast);
    } catch (e) {
      if (e instanceof SkiffError && e.message === "too many levels of symbolic links") {
        throw new SkiffError(`too many levels of symbolic links: ${path}`);
      }
      throw e;
    } finally {
      this.budget = undefined;
    }
  }

  private resolveSteps(path: string, followLast: boolean): string[] {
    const todo = path.split("/").filter((p) => p !== "" && p !== ".");
    const out: string[] = [];
    let hops = 0;
    while (todo.length) {
      const part = todo.shift()!;
      if (part === "..") {
        out.pop();
        continue;
      }
      out.push(part);
      if (!followLast && todo.length === 0) break;
      const found = this.lookup(out);
      if (!found || found.stat.type !== "symlink") continue;
      if (++hops > 255) throw new SkiffError(`too many levels of symbolic links: ${path}`);
      const target = this.readLink(out, found.layer);
      out.pop();
      if (target.startsWith("/")) out.length = 0;
      todo.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
    }
    return out;
  }

  /**
   * The directory at `path` (every symlink along it resolved as a path of the image) as overlayfs
   * merges it: its fd in each layer that contributes, top-most first, for the caller to close
   * (tree.ts copyDirContentsAsync reads them merged); [] when the image has no directory there, and for
   * the image's root (never a volume's destination).
   */
  openDir(path: string): number[] {
    const parts = this.resolve(path);
    if (parts.length === 0) return [];
    // the same directory in each layer that contributes, one level at a time (the layers' own fds
    // are the view's; the others are closed once the next level is open)
    let dirs: number[] = [];
    for (const fd of this.fds) {
      dirs.push(fd);
      if (isOpaqueDir(fd)) break;
    }
    let owned = false;
    try {
      for (const part of parts) {
        const next = mergedDirs(dirs, part);
        if (owned) { for (const fd of dirs) closeFd(fd); }
        dirs = next;
        owned = true;
      }
      owned = false; // the caller's now
      return dirs;
    } finally {
      if (owned) { for (const fd of dirs) closeFd(fd); }
    }
  }

  /** Opens the directory `parts` in layer `layer` (no symlinks), or -1. */
  private openIn(layer: number, parts: string[]): number {
    let fd = this.fds[layer];
    let owned = -1;
    for (const p of parts) {
      const next = tryOpenDirAt(fd, p);
      if (owned >= 0) closeFd(owned);
      if (next < 0) return -1;
      owned = fd = next;
    }
    return owned >= 0 ? owned : -2; // -2: the layer root itself
  }

  private readLink(parts: string[], layer: number): string {
    const dir = this.openIn(layer, parts.slice(0, -1));
    if (dir === -1) return "";
    try {
      return readLinkAt(dir === -2 ? this.fds[layer] : dir, parts.at(-1)!);
    } finally {
      if (dir >= 0) closeFd(dir);
    }
  }

  /** A regular file's contents at `path` (symlinks resolved in the image), or undefined. */
  readFile(path: string): Uint8Array | undefined {
    const parts = this.resolve(path);
    const found = this.lookup(parts);
    if (!found || found.stat.type !== "file") return undefined;
    const dir = this.openIn(found.layer, parts.slice(0, -1));
    if (dir === -1) return undefined;
    try {
      return readNode({ dir: dir === -2 ? this.fds[found.layer] : dir, name: parts.at(-1)! })?.data;
    } finally {
      if (dir >= 0) closeFd(dir);
    }
  }
}
