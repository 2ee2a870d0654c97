// Worker threads that create a layer's small files while the main thread goes on parsing the tar.
//
// Why: on these machines creating an inode costs from 0.03 ms up to 1 ms of kernel time, depending
// on the state of the disk (1000 O_CREAT|O_EXCL opens took 0.03–1.1 s), and that is most of a
// pull of a layer with many small files. The tar stream can only be read in order, but the files
// in it can be created on several threads at once (two processes made 2000 files in the time one
// made 1000). Whole files up to SMALL_FILE go to the workers; the main thread keeps everything
// whose order matters and waits for the workers synchronously (Atomics.wait) before such a step,
// so the unpacker itself stays synchronous.

import { ownEntryUrl } from "../runtime/self.ts";
import { SkiffError } from "../errors.ts";
import {
  type FileJob,
  GROUP_DONE,
  GROUP_ERROR_BYTES,
  GROUP_ERROR_LEN,
  GROUP_FAILED,
  GROUP_SAB_SIZE,
  POOL_READY,
} from "./file_job.ts";

/** Files up to this size are handed to a worker whole; larger ones are streamed on the main thread. */
export const SMALL_FILE = 256 * 1024;
/** Jobs go to a worker in batches of this many (or fewer, at a flush): one message each. */
const BATCH = 16;
/** At most this many jobs of one group in flight: bounds the memory of queued file data (≤ 32 MB). */
const MAX_IN_FLIGHT = 128;
/** A worker that makes no progress for this long is taken as dead. */
const STALL_MS = 60_000;
const IDLE_MS = 200;

/** SKIFF_UNPACK_THREADS=0 turns the workers off; default: one per CPU, at most 4. */
function workerCount(): number {
  const env = Deno.env.get("SKIFF_UNPACK_THREADS");
  if (env !== undefined && /^\d+$/.test(env)) return Math.min(Number(env), 16);
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

/**
 * Whether a layer should use file workers when `busyThreads` of this process already work on it.
 * SKIFF_UNPACK_THREADS decides when set; otherwise only where a core is left for them: on 2 CPUs,
 * file workers beside the reader thread made `skiff import` slower (bench/unpack.ts, tmpfs:
 * 0.89 -> 1.09 s; disk: 1.06 -> 1.16 s), while a registry stream gunzipped on the main thread gains.
 */
export function fileWorkersWanted(busyThreads: number): boolean {
  if (Deno.env.get("SKIFF_UNPACK_THREADS") !== undefined) return workerCount() > 0;
  return (navigator.hardwareConcurrency || 1) > busyThreads;
}

class FilePool {
  private readonly readyCounter = new Int32Array(new SharedArrayBuffer(4));
  private readonly workers: Worker[] = [];
  users = 0;
  idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(count: number) {
    const url = ownEntryUrl("lib/image/file_worker.ts").href; // the bundle's, when skiff runs from one
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url, { type: "module" });
      // a worker that cannot load never reports ready, so nothing is handed to it; one that dies
      // later leaves its jobs unfinished, which waitUntil reports as a stall. Neither may take
      // this process down with it.
      worker.onerror = (e) => e.preventDefault();
      worker.postMessage({ ready: this.readyCounter.buffer });
      this.workers.push(worker);
    }
  }

  /** True once every worker runs; before that the caller writes on its own thread instead of waiting. */
  get ready(): boolean {
    return Atomics.load(this.readyCounter, POOL_READY) === this.workers.length;
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Files of one directory go to one worker: creates in the same directory contend for its lock
   * (two threads creating in one directory took 2.2 s for what one took 0.29 s).
   */
  workerFor(path: string): number {
    const dir = path.slice(0, path.lastIndexOf("/"));
    let hash = 0;
    for (let i = 0; i < dir.length; i++) hash = (hash * 31 + dir.charCodeAt(i)) | 0;
    return (hash >>> 0) % this.workers.length;
  }

  post(worker: number, jobs: FileJob[], group: SharedArrayBuffer): void {
    this.workers[worker].postMessage({ jobs, group }, jobs.map((j) => j.data.buffer));
  }

  terminate(): void {
    for (const worker of this.workers) worker.terminate();
  }
}

