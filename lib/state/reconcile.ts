// Truthful state: a record that says "running" is only believed while its process or its monitor
// (the `skiff run` process that waits on it and records the exit) is alive. When both are gone,
// e.g. after `kill -9` of skiff itself, nobody will ever record the exit, so the next ps, inspect
// or rm does it.
//
// Exit code when the monitor vanished: 137 (128 + SIGKILL). The runtime gives every container
// PR_SET_PDEATHSIG(SIGKILL), so when the monitor dies without recording the exit the kernel kills
// the container with SIGKILL: 137 is what `wait` would have reported in that, the common, case.
// The exit status is genuinely unknown, so State.Error says so instead of pretending.

import { kill, MNT_DETACH, umount2 } from "../../ffi/libc.ts";
import { openCgroup } from "../cgroups/mod.ts";
import { SkiffError } from "../errors.ts";
import {
  containerLockPath,
  isProcessAlive,
  listContainers,
  loadContainer,
  processStartTime,
  removeContainerDir,
  transition,
} from "./containers.ts";
import { appendEvent, containerEvent, eventMessage } from "./events.ts";
import { join } from "./path.ts";
import { exists, withLock, withLockSync } from "./fsutil.ts";
import type { StateRoot } from "./root.ts";
import type { ContainerRecord } from "./types.ts";

/** Exit code recorded for a container whose monitor died without recording one (see header). */
export const LOST_EXIT_CODE = 137;
const SIGKILL = 9;

/** True while the skiff process that waits on the container is alive (and is not a reused pid). */
export function monitorAlive(record: ContainerRecord): boolean {
  const pid = record.State.MonitorPid;
  if (!pid) return false;
  const started = processStartTime(pid);
  if (started === undefined) return false;
  // the monitor starts the container, so a "monitor" younger than the container is a reused pid
  const containerStarted = record.State.PidStartTime;
  return containerStarted === undefined || started <= containerStarted;
}

/** True when the record claims a live container whose process and monitor are both gone. */
export function isStale(record: ContainerRecord): boolean {
  const s = record.State;
  const claimsLive = s.Running || s.Status === "running" || s.Status === "paused" ||
    s.Status === "restarting";
  if (!claimsLive) return false;
  if (s.Pid && isProcessAlive(s.Pid, s.PidStartTime)) return false;
  return !monitorAlive(record);
}

/** Marks a stale record exited in place. */
function markLost(record: ContainerRecord, now: Date): void {
  const monitor = record.State.MonitorPid;
  Object.assign(record.State, {
    Status: "exited",
    Running: false,
    Paused: false,
    Restarting: false,
    Pid: 0,
    ExitCode: LOST_EXIT_CODE,
    Error: `container monitor${monitor ? ` (skiff pid ${monitor})` : ""} died before recording the exit`,
    FinishedAt: now.toISOString(),
  });
}

/** Kills whatever is left in the container's cgroup and removes it (idempotent). */
export function destroyContainerCgroup(root: StateRoot, id: string): void {
  openCgroup(root, id).destroy();
}

/**
 * Returns the record as it truly is: a stale "running" record is rewritten (under the container's
 * lock, atomically) as exited with code 137, and its leftovers are cleaned. A record whose
 * container was removed meanwhile is returned unchanged.
 */
export function reconcile(root: StateRoot, record: ContainerRecord, now = new Date()): ContainerRecord {
  if (!isStale(record)) return record;
  let changed = false;
  const saved = transition(root, record.Id, "die", (current) => {
    if (!isStale(current)) return false; // the monitor recorded it meanwhile
    markLost(current, now);
    changed = true;
  }, (r) => ({ exitCode: String(r.State.ExitCode) }));
  if (!saved) return record;
  if (changed) {
    try {
      destroyContainerCgroup(root, saved.Id);
    } catch { /* best effort: rm retries the cleanup */ }
  }
  return saved;
}

/** Every container, reconciled. */
export function listReconciled(root: StateRoot): ContainerRecord[] {
  return listContainers(root).map((r) => reconcile(root, r));
}

// ---------------------------------------------------------------------------------------------
// Removal (skiff rm): lives here because it is the other end of the same state machine: a
// removal must agree with the monitor, through the container's lock, on who writes last.

/** How long rm -f waits for the killed process, then for its monitor to record the exit. */
const KILL_WAIT_MS = 10_000;
/** A SIGKILLed process is normally gone within milliseconds; longer means it is frozen. */
const FROZEN_GRACE_MS = 2_000;
const MONITOR_WAIT_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
  return true;
}

const claimsRunning = (r: ContainerRecord) =>
  r.State.Running || r.State.Status === "running" || r.State.Status === "paused" ||
  r.State.Status === "restarting";

/** A container that cannot be removed: docker's CLI prints it and exits 1. */
export class RemoveError extends SkiffError {
  constructor(message: string) {
    super(message, 1);
  }
}

export interface RemoveOptions {
  /** Kill a running container first (rm -f). */
  force: boolean;
}

/**
 * Removes a container: refuses a running one unless forced; forced, SIGKILLs its process (after
 * checking the pid was not reused), kills what is left in its cgroup, waits (bounded) until the
 * process is gone and its monitor has recorded the exit, then removes the cgroup and, under the
 * container's lock, its directory (overlay upper dir with root-owned files and whiteouts included).
 */
