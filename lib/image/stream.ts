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
  /** Hash and byte count of the raw input; final once `plain` is exhausted. */
  blobHash: Sha256;
  compression: Compression;
}

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

/** Sniffs gzip by its magic bytes and returns the uncompressed stream plus a hash of the raw one. */
export async function openDecompressed(input: AsyncIterable<Uint8Array>): Promise<DecompressedSource> {
  const blobHash = new Sha256();
  const it = input[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) throw new SkiffError("unexpected EOF: the archive is empty");
  const head = first.value;
  const compression = sniff(head);
  async function* raw(): AsyncGenerator<Uint8Array> {
    blobHash.update(head);
    yield head;
    while (true) {
      const r = await it.next();
      if (r.done) return;
      blobHash.update(r.value);
      yield r.value;
    }
  }
  if (compression === "none") return { plain: raw(), blobHash, compression };
  const source = ReadableStream.from(raw() as AsyncIterable<Uint8Array<ArrayBuffer>>);
  const plain = gunzipErrors(source.pipeThrough(new DecompressionStream("gzip")));
  return { plain, blobHash, compression };
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
