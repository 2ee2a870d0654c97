// Small synchronous helpers for cgroupfs files. Everything here is *Sync on purpose: the runtime
// calls the cgroup module right after setns, where async Deno APIs would run in other namespaces.

import { SkiffError } from "../errors.ts";
import { checkAt, mkdirPath, pathExists, rmdirPath } from "../../ffi/libc.ts";

const ENOENT = 2, EAGAIN = 11, EEXIST = 17;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the calling thread for ms milliseconds (no async: see the header). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Whether a cgroupfs path exists (no exception when it does not: the common answer for some). */
export function exists(path: string): boolean {
  return pathExists(path);
}

/** The trimmed content of a cgroup file, or null when it does not exist. */
export function readOptional(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Writes one value to a cgroup file; a rejected value becomes a SkiffError naming file and value. */
export function writeValue(path: string, value: string | number): void {
  try {
    Deno.writeTextFileSync(path, String(value), { create: false });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SkiffError(`cgroup file ${path} does not exist: the kernel does not support this limit`);
    }
    throw new SkiffError(`failed to write "${value}" to ${path}: ${osMessage(e)}`);
  }
}

/**
 * Writes each value to a cgroup file with its own write(2) on one open file (the devices files take
 * one rule per write): an open and a close per value cost more than the writes (13 rules a start).
 */
export function writeValues(path: string, values: readonly (string | number)[]): void {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SkiffError(`cgroup file ${path} does not exist: the kernel does not support this limit`);
    }
    throw new SkiffError(`failed to open ${path}: ${osMessage(e)}`);
  }
  try {
    for (const value of values) {
      const bytes = new TextEncoder().encode(String(value));
      try {
        if (file.writeSync(bytes) !== bytes.length) throw new Error("short write");
      } catch (e) {
        throw new SkiffError(`failed to write "${value}" to ${path}: ${osMessage(e)}`);
      }
    }
  } finally {
    file.close();
  }
}

/**
 * writeValue on Deno's blocking pool (this process's own namespaces: never after setns). Not
 * Deno.writeTextFile: its check for a stream argument sets up Deno's streams (~2-4 ms, once).
 */
export async function writeValueAsync(path: string, value: string | number): Promise<void> {
  try {
    const file = Deno.openSync(path, { write: true });
    try {
      const bytes = new TextEncoder().encode(String(value));
      if (await file.write(bytes) !== bytes.length) throw new Error("short write");
    } finally {
      file.close();
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SkiffError(`cgroup file ${path} does not exist: the kernel does not support this limit`);
    }
    throw new SkiffError(`failed to write "${value}" to ${path}: ${osMessage(e)}`);
  }
}

/** "Invalid argument (os error 22): writefile '/x'" -> "invalid argument", as docker words errnos. */
export function osMessage(e: unknown): string {
  const text = (e as Error).message ?? String(e);
  const m = /^(.*?) \(os error \d+\)/.exec(text);
  return m ? m[1].charAt(0).toLowerCase() + m[1].slice(1) : text;
}

/** "key value" lines (memory.events, memory.oom_control, cpu.stat) as a map. */
export function readKeyed(path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (readOptional(path) ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

/** The pids listed in a cgroup.procs file ([] when the group is gone). */
export function readPids(procsFile: string): number[] {
  const text = readOptional(procsFile);
  if (!text) return [];
  return text.split("\n").map(Number).filter((n) => n > 0);
}

/** mkdir that tolerates an existing directory; returns whether it created it. */
export function mkdirIfAbsent(path: string): boolean {
  const r = mkdirCgroup(path);
  if (r === -EEXIST) return false;
  checkAt("mkdir", r, path);
  return true;
}

/**
 * mkdir in cgroupfs, tried again on EAGAIN for up to ~1 s: the kernel refused v1 cgroups so now and
 * then during the whole suite's fast create/remove cycles (4 of ~4000 runs on this 6.18 host, in the
 * cpu hierarchy, one try later fine); -errno on failure.
 */
function mkdirCgroup(path: string): number {
  for (let attempt = 0;; attempt++) {
    const r = mkdirPath(path, 0o777);
    if (r !== -EAGAIN || attempt >= 100) return r;
    sleepSync(10);
  }
}

/** mkdir of a cgroup: "made", "exists", "no-parent" (ENOENT), and a SysError for anything else. */
export function makeDir(path: string): "made" | "exists" | "no-parent" {
  const r = mkdirCgroup(path);
  if (r === -EEXIST) return "exists";
  if (r === -ENOENT) return "no-parent";
  checkAt("mkdir", r, path);
  return "made";
}

/**
 * rmdir of a cgroup directory, retrying EBUSY for up to timeoutMs (a killed process can take a
 * moment to leave). An absent directory is success.
 */
export function removeCgroupDir(path: string, timeoutMs = 2000): void {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = rmdirPath(path); // cgroupfs dirs hold only virtual files
    if (r === 0 || r === -ENOENT) return;
    if (performance.now() > deadline) {
      try {
        checkAt("rmdir", r, path);
      } catch (e) {
        throw new SkiffError(`cannot remove cgroup ${path}: ${osMessage(e)}`);
      }
    }
    sleepSync(10);
  }
}

/**
 * rmdir of the parent of a container's group once it holds no other group: a machine that runs no
 * container keeps no skiff cgroup. EBUSY (other groups in it) and ENOENT are fine.
 */
export function removeParentIfEmpty(groupDir: string): void {
  rmdirPath(groupDir.slice(0, groupDir.lastIndexOf("/"))); // EBUSY (still in use) or ENOENT: fine
}

/**
 * Makes a container's group with `make`, again when it failed because the parent vanished under it:
 * the last container's destroy may remove the parent between this process's mkdirs.
 */
export function makeInParent<T>(parentDir: string, make: () => T): T {
  for (let attempt = 1;; attempt++) {
    try {
      return make();
    } catch (e) {
      if (attempt >= 5 || exists(parentDir)) throw e;
    }
  }
}

/** SIGKILLs every listed pid until none is left (bounded: ~2 s), since a fork can race the kill. */
export function killUntilEmpty(list: () => number[], timeoutMs = 2000): void {
  const deadline = performance.now() + timeoutMs;
  let pause = 1;
  for (;;) {
    const pids = list();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    if (performance.now() > deadline) {
      throw new SkiffError(`processes ${pids.join(", ")} are still in the container's cgroup after SIGKILL`);
    }
    sleepSync(pause);
    pause = Math.min(pause * 2, 20); // a SIGKILLed process is usually gone within a millisecond
  }
}

/** A number file ("max" and absurd "unlimited" values become 0); 0 when absent. */
export function readNumber(path: string): number {
  const text = readOptional(path);
  if (!text || text === "max") return 0;
  const n = Number(text);
  return Number.isFinite(n) && n < 2 ** 62 ? n : 0;
}

/** Polls until done() or the timeout; throws a SkiffError saying what did not happen. */
export function waitFor(done: () => boolean, what: string, timeoutMs = 2000): void {
  const deadline = performance.now() + timeoutMs;
  let pause = 1;
  while (!done()) {
    if (performance.now() > deadline) throw new SkiffError(`timed out waiting for ${what}`);
    sleepSync(pause);
    pause = Math.min(pause * 2, 20);
  }
}
