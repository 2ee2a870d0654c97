// The client side of the supervisor (monitor.ts): `run -d`, `start` and `restart` ask it to start a
// created or stopped container and get the answer once the container's command runs. Starts the
// supervisor when none answers on <root>/supervisor/sock (several clients may race to do so: the
// supervisor's flock lets one win, the others exit at once).

import { SkiffError } from "../errors.ts";
import type { StateRoot } from "../state/root.ts";
import { selfCommand } from "../runtime/self.ts";
import type { RunRequest } from "./create_run.ts";

/**
 * What the supervisor answers to a start or run request (one JSON line). `phase` "create": the
 * container could not be made (bad input, name conflict: nothing was made); "setup": it was made
 * but refused to start before its process ran (a taken host port, a user not in the image): the
 * error is docker's daemon's own words, no runtime wrapper; `imageMissing`: the image must be pulled
 * first. `id`: the container made by a run request, also when its start failed (docker prints it).
 */
export type StartReply =
  | { ok: true; pid: number; id?: string }
  | {
    ok: false;
    error: string;
    exitCode: number;
    phase?: "create" | "setup";
    imageMissing?: boolean;
    id?: string;
  };

/** Held (flock) by the state root's supervisor for its whole life. */
export const supervisorLock = (root: StateRoot) => `${root.path}/supervisor.lock`;
/** In a directory of its own: the supervisor keeps it private (see monitor.ts). */
export const supervisorSocket = (root: StateRoot) => `${root.path}/supervisor/sock`;
/** Marker in the container's directory: stop, kill or rm asked for the next exit (no restart). */
export const STOP_MARKER = "stop-requested";

const CONNECT_DEADLINE_MS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `warm`: for the foreground runs to come, it stays up a while idle (monitor.ts LINGER_MS). */
export function spawnSupervisor(root: StateRoot, warm = false): { exited: () => boolean } {
  const self = selfCommand(["--root", root.path, "__supervisor", ...(warm ? ["--warm"] : [])]);
  const child = new Deno.Command(self.cmd, {
    args: self.args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true, // its own session: it outlives this command and the caller's terminal
    cwd: "/", // nor does it keep the caller's directory busy (an unmount of it would fail)
  }).spawn();
  let exited = false;
  child.status.then(() => (exited = true));
  child.unref();
  return { exited: () => exited };
}

async function exchange(path: string, request: string): Promise<string | undefined> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(request + "\n"));
    let text = "";
    const buf = new Uint8Array(4096);
    const decoder = new TextDecoder();
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n));
    }
    return text.includes("\n") ? text.slice(0, text.indexOf("\n")) : undefined;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * Has the supervisor start container `id` (created or exited); resolves when its command runs, or
 * with why it could not start (exitCode 125/126/127 as docker gives them).
 */
export function startDetached(root: StateRoot, id: string): Promise<StartReply> {
  return ask(root, JSON.stringify({ op: "start", id }));
}

/** Has the supervisor create a container from a parsed `run -d` and start it (see create_run.ts). */
export function runDetachedRequest(root: StateRoot, run: RunRequest): Promise<StartReply> {
  return ask(root, JSON.stringify({ op: "run", run }));
}

async function ask(root: StateRoot, request: string): Promise<StartReply> {
  const path = supervisorSocket(root);
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  let supervisor: { exited: () => boolean } | undefined;
  for (let delay = 2;; delay = Math.min(delay * 2, 50)) {
    let line: string | undefined;
    try {
      line = await exchange(path, request);
    } catch { /* nobody listening (yet) */ }
    // no answer: no supervisor, or one that was exiting as we connected; it is safe to ask again,
    // as a supervisor answers "running" for a container it already started
    if (line !== undefined) return JSON.parse(line) as StartReply;
    if (Date.now() > deadline) {
      throw new SkiffError("cannot reach the skiff supervisor (see <root>/supervisor.log)");
    }
    if (!supervisor || supervisor.exited()) supervisor = spawnSupervisor(root);
    await sleep(delay);
  }
}