let shared: FilePool | undefined;
let workersUnavailable = false;

function acquirePool(): FilePool | undefined {
  const count = workerCount();
  if (count === 0 || workersUnavailable) return undefined;
  if (!shared) {
    try {
      shared = new FilePool(count);
    } catch {
      // no workers here (a runtime without them): the unpacker writes everything itself
      workersUnavailable = true;
      return undefined;
    }
  }
  clearTimeout(shared.idleTimer);
  shared.users++;
  return shared;
}

function releasePool(pool: FilePool): void {
  if (--pool.users > 0) return;
  // kept a moment for the next layer of the same pull; never keeps the process alive by itself
  pool.idleTimer = setTimeout(() => {
    if (pool.users === 0 && shared === pool) {
      shared = undefined;
      pool.terminate();
    }
  }, IDLE_MS);
  Deno.unrefTimer(pool.idleTimer as unknown as number);
}

/** For tests that must see the parallel path taken: files handed to workers; workers on their way. */
export const poolStats = {
  jobs: 0,
  get workersStarting(): boolean {
    return shared !== undefined && !shared.ready;
  },
};

/** The file jobs of one layer: submitted in order, drained before any step that depends on them. */
export class FileJobGroup {
  private readonly sab = new SharedArrayBuffer(GROUP_SAB_SIZE);
  private readonly counters = new Int32Array(this.sab, 0, 4);
  private submitted = 0;
  private pool: FilePool | undefined;
  private released = false;
  private batches: FileJob[][];

  constructor() {
    this.pool = acquirePool();
    this.batches = Array.from({ length: this.pool?.size ?? 0 }, () => []);
  }

  /** Whether a job can be handed over now (the workers run and this group is still open). */
  get available(): boolean {
    return !this.released && this.pool !== undefined && this.pool.ready;
  }

  /** True while some submitted job has not finished. */
  get pending(): boolean {
    return Atomics.load(this.counters, GROUP_DONE) < this.submitted;
  }

  submit(job: FileJob): void {
    if (this.submitted - Atomics.load(this.counters, GROUP_DONE) >= MAX_IN_FLIGHT) {
      this.flush();
      this.waitUntil(this.submitted - MAX_IN_FLIGHT + 1);
    }
    this.throwIfFailed();
    const worker = this.pool!.workerFor(job.path);
    const batch = this.batches[worker];
    batch.push(job);
    this.submitted++;
    poolStats.jobs++;
    if (batch.length >= BATCH) this.flushWorker(worker);
  }

  /** Hands every batched job to its worker (before waiting for input, so none sits idle). */
  flush(): void {
    for (let w = 0; w < this.batches.length; w++) this.flushWorker(w);
  }

  private flushWorker(worker: number): void {
    const batch = this.batches[worker];
    if (batch.length === 0) return;
    this.batches[worker] = [];
    this.pool!.post(worker, batch, this.sab);
  }

  /** Waits for every submitted job; throws the first failure among them. */
  drain(): void {
    this.flush();
    this.waitUntil(this.submitted);
    this.throwIfFailed();
  }

  /** Waits for the jobs (ignoring failures) and lets the pool go; call once, also on error paths. */
  close(): void {
    if (this.released) return;
    try {
      this.flush();
      this.waitUntil(this.submitted);
    } finally {
      this.released = true;
      if (this.pool) releasePool(this.pool);
    }
  }

  private waitUntil(target: number): void {
    let done: number;
    let since = performance.now();
    let last = -1;
    while ((done = Atomics.load(this.counters, GROUP_DONE)) < target) {
      if (done !== last) {
        last = done;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        throw new SkiffError("layer unpack stalled: a file-writing thread stopped answering");
      }
      Atomics.wait(this.counters, GROUP_DONE, done, 1000);
    }
  }

  private throwIfFailed(): void {
    if (Atomics.load(this.counters, GROUP_FAILED) === 0) return;
    const len = Atomics.load(this.counters, GROUP_ERROR_LEN);
    // decode from a copy: TextDecoder refuses views of shared memory
    const text = new TextDecoder().decode(new Uint8Array(this.sab, GROUP_ERROR_BYTES, len).slice());
    throw new SkiffError(text || "failed to unpack a layer entry");
  }
}
