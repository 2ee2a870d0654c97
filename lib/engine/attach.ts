// The supervisor's side of `attach` and `start -a`: the container's output fanned out to attached
// clients, their input to the container's stdin (its pipe, or its pty with -t), resizes of the pty.
//
// monitor.ts hands every output chunk to the json log and to `AttachableRun.output` (one place:
// its pumps). A client never slows the container or the log down: output is queued per client and
// written on Deno's blocking pool; a client whose queue passes CLIENT_QUEUE_LIMIT (it reads too
// slowly, or not at all) is dropped, its socket shut down. Input goes one chunk at a time, the next
// read from the client only once the container took the last: a container that never reads its
// stdin stalls that client's writes (its socket buffer fills), never the supervisor.
//
// Protocol (after the peer check of monitor.ts): one JSON request line, one JSON reply line, then
// the streams of attach_stream.ts until the container's run ends (the supervisor shuts the socket
// down once the client's queue is written) or the client goes.
//   {"op":"attach","id","stdin","rows"?,"cols"?}          attach to the current run
//   {"op":"start","id","attach":{"stdin","rows"?,"cols"?}} start -a: attached before the start
//   {"op":"resize","id","rows","cols"}                     the caller's terminal changed size

import { kill, readSome, setWinsize, shutdownSocket, writeAsync, writeSome } from "../../ffi/libc.ts";
import { poller } from "../runtime/poller.ts";
import type { ContainerRecord } from "../state/types.ts";
import type { LogStream } from "../runtime/logs.ts";
import type { PtyMaster } from "../runtime/pty.ts";
import type { InitStage } from "../runtime/stage.ts";
import { fdWritable } from "../runtime/stdio.ts";
import type { StartReply } from "./detach.ts";
import { encodeFrame, STREAM_OUTCOME, STREAM_STDERR, STREAM_STDOUT } from "./attach_stream.ts";

/** Output queued for one client before it counts as gone (docker's attach buffers are similar). */
export const CLIENT_QUEUE_LIMIT = 1 << 20;
const INPUT_CHUNK = 32 * 1024;

export interface AttachRequest {
  op: "attach" | "start" | "resize";
  id: string;
  stdin?: boolean;
  rows?: number;
  cols?: number;
  attach?: { stdin?: boolean; rows?: number; cols?: number };
}

/** The reply line of an attach or start -a. */
export type AttachReply =
  | { ok: true; tty: boolean; pid: number }
  | { ok: false; error: string; exitCode: number; phase?: "start" | "setup" };

/** The container's side of one run, as the attached clients see it. */
interface RunPorts {
  /** The container's PID 1 on the host: the run the client is attached to. */
  pid: number;
  tty: boolean;
  /** StdinOnce: the end of an attached stdin closes the container's (docker's CloseStdin). */
  closeStdinAtEnd: boolean;
  /** Writes to the container's stdin; false once it cannot take more (it is gone). */
  input?: (chunk: Uint8Array<ArrayBuffer>) => Promise<boolean>;
  closeInput?: () => void;
  resize?: (rows: number, cols: number) => void;
  /** Sends signal `signo` to PID 1 while the run lasts (a foreground client's signal proxy). */
  signal: (signo: number) => void;
}

class Client {
  private queue: Uint8Array<ArrayBuffer>[] = [];
  private queued = 0;
  private wake?: () => void;
  /** Writes begin once the reply line is out. */
  private streaming = false;
  private ending = false;
  gone = false;
  /** A run fed it (false: nothing of this supervisor ever will, e.g. a foreground run's container). */
  bound = false;
  /** The output pumps (stdout's, stderr's) waiting for this client's queue to shrink (a foreground client). */
  private drained: (() => void)[] = [];

  /**
   * `foreground`: a foreground run's caller (serveForeground), which must get every byte as its
   * own skiff run would: never dropped for being slow, the run's output waits for it instead; and
   * its socket stays open at the end for the outcome frame.
   */
  constructor(readonly fd: number, readonly stdin: boolean, readonly foreground = false) {}

  push(frame: Uint8Array<ArrayBuffer>): void {
    if (this.gone || this.ending) return;
    if (!this.foreground && this.queued + frame.length > CLIENT_QUEUE_LIMIT) return this.drop();
    this.queue.push(frame);
    this.queued += frame.length;
    this.wake?.();
  }

