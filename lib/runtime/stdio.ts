// Copying a container's stdio through skiff, as docker's attach does: the container gets pipes of
// its own, never the caller's files or terminal. Bytes pass unchanged.

import type { JsonLogWriter, LogStream } from "./logs.ts";

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
  source: ReadableStream<Uint8Array>,
  caller: typeof Deno.stdout | typeof Deno.stderr,
  log?: { writer: JsonLogWriter; stream: LogStream },
): OutputCopy {
  const copy: OutputCopy = { done: Promise.resolve(), writing: false, lastActivity: Date.now() };
  copy.done = (async () => {
    const reader = source.getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        copy.lastActivity = Date.now();
        log?.writer.write(log.stream, value);
        copy.writing = true;
        try {
          for (let written = 0; written < value.length;) {
            written += await caller.write(value.subarray(written));
          }
        } catch {
          await reader.cancel().catch(() => {});
          return;
        } finally {
          copy.writing = false;
          copy.lastActivity = Date.now();
        }
      }
    } catch { /* the pipe broke: nothing more to copy */ }
  })();
  return copy;
}

/**
 * Copies skiff's stdin into the child's until stdin ends, then closes it: the container reads EOF.
 * Stops quietly when the child no longer reads.
 */
export async function feedInput(writer: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
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
