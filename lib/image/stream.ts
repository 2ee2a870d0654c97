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
 * when `hashRaw` is set. gunzip runs in a `gzip -dc` child when there is one: on another CPU, in
 * parallel with unpacking, as GNU tar does it. Otherwise DecompressionStream on this thread.
 */
export async function openDecompressed(
  source: ByteSource,
  options: { hashRaw?: boolean } = {},
): Promise<DecompressedSource> {
  const rawHash = options.hashRaw ? new Sha256() : undefined;
  if ("path" in source && !rawHash) {
    const compression = sniff(fileHead(source.path));
    if (compression === "none") return { plain: fileChunks(source.path), compression };
    const child = spawnGunzip(["-dc", "--", source.path], "null");
    if (child) return { plain: gunzipChild(child), compression };
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
  const child = spawnGunzip(["-dc"], "piped");
  if (child) {
    // feed the child in the background; a write error means gzip died, which its status reports
    const writer = child.stdin.getWriter();
    const feeding = (async () => {
      try {
        for await (const chunk of raw()) await writer.write(chunk as Uint8Array<ArrayBuffer>);
        await writer.close();
      } catch {
        await writer.abort().catch(() => {});
      }
    })();
    return { plain: gunzipChild(child, feeding), rawHash, compression };
  }
  const stream = ReadableStream.from(raw() as AsyncIterable<Uint8Array<ArrayBuffer>>);
  const plain = gunzipErrors(stream.pipeThrough(new DecompressionStream("gzip")));
  return { plain, rawHash, compression };
}

function spawnGunzip(args: string[], stdin: "null" | "piped"): Deno.ChildProcess | undefined {
  try {
    return new Deno.Command("gzip", { args, stdin, stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined; // no gzip binary: decompress in-process
    throw e;
  }
}

/** Reads a gzip child's output in 1 MiB chunks; its failure becomes a SkiffError. */
async function* gunzipChild(child: Deno.ChildProcess, feeding?: Promise<void>): AsyncGenerator<Uint8Array> {
  const reader = child.stdout.getReader({ mode: "byob" });
  let done = false;
  try {
    while (true) {
      const r = await reader.read(new Uint8Array(CHUNK), { min: CHUNK });
      if (r.value?.length) yield r.value;
      if (r.done) break;
    }
    await feeding;
    const status = await child.status;
    // exit 2 is a warning (e.g. "trailing garbage ignored"): the data itself was fine
    if (status.code !== 0 && status.code !== 2) {
      const message = (await new Response(child.stderr).text()).trim().split("\n")[0].replace(/^gzip: /, "");
      throw new SkiffError(`invalid gzip data: ${message || `gzip exited ${status.code}`}`);
    }
    done = true;
  } finally {
    if (!done) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await reader.cancel().catch(() => {});
      await child.status;
    }
    if (done) await child.stderr.cancel().catch(() => {});
    reader.releaseLock();
  }
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
