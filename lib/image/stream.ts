// Input plumbing for archives and layers: read a file or stdin in big chunks, sniff the compression,
// hash the raw bytes, gunzip on the way through.

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { SkiffError } from "../errors.ts";
import { Sha256 } from "./digest.ts";

const CHUNK = 1 << 20;
/** Below this, a file is read on the main thread: the worker's start-up (~30 ms) would not pay off. */
const SMALL_FILE = 8 << 20;

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

/**
 * Where bytes come from: a file or stdin (read, gunzipped and hashed on a worker thread) or any
 * other stream (gunzipped and hashed on this thread).
 */
export type ByteSource = { path: string } | { stdin: true } | { stream: AsyncIterable<Uint8Array> };

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
 * when `hashRaw` is set. A file or stdin is read, gunzipped and hashed on a worker thread, in
 * parallel with the unpacking on this one (as GNU tar runs gzip beside itself); other streams are
 * handled on this thread.
 */
export async function openDecompressed(
  source: ByteSource,
  options: { hashRaw?: boolean } = {},
): Promise<DecompressedSource> {
  const rawHash = options.hashRaw ? new Sha256() : undefined;
  if (!("stream" in source) && !rawHash) {
    // a missing file fails here, with its name; a small one is not worth starting a thread for
    const small = "path" in source && (fileHead(source.path), Deno.statSync(source.path).size < SMALL_FILE);
    const threaded = small ? undefined : await readOnWorker(source as { path: string } | { stdin: true });
    if (threaded) return threaded;
  }
  const input = "path" in source
    ? fileChunks(source.path)
    : "stdin" in source
    ? stdinChunks()
    : source.stream;
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
  return { plain: gunzip(raw()), rawHash, compression };
}

// The reader thread, inline so that a `deno compile`d binary needs no extra file. It reads the file
// or stdin in 1 MiB blocks, sniffs the compression, gunzips, hashes the output (the diffID: ~20% of
// an unpack's CPU, taken off the main thread) and transfers each chunk to the main thread, never more
// than CREDITS chunks ahead so a slow consumer cannot make it buffer the whole layer.
const READER_WORKER = `
import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.postMessage({ type: "ready" });
let reader, credits = 0, pumping = false, done = false;
const fail = (kind, e) => {
  done = true;
  self.postMessage({ type: "error", kind, message: e && e.message ? e.message : String(e) });
};
// Read buffers the main thread hands back (a plain tar's chunks) are read into again: fewer dead
// buffers waiting for the GC, less RSS (146 -> 87 MB on bench/unpack.ts's layer, uncompressed).
const free = [], FREE_MAX = 8;
function takeBuffer() {
  return free.pop() ?? new ArrayBuffer(${CHUNK});
}
function blocks(input) {
  return new ReadableStream({
    async pull(controller) {
      const buf = new Uint8Array(takeBuffer());
      let filled = 0;
      while (filled < buf.length) {
        const n = await input.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled > 0) controller.enqueue(buf.subarray(0, filled));
      if (filled < buf.length) controller.close();
    },
  });
}
function sniff(h) {
  if (h[0] === 0x1f && h[1] === 0x8b) return "gzip";
  if (h[0] === 0x28 && h[1] === 0xb5 && h[2] === 0x2f && h[3] === 0xfd) throw new Error("zstd-compressed archives are not supported");
  if (h[0] === 0x42 && h[1] === 0x5a && h[2] === 0x68) throw new Error("bzip2-compressed archives are not supported");
  if (h[0] === 0xfd && h[1] === 0x37 && h[2] === 0x7a && h[3] === 0x58) throw new Error("xz-compressed archives are not supported");
  return "none";
}
async function open(m) {
  const input = m.path ? await Deno.open(m.path) : Deno.stdin;
  const raw = blocks(input).getReader();
  const first = await raw.read();
  if (first.done) throw new Error("unexpected EOF: the archive is empty");
  const compression = sniff(first.value);
  let head = first.value;
  const rest = new ReadableStream({
    async pull(controller) {
      if (head) {
        controller.enqueue(head);
        head = undefined;
        return;
      }
      const r = await raw.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
  });
  self.postMessage({ type: "opened", compression });
  return (compression === "gzip" ? rest.pipeThrough(new DecompressionStream("gzip")) : rest).getReader();
}
async function pump() {
  if (pumping || !reader) return;
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
    fail("data", e);
  } finally {
    pumping = false;
  }
}
self.onmessage = async (e) => {
  const m = e.data;
  credits += m.credits;
  if (m.buffer && m.buffer.byteLength === ${CHUNK} && free.length < FREE_MAX) free.push(m.buffer);
  if (m.type === "start") {
    try {
      reader = await open(m);
    } catch (err) {
      fail("open", err);
      return;
    }
  }
  pump();
};
`;
const CREDITS = 4;

