// Small filesystem helpers shared by the stores: atomic writes and locks.

import { dirname } from "./path.ts";
import { close, flock, LOCK, O, open, setTopDirFlag } from "../../ffi/libc.ts";

const encoder = new TextEncoder();

let ownStart: string | undefined;

/**
 * The temp name writeFileAtomic writes beside `path` first: `<path>.tmp-<pid>-<start>-<hex>`, the
 * owner's pid and start time in it so a sweep (sweepAtomicTemps) removes it only once that process
 * is gone.
 */
function atomicTempPath(path: string): string {
  if (ownStart === undefined) {
    try {
      const stat = Deno.readTextFileSync("/proc/self/stat");
      ownStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    } catch {
      ownStart = "0";
    }
  }
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `${path}.tmp-${Deno.pid}-${ownStart}-${rand}`;
}

/** A writeFileAtomic temp name: the owner's pid and start time, or undefined. */
export function atomicTempOwner(name: string): { pid: number; start: number } | undefined {
  const m = /\.tmp-(\d+)-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : undefined;
}

/** fsync of a directory: makes the names created, renamed or removed in it survive a crash. */
export function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

/**
 * Writes a file so that readers see the old or the new content, never half of it: a temp file
 * beside it, renamed over it. `durable` (the default) also makes it survive a crash of the machine:
 * the data is synced before the rename and the directory after it (without the first sync, ext4
 * may put the rename on disk before the data, and a crash leaves an empty file under the real
 * name). ARCHITECTURE.md ("Crash consistency") says which writes need it and what it costs.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, durable = true): void {
  const tmp = atomicTempPath(path);
  try {
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
    try {
      const bytes = typeof data === "string" ? encoder.encode(data) : data;
      for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
      if (durable) file.syncDataSync();
    } finally {
      file.close();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    throw e;
  }
  if (durable) syncDir(dirname(path));
}

export function writeJsonAtomic(path: string, value: unknown, mode = 0o644, durable = true): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", mode, durable);
}

export function readJson<T>(path: string): T {
  return JSON.parse(Deno.readTextFileSync(path)) as T;
}

export function readJsonOr<T>(path: string, fallback: T): T {
  try {
    return readJson<T>(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return fallback;
    throw e;
  }
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Holds an exclusive flock on `path` while `fn` runs. Waits by polling with LOCK_NB so the event
 * loop keeps running (other async work of this process is not frozen while another skiff holds it).
 */
export async function withLock<T>(path: string, fn: () => T | Promise<T>): Promise<T> {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const fd = open(path, O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
  try {
    let delay = 1;
    while (!flock(fd, LOCK.EX | LOCK.NB, path)) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 20);
    }
    return await fn();
  } finally {
    close(fd); // closing the fd releases the lock
  }
}

/** The synchronous form, for code that runs after unshare/setns where async APIs are off limits. */
export function withLockSync<T>(path: string, fn: () => T): T {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const fd = open(path, O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
  try {
    flock(fd, LOCK.EX, path);
    return fn();
  } finally {
    close(fd);
  }
}

const spread = new Set<string>();

/**
 * Has ext4 place each new subdirectory of `dir` in a fresh block group (the top-directory flag,
 * `chattr +T`), once per process and directory. On ext4 without a journal (these machines) the inode
 * allocator checks, one by one, every inode of the group freed in the last 60-360 s and skips it:
 * after an image with a few thousand files was removed, creating files beside where it was took
 * 0.97 s per 1000 instead of 0.05 s; in a spread dir, 0.05 s. Layer dirs (under tmp/) and container
 * dirs are made this way. Only a hint: other filesystems have no such flag and lose nothing.
 */
export function spreadSubdirs(dir: string): void {
  if (spread.has(dir)) return;
  spread.add(dir);
  try {
    setTopDirFlag(dir);
  } catch { /* not ext2/3/4: nothing to gain there */ }
}
