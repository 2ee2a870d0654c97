// stop, kill, wait, start and restart of a container, whoever monitors it (the supervisor for
// detached containers, a foreground `skiff run` otherwise): signals go to the container's PID 1 (its
// host pid in the record), the monitor records the exit, and waits read the record.

import { kill } from "../../ffi/libc.ts";
import { openCgroup } from "../cgroups/mod.ts";
import { NoSuchContainerError, NotFoundError, SkiffError } from "../errors.ts";
import { isProcessAlive, loadContainer } from "../state/containers.ts";
import { containerEvent } from "../state/events.ts";
import { reconcile } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { startDetached, STOP_MARKER } from "./detach.ts";
import { parseSignal } from "../runtime/signals.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const DEFAULT_STOP_TIMEOUT = 10;
/** How long to wait for the monitor to record an exit once the process is gone. */
const RECORD_WAIT_MS = 5_000;

/** The record as it truly is now (a dead monitor's container shows as exited). */
export function current(root: StateRoot, id: string): ContainerRecord | undefined {
  try {
    return reconcile(root, loadContainer(root, id));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof NotFoundError) return undefined;
    throw e;
  }
}

export const isUp = (r: ContainerRecord) =>
  r.State.Running || r.State.Status === "running" || r.State.Status === "paused" ||
  r.State.Status === "restarting";

function markStopRequested(root: StateRoot, id: string): void {
  try {
    Deno.writeTextFileSync(`${root.container(id)}/${STOP_MARKER}`, "");
  } catch { /* removed meanwhile */ }
}

const processAlive = (r: ContainerRecord) =>
  r.State.Pid !== 0 && isProcessAlive(r.State.Pid, r.State.PidStartTime);

/** Polls until `done`, up to `ms` (Infinity: no limit). */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let delay = 5; !done(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() >= deadline) return false;
    await sleep(delay);
  }
  return true;
}

/** Resolves once the container is down and its exit recorded (or it is gone); returns the record. */
async function untilRecordedDown(root: StateRoot, id: string, ms = RECORD_WAIT_MS) {
  let last: ContainerRecord | undefined;
  await until(() => {
    last = current(root, id);
    return !last || !isUp(last);
  }, ms);
  return last;
}

export interface StopOptions {
  /** seconds before SIGKILL; undefined: the container's --stop-timeout, else 10; < 0: forever */
  timeout?: number;
  /** undefined: the container's stop signal (--stop-signal / image StopSignal), else SIGTERM */
  signal?: string;
}

/**
 * docker stop: the stop signal, then SIGKILL after the timeout; no restart policy applies to this
 * exit. A container that is not running is left as it is.
 */
export async function stopContainer(root: StateRoot, record: ContainerRecord, opts: StopOptions = {}) {
  const id = record.Id;
  markStopRequested(root, id);
  const now = current(root, id);
  if (!now || !isUp(now)) return;
  const signal = parseSignal(opts.signal ?? now.Config.StopSignal ?? "SIGTERM");
  const timeout = opts.timeout ?? now.Config.StopTimeout ?? DEFAULT_STOP_TIMEOUT;
  if (now.State.Paused || now.State.Status === "paused") {
    try {
      openCgroup(root, id, now.HostConfig).thaw(); // a frozen process would never see the signal
    } catch { /* not frozen after all */ }
  }
  if (processAlive(now)) {
    try {
      containerEvent(root, now, "kill", { signal: String(signal) }); // before: the die follows it
      kill(now.State.Pid, signal);
    } catch { /* exited meanwhile */ }
    const ms = timeout < 0 ? Infinity : timeout * 1000;
    if (!await until(() => !processAlive(now), ms)) {
      try {
        containerEvent(root, now, "kill", { signal: "9" });
        kill(now.State.Pid, 9); // PID 1 of its namespace: the kernel kills the rest with it
      } catch { /* exited meanwhile */ }
      await until(() => !processAlive(now), RECORD_WAIT_MS);
    }
  }
  await untilRecordedDown(root, id);
  containerEvent(root, now, "stop");
}

