// Input plumbing for archives and layers: read a file or stdin in big chunks, sniff the compression,
// hash the raw bytes, gunzip on the way through.

import { SkiffError } from "../errors.ts";
import { Sha256 } from "./digest.ts";

const CHUNK = 1 << 20;

/** Reads a file in 1 MiB chunks (each a fresh buffer: consumers may hold on to them). */
export async function* fileChunks(path: string): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SkiffError(`open ${path}: no such file or directory`);
    if (e instanceof Deno.errors.IsADirectory) throw new SkiffError(`read ${path}: is a directory`);
    throw e;
  }
  try {
    while (true) {
      const buf = new Uint8Array(CHUNK);
      let filled = 0;
      while (filled < CHUNK) {
        const n = await file.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled === 0) return;
      yield filled === CHUNK ? buf : buf.subarray(0, filled);
      if (filled < CHUNK) return;
    }
  } finally {
    file.close();
  }
}

/** Reads stdin to the end. */
export async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  for await (const chunk of Deno.stdin.readable) yield chunk;
}

export type Compression = "gzip" | "none";

export interface DecompressedSource {
  /** The uncompressed bytes. */
  plain: AsyncIterable<Uint8Array>;
  /**
   * "sha256:<hex>" of the uncompressed bytes when the source computes it itself (the gunzip thread
   * does); call once `plain` is exhausted. Otherwise the consumer hashes `plain`.
   */
  plainDigest?: () => string;
  /** Hash and byte count of the raw input (when asked for); final once `plain` is exhausted. */
  rawHash?: Sha256;
  compression: Compression;
}

/** Where bytes come from: a file (gunzipped by a gzip child reading it directly) or a stream. */
export type ByteSource = { path: string } | { stream: AsyncIterable<Uint8Array> };

function sniff(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
    throw new SkiffError("zstd-compressed archives are not supported");
  }
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) {
    throw new SkiffError("bzip2-compressed archives are not supported");
  }
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58) {
    throw new SkiffError("xz-compressed archives are not supported");
  }
  return "none";
}

function fileHead(path: string): Uint8Array {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SkiffError(`open ${path}: no such file or directory`);
    throw e;
  }
  try {
    const head = new Uint8Array(4);
    const n = file.readSync(head) ?? 0;
    if (n === 0) throw new SkiffError("unexpected EOF: the archive is empty");
    return head.subarray(0, n);
  } finally {
    file.close();
  }
}

/**
 * Sniffs gzip by its magic bytes and returns the uncompressed stream, plus a hash of the raw bytes
 * when `hashRaw` is set. A gzip file is gunzipped on a worker thread, in parallel with the unpacking
 * on this one (as GNU tar runs gzip beside itself); a stream is gunzipped on this thread.
 */
export async function openDecompressed(
  source: ByteSource,
  options: { hashRaw?: boolean } = {},
): Promise<DecompressedSource> {
  const rawHash = options.hashRaw ? new Sha256() : undefined;
  if ("path" in source && !rawHash) {
    const compression = sniff(fileHead(source.path));
    if (compression === "none") return { plain: fileChunks(source.path), compression };
    const result: { digest?: string } = {};
    const plainDigest = () => {
      if (!result.digest) throw new Error("the gunzip thread has not finished");
      return result.digest;
    };
    return { plain: gunzipOnWorker(source.path, result), plainDigest, compression };
  }
  const input = "path" in source ? fileChunks(source.path) : source.stream;
  const it = input[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) throw new SkiffError("unexpected EOF: the archive is empty");
  const head = first.value;
  const compression = sniff(head);
  async function* raw(): AsyncGenerator<Uint8Array> {
    rawHash?.update(head);
    yield head;
    while (true) {
      const r = await it.next();
      if (r.done) return;
      rawHash?.update(r.value);
      yield r.value;
    }
  }
  if (compression === "none") return { plain: raw(), rawHash, compression };
  const stream = ReadableStream.from(raw() as AsyncIterable<Uint8Array<ArrayBuffer>>);
  const plain = gunzipErrors(stream.pipeThrough(new DecompressionStream("gzip")));
  return { plain, rawHash, compression };
}