  /** For a foreground client over its limit: resolves once its queue is below it (or it is gone). */
  room(): Promise<void> | undefined {
    if (!this.foreground || this.gone || this.queued <= CLIENT_QUEUE_LIMIT) return undefined;
    return new Promise((r) => this.drained.push(r));
  }

  private wakePumps(): void {
    for (const resume of this.drained.splice(0)) resume();
  }

  /** Shuts the socket down now: the pending read and write on the blocking pool return. */
  drop(): void {
    if (this.gone) return;
    this.gone = true;
    this.queue = [];
    this.queued = 0;
    shutdownSocket(this.fd);
    this.wake?.();
    this.wakePumps();
  }

  /** The run ended: what is queued still goes, then the socket is shut down. */
  end(): void {
    this.ending = true;
    this.wake?.();
  }

  startStreaming(): void {
    this.streaming = true;
    this.wake?.();
  }

  async writeLoop(): Promise<void> {
    while (!this.gone) {
      if (!this.streaming || this.queue.length === 0) {
        if (this.streaming && this.ending) break;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      const frame = this.queue.shift()!;
      this.queued -= frame.length;
      if (this.queued <= CLIENT_QUEUE_LIMIT) this.wakePumps();
      if (!await sendAll(this.fd, frame)) return this.drop();
    }
    // a foreground client's socket carries the outcome after the output (serveForeground)
    if (!this.foreground || this.gone) this.drop();
  }
}

/**
 * A client's socket (made non-blocking by monitor.ts serve) is read and written through the
 * supervisor's one poller: a blocking call waiting on a client would hold one of Deno's 32 pool
 * threads, and 32 foreground runs, attaches or idle connections at once would stall every other
 * request and cgroup write of the supervisor.
 */
export async function sendAll(fd: number, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  for (let at = 0; at < data.length;) {
    let n: number;
    try {
      n = writeSome(fd, data.subarray(at));
    } catch {
      return false; // EPIPE: the client is gone
    }
    if (n < 0) await poller.writable(fd);
    else at += n;
  }
  return true;
}

/** The bytes a client sent (0: its end, or an error). */
export async function receive(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  while (true) {
    let n: number;
    try {
      n = readSome(fd, buf);
    } catch {
      return 0;
    }
    if (n >= 0) return n;
    await poller.readable(fd);
  }
}

async function writeAllAsync(fd: number, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  for (let at = 0; at < data.length;) {
    const n = await writeAsync(fd, data.subarray(at));
    if (n <= 0) return false;
    at += n;
  }
  return true;
}

/** The clients of one container, across its runs (a start -a client waits here for the run). */
class Hub {
  clients = new Set<Client>();
  run?: RunPorts;
  /** The size a start -a client asked for, applied when the run begins. */
  size?: { rows: number; cols: number };
  /**
   * Whether its last run had a terminal, kept after the run: a start -a reply formed once a quick
   * container is already gone must still say -t, or the client reads the raw bytes as frames.
   */
  tty?: boolean;

