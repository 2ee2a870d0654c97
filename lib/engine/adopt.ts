// Adoption: a supervisor that starts finds the detached containers of its root whose supervisor
// died (reconcile's orphans) and takes them over: the running ones from where they are (their
// output from the first byte not logged, their exit through a pidfd: it is not their parent), the
// ones killed in a restart back-off started again. See MONITOR.md, "A supervisor crash".

import { close, O, open, pidfdOpen } from "../../ffi/libc.ts";
import { openCgroup } from "../cgroups/mod.ts";
import { isProcessAlive, listContainers, processStartTime, transition } from "../state/containers.ts";
import { isOrphan } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { JsonLogWriter, logPath, logSettings, type LogStream } from "../runtime/logs.ts";
import { ContainerOutput, SPOOL_DRAIN_MS } from "./output.ts";
import { poller } from "../runtime/poller.ts";
import {
  drain,
  finishContainer,
  holdRootUntilReleased,
  type RunOutcome,
  throttlesWrites,
} from "./process.ts";
import { type CgroupHandle, releaseExitResources } from "./resources.ts";
import { type AttachableRun, attachableRun } from "./attach.ts";
import { Holder } from "./holder.ts";
import { HealthMonitor } from "./health.ts";
import { probeCommand } from "./health_state.ts";
import { PtyMaster } from "../runtime/pty.ts";

/**
 * The exit code recorded when a container's exit status cannot be known: what docker records when
 * containerd has no exit status for a container it restores (moby daemon/daemon.go, restore():
 * `ces.ExitCode = 255` when the task's status is unknown; FinishedAt is then the time it noticed).
 */
export const UNKNOWN_EXIT_CODE = 255;

export type Pump = (
  source: AsyncIterable<Uint8Array>,
  name: LogStream,
  log: JsonLogWriter,
  attached: AttachableRun,
) => Promise<void>;

export interface Adoption {
  id: string;
  /** A running container: resolves with its outcome once it has exited. */
  run?: () => Promise<RunOutcome>;
  /** Killed during a restart back-off: due to be started again. */
  restart?: boolean;
}

/** Takes over every orphan of the root (the record names this process as the monitor from now on). */
export function adoptOrphans(root: StateRoot, pump: Pump): Adoption[] {
  const adopted: Adoption[] = [];
  const startTime = processStartTime(Deno.pid);
  for (const record of listContainers(root)) {
    if (!isOrphan(root, record)) continue;
    let current: ContainerRecord | undefined;
    try {
      let taken = false;
      current = transition(root, record.Id, null, (r) => {
        if (!isOrphan(root, r)) return false;
        Object.assign(r.State, { MonitorPid: Deno.pid, MonitorStartTime: startTime });
        taken = true;
      });
      if (!taken) continue;
    } catch {
      continue; // removed or unreadable meanwhile
    }
    if (!current) continue;
    if (current.State.Status === "restarting") adopted.push({ id: current.Id, restart: true });
    else adopted.push({ id: current.Id, run: adoptRun(root, current, pump) });
  }
  return adopted;
}

/** The cgroup of a container that runs already (at its recorded --cgroup-parent). */
function existingCgroup(root: StateRoot, record: ContainerRecord): CgroupHandle {
  const id = record.Id;
  return {
    addProcess: () => {},
    oomKilled: () => openCgroup(root, id, record.HostConfig).oomKilled(),
    destroy: () => releaseExitResources({ root, id, record }),
  };
}

/** A pidfd of the container's PID 1 if it still runs (checked again once held: no reused pid). */
function pidfdOf(record: ContainerRecord): number {
  const { Pid: pid, PidStartTime: started } = record.State;
  if (!pid || !isProcessAlive(pid, started)) return -1;
  let pidfd: number;
  try {
    pidfd = pidfdOpen(pid);
  } catch {
    return -1;
  }
  if (isProcessAlive(pid, started)) return pidfd;
  close(pidfd);
  return -1;
}

function adoptRun(root: StateRoot, record: ContainerRecord, pump: Pump): () => Promise<RunOutcome> {
  const id = record.Id;
  const pidfd = pidfdOf(record);
  // a write-throttled container's overlay kept mounted, as its first supervisor kept it (process.ts):
  // through its mount namespace, which PID 1 cannot change (its root it can: a chroot would have
  // made /proc/PID/root another mount, and the overlay's sync run in its cgroup again)
  let heldRoot: number | undefined;
  if (pidfd >= 0 && throttlesWrites(record.HostConfig)) {
    try {
      heldRoot = open(`/proc/${record.State.Pid}/ns/mnt`, O.RDONLY | O.CLOEXEC);
    } catch { /* exited meanwhile */ }
  }
  const log = new JsonLogWriter(logPath(root, id), logSettings(record));
  let output: ContainerOutput | undefined;
  if (pidfd >= 0) {
    try {
      output = ContainerOutput.adopt(root, id, record.State.Pid, pidfd, log);
    } catch { /* its output cannot be had: it still gets its exit and restart policy */ }
  }
  // its terminal or stdin pipe, from the holder the dead supervisor forked (holder.ts)
  const taken = output?.holder ? Holder.adopt(output.holder) : undefined;
  const pty = taken?.pty !== undefined ? PtyMaster.adopt(taken.pty) : undefined;
  if (taken && taken.stdin === undefined && taken.pty === undefined) taken.holder.release();
  // attach sees its output from here on, and reaches its stdin where the holder kept it
  const attached = attachableRun(record, {
    pid: record.State.Pid,
    pty,
    stdinFd: taken?.stdin,
    onStdinClosed: () => taken?.holder.kill(),
  });
  const pumps = output?.sources().map(([name, source]) => pump(source, name, log, attached)) ?? [];
  if (pty) {
    pumps.push(pty.pumpOutput((chunk) => {
      log.write("stdout", chunk);
      attached.output("stdout", chunk);
    }));
  }
  return async () => {
    if (pidfd >= 0) {
      // its health check goes on from the next interval (the dead supervisor's probe is lost)
      const health = probeCommand(record.Config) ? HealthMonitor.start(root, id) : undefined;
      await poller.readable(pidfd); // readable once PID 1 has exited; its namespace goes with it
      health?.stop();
      close(pidfd);
    }
    await drain(Promise.all(pumps).then(() => {}), SPOOL_DRAIN_MS);
    await attached.end();
    pty?.close();
    taken?.holder.release();
    log.close();
    output?.close();
    const cgroup = existingCgroup(root, record);
    if (heldRoot !== undefined) holdRootUntilReleased(cgroup, heldRoot);
    let oomKilled = false;
    try {
      oomKilled = cgroup.oomKilled();
    } catch { /* no cgroup left */ }
    // not our child: its status went to whoever reaped it. An OOM kill still shows in its cgroup
    const code = oomKilled ? 137 : UNKNOWN_EXIT_CODE;
    return await finishContainer(root, record, cgroup, { success: false, code, signal: null });
  };
}
