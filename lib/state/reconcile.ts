// Truthful state: a record that says "running" is only believed while its process or its monitor
// (the `skiff run` process that waits on it and records the exit) is alive. When both are gone,
// e.g. after `kill -9` of skiff itself, nobody will ever record the exit, so the next ps, inspect
// or rm does it.
//
// Exit code when the monitor vanished: 137 (128 + SIGKILL). The runtime gives every container
// PR_SET_PDEATHSIG(SIGKILL), so when the monitor dies without recording the exit the kernel kills
// the container with SIGKILL: 137 is what `wait` would have reported in that, the common, case.
// The exit status is genuinely unknown, so State.Error says so instead of pretending.
//
// Detached containers (the supervisor's: their directory holds SUPERVISED_MARKER) outlive their
// supervisor. One that claims to be up while its supervisor is gone is an orphan: it is left as it
// is, and a new supervisor is woken (orphans.ts, lib/engine/wake.ts), which adopts it and
// records the truth, its exit status included (engine/adopt.ts, MONITOR.md).

import { openCgroup } from "../cgroups/mod.ts";
import { exists } from "./fsutil.ts";
import { wakeSupervisorFor } from "./orphans.ts";
import {
  claimsLive,
  findContainer,
  isProcessAlive,
  listContainers,
  monitorAlive,
  transition,
} from "./containers.ts";
import type { StateRoot } from "./root.ts";
import type { ContainerRecord } from "./types.ts";

export { isRunning, monitorAlive } from "./containers.ts";

/** Exit code recorded for a container whose monitor died without recording one (see header). */
export const LOST_EXIT_CODE = 137;

/** In a container's directory while the supervisor keeps it (written by engine/output.ts). */
export const SUPERVISED_MARKER = "output.state";

/** A detached container that claims to be up while its supervisor is gone (see the header). */
export function isOrphan(root: StateRoot, record: ContainerRecord): boolean {
  return claimsLive(record.State) && !monitorAlive(record) &&
    exists(`${root.container(record.Id)}/${SUPERVISED_MARKER}`);
}

/** True when the record claims a live container whose process and monitor are both gone. */
export function isStale(record: ContainerRecord): boolean {
  const s = record.State;
  if (!claimsLive(s)) return false;
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

/**
 * Kills whatever is left in a lost container's cgroup and removes it (idempotent): the first "exit"
 * resource of engine/resources.ts, which state/ (below the engine) cannot reach. Its network lease
 * and published ports go with the next listing's or allocation's sweep of dead holders
 * (network/sweep.ts), the rest when it is removed.
 */
function destroyContainerCgroup(root: StateRoot, record: ContainerRecord): void {
  openCgroup(root, record.Id, record.HostConfig).destroy(); // at its recorded --cgroup-parent
}

/**
 * Returns the record as it truly is: a stale "running" record is rewritten (under the container's
 * lock, atomically) as exited with code 137, and its leftovers are cleaned. A record whose
 * container was removed meanwhile is returned unchanged.
 */
export function reconcile(root: StateRoot, record: ContainerRecord, now = new Date()): ContainerRecord {
  // a live monitor first: the common case costs one /proc read, as before orphans were adopted
  if (!claimsLive(record.State) || monitorAlive(record)) return record;
  if (isOrphan(root, record)) {
    wakeSupervisorFor(root);
    return record;
  }
  if (!isStale(record)) return record;
  let changed = false;
  const saved = transition(root, record.Id, "die", (current) => {
    if (!isStale(current) || isOrphan(root, current)) return false; // recorded meanwhile, or adopted
    markLost(current, now);
    changed = true;
  }, (r) => ({ exitCode: String(r.State.ExitCode) }));
  if (!saved) return record;
  if (changed) {
    try {
      destroyContainerCgroup(root, saved);
    } catch { /* best effort: rm retries the cleanup */ }
  }
  return saved;
}

/** Finds a container (id, prefix or name) and returns its record as it truly is. */
export function lookupContainer(root: StateRoot, ref: string): ContainerRecord {
  return reconcile(root, findContainer(root, ref));
}

/** Every container, reconciled. */
export function listReconciled(root: StateRoot): ContainerRecord[] {
  return listContainers(root).map((r) => reconcile(root, r));
}