  /** Queues the chunk for every client; a promise when a foreground client must catch up first. */
  output(stream: LogStream, chunk: Uint8Array): Promise<unknown> | undefined {
    if (this.clients.size === 0 || !this.run) return;
    const frame = this.run.tty ? new Uint8Array(chunk) : encodeFrame(
      stream === "stderr" ? STREAM_STDERR : STREAM_STDOUT,
      chunk,
    );
    let waits: Promise<void>[] | undefined;
    for (const c of this.clients) {
      c.push(frame);
      const room = c.room();
      if (room) (waits ??= []).push(room);
    }
    return waits && Promise.all(waits);
  }
}

const hubs = new Map<string, Hub>();
const hubOf = (id: string) => hubs.get(id) ?? hubs.set(id, new Hub()).get(id)!;

/** What monitor.ts keeps of a run: where output chunks go, and the end of the run. */
export interface AttachableRun {
  /** A promise: the pump waits for it before its next chunk (a foreground client is behind). */
  output(stream: LogStream, chunk: Uint8Array): Promise<unknown> | undefined;
  /** The run is over and its output drained: clients get the rest and are let go. */
  end(): Promise<void>;
}

/** What of a run attach needs: its PID 1, its stdin pipe (run -i without -t), its pty (-t). */
export interface RunHandles {
  pid: number;
  stdin?: WritableStream<Uint8Array>;
  /** The stdin pipe's write end as a raw fd (taken back from the holder by a new supervisor). */
  stdinFd?: number;
  pty?: PtyMaster;
  /** Called when the container's stdin is closed: the holder's copy must go too. */
  onStdinClosed?: () => void;
}

/** The handles of a run the supervisor started from `stage`. */
export const stageHandles = (stage: InitStage, pty?: PtyMaster): RunHandles => ({
  pid: stage.child.pid,
  stdin: stage.inputPiped ? stage.child.stdin : undefined,
  pty,
});

/**
 * Opens a run of `record` to attach clients: its stdin pipe or its pty. Call before the output
 * pumps start, so that a start -a client sees everything.
 */
export function attachableRun(record: ContainerRecord, run: RunHandles): AttachableRun {
  const { pty } = run;
  const hub = hubOf(record.Id);
  let inFlight: Promise<unknown> = Promise.resolve();
  let ended = false;
  const ports: RunPorts = {
    pid: run.pid,
    tty: record.Config.Tty,
    closeStdinAtEnd: record.Config.StdinOnce && !record.Config.Tty,
    // until the end of the run: its PID 1 is this supervisor's child, not reaped before the end
    signal: (signo) => {
      if (ended) return;
      try {
        kill(run.pid, signo);
      } catch { /* exiting */ }
    },
  };
  if (pty) {
    if (record.Config.OpenStdin) {
      ports.input = (chunk) => {
        if (ended) return Promise.resolve(false);
        const write = writeAllAsync(pty.fd, chunk); // fails (EIO) once the container's side is gone
        inFlight = write;
        return write;
      };
    }
    ports.resize = (rows, cols) => {
      if (!ended && rows > 0 && cols > 0) setWinsize(pty.fd, rows, cols);
    };
  } else if (run.stdin || run.stdinFd !== undefined) {
    const writer = (run.stdin ?? fdWritable(run.stdinFd!)).getWriter();
    ports.input = (chunk) => writer.write(chunk).then(() => true, () => false);
    ports.closeInput = () => {
      void writer.close().catch(() => {});
      run.onStdinClosed?.();
    };
  }
  hub.run = ports;
  hub.tty = ports.tty;
  for (const c of hub.clients) c.bound = true;
  if (hub.size) ports.resize?.(hub.size.rows, hub.size.cols);
  return {
    output: (stream, chunk) => hub.output(stream, chunk),
    end: async () => {
      ended = true;
      ports.closeInput?.(); // the run's stdin pipe goes with it (Deno keeps the resource otherwise)
      if (hub.run === ports) hub.run = undefined;
      for (const c of hub.clients) c.end();
      hub.clients.clear();
      hub.size = undefined;
      if (hubs.get(record.Id) === hub) hubs.delete(record.Id);
      // a write to the pty still queued on the blocking pool must not meet a reused fd number
      await Promise.race([inFlight, new Promise((r) => setTimeout(r, 1000))]);
    },
  };
}

/** Reads the client's input into the container until the client ends it or goes. */
async function readLoop(hub: Hub, client: Client): Promise<void> {
  const buf = new Uint8Array(INPUT_CHUNK);
  let run: RunPorts | undefined;
  while (!client.gone) {
    const n = await receive(client.fd, buf);
    if (n <= 0) break;
    run = hub.run;
    if (!client.stdin || !run?.input) continue; // not attached to stdin: only watch for the end
    if (!await run.input(buf.slice(0, n))) continue;
  }
  if (client.gone) return;
  run = hub.run;
  // docker: the end of an attached stdin closes the container's (StdinOnce, no tty), else it ends
  // this attach's output; a client without stdin that closes is gone
  if (client.stdin && run?.closeStdinAtEnd) run.closeInput?.();
  else client.end();
}

async function writeLine(fd: number, value: unknown): Promise<boolean> {
  return await sendAll(fd, new TextEncoder().encode(JSON.stringify(value) + "\n"));
}

/**
 * Serves an attach, start -a or resize connection after its request line; resolves once the
 * client is done. `start` starts the container (monitor.ts's start for this supervisor).
 */
export async function serveAttach(
  fd: number,
  request: AttachRequest,
  start: () => Promise<StartReply>,
  isRunning: () => boolean,
): Promise<void> {
  if (request.op === "resize") {
    hubs.get(request.id)?.run?.resize?.(request.rows ?? 0, request.cols ?? 0);
    await writeLine(fd, { ok: true });
    return;
  }
  const options = request.op === "start" ? request.attach ?? {} : request;
  const hub = hubOf(request.id);
  const client = new Client(fd, options.stdin === true);
  let reply: AttachReply;
  if (request.op === "start") {
    if (options.rows && options.cols) hub.size = { rows: options.rows, cols: options.cols };
    hub.clients.add(client);
    if (hub.run) client.bound = true; // already running under this supervisor
    const started = await start();
    if (!started.ok) {
      const phase = started.phase === "setup" ? "setup" : "start"; // setup: the daemon's own words
      reply = { ok: false, error: started.error, exitCode: started.exitCode, phase };
    } else if (!client.bound && (started.pid !== 0 || !isRunning())) {
      reply = notAttachable(isRunning());
    } else reply = { ok: true, tty: hub.run?.tty ?? hub.tty ?? false, pid: hub.run?.pid ?? started.pid };
  } else if (!hub.run) {
    reply = notAttachable(isRunning());
  } else {
    client.bound = true;
    hub.clients.add(client);
    if (options.rows && options.cols) hub.run.resize?.(options.rows, options.cols);
    reply = { ok: true, tty: hub.run.tty, pid: hub.run.pid };
  }
  if (!reply.ok) {
    hub.clients.delete(client);
    if (hub.clients.size === 0 && !hub.run && hubs.get(request.id) === hub) hubs.delete(request.id);
    await writeLine(fd, reply);
    return;
  }
  if (!await writeLine(fd, reply)) client.drop();
  client.startStreaming();
  await Promise.all([client.writeLoop(), readLoop(hub, client)]);
}

/** What the last frame of a foreground run says (STREAM_OUTCOME). */
export interface ForegroundOutcome {
  exitCode: number;
  /** The supervisor failed the run after its start (the CLI's "skiff: ..." line). */
  error?: string;
}

/**
 * A foreground `skiff run` that a warm supervisor runs for its CLI (foreground.ts is the client;
 * the protocol is in attach_stream.ts): attached before the start as start -a, without stdin; each
 * byte from the client is a signal for PID 1 (its --sig-proxy), and the client going away before
 * the end kills the run, as the death of a foreground skiff run kills its container. The reply line
 * is the start's; the last frame, once the run is over and recorded (or removed with --rm), its
 * outcome.
 */
export async function serveForeground(
  fd: number,
  id: string,
  start: () => Promise<StartReply>,
  outcome: Promise<ForegroundOutcome>,
  killOnHangup: boolean,
): Promise<void> {
  const hub = hubOf(id);
  const client = new Client(fd, false, true);
  hub.clients.add(client);
  const started = await start();
  if (!started.ok) {
    hub.clients.delete(client);
    if (hub.clients.size === 0 && !hub.run && hubs.get(id) === hub) hubs.delete(id);
    const phase = started.phase === "setup" ? "setup" : "start";
    await writeLine(fd, { ok: false, error: started.error, exitCode: started.exitCode, phase });
    return;
  }
  if (!await writeLine(fd, { ok: true, tty: false, pid: started.pid, id })) client.drop();
  client.startStreaming();
  let over = false;
  const signals = (async () => {
    const buf = new Uint8Array(64);
    while (true) {
      const n = await receive(fd, buf);
      if (over) return;
      // the caller is gone (killed, or its terminal closed): the run goes with it
      if (n <= 0) return void (killOnHangup && hub.run?.signal(9));
      for (const signo of buf.subarray(0, n)) if (signo > 0 && signo < 65) hub.run?.signal(signo);
    }
  })();
  await client.writeLoop();
  const result = await outcome;
  over = true;
  if (!client.gone) {
    const payload = new TextEncoder().encode(JSON.stringify(result));
    await sendAll(fd, encodeFrame(STREAM_OUTCOME, payload));
  }
  shutdownSocket(fd); // wakes the pending read above (a closed fd would not, and its number is reused)
  await signals;
}

/** A running container that no supervisor serves: a foreground `skiff run`'s, or a dead supervisor's. */
export const NOT_SUPERVISED =
  "cannot attach: the container is not run by the skiff supervisor (a foreground `skiff run` owns its output)";

function notAttachable(running: boolean): AttachReply {
  return running
    ? {
      ok: false,
      error: NOT_SUPERVISED,
      exitCode: 1,
    }
    : { ok: false, error: "You cannot attach to a stopped container, start it first", exitCode: 1 };
}