/** docker kill: the signal to the container's PID 1; refuses a container that is not running. */
export async function killContainer(root: StateRoot, record: ContainerRecord, signalName = "KILL") {
  const signal = parseSignal(signalName);
  const now = current(root, record.Id);
  if (!now || !isUp(now) || !processAlive(now)) {
    throw new SkiffError(
      `cannot kill container: ${record.Name.slice(1)}: container ${record.Id} is not running`,
      1,
    );
  }
  markStopRequested(root, record.Id);
  try {
    containerEvent(root, now, "kill", { signal: String(signal) }); // before: the die follows it
    kill(now.State.Pid, signal);
  } catch {
    throw new SkiffError(
      `cannot kill container: ${record.Name.slice(1)}: container ${record.Id} is not running`,
      1,
    );
  }
  // a killing signal: answer once the exit is recorded, as docker's kill returns after the kill
  if (signal === 9) await untilRecordedDown(root, record.Id);
}

/**
 * docker wait: resolves with the exit code once the container is down (its current run, or at
 * once for a stopped one). Works for containers started by any process: it reads the record.
 */
export async function waitContainer(root: StateRoot, record: ContainerRecord): Promise<number> {
  let last: ContainerRecord | undefined = record;
  await until(() => {
    last = current(root, record.Id);
    return !last || !isUp(last);
  }, Infinity);
  if (!last) {
    // removed meanwhile (--rm): its exit code is in its last die event, as docker's daemon knows it
    const code = await exitCodeFromEvents(root, record.Id);
    if (code === undefined) throw new NoSuchContainerError(record.Id);
    return code;
  }
  return last.State.ExitCode;
}

/**
 * After an attach to the run whose PID 1 is `pid` ended: that run's exit code (docker's attach and
 * start -a wait for the next exit, not for a restart policy to give up). A restart may already be
 * under way: then the code is the one of the last `die` event.
 */
export async function waitRunEnd(root: StateRoot, record: ContainerRecord, pid: number): Promise<number> {
  if (pid === 0) return await waitContainer(root, record);
  let last: ContainerRecord | undefined;
  await until(() => {
    last = current(root, record.Id);
    return !last || !(last.State.Running && last.State.Pid === pid && last.State.Status === "running");
  }, Infinity);
  if (
    last &&
    (last.State.Status === "exited" || last.State.Status === "created" || last.State.Status === "dead")
  ) {
    return last.State.ExitCode;
  }
  const code = await exitCodeFromEvents(root, record.Id);
  if (code !== undefined) return code;
  if (!last) throw new NoSuchContainerError(record.Id);
  return last.State.ExitCode;
}

/** The exit code of the container's last `die` event, if the events log still has it. */
async function exitCodeFromEvents(root: StateRoot, id: string): Promise<number | undefined> {
  const { EventsReader } = await import("../state/events.ts");
  const reader = new EventsReader(root);
  let events;
  try {
    events = reader.history();
  } finally {
    reader.close();
  }
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.Type === "container" && e.Action === "die" && e.Actor.ID === id) {
      const code = Number(e.Actor.Attributes.exitCode);
      return Number.isInteger(code) ? code : undefined;
    }
  }
  return undefined;
}

/** docker start of one container: a no-op when it runs; else the supervisor starts it. */
export async function startContainer(root: StateRoot, record: ContainerRecord): Promise<void> {
  const now = current(root, record.Id);
  if (!now) throw new NoSuchContainerError(record.Id);
  if (now.State.Status === "paused") {
    throw new SkiffError(`cannot start a paused container, try unpause instead`);
  }
  if (isUp(now)) return;
  const reply = await startDetached(root, record.Id);
  if (!reply.ok) {
    if (reply.phase === "setup") throw new SkiffError(reply.error, reply.exitCode); // the daemon's words
    throw new SkiffError(
      `failed to create task for container: failed to create shim task: OCI runtime create failed: ${reply.error}: unknown`,
      reply.exitCode,
    );
  }
}
