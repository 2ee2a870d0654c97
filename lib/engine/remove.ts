// Removing a container (rm, rm -f, --rm's leftovers, a broken or half-created one, system check
// --repair): the other end of the state machine of state/reconcile.ts. A removal agrees with the
// container's monitor, through the container's lock, on who writes last; what the container holds
// on the host is released through the resource list (resources.ts).

import { kill } from "../../ffi/libc.ts";
import { openCgroup } from "../cgroups/mod.ts";
import { type ErrorKind, SkiffError } from "../errors.ts";
import { join } from "../path.ts";
import { isProcessAlive, loadContainer } from "../state/containers.ts";
import { appendEvent, containerEvent, eventMessage } from "../state/events.ts";
import { exists, withLock } from "../state/fsutil.ts";
import { monitorAlive, reconcile } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { releaseAndRemove, releaseExitResources } from "./resources.ts";

const SIGKILL = 9;

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
  static override readonly defaultKind: ErrorKind = "conflict";
  constructor(message: string) {
    super(message, 1);
  }
}

export interface RemoveOptions {
  /** Kill a running container first (rm -f). */
  force: boolean;
  /** rm -v: its anonymous volumes go with it. */
  volumes?: boolean;
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
      // docker's words for each state (moby's daemon/delete.go)
      throw new RemoveError(
        current.State.Paused
          ? `cannot remove container "${current.Name}": container is paused and must be unpaused first`
          : `cannot remove container "${current.Name}": container is ${
            current.State.Restarting ? "restarting" : "running"
          }: stop the container before removing or force remove`,
      );
    }
    // no restart policy may bring it back: the supervisor (engine/monitor.ts) checks this marker
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
      releaseExitResources({ root, id, record: current });
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
  await releaseAndRemove({ root, id, record: current, removeVolumes: opts.volumes }, {
    onRemoved: () => containerEvent(root, current, "destroy"),
  });
}

/**
 * Removes the directory of a container whose creation never completed (no container.json, e.g.
 * skiff was killed mid-create). Takes the containers lock, under which creation runs, so a
 * creation still in progress is never touched. Returns false when there is no such directory.
 */
export async function removeIncompleteContainer(root: StateRoot, id: string): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(id)) return false;
  const dir = root.container(id);
  return await withLock(root.lock("containers"), async () => {
    try {
      Deno.lstatSync(dir);
    } catch {
      return false;
    }
    try {
      Deno.lstatSync(join(dir, "container.json"));
      return false; // complete after all: not ours to remove this way
    } catch { /* incomplete */ }
    await releaseAndRemove({ root, id }, { containerLock: false });
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
    pids = openCgroup(root, id, undefined).pids(); // no record: where its cgroup is found
  } catch { /* no cgroup left */ }
  if (pids.length && !opts.force) {
    throw new RemoveError(
      `cannot remove container "${id}": its record is unreadable and processes still run in its cgroup: force remove`,
    );
  }
  // its monitor, seeing the process die, tears the same cgroup down: releaseAndRemove retries
  await releaseAndRemove({ root, id }, {
    // its record is unreadable: what docker would name is unknown
    onRemoved: () => appendEvent(root, eventMessage("container", "destroy", id, {})),
  });
}

/** True when processes still run in the container's cgroup. */
export function cgroupBusy(root: StateRoot, id: string): boolean {
  try {
    return openCgroup(root, id, undefined).pids().length > 0; // a broken record: where it is found
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
  return await withLock(root.lock("containers"), async () => {
    const found = candidates.filter((id) =>
      exists(root.container(id)) && !exists(join(root.container(id), "container.json"))
    );
    if (remove) {
      for (const id of found) await releaseAndRemove({ root, id }, { containerLock: false });
    }
    return found;
  });
}
