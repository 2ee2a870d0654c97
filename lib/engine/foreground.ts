// A foreground `skiff run` handed to the state root's supervisor when one is up (monitor.ts
// serveForegroundRun, attach.ts serveForeground): the supervisor has its modules loaded and
// compiled, so the container starts without this process loading the engine (~11 ms of a run's
// ~40 here) or forking PID 1 itself. The caller gets what its own run would give it: the
// container's stdout and stderr as they come, SIGINT/SIGTERM/... passed on (--sig-proxy), the exit
// code once the run is recorded (or removed with --rm), and the container killed when this process
// dies before it ends (as PID 1's parent-death signal does for a run of its own), unless it has a
// restart policy (then it is the supervisor's, as docker's daemon keeps it). Only runs without a
// terminal or stdin, --cidfile or a pull come here (run.ts servedBySupervisor); one with a restart
// policy starts a supervisor when none is up, so that the policy is honoured.

import { SkiffError } from "../errors.ts";
import type { ByteSink } from "../runtime/stdio.ts";
import { PROXIED_SIGNALS, SIGNAL_NUMBERS } from "../runtime/signals.ts";
import type { ForegroundOutcome } from "./attach.ts";
import { FrameDecoder, STREAM_OUTCOME, STREAM_STDERR } from "./attach_stream.ts";
import type { RunRequest } from "./create_run.ts";
import type { RunOutcome } from "./process.ts";
import type { StateRoot } from "../state/root.ts";
import { spawnSupervisor, supervisorSocket } from "./detach.ts";

/**
 * The state root's supervisor, started when none listens (run -d's way: racing starters converge on
 * one); undefined when none could be reached (the caller runs the container itself).
 */
export async function startSupervisor(root: StateRoot): Promise<Deno.UnixConn | undefined> {
  const deadline = Date.now() + 20_000;
  let supervisor: { exited: () => boolean } | undefined;
  for (let delay = 2; Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
    try {
      return await Deno.connect({ transport: "unix", path: supervisorSocket(root) });
    } catch { /* not (yet) listening */ }
    if (!supervisor || supervisor.exited()) supervisor = spawnSupervisor(root);
    await new Promise((r) => setTimeout(r, delay));
  }
  return undefined;
}

/** The supervisor's first line: the request is taken (monitor.ts serveForegroundRun). */
const ACCEPTED = JSON.stringify({ accepted: true });

export interface ForegroundIO {
  stdout: ByteSink;
  stderr: ByteSink;
  /** docker's --sig-proxy (default true). */
  signalProxy: boolean;
}

/**
 * Runs `request` through the supervisor on `conn` (always closed here). undefined: the supervisor
 * made nothing (it was exiting, or the image is not here: the caller pulls it and runs the
 * container itself).
 * Refusals before the container exists throw as the CLI's own would; a start that failed comes
 * back as a RunOutcome with its error, as the run's own.
 */
export async function runThroughSupervisor(
  root: StateRoot,
  conn: Deno.UnixConn,
  request: RunRequest,
  io: ForegroundIO,
): Promise<RunOutcome | undefined> {
  const forward = (signal: Deno.Signal) => () => {
    conn.write(new Uint8Array([SIGNAL_NUMBERS[signal]!])).catch(() => {});
  };
  const listeners = io.signalProxy ? PROXIED_SIGNALS.map((s) => [s, forward(s)] as const) : [];
  try {
    await writeAll(
      conn,
      new TextEncoder().encode(JSON.stringify({ op: "foreground", run: request }) + "\n"),
    );
    const buf = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array(0);
    const line = async (): Promise<string | undefined> => {
      while (!pending.includes(10)) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return undefined;
        pending = concat(pending, buf.subarray(0, n));
      }
      const end = pending.indexOf(10);
      const text = new TextDecoder().decode(pending.subarray(0, end));
      pending = pending.slice(end + 1);
      return text;
    };
    // no "accepted": the supervisor never read the request (it was exiting), or refused the op (an
    // older skiff's): nothing was made
    if (await line() !== ACCEPTED) return undefined;
    const replyLine = await line();
    if (replyLine === undefined) {
      throw new SkiffError(
        "the skiff supervisor went away before the container started (see <root>/supervisor.log)",
      );
    }
    const reply = JSON.parse(replyLine) as
      | { ok: true; pid: number; id?: string }
      | { ok: false; error: string; exitCode: number; phase?: string; imageMissing?: boolean };
    if (!reply.ok) {
      if (reply.imageMissing) return undefined;
      // not made (bad input, a name in use): the line and code of the CLI's own refusal
      if (reply.phase === "create") throw new SkiffError(reply.error, reply.exitCode);
      return { exitCode: reply.exitCode, error: reply.error, daemonError: reply.phase === "setup" };
    }
    for (const [s, fn] of listeners) Deno.addSignalListener(s, fn);
    const frames = new FrameDecoder(true);
    const open = { stdout: true, stderr: true };
    let outcome: ForegroundOutcome | undefined;
    let data = pending;
    while (true) {
      for (const f of frames.push(data)) {
        if (f.stream === STREAM_OUTCOME) {
          outcome = JSON.parse(new TextDecoder().decode(f.payload)) as ForegroundOutcome;
          continue;
        }
        // a caller's stream that closed (`| head -1`) takes no more; the rest is still read
        const which = f.stream === STREAM_STDERR ? "stderr" : "stdout";
        if (open[which]) open[which] = await writeAllTo(io[which], f.payload);
      }
      if (outcome) break;
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      data = buf.subarray(0, n);
    }
    if (!outcome || !Number.isInteger(outcome.exitCode)) {
      // its supervisor died (killed): a run of its own would have taken the container down with it,
      // and one left running unattended would run twice if the caller's script tried again
      let killed = "";
      if ((request.container.restartPolicy?.Name ?? "no") === "no" && reply.id) {
        try {
          const { Engine } = await import("./engine.ts");
          await new Engine({ root }).kill(reply.id, "KILL");
          killed = "; its container was killed";
        } catch { /* it ended meanwhile */ }
      }
      throw new SkiffError(
        `the skiff supervisor went away while the container ran${killed} (see <root>/supervisor.log)`,
      );
    }
    if (outcome.error) throw new SkiffError(outcome.error, outcome.exitCode);
    return { exitCode: outcome.exitCode };
  } finally {
    for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(sink: ByteSink, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await sink.write(data.subarray(at));
}

/** false once the caller's end is closed. */
async function writeAllTo(sink: ByteSink, data: Uint8Array): Promise<boolean> {
  try {
    await writeAll(sink, data);
    return true;
  } catch {
    return false;
  }
}
