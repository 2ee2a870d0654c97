// The supervisor: one process per state root that owns every detached container (run -d, start).
// `skiff __supervisor` is started on demand by detach.ts (setsid, no stdio), holds
// <root>/supervisor.lock for its whole life, listens on <root>/supervisor/sock and exits as soon as
// it owns no container and serves no request. See MONITOR.md for the design and its figures.
// Whoever may talk to it may run any container as root: the socket is 0600 in a 0700 directory
// whatever the caller's umask, and a peer that is neither root nor the state root's owner
// (SO_PEERCRED) is disconnected before anything of its request is read.
//
// Per container it: creates the cgroup from the record, spawns the init stage (so it is the parent
// and can wait on it), pumps stdout/stderr (or the pty) into the json log, answers the requester once
// the container's command runs (or why it did not), records the exit, and applies the restart policy.
// Containers get no parent-death signal: they keep running when the supervisor is killed, their
// output waits in pipes they hold themselves (output.ts), and the next supervisor adopts them at its
// start (adopt.ts).

import {
  acceptAsync,
  chmod,
  close as closeFd,
  flock,
  geteuid,
  listenUnix,
  LOCK,
  O,
  open,
  peerCredentials,
  setNonBlocking,
  shutdownSocket,
  umask,
} from "../../ffi/libc.ts";
import {
  type CgroupLimits,
  cgroupLimitsOf,
  type ContainerCgroup,
  containerCgroupView,
  createCgroup,
  openCgroup,
  validateLimits,
} from "../cgroups/mod.ts";
import { releaseExitResources, startCgroup } from "./resources.ts";
import type { CgroupHandle } from "./resources_core.ts";
import { type StartReply, STOP_MARKER, supervisorLock, supervisorSocket } from "./detach.ts";
import { createDetached, ImageNotPresentError, type RunRequest } from "./create_run.ts";
import { NoSuchContainerError, SkiffError } from "../errors.ts";
import { ContainerIdTakenError, loadContainer, processStartTime, transition } from "../state/containers.ts";
import { exists, removeIfExists } from "../state/fsutil.ts";
import { reconcile } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import { type ContainerRecord, ZERO_TIME } from "../state/types.ts";
import { JsonLogWriter, logPath, logSettings, type LogStream } from "../runtime/logs.ts";
import { drain, finishContainer, launchContainer, type RunOutcome } from "./process.ts";
import { HealthMonitor } from "./health.ts";
import { probeCommand } from "./health_state.ts";
import { Backoff, NO_RESTART, shouldRestart } from "../runtime/restart.ts";
import { abortInitStage, type InitStage, startInitStage } from "../runtime/stage.ts";
import { isOwnExecutable } from "../runtime/self.ts";
import { ContainerOutput, SPOOL_DRAIN_MS } from "./output.ts";
import type { PtyMaster } from "../runtime/pty.ts";
import { adoptOrphans } from "./adopt.ts";
import { stagePidNamespace } from "./namespaces.ts";
import { fdTarget, Holder, writeEndOf } from "./holder.ts";
import { close } from "../../ffi/libc.ts";
import {
  type AttachableRun,
  attachableRun,
  type AttachRequest,
  type ForegroundOutcome,
  receive,
  sendAll,
  serveAttach,
  serveForeground,
  stageHandles,
} from "./attach.ts";
import { newContainerId } from "../state/ids.ts";

export { supervisorLock };

