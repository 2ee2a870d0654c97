// Whether a container's record can be believed, without reconcile.ts: a command whose container's
// monitor is alive (exec, the common case) needs no more, and reconcile.ts loads the cgroup code a
// lost container's cleanup needs (six modules, ~1.5 ms of a command's start).

import { isProcessAlive, processStartTime } from "./containers.ts";
import type { ContainerRecord } from "./types.ts";

/** The record says the container is up (running, paused or restarting). */
export const claimsLive = (s: ContainerRecord["State"]) =>
  s.Running || s.Status === "running" || s.Status === "paused" || s.Status === "restarting";

/** True while the skiff process that waits on the container is alive (and is not a reused pid). */
export function monitorAlive(record: ContainerRecord): boolean {
  const pid = record.State.MonitorPid;
  if (!pid) return false;
  const started = processStartTime(pid);
  if (started === undefined) return false;
  if (record.State.MonitorStartTime !== undefined) return started === record.State.MonitorStartTime;
  // the monitor starts the container, so a "monitor" younger than the container is a reused pid
  const containerStarted = record.State.PidStartTime;
  return containerStarted === undefined || started <= containerStarted;
}

/** True while the container's process runs (paused counts as running, as in docker). */
export function isRunning(record: ContainerRecord): boolean {
  return record.State.Running && record.State.Pid > 0 &&
    isProcessAlive(record.State.Pid, record.State.PidStartTime);
}