type WorkerMessage =
  | { type: "ready" }
  | { type: "opened"; compression: Compression }
  | { type: "chunk"; buffer: ArrayBuffer; offset: number; length: number }
  | { type: "end"; digest: string }
  | { type: "error"; kind: "open" | "data" | "startup"; message: string };

/**
 * Reads a file or stdin on a worker thread (see READER_WORKER). Returns undefined when the thread
 * cannot start at all, so that the caller does the work on this thread instead.
 */
async function readOnWorker(
  source: { path: string } | { stdin: true },
): Promise<DecompressedSource | undefined> {
  let worker: Worker;
  try {
    const url = URL.createObjectURL(new Blob([READER_WORKER], { type: "application/javascript" }));
    worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
  } catch {
    return undefined;
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
    deliver({ type: "error", kind: ready ? "data" : "startup", message: e.message });
  };
  const next = async (): Promise<WorkerMessage> => {
    if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift()!;
  };
  worker.postMessage({
    type: "start",
    ..."path" in source ? { path: source.path } : { stdin: true },
    credits: CREDITS,
  });
  let opened: WorkerMessage;
  do {
    opened = await next();
    if (opened.type === "ready") ready = true;
  } while (opened.type === "ready");
  if (opened.type === "error") {
    worker.terminate();
    if (opened.kind === "startup") return undefined; // e.g. no node:crypto in a worker: do it here
    throw new SkiffError(opened.message);
  }
  const compression = opened.type === "opened" ? opened.compression : "none";
  let digest: string | undefined;
  async function* plain(): AsyncGenerator<Uint8Array> {
    try {
      while (true) {
        const m = await next();
        if (m.type === "end") {
          digest = m.digest;
          return;
        }
        if (m.type === "error") {
          throw new SkiffError(compression === "gzip" ? `invalid gzip data: ${m.message}` : m.message);
        }
        if (m.type !== "chunk") continue;
        yield new Uint8Array(m.buffer, m.offset, m.length);
        // the consumer is done with the chunk: ask for another, and hand the buffer back so it dies
        // in the worker's heap (each isolate keeps up to ~64 MB of dead buffers before collecting)
        worker.postMessage({ type: "credit", credits: 1, buffer: m.buffer }, [m.buffer]);
      }
    } finally {
      worker.terminate();
    }
  }
  const plainDigest = () => {
    if (!digest) throw new Error("the reader thread has not finished");
    return digest;
  };
  return { plain: plain(), plainDigest, compression };
}

/**
 * node:zlib's gunzip: on the pull bench image's five layers it took 340-360 ms where
 * DecompressionStream took 565-710 ms (same input, same process, two rounds). An error of the
 * input (a digest mismatch, a timeout) comes out as it was; zlib's own as "invalid gzip data".
 */
async function* gunzip(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const unzip = createGunzip({ chunkSize: 64 * 1024 });
  let inputError: unknown;
  const feeding = pipeline(
    Readable.from((async function* () {
      try {
        yield* input;
      } catch (e) {
        inputError = e ?? new Error("input failed");
        throw e;
      }
    })()),
    unzip,
  );
  feeding.catch(() => {}); // seen through the iteration below
  let done = false;
  try {
    for await (const chunk of unzip) yield chunk as Uint8Array;
    await feeding;
    done = true;
  } catch (e) {
    const cause = inputError ?? e;
    if (cause instanceof SkiffError) throw cause;
    throw new SkiffError(`invalid gzip data: ${cause instanceof Error ? cause.message : String(cause)}`);
  } finally {
    // the consumer stopped early (a bad entry): stop reading the input too
    if (!done) unzip.destroy();
  }
}