export function stopRequested(root: StateRoot, id: string): boolean {
  return exists(`${root.container(id)}/${STOP_MARKER}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How long a supervisor stays up, idle, after a foreground run it served, or after its start for
 * one (`__supervisor --warm`: spawned by a foreground run that found none): the next `skiff run`
 * of a script finds it warm (foreground.ts), its modules compiled. A supervisor that served no
 * foreground run exits as soon as it owns nothing, as before; one whose state root is removed
 * exits within ROOT_CHECK_MS, and SIGTERM ends the wait.
 */
export const LINGER_MS = 5_000;
const ROOT_CHECK_MS = 500;
let lingerUntil = 0;

function lingerAfterForeground(): void {
  lingerUntil = Date.now() + LINGER_MS;
}

/**
 * A spare init stage, made after each start while starts keep coming: the next start finds its
 * PID 1 forked and already in cgroups of its own, made for the id the next container created here
 * gets (`nextContainerId`). The first cgroup.procs write of a join waits for an RCU grace period (8-14 ms
 * on the project's machines), which was the longest step of a warm start; made ahead it is off
 * that path, and the container's limits are written to the groups at the claim (applyLimits).
 * Dropped after SPARE_IDLE_MS without a start, so an idle supervisor keeps no spare. The current
 * spare's id is noted in <root>/supervisor/spares before its groups are made: a supervisor killed
 * with a spare leaves empty groups, which the next one removes (sweepSpares).
 */
const SPARE_IDLE_MS = 1000;
interface Spare {
  stage: InitStage;
  timer: ReturnType<typeof setTimeout>;
  /** The id of the container that takes it (a container of a start request keeps its own id). */
  id: string;
  /** `id` was handed to a request (nextContainerId): no other may have it. */
  promised?: boolean;
  cgroup?: ContainerCgroup;
  /** The spare PID 1's join of `cgroup`, under way or done. */
  joined?: Promise<void>;
}
let spare: Spare | undefined;

const sparesFile = (root: StateRoot) => `${root.path}/supervisor/spares`;

/** Groups of dropped spares being removed, by id: a container given that id waits for them to go. */
const dropping = new Map<string, Promise<unknown>>();

/** Kills the spare and removes its groups; resolves once it is gone. */
function dropSpare(): Promise<unknown> {
  if (!spare) return Promise.resolve();
  clearTimeout(spare.timer);
  const gone = discard(spare);
  spare = undefined;
  return gone;
}

/** Kills a spare's PID 1, then removes its groups (noted in `dropping` until they are gone). */
function discard({ stage, cgroup, joined, id }: Spare): Promise<unknown> {
  const gone = abortInitStage(stage).finally(async () => {
    await joined?.catch(() => {});
    try {
      cgroup?.destroy();
      spareGroups.delete(id);
    } catch { /* swept at this supervisor's exit, or by the next one */ }
  }).finally(() => dropping.delete(id));
  dropping.set(id, gone);
  return gone;
}

/** The idle spare goes, unless a request has its id (its start takes it in a moment). */
function dropIdleSpare(): void {
  if (spare?.promised) spare.timer = setTimeout(dropIdleSpare, SPARE_IDLE_MS);
  else dropSpare();
}

/** The id the next container made here takes: its spare's groups are made for it. */
function nextContainerId(run: RunRequest): string {
  // the spare's groups are in the default parent, its PID 1 in a PID namespace of its own, without
  // a stdin pipe (runOnce)
  const c = run.container;
  const spareFits = !c.resources?.CgroupParent && !c.namespaceModes?.PidMode && !(c.interactive && !c.tty);
  if (!spare?.cgroup || spare.promised || !spareFits) return newContainerId();
  spare.promised = true;
  return spare.id;
}

/** A request that took the spare's id made nothing: the next may have it. */
function releaseContainerId(id: string | undefined): void {
  if (spare?.id === id) spare!.promised = false;
}

/**
 * The spare for a start of `record`, if it fits: its groups, made for this id in the default
 * parent, take the record's limits now (a failure there is the start's, as createCgroup's would
 * be). A spare whose groups are another id's, or none, gives just its PID 1 (the caller makes the
 * groups and joins them).
 */
function takeSpare(
  root: StateRoot,
  record: ContainerRecord,
): { stage: InitStage; cgroup?: CgroupHandle; joined?: Promise<void> } | undefined {
  if (!spare) return undefined;
  const fits = spare.cgroup && spare.id === record.Id && !record.HostConfig.CgroupParent;
  // another id's groups stay with their PID 1 for the container they were made for
  if (spare.cgroup && !fits) return undefined;
  clearTimeout(spare.timer);
  const taken = spare;
  const { stage, cgroup, joined } = taken;
  spare = undefined;
  if (!cgroup) return { stage };
  spareGroups.delete(taken.id); // the container's from now on
  try {
    const limits = cgroupLimitsOf(record.HostConfig);
    validateLimits(limits); // as createCgroup
    cgroup.applyLimits(limits);
  } catch (e) {
    discard(taken); // the start fails as createCgroup's would; runOnce waits for its groups to go
    throw e;
  }
  const id = record.Id;
  return {
    stage,
    joined,
    cgroup: {
      addProcess: (pid) => cgroup.addProcess(pid),
      addProcessAsync: (pid) => cgroup.addProcessAsync(pid),
      oomKilled: () => cgroup.oomKilled(),
      destroy: () => releaseExitResources({ root, id, record }),
    },
  };
}

function refillSpare(root: StateRoot): void {
  if (spare) {
    clearTimeout(spare.timer);
    spare.timer = setTimeout(dropIdleSpare, SPARE_IDLE_MS);
    return;
  }
  let stage: InitStage;
  try {
    stage = startInitStage("null", "null");
  } catch {
    return; // no spare this time
  }
  const made: Spare = { stage, id: newContainerId(), timer: setTimeout(dropIdleSpare, SPARE_IDLE_MS) };
  spare = made;
  stage.child.status.then(() => {
    if (spare === made) dropSpare(); // died waiting: not usable
  });
  try {
    noteSpareGroups(root, made.id);
    made.cgroup = createCgroup(root, made.id, SPARE_LIMITS, {});
    made.joined = made.cgroup.addProcessAsync(stage.child.pid);
    made.joined.catch(() => {
      if (spare === made) dropSpare(); // no groups for it: not usable
    });
  } catch { /* a spare PID 1 without groups: the start makes them */ }
}

/**
 * No device rule: on v2 a later filter is ANDed with an earlier one (BPF_F_ALLOW_MULTI), so the
 * claim's must be the first; the spare PID 1 is skiff's own fork, running no container code.
 */
const SPARE_LIMITS: CgroupLimits = { privileged: true };

/**
 * The ids of the spare groups this supervisor made that are neither removed nor a container's:
 * swept at its exit (sweepSpares). The file lists them too, for the next supervisor after a kill;
 * appended to, and written anew from this set when it grows long.
 */
const spareGroups = new Set<string>();
let spareLines = 0;

function noteSpareGroups(root: StateRoot, id: string): void {
  spareGroups.add(id);
  if (++spareLines > 1000) {
    spareLines = spareGroups.size;
    Deno.writeTextFileSync(sparesFile(root), [...spareGroups].map((i) => `${i}\n`).join(""), { mode: 0o600 });
  } else Deno.writeTextFileSync(sparesFile(root), `${id}\n`, { append: true, mode: 0o600 });
}

/**
 * Removes spare groups that no running container holds: at a supervisor's start those its killed
 * predecessor listed (empty: their PID 1 died with it), at its exit its own (`ids`).
 */
export function sweepSpares(root: StateRoot, ids?: string[]): void {
  if (!ids) {
    try {
      ids = Deno.readTextFileSync(sparesFile(root)).split("\n").filter((l) => /^[0-9a-f]{64}$/.test(l));
    } catch {
      return;
    }
  }
  for (const id of ids) {
    try {
      const groups = openCgroup(root, id, {});
      // a container that took it and runs (adopted by this supervisor) keeps them; one made but
      // never started (its supervisor killed in between) gets its own at its start
      if (exists(root.container(id)) && groups.pids().length) continue;
      groups.destroy();
    } catch { /* gone */ }
  }
  removeIfExists(sparesFile(root));
}

/** Resolves true once the init stage has execve()d the container's command, false if it exited first. */
async function waitForExec(pid: number, exited: () => boolean): Promise<boolean> {
  // the exec usually comes within ~30 ms of the go: poll tightly first (the answer waits on it)
  for (let polls = 0; !exited(); polls++) {
    try {
      if (!isOwnExecutable(Deno.readLinkSync(`/proc/${pid}/exe`))) return true;
    } catch {
      return false; // gone (or a zombie)
    }
    await sleep(polls < 50 ? 1 : 5);
  }
  return false;
}

/** Where every output chunk of a container enters: its json log and its attached clients. */
async function pumpStream(
  source: AsyncIterable<Uint8Array>,
  name: LogStream,
  log: JsonLogWriter,
  attached: AttachableRun,
) {
  try {
    for await (const chunk of source) {
      log.write(name, chunk);
      const behind = attached.output(name, chunk);
      if (behind) await behind; // a foreground run's caller reads slowly: its output waits
    }
  } catch { /* the pipe broke: nothing more to log */ }
}

/**
 * One run of the container: from a fresh init stage to the recorded exit. `onRunning` is called
 * once its command runs (or it already ended without an init error).
 */
async function runOnce(
  root: StateRoot,
  record: ContainerRecord,
  onRunning: (pid: number) => void,
): Promise<RunOutcome> {
  const id = record.Id;
  const keepStdin = record.Config.OpenStdin && !record.Config.Tty;
  // --pid host / container:NAME: a stage of its own, spawned in that PID namespace (a spare has its own)
  const pidMode = record.HostConfig.PidMode;
  const taken = keepStdin || pidMode ? undefined : takeSpare(root, record);
  // groups made for this id that its spare cannot give it (a record changed since): they go first
  if (!taken && spare?.id === id) await dropSpare();
  await dropping.get(id); // a spare dropped with this id: its groups go before ours are made
  const cgroup = taken?.cgroup ?? startCgroup(root, record);
  let stage;
  try {
    const pidNs = pidMode ? await stagePidNamespace(root, pidMode, id) : undefined;
    try {
      stage = taken?.stage ?? startInitStage(keepStdin ? "piped" : "null", "null", pidNs);
    } finally {
      if (typeof pidNs === "object") close(pidNs.fd);
    }
  } catch (e) {
    cgroup.destroy();
    throw e;
  }
  const child = stage.child;
  const childStart = processStartTime(child.pid);
  const log = new JsonLogWriter(logPath(root, id), logSettings(record));
  let output: ContainerOutput;
  try {
    output = ContainerOutput.create(root, id, log, record.Config.Tty);
  } catch (e) {
    log.close();
    await abortInitStage(stage);
    cgroup.destroy();
    throw e;
  }
  let pty: PtyMaster | undefined;
  let stdinPipe: ReturnType<typeof fdTarget> | undefined;
  let holder: Holder | undefined;
  // a StdinOnce attach that ends the stdin ends the holder's copy too (or keeps it from taking one)
  let stdinClosed = false;
  let attached: ReturnType<typeof attachableRun> | undefined;
  const pumps: Promise<void>[] = [];
  try {
    pty = await launchContainer(root, record, cgroup, stage, {
      cgroupView: containerCgroupView(root, id, record.HostConfig),
      detached: true,
      cgroupJoin: taken?.joined, // a spare's PID 1 is in its groups already (or on its way)
      outputPipes: output.spec(),
      // before the go: a start -a client sees the first byte, and the stdin pipe is named while
      // PID 1 is still skiff's (nothing of the container's chose it)
      beforeGo: (p) => {
        stdinPipe = stage.inputPiped ? fdTarget(child.pid, 0) : undefined;
        const run = attachableRun(record, {
          ...stageHandles(stage, p),
          onStdinClosed: () => {
            stdinClosed = true;
            holder?.kill();
          },
        });
        attached = run;
        pumps.push(...output.sources().map(([name, source]) => pumpStream(source, name, log, run)));
        if (p) {
          pumps.push(p.pumpOutput((chunk) => {
            log.write("stdout", chunk);
            run.output("stdout", chunk);
          }));
        }
      },
    });
  } catch (e) {
    await attached?.end();
    output.close();
    log.close();
    throw e;
  }
  if (!attached) {
    // PID 1 failed its setup (its init error says why): nothing ran, nothing to attach
    attached = attachableRun(record, stageHandles(stage, pty));
  }
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const ran = await waitForExec(child.pid, () => exited);
  if (ran) onRunning(child.pid);
  // the next start's PID 1, forked once this one's answer is on its way (forked before the setup,
  // it was ~2 ms on every run -d's path); a foreground run's, once its caller has the outcome
  if (!outcomeWaiters.has(id)) setTimeout(() => refillSpare(root), 0);
  const health = ran && !exited && probeCommand(record.Config) ? HealthMonitor.start(root, id) : undefined;
  output.releaseWriters(); // the container holds its own ends now (or is gone)
  if (ran && (pty || stdinPipe)) {
    // its terminal and stdin outlive a crash of this supervisor (holder.ts); once the answer is on
    // its way, so that the fork is not on run -d's path
    await sleep(0);
    const stdinFd = stdinClosed ? undefined : writeEndOf(stdinPipe);
    if (!exited && (pty || stdinFd !== undefined)) {
      holder = await Holder.start(
        child.pid,
        childStart,
        { pty: pty?.fd, stdin: stdinFd },
        (m) => diagnose(root, m),
      );
      if (holder && stdinClosed && stdinFd !== undefined) holder.kill(); // closed during the fork
      else if (holder) output.setHolder(holder.info);
    }
  }
  const final = await status;
  health?.stop();
  // the pipes end with the container's last process (PID 1's exit takes the others down)
  await drain(Promise.all(pumps).then(() => {}), SPOOL_DRAIN_MS);
  await attached.end();
  pty?.close();
  log.close();
  output.close();
  const outcome = await finishContainer(root, record, cgroup, final);
  if (!outcome.error) onRunning(child.pid); // it ran and ended before we saw the exec
  return outcome;
}

/** The container's record, or undefined when it is unreadable or gone. */
function readRecordQuietly(root: StateRoot, id: string): ContainerRecord | undefined {
  try {
    return loadContainer(root, id);
  } catch {
    return undefined;
  }
}

function updateQuietly(root: StateRoot, id: string, change: (r: ContainerRecord) => void): void {
  try {
    transition(root, id, null, change); // restarting/back-off: docker has no event for these
  } catch { /* removed meanwhile */ }
}

/** Waits `ms` unless stop/rm asks for the container meanwhile; true when the wait was cut short. */
async function backoffWait(root: StateRoot, id: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (stopRequested(root, id) || !exists(root.container(id))) return true;
    await sleep(Math.min(50, until - Date.now()));
  }
  return stopRequested(root, id) || !exists(root.container(id));
}

/**
 * Owns a container until it is down for good: runs it, restarts it as its policy says. `reply`
 * gets the outcome of the first start.
 */
async function supervise(
  root: StateRoot,
  id: string,
  reply: (r: StartReply) => void,
  adopted?: () => Promise<RunOutcome>,
): Promise<void> {
  const backoff = new Backoff();
  let first = true;
  const answer = (r: StartReply) => {
    if (first) reply(r);
    first = false;
  };
  while (true) {
    let record: ContainerRecord;
    try {
      record = loadContainer(root, id);
    } catch {
      return answer({ ok: false, error: new NoSuchContainerError(id).message, exitCode: 1 });
    }
    const startedAt = adopted ? Date.parse(record.State.StartedAt) : Date.now();
    let outcome: RunOutcome;
    try {
      const run = adopted ?? (() => runOnce(root, record, (pid) => answer({ ok: true, pid })));
      adopted = undefined;
      outcome = await run();
      outcomeWaiters.get(id)?.({ exitCode: outcome.exitCode });
    } catch (e) {
      // a foreground caller waits for the run's end: this is it (answered below if it never ran)
      outcomeWaiters.get(id)?.({ exitCode: 125, error: (e as Error).message });
      updateQuietly(root, id, (r) => {
        // one that never ran stays "created", as docker leaves it when its start fails
        const status = r.State.StartedAt === ZERO_TIME ? "created" : "exited";
        Object.assign(r.State, { Status: status, Running: false, Restarting: false, Pid: 0 });
        r.State.Error = (e as Error).message;
      });
      // refused before its process ran (a taken host port, no NAT tool): the engine's own words,
      // as docker's daemon answers them, not the runtime's "unable to start container process"
      const phase = e instanceof SkiffError ? "setup" as const : undefined;
      const exitCode = e instanceof SkiffError ? e.exitCode : 125;
      return answer({ ok: false, error: (e as Error).message, exitCode, phase });
    }
    if (outcome.error) {
      const phase = outcome.daemonError ? "setup" as const : undefined;
      return answer({ ok: false, error: outcome.error, exitCode: outcome.exitCode, phase });
    }
    if (!exists(root.container(id))) return;
    let current: ContainerRecord;
    try {
      current = loadContainer(root, id);
    } catch {
      return;
    }
    const policy = current.HostConfig.RestartPolicy ?? NO_RESTART;
    if (!shouldRestart(policy, outcome.exitCode, current.RestartCount, stopRequested(root, id))) return;
    updateQuietly(root, id, (r) => {
      Object.assign(r.State, { Status: "restarting", Restarting: true, MonitorPid: Deno.pid });
    });
    if (await backoffWait(root, id, backoff.next(Date.now() - startedAt))) {
      updateQuietly(root, id, (r) => Object.assign(r.State, { Status: "exited", Restarting: false }));
      return;
    }
    updateQuietly(root, id, (r) => void r.RestartCount++);
  }
}

function diagnose(root: StateRoot, message: string): void {
  try {
    Deno.writeTextFileSync(`${root.path}/supervisor.log`, `${new Date().toISOString()} ${message}\n`, {
      append: true,
    });
  } catch { /* nowhere to report */ }
}

/** Starts container `id` under this supervisor; resolves once its command runs (or why it did not). */
async function start(
  root: StateRoot,
  id: string,
  owned: Set<string>,
  onDone: () => void,
): Promise<StartReply> {
  if (owned.has(id)) return { ok: true, pid: 0 }; // being started or already running under us
  let record: ContainerRecord | undefined;
  try {
    record = reconcile(root, loadContainer(root, id));
  } catch { /* answered by supervise */ }
  if (record?.State.Running) return { ok: true, pid: record.State.Pid };
  removeIfExists(`${root.container(id)}/${STOP_MARKER}`);
  return await new Promise<StartReply>((resolve) => {
    own(root, id, owned, onDone, () => supervise(root, id, resolve), (e) => {
      resolve({ ok: false, error: (e as Error).message, exitCode: 125 });
    });
  });
}

/** Runs `task` as the owner of container `id` until it is down for good. */
function own(
  root: StateRoot,
  id: string,
  owned: Set<string>,
  onDone: () => void,
  task: () => Promise<void>,
  onError: (e: unknown) => void = () => {},
): void {
  owned.add(id);
  task()
    .catch((e) => {
      diagnose(root, `container ${id}: ${(e as Error).stack ?? e}`);
      onError(e);
    })
    .finally(() => {
      owned.delete(id);
      onDone();
    });
}

/**
 * A container whose supervisor died during its restart back-off: started again, unless stop or rm
 * asked for it meanwhile.
 */
async function resumeRestart(root: StateRoot, id: string): Promise<void> {
  if (stopRequested(root, id) || !exists(root.container(id))) {
    updateQuietly(root, id, (r) => Object.assign(r.State, { Status: "exited", Restarting: false }));
    return;
  }
  // killed while it started the next run, the old supervisor may have left that run's cgroup (its
  // init stage died with it): the new run makes its own
  try {
    // at the recorded --cgroup-parent (an unreadable record: where the cgroup is found)
    releaseExitResources({ root, id, record: readRecordQuietly(root, id) });
  } catch (e) {
    diagnose(root, `container ${id}: ${(e as Error).message}`); // the start below says why it fails
  }
  updateQuietly(root, id, (r) => void r.RestartCount++);
  await supervise(root, id, () => {});
}

/** At start: takes over the orphans a killed supervisor left (adopt.ts). */
function adoptAll(root: StateRoot, owned: Set<string>, onDone: () => void): void {
  for (const orphan of adoptOrphans(root, pumpStream)) {
    const task = orphan.restart
      ? () => resumeRestart(root, orphan.id)
      : () => supervise(root, orphan.id, () => {}, orphan.run);
    own(root, orphan.id, owned, onDone, task);
  }
}

/**
 * run -d: made here, then started like any other (its id is new: nobody else can start it). A
 * request that names its id (--cidfile) and finds it made already is the same request asked again
 * (the CLI asks again when no answer came): that container is started, not a second one made.
 */
async function createAndStart(
  root: StateRoot,
  run: RunRequest,
  owned: Set<string>,
  onDone: () => void,
): Promise<StartReply> {
  let id: string;
  // the spare's groups are made for this id (a --cidfile request brings its own)
  const wanted = run.id ?? nextContainerId(run);
  try {
    id = (await createDetached(root, { ...run, id: wanted })).Id;
  } catch (e) {
    if (e instanceof ContainerIdTakenError && run.id) {
      return { ...await start(root, run.id, owned, onDone), id: run.id };
    }
    releaseContainerId(wanted);
    return createRefusal(e);
  }
  const started = await start(root, id, owned, onDone);
  return { ...started, id };
}

/** Makes the container of `run` (its id given): undefined, or the refusal to answer. */
async function create(root: StateRoot, run: RunRequest): Promise<StartReply | undefined> {
  try {
    await createDetached(root, run);
  } catch (e) {
    return createRefusal(e);
  }
}

function createRefusal(e: unknown): StartReply {
  const error = e instanceof Error ? e.message : String(e);
  if (e instanceof ImageNotPresentError) return { ok: false, error, exitCode: 125, imageMissing: true };
  return { ok: false, error, exitCode: e instanceof SkiffError ? e.exitCode : 125, phase: "create" };
}

/** Foreground runs served here, by container id: told the outcome of the run (serveForeground). */
const outcomeWaiters = new Map<string, (outcome: ForegroundOutcome) => void>();

/**
 * A foreground `skiff run` whose CLI found this supervisor up (foreground.ts): made and started as
 * run -d is, the caller attached before the start. Its id is chosen here first, so that the
 * outcome of the run is waited for before anything of it can end.
 */
async function serveForegroundRun(
  root: StateRoot,
  fd: number,
  run: RunRequest,
  owned: Set<string>,
  onDone: () => void,
): Promise<void> {
  // first: the caller learns its request is taken (its end before this line means nothing was
  // made, and it runs the container itself: a supervisor on its way out never reads it)
  if (!await writeReply(fd, { accepted: true })) return; // the caller is gone: nothing to run for it
  const id = run.id ??= nextContainerId(run);
  const outcome = new Promise<ForegroundOutcome>((resolve) => outcomeWaiters.set(id, resolve));
  try {
    const made = await create(root, run);
    if (made !== undefined) {
      releaseContainerId(id);
      await writeReply(fd, made);
      return;
    }
    // a container with a restart policy is this supervisor's, as docker's daemon's: its caller's
    // end does not end it (without one, it does, as a run of its own dies with its caller)
    const policy = run.container.restartPolicy?.Name ?? "no";
    await serveForeground(fd, id, () => start(root, id, owned, onDone), outcome, policy === "no");
  } finally {
    outcomeWaiters.delete(id);
    lingerAfterForeground();
    refillSpare(root); // for the next run of the caller's script
  }
}

/** false: the requester went away. */
function writeReply(fd: number, answer: unknown): Promise<boolean> {
  return sendAll(fd, new TextEncoder().encode(JSON.stringify(answer) + "\n"));
}

/** Serves one connection: a single JSON request line, a single JSON reply line. */
async function serve(
  root: StateRoot,
  fd: number,
  owned: Set<string>,
  onDone: () => void,
): Promise<void> {
  setNonBlocking(fd); // through the poller from here on (attach.ts sendAll)
  const decoder = new TextDecoder();
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes("\n")) {
    const n = await receive(fd, buf);
    if (n <= 0) return;
    text += decoder.decode(buf.subarray(0, n));
  }
  const request = JSON.parse(text.slice(0, text.indexOf("\n"))) as {
    op: string;
    id: string;
    run?: RunRequest;
    attach?: AttachRequest["attach"];
  };
  // an op of its own: a supervisor of an older skiff refuses it (unknown request) and makes nothing
  if (request.op === "foreground" && request.run) {
    return await serveForegroundRun(root, fd, request.run, owned, onDone);
  }
  if (request.op === "attach" || request.op === "resize" || (request.op === "start" && request.attach)) {
    const running = () => {
      try {
        return reconcile(root, loadContainer(root, request.id)).State.Running;
      } catch {
        return false;
      }
    };
    const startIt = () => start(root, request.id, owned, onDone);
    return await serveAttach(fd, request as unknown as AttachRequest, startIt, running);
  }
  let answer: StartReply;
  if (request.op === "run") {
    answer = await createAndStart(root, request.run!, owned, onDone);
  } else if (request.op === "start") {
    answer = await start(root, request.id, owned, onDone);
  } else {
    answer = { ok: false, error: `unknown request ${request.op}`, exitCode: 125 };
  }
  await writeReply(fd, answer);
}

/** Only root and the owner of the state root may ask for containers (who else could read its state). */
function peerAllowed(fd: number, rootOwner: number): boolean {
  try {
    const { uid } = peerCredentials(fd);
    return uid === 0 || uid === rootOwner;
  } catch {
    return false;
  }
}

/**
 * Binds the supervisor's socket 0600 inside a 0700 directory owned by this user, whatever the
 * umask it was started with; returns the listening fd.
 */
export function listenPrivately(path: string): number {
  const dir = path.slice(0, path.lastIndexOf("/"));
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const info = Deno.lstatSync(dir);
  if (!info.isDirectory || info.uid !== geteuid()) {
    throw new SkiffError(`${dir} is not a directory of this user: refusing to listen there`);
  }
  chmod(dir, 0o700); // mkdir's mode went through the umask; an old directory may be wider
  removeIfExists(path);
  const saved = umask(0o177);
  let fd: number;
  try {
    fd = listenUnix(path);
  } finally {
    umask(saved);
  }
  chmod(path, 0o600);
  const mode = (Deno.lstatSync(path).mode ?? 0) & 0o777;
  if (mode !== 0o600) {
    closeFd(fd);
    throw new SkiffError(`${path} has mode ${mode.toString(8)}, not 600`);
  }
  return fd;
}

/** `skiff __supervisor`: see the header. */
const supervisor = async (args: string[], ctx: { root: StateRoot }): Promise<number> => {
  const root = ctx.root;
  if (args.includes("--warm")) lingerAfterForeground();
  const lockFd = open(supervisorLock(root), O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
  if (!flock(lockFd, LOCK.EX | LOCK.NB)) return 0; // another supervisor serves this root
  globalThis.addEventListener("unhandledrejection", (e) => {
    diagnose(root, `unhandled: ${e.reason?.stack ?? e.reason}`);
    e.preventDefault();
  });
  const listenFd = listenPrivately(supervisorSocket(root));
  sweepSpares(root);
  const rootOwner = Deno.statSync(root.path).uid ?? 0;
  const owned = new Set<string>();
  let busy = 0, exiting = false;
  try {
    adoptAll(root, owned, () => exitWhenIdle());
  } catch (e) {
    diagnose(root, `adoption: ${(e as Error).stack ?? e}`);
  }
  const rootInode = Deno.statSync(root.path).ino;
  const rootStillThere = () => {
    try {
      return Deno.statSync(root.path).ino === rootInode;
    } catch {
      return false;
    }
  };
  let lingering: ReturnType<typeof setTimeout> | undefined;
  const exitWhenIdle = () => {
    if (owned.size === 0 && busy === 0 && !exiting) {
      const left = lingerUntil - Date.now();
      if (left > 0 && rootStillThere()) {
        clearTimeout(lingering);
        lingering = setTimeout(exitWhenIdle, Math.min(left, ROOT_CHECK_MS));
        return;
      }
      exiting = true;
      shutdownSocket(listenFd); // wakes the pending accept
      // the lock goes with the process; the next supervisor rebinds the socket
      dropSpare().finally(() => {
        sweepSpares(root, [...spareGroups]); // what a drop could not remove
        Deno.exit(0);
      });
    }
  };
  // started for a request that never came (its sender died): do not linger
  setTimeout(exitWhenIdle, 3_000);
  // SIGTERM: no more lingering; an idle supervisor exits now (its spare and groups removed), one
  // that owns containers as before (they run on, adopted by the next supervisor)
  Deno.addSignalListener("SIGTERM", () => {
    lingerUntil = 0;
    if (owned.size === 0 && busy === 0) return exitWhenIdle();
    dropSpare().finally(() => {
      sweepSpares(root, [...spareGroups]);
      Deno.exit(143);
    });
  });
  while (!exiting) {
    const fd = await acceptAsync(listenFd);
    if (fd < 0) {
      // EINTR, ECONNABORTED, EMFILE: try again shortly; after shutdown, `exiting` ends the loop
      if (!exiting) await sleep(5);
      continue;
    }
    // on its way out: unread, the caller asks again (a foreground run runs its container itself)
    if (exiting || !peerAllowed(fd, rootOwner)) {
      closeFd(fd);
      continue;
    }
    busy++;
    serve(root, fd, owned, exitWhenIdle)
      .catch((e) => diagnose(root, `request: ${(e as Error).stack ?? e}`))
      .finally(() => {
        try {
          closeFd(fd);
        } catch { /* closed */ }
        busy--;
        exitWhenIdle();
      });
  }
  await new Promise(() => {}); // exitWhenIdle() exits once the spare is gone
  return 0;
};

export default supervisor;