// The gunzip thread, inline so that a `deno compile`d binary needs no extra file. It reads the file,
// gunzips it, hashes the output (the diffID: ~20% of an unpack's CPU, taken off the main thread) and
// transfers each chunk to the main thread, never more than CREDITS chunks ahead so a slow consumer
// cannot make it buffer the whole layer.
const GUNZIP_WORKER = `
import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.postMessage({ type: "ready" });
let reader, credits = 0, pumping = false, done = false;
async function pump() {
  if (pumping) return;
  pumping = true;
  try {
    while (credits > 0 && !done) {
      credits--;
      const r = await reader.read();
      if (r.done) {
        done = true;
        self.postMessage({ type: "end", digest: "sha256:" + hash.digest("hex") });
        break;
      }
      const v = r.value;
      hash.update(v);
      self.postMessage({ type: "chunk", buffer: v.buffer, offset: v.byteOffset, length: v.byteLength }, [v.buffer]);
    }
  } catch (e) {
    done = true;
    self.postMessage({ type: "error", message: e && e.message ? e.message : String(e) });
  } finally {
    pumping = false;
  }
}
self.onmessage = async (e) => {
  const m = e.data;
  if (m.type === "start") {
    try {
      // 1 MiB reads: the gunzip then yields few big chunks (file.readable's 64 KiB makes 16x more)
      const file = await Deno.open(m.path);
      const input = new ReadableStream({
        async pull(controller) {
          const buf = new Uint8Array(1 << 20);
          let filled = 0;
          while (filled < buf.length) {
            const n = await file.read(buf.subarray(filled));
            if (n === null) break;
            filled += n;
          }
          if (filled > 0) controller.enqueue(buf.subarray(0, filled));
          if (filled < buf.length) {
            file.close();
            controller.close();
          }
        },
      });
      reader = input.pipeThrough(new DecompressionStream("gzip")).getReader();
    } catch (err) {
      done = true;
      self.postMessage({ type: "error", message: err && err.message ? err.message : String(err) });
      return;
    }
  }
  credits += m.credits;
  pump();
};
`;
const CREDITS = 4;

type WorkerMessage =
  | { type: "ready" }
  | { type: "chunk"; buffer: ArrayBuffer; offset: number; length: number }
  | { type: "end"; digest: string }
  | { type: "error"; message: string };

/**
 * Gunzips a file on a worker thread; yields its output in order and leaves the sha256 of the output
 * in `result.digest`. If the thread cannot start at all, gunzips on this thread instead.
 */
async function* gunzipOnWorker(path: string, result: { digest?: string }): AsyncGenerator<Uint8Array> {
  let worker: Worker;
  try {
    const url = URL.createObjectURL(new Blob([GUNZIP_WORKER], { type: "application/javascript" }));
    worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
  } catch {
    yield* gunzipHere(path, result);
    return;
  }
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let ready = false;
  const deliver = (m: WorkerMessage) => {
    queue.push(m);
    wake?.();
    wake = undefined;
  };
  worker.onmessage = (e: MessageEvent<WorkerMessage>) => deliver(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    deliver({ type: "error", message: e.message });
  };
  worker.postMessage({ type: "start", path, credits: CREDITS });
  try {
    while (true) {
      if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const m = queue.shift()!;
      if (m.type === "ready") {
        ready = true;
        continue;
      }
      if (m.type === "end") {
        result.digest = m.digest;
        return;
      }
      if (m.type === "error") {
        if (!ready) break; // the thread never started (e.g. no node:crypto there): fall back below
        throw new SkiffError(`invalid gzip data: ${m.message}`);
      }
      yield new Uint8Array(m.buffer, m.offset, m.length);
      // the consumer is done with the chunk: ask for another, and hand the buffer back so it dies
      // in the worker's heap (each isolate keeps up to ~64 MB of dead buffers before collecting)
      worker.postMessage({ type: "credit", credits: 1, buffer: m.buffer }, [m.buffer]);
    }
  } finally {
    worker.terminate();
  }
  yield* gunzipHere(path, result);
}

/** The same on this thread. */
async function* gunzipHere(path: string, result: { digest?: string }): AsyncGenerator<Uint8Array> {
  const hash = new Sha256();
  const stream = ReadableStream.from(fileChunks(path)).pipeThrough(new DecompressionStream("gzip"));
  for await (const chunk of gunzipErrors(stream)) {
    hash.update(chunk);
    yield chunk;
  }
  result.digest = hash.digest();
}

async function* gunzipErrors(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    while (true) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (e instanceof SkiffError) throw e;
        throw new SkiffError(`invalid gzip data: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // the consumer stopped early (a bad entry): stop reading the input too
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