export async function removeContainer(
  root: StateRoot,
  record: ContainerRecord,
  opts: RemoveOptions,
): Promise<void> {
  const current = reconcile(root, record);
  const id = current.Id;
  if (claimsRunning(current)) {
    if (!opts.force) {
      throw new RemoveError(
        `cannot remove container "${current.Name}": container is running: stop the container before removing or force remove`,
      );
    }
    // no restart policy may bring it back: the supervisor (runtime/monitor.ts) checks this marker
    try {
      Deno.writeTextFileSync(join(root.container(id), "stop-requested"), "");
    } catch { /* removed meanwhile */ }
    const { Pid, PidStartTime } = current.State;
    const alive = () => Pid !== 0 && isProcessAlive(Pid, PidStartTime);
    if (alive()) {
      try {
        containerEvent(root, current, "kill", { signal: String(SIGKILL) }); // before: the die follows
        kill(Pid, SIGKILL);
      } catch { /* exited meanwhile */ }
    }
    // The monitor tears the cgroup down itself once its child is gone; doing it at the same time
    // races with it (a cgroup being removed answers ENODEV). Only a process that SIGKILL does not
    // take down (frozen) needs the cgroup: destroy() thaws and kills.
    if (!await waitUntil(() => !alive(), FROZEN_GRACE_MS)) {
      destroyContainerCgroup(root, id);
      if (!await waitUntil(() => !alive(), KILL_WAIT_MS)) {
        throw new RemoveError(`cannot remove container "${current.Name}": could not kill process ${Pid}`);
      }
    }
    // let the monitor record the exit and finish (it may also remove the container itself: --rm)
    await waitUntil(() => {
      if (!monitorAlive(current)) return true;
      try {
        return !claimsRunning(loadContainer(root, id));
      } catch {
        return true; // removed by the monitor
      }
    }, MONITOR_WAIT_MS);
  }
  try {
    destroyContainerCgroup(root, id);
  } catch {
    // a monitor still tearing it down makes the cgroup answer ENODEV for a moment: retry once
    await sleep(100);
    destroyContainerCgroup(root, id);
  }
  const dir = root.container(id);
  const lock = containerLockPath(root, id);
  withLockSync(lock, () => {
    detachMountsUnder(dir);
    removeContainerDir(root, id);
    containerEvent(root, current, "destroy");
  });
  try {
    Deno.removeSync(lock);
  } catch { /* another skiff removed it */ }
}

/** Lazily unmounts anything left mounted below the container's directory (a crashed runtime). */
function detachMountsUnder(dir: string): void {
  let mountinfo: string;
  try {
    mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return;
  }
  const points = mountinfo.split("\n").map((l) => l.split(" ")[4]).filter((m) =>
    m && (m === dir || m.startsWith(dir + "/"))
  );
  for (const m of points.sort((a, b) => b.length - a.length)) {
    try {
      umount2(m.replace(/\\040/g, " "), MNT_DETACH);
    } catch { /* already gone */ }
  }
}

/**
 * Removes the directory of a container whose creation never completed (no container.json, e.g.
 * skiff was killed mid-create). Takes the containers lock, under which creation runs, so a
 * creation still in progress is never touched. Returns false when there is no such directory.
 */
export async function removeIncompleteContainer(root: StateRoot, id: string): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(id)) return false;
  const dir = root.container(id);
  return await withLock(root.lock("containers"), () => {
    try {
      Deno.lstatSync(dir);
    } catch {
      return false;
    }
    try {
      Deno.lstatSync(join(dir, "container.json"));
      return false; // complete after all: not ours to remove this way
    } catch { /* incomplete */ }
    destroyContainerCgroup(root, id);
    detachMountsUnder(dir);
    removeContainerDir(root, id);
    return true;
  });
}

/**
 * Removes a container whose record is unreadable (docker's "Dead"). Nothing in the record can be
 * trusted, so what is released is what its id names: its cgroup (whatever still runs there is
 * killed; refused without force, since it may be a running container), the mounts below its
 * directory, the directory and its lock.
 */
export async function removeBrokenContainer(root: StateRoot, id: string, opts: RemoveOptions): Promise<void> {
  let pids: number[] = [];
  try {
    pids = openCgroup(root, id).pids();
  } catch { /* no cgroup left */ }
  if (pids.length && !opts.force) {
    throw new RemoveError(
      `cannot remove container "${id}": its record is unreadable and processes still run in its cgroup: force remove`,
    );
  }
  try {
    destroyContainerCgroup(root, id);
  } catch {
    // its monitor, seeing the process die, tears the same cgroup down: ENODEV for a moment
    await sleep(100);
    destroyContainerCgroup(root, id);
  }
  const lock = containerLockPath(root, id);
  withLockSync(lock, () => {
    detachMountsUnder(root.container(id));
    removeContainerDir(root, id);
    // its record is unreadable: what docker would name is unknown
    appendEvent(root, eventMessage("container", "destroy", id, {}));
  });
  try {
    Deno.removeSync(lock);
  } catch { /* another skiff removed it */ }
}

/** True when processes still run in the container's cgroup. */
export function cgroupBusy(root: StateRoot, id: string): boolean {
  try {
    return openCgroup(root, id).pids().length > 0;
  } catch {
    return false;
  }
}

/**
 * The container directories that have no container.json although no creation is under way (their
 * creator died): found under the containers lock, which every creation holds until its record is
 * written. With `remove`, their cgroups and mounts are released and the directories removed.
 */
export async function incompleteContainers(root: StateRoot, remove: boolean): Promise<string[]> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root.containers)];
  } catch {
    return [];
  }
  const candidates = entries.filter((e) => e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)).map((e) => e.name)
    .filter((id) => !exists(join(root.container(id), "container.json")));
  if (!candidates.length) return [];
  return await withLock(root.lock("containers"), () => {
    const found = candidates.filter((id) =>
      exists(root.container(id)) && !exists(join(root.container(id), "container.json"))
    );
    if (remove) {
      for (const id of found) {
        destroyContainerCgroup(root, id);
        detachMountsUnder(root.container(id));
        removeContainerDir(root, id);
      }
    }
    return found;
  });
}
