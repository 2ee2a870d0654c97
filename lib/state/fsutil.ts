// Small filesystem helpers shared by the stores: atomic writes, locks, processes by pid and start
// time, and the temps under <root>/tmp. One module, not four: each module a verb loads costs ~1 ms
// of start-up (measured on `ps`), and every verb needs these.

import { dirname, join } from "../path.ts";
import type { StateRoot } from "./root.ts";
import { close, flock, LOCK, O, open, setTopDirFlag } from "../../ffi/libc.ts";

const encoder = new TextEncoder();

let ownStartCache: number | undefined;
/** This process's start time (clock ticks), for the names of the temps it owns. */
const ownStart = () => ownStartCache ??= processStartTime(Deno.pid) ?? 0;

/**
 * The temp name writeFileAtomic writes beside `path` first: `<path>.tmp-<pid>-<start>-<hex>`, the
 * owner's pid and start time in it so a sweep (sweepAtomicTemps) removes it only once that process
 * is gone.
 */
function atomicTempPath(path: string): string {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `${path}.tmp-${Deno.pid}-${ownStart()}-${rand}`;
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
 * Deletes a directory tree, its top-level entries at once on Deno's blocking pool (none is followed
 * if it is a symlink). On ext4 mounted with `discard` and no journal (these machines) every freed
 * block is discarded before unlink or rmdir returns, 1-10 ms each on a busy disk: a container's
 * directory frees a dozen (its dirs, hosts, resolv.conf, the record...), one after the other ~10 ms
 * of a `run --rm`; side by side the longest chain (upper/etc, then upper/) is what is left.
 */
export async function removeTree(path: string): Promise<void> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(path)].map((e) => e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (!(e instanceof Deno.errors.NotADirectory)) throw e;
    names = [];
  }
  const results = await Promise.allSettled(
    names.map((name) => Deno.remove(join(path, name), { recursive: true })),
  );
  for (const r of results) {
    if (r.status === "rejected" && !(r.reason instanceof Deno.errors.NotFound)) throw r.reason;
  }
  removeIfExists(path);
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

// ---- processes ----
// A pid alone may have been reused by another process: the start time tells them apart.

/** Start time of a process in clock ticks since boot, or undefined when it does not exist. */
export function processStartTime(pid: number): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // the command name may contain spaces and parentheses: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // a zombie is not running
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True when the record's process is still the one skiff started (not exited, pid not reused). */
export function isProcessAlive(pid: number, startTime: number | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

// ---- tmp/ ----
// Work in progress under <root>/tmp: one naming scheme, `<kind>-<pid>-<start>-<hex>`, for every
// temp dir, FIFO and tombstone skiff makes there (layer unpacks, loads, saves, cp staging, init
// FIFOs, removed containers and layers on their way out). <pid> and <start> (the process's start
// time in clock ticks, /proc/<pid>/stat field 22) name the owner: the sweeper removes an entry only
// when that process is gone, so a live process's temp is never touched, and a reused pid (another
// start time) does not keep garbage alive forever.

const TMP_RE = /^([a-z]+)-(\d+)-(\d+)-[0-9a-f]+$/;

/** A fresh path <root>/tmp/<kind>-<pid>-<start>-<hex> owned by this process (nothing is created). */
export function tmpPath(root: StateRoot, kind: string): string {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return join(root.tmp, `${kind}-${Deno.pid}-${ownStart()}-${rand}`);
}

/** A new private directory under <root>/tmp, named so the sweeper can tell when its owner died. */
export function makeTmpDir(root: StateRoot, kind: string): string {
  const dir = tmpPath(root, kind);
  Deno.mkdirSync(root.tmp, { recursive: true, mode: 0o700 });
  if (kind === "layer") spreadSubdirs(root.tmp); // see spreadSubdirs: layers land in fresh groups
  Deno.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** The owner of a tmp/ entry, or undefined when the name is not one of skiff's temps. */
export function tmpOwner(name: string): { kind: string; pid: number; start: number } | undefined {
  const m = TMP_RE.exec(name);
  return m ? { kind: m[1], pid: Number(m[2]), start: Number(m[3]) } : undefined;
}

const ownerGone = (owner: { pid: number; start: number }) => {
  const now = processStartTime(owner.pid);
  return now === undefined || (owner.start !== 0 && now !== owner.start);
};

/** True when the tmp/ entry's owner is gone (its pid is dead or now another process). */
export function isStaleTmp(name: string): boolean {
  const owner = tmpOwner(name);
  return owner !== undefined && ownerGone(owner);
}

/** True for a writeFileAtomic temp whose writer is gone. */
export function isStaleAtomicTemp(name: string): boolean {
  const owner = atomicTempOwner(name);
  return owner !== undefined && ownerGone(owner);
}

/** Removes the writeFileAtomic temps of dead processes in `dir`; returns their paths. */
export function sweepAtomicTemps(dir: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isFile || !isStaleAtomicTemp(e.name)) continue;
    try {
      Deno.removeSync(join(dir, e.name));
      removed.push(join(dir, e.name));
    } catch { /* another sweeper got it */ }
  }
  return removed;
}

/**
 * Removes what dead skiff processes left in tmp/ (an interrupted unpack, load, cp, or a removal
 * killed half-way) and their writeFileAtomic temps. Returns the paths removed.
 */
export function sweepTmp(root: StateRoot): string[] {
  const removed = [root.path, root.images, root.blobs, join(root.path, "registry")].flatMap(sweepAtomicTemps);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root.tmp)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!isStaleTmp(e.name)) continue;
    try {
      Deno.removeSync(join(root.tmp, e.name), { recursive: true });
      removed.push(join(root.tmp, e.name));
    } catch { /* another sweeper got it */ }
  }
  return removed;
}
