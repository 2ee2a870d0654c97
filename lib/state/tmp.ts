// Work in progress under <root>/tmp: one naming scheme, `<kind>-<pid>-<start>-<hex>`, for every
// temp dir, FIFO and tombstone skiff makes there (layer unpacks, loads, saves, cp staging, init
// FIFOs, removed containers and layers on their way out). <pid> and <start> (the process's start
// time in clock ticks, /proc/<pid>/stat field 22) name the owner: the sweeper removes an entry only
// when that process is gone, so a live process's temp is never touched, and a reused pid (another
// start time) does not keep garbage alive forever.

import { join } from "./path.ts";
import { processStartTime } from "./proc.ts";
import { atomicTempOwner, spreadSubdirs } from "./fsutil.ts";
import type { StateRoot } from "./root.ts";

const TMP_RE = /^([a-z]+)-(\d+)-(\d+)-[0-9a-f]+$/;

let ownStart: number | undefined;

/** A fresh path <root>/tmp/<kind>-<pid>-<start>-<hex> owned by this process (nothing is created). */
export function tmpPath(root: StateRoot, kind: string): string {
  ownStart ??= processStartTime(Deno.pid) ?? 0;
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return join(root.tmp, `${kind}-${Deno.pid}-${ownStart}-${rand}`);
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
