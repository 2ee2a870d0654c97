// The client of an attach (attach.ts has the supervisor's side and the protocol): connects to the
// supervisor, asks to attach to (or to start and attach to) a container, then copies the
// container's output to the caller's streams and the caller's input to the container, as byte
// streams (runtime/stdio.ts ContainerIO). The terminal (raw mode, window size, detach keys) is the
// caller's business: the CLI's adapter is lib/cli/attach.ts.

import { SkiffError } from "../errors.ts";
import type { StateRoot } from "../state/root.ts";
import type { ByteSink, ContainerIO } from "../runtime/stdio.ts";
import type { AttachReply, AttachRequest } from "./attach.ts";
import { FrameDecoder, STREAM_STDERR } from "./attach_stream.ts";
import { spawnSupervisor, supervisorSocket } from "./detach.ts";

export interface AttachOptions {
  /** start -a: the supervisor starts the container; this client is attached before it runs. */
  start?: boolean;
  /** Attach the caller's stdin (the container must have been made with -i). */
  stdin: boolean;
  /** The caller's terminal size, for a -t container. */
  size?: { rows: number; cols: number };
}

export interface AttachSession {
  /** The container has a pty: its output is one raw stream. */
  tty: boolean;
  /** The host pid of the run attached to (0: not known). */
  pid: number;
  /** Resolves once the stream ends: the run ended (or let this client go), or the caller detached. */
  done: Promise<"ended" | "detached">;
  /** Leaves the container running and ends the session. */
  detach(): void;
  /** The caller's terminal changed size (a -t container's pty follows it). */
  resize(rows: number, cols: number): Promise<void>;
}

/** A refusal of the supervisor; `phase` "start": the container could not be started ("setup": refused in the daemon's own words). */
export class AttachRefusedError extends SkiffError {
  constructor(message: string, exitCode: number, readonly phase?: "start" | "setup") {
    super(message, exitCode);
  }
}

const CONNECT_DEADLINE_MS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends the request line; returns the connection, the reply and any stream bytes after it. */
async function request(path: string, line: string) {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await writeAll(conn, new TextEncoder().encode(line + "\n"));
    let data = new Uint8Array(0);
    const buf = new Uint8Array(4096);
    while (!data.includes(10)) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) {
        conn.close();
        return undefined; // a supervisor on its way out: ask again
      }
      const more = new Uint8Array(data.length + n);
      more.set(data);
      more.set(buf.subarray(0, n), data.length);
      data = more;
    }
    const end = data.indexOf(10);
    const reply = JSON.parse(new TextDecoder().decode(data.subarray(0, end))) as AttachReply;
    return { conn, reply, rest: data.slice(end + 1) };
  } catch (e) {
    try {
      conn.close();
    } catch { /* closed */ }
    throw e;
  }
}

/**
 * Asks the supervisor. `spawn`: start one when none listens (start -a); else nobody listening
 * means no supervisor owns the container (`notOwned` says what to answer).
 */
async function ask(root: StateRoot, line: string, spawn: boolean, notOwned: () => Error) {
  const path = supervisorSocket(root);
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  let supervisor: { exited: () => boolean } | undefined;
  for (let delay = 2;; delay = Math.min(delay * 2, 50)) {
    let answer;
    try {
      answer = await request(path, line);
    } catch (e) {
      if (!spawn && (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused)) {
        throw notOwned();
      }
    }
    if (answer) return answer;
    if (Date.now() > deadline) {
      throw new SkiffError("cannot reach the skiff supervisor (see <root>/supervisor.log)");
    }
    if (spawn && (!supervisor || supervisor.exited())) supervisor = spawnSupervisor(root);
    await sleep(delay);
  }
}

async function writeAll(sink: ByteSink, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await sink.write(data.subarray(at));
}

/** Attaches to container `id` (a full id): see AttachOptions. Throws AttachRefusedError. */
export async function openAttach(
  root: StateRoot,
  id: string,
  io: ContainerIO,
  options: AttachOptions,
  notOwned: () => Error,
): Promise<AttachSession> {
  const wanted = { stdin: options.stdin, rows: options.size?.rows, cols: options.size?.cols };
  const line: AttachRequest = options.start
    ? { op: "start", id, attach: wanted }
    : { op: "attach", id, ...wanted };
  const { conn, reply, rest } = await ask(root, JSON.stringify(line), options.start === true, notOwned);
  if (!reply.ok) {
    conn.close();
    throw new AttachRefusedError(reply.error, reply.exitCode, reply.phase);
  }
  const tty = reply.tty;
  let detached = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const frames = tty ? undefined : new FrameDecoder();
  const deliver = async (bytes: Uint8Array) => {
    if (!frames) return await writeAll(io.stdout, bytes);
    for (const f of frames.push(bytes)) {
      await writeAll(f.stream === STREAM_STDERR ? io.stderr : io.stdout, f.payload);
    }
  };
  const output = (async () => {
    try {
      if (rest.length) await deliver(rest);
      const buf = new Uint8Array(64 * 1024);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        await deliver(buf.subarray(0, n));
      }
    } catch { /* the connection or the caller's output closed */ }
    close();
    return detached ? "detached" as const : "ended" as const;
  })();
  if (options.stdin) {
    (async () => {
      const buf = new Uint8Array(32 * 1024);
      try {
        while (!closed) {
          const n = await io.stdin.read(buf);
          if (n === null) break;
          await writeAll(conn, buf.subarray(0, n));
        }
        // the end of the caller's input (docker's CloseWrite): the supervisor decides what it means
        if (!closed) await conn.closeWrite();
      } catch { /* the connection closed */ }
    })();
  }
  return {
    tty,
    pid: reply.pid,
    done: output,
    detach: () => {
      detached = true;
      close();
    },
    resize: async (rows, cols) => {
      try {
        const r = await request(supervisorSocket(root), JSON.stringify({ op: "resize", id, rows, cols }));
        r?.conn.close();
      } catch { /* the supervisor is gone: nothing to resize */ }
    },
  };
}
