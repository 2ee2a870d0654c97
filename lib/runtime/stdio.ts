// Copying a container's stdio through skiff, as docker's attach does: the container gets pipes of
// its own, never the caller's files or terminal. Bytes pass unchanged.

import { close, readAsync, setNonBlocking, writeSome } from "../../ffi/libc.ts";
import { poller } from "./poller.ts";
import type { JsonLogWriter, LogStream } from "./logs.ts";

/** A byte sink: the caller's stdout/stderr, or any stream (a later API frames it docker's way). */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<number>;
}

/** A byte source: the caller's stdin, or any stream. */
export interface ByteSource {
  read(buf: Uint8Array): Promise<number | null>;
}

/**
 * Where a container's stdio goes. `terminal`: the caller's stdin is a terminal that follows the
 * container's pty (raw mode, window size): the CLI's adapter.
 */
export interface ContainerIO {
  stdin: ByteSource;
  stdout: ByteSink;
  stderr: ByteSink;
  terminal: boolean;
}

/** A copy of one output pipe under way. */
export interface OutputCopy {
  done: Promise<void>;
  /** A write to the caller is under way (a slow reader of ours is not an idle pipe). */
  writing: boolean;
  /** When bytes last moved (ms since the epoch). */
  lastActivity: number;
}

/**
 * Copies a child's output pipe to the caller's matching stream (and into the json log). When the
 * caller's end is closed (`| head`), the pipe is closed too: the container's next write fails with
 * EPIPE, as with docker's attach.
 */
export function copyOutput(
  source: PipeSource,
  caller: ByteSink,
  log?: { writer: JsonLogWriter; stream: LogStream },
): OutputCopy {
  const copy: OutputCopy = { done: Promise.resolve(), writing: false, lastActivity: Date.now() };
  copy.done = (async () => {
    try {
      while (true) {
        // a buffer of its own each time: the log may keep the chunk
        const buf = new Uint8Array(64 * 1024);
        const n = await source.read(buf);
        if (n === null) return;
        const value = buf.subarray(0, n);
        copy.lastActivity = Date.now();
        log?.writer.write(log.stream, value);
        copy.writing = true;
        try {
          for (let written = 0; written < value.length;) {
            written += await caller.write(value.subarray(written));
          }
        } catch {
          source.close();
          return;
        } finally {
          copy.writing = false;
          copy.lastActivity = Date.now();
        }
      }
    } catch { /* the pipe broke: nothing more to copy */ }
    source.close();
  })();
  return copy;
}

/**
 * Copies skiff's stdin into the child's until stdin ends, then closes it: the container reads EOF.
 * Stops quietly when the child no longer reads.
 */
export async function feedInput(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  input: ByteSource = Deno.stdin,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await input.read(buf);
      if (n === null) break;
      await writer.write(buf.slice(0, n));
    }
  } catch { /* stdin closed, or the container's end is gone */ }
  await writer.close().catch(() => {});
}

/**
 * After the process exited: what it wrote last is still in the pipes. Waits until they end, unless
 * one goes idle for `idleMs` with nothing being written (an exec'd command's background child may
 * hold it open for good).
 */
export async function drainAfterExit(copies: OutputCopy[], idleMs = 500): Promise<void> {
  const exited = Date.now();
  let finished = false;
  const all = Promise.all(copies.map((c) => c.done)).then(() => finished = true);
  await Promise.race([all, Promise.resolve()]); // usually they ended with the process: no timer then
  while (!finished) {
    await Promise.race([all, sleep(50)]);
    const idle = copies.every((c) => !c.writing && Date.now() - Math.max(c.lastActivity, exited) > idleMs);
    if (!finished && idle) return;
  }
}

/**
 * A pause on AbortSignal.timeout: a process's first setTimeout costs ~6 ms of wall time here (Deno
 * 2.9), this 3; exec and run are hot paths.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => AbortSignal.timeout(ms).addEventListener("abort", () => resolve()));
}

/** A pipe's read end: reads until its end, then closes it. */
export interface PipeSource {
  /** null: the pipe ended (or broke); it is closed then. */
  read(buf: Uint8Array<ArrayBuffer>): Promise<number | null>;
  /** Closes it now, or once the read under way returns (its fd number must not be reused under it). */
  close(): void;
}

/**
 * A pipe's read end, read on Deno's blocking pool. Not a ReadableStream: the first stream a process
 * makes costs ~2.3 ms (Deno 2.9 sets its streams up then), on the path of every `run`.
 */
export function fdSource(fd: number): PipeSource {
  let open = true, reading = false, closeAfterRead = false;
  const end = () => {
    if (reading) closeAfterRead = true;
    else if (open) {
      open = false;
      close(fd);
    }
  };
  return {
    async read(buf) {
      if (!open || closeAfterRead) {
        end();
        return null;
      }
      reading = true;
      let n: number;
      try {
        n = await readAsync(fd, buf);
      } finally {
        reading = false;
      }
      if (n > 0 && !closeAfterRead) return n;
      end();
      return null;
    },
    close: end,
  };
}

/**
 * A pipe's write end as a stream (closed when the stream is closed or aborted). Non-blocking, waited
 * on through the one poller: a container that does not read its stdin holds no thread of Deno's
 * blocking pool (a supervisor has many).
 */
export function fdWritable(fd: number): WritableStream<Uint8Array> {
  let open = true;
  const done = () => {
    if (open) close(fd);
    open = false;
  };
  setNonBlocking(fd);
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      const bytes = chunk.slice() as Uint8Array<ArrayBuffer>;
      for (let at = 0; at < bytes.length;) {
        let n: number;
        try {
          n = writeSome(fd, bytes.subarray(at));
        } catch {
          throw new Error("the container's stdin is closed"); // EPIPE: its reader is gone
        }
        if (n < 0) await poller.writable(fd);
        else at += n;
      }
    },
    close: done,
    abort: done,
  });
}
