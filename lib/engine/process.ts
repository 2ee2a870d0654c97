// Running a created container in the foreground: the parent's half of the process model.
//
//   stage.ts: fork PID 1 of a new PID namespace (a syscall program that waits); meanwhile the CLI
//   creates the container and its cgroups; then here: skiff sets up the rootfs while the cgroups
//   are joined and "running" is recorded → the go (PID 1's last
//   program) → forward signals (and pump the pty with -t) → wait → record "exited" (or remove
//   with --rm).

import { close, closeAsync, dupAbove, kill } from "../../ffi/libc.ts";
import { isProcessAlive, processStartTime, transition } from "../state/containers.ts";
import { containerEvent } from "../state/events.ts";
import { exists } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { capabilityMask } from "../runtime/caps.ts";
import { containerConfinement } from "../seccomp/mod.ts";
import { mergeEnv } from "../runtime/container.ts";
import type { JsonLogWriter } from "../runtime/logs.ts";
import type { PtyMaster } from "../runtime/pty.ts";
import {
  abortInitStage,
  type InitStage,
  removeQuietly,
  setUpStage,
  startContainer,
} from "../runtime/stage.ts";
import { PROXIED_SIGNALS, SIGNAL_NUMBERS } from "../runtime/signals.ts";
import { mountsFor } from "../runtime/mountplan.ts";
import { rlimitSettings } from "../runtime/process_limits.ts";
import { hostDevices } from "../cgroups/devices.ts";
import { blkioDeviceProblem } from "../cgroups/limits.ts";
import {
  DEFAULT_NAMESPACES,
  DEFAULT_PATH,
  DEFAULT_SHM_SIZE,
  type InitSpec,
  plainNetworkNamespaces,
} from "../runtime/spec.ts";
import { type ByteSink, type ContainerIO, copyOutput, feedInput } from "../runtime/stdio.ts";
// resources.ts and network.ts (the bridge, netlink and NAT code: ~130 KB) load when needed: a run
// with --network none or host needs neither (releaseCodeFor), the resource list only once its
// container runs
import type { CgroupHandle } from "./resources_core.ts";
import type { ContainerNetwork } from "./network.ts";
import { prepareNamespaces } from "./namespaces.ts";
import { probeCommand, startingHealth } from "./health_state.ts";

export interface RunOutcome {
  /** The container's exit code (128+N when killed by signal N), or the init stage's failure code. */
  exitCode: number;
  /** Set when the container's process never started: one line, docker's wording. */
  error?: string;
  /** The error is in docker's daemon's own words (a user lookup), not its runtime's. */
  daemonError?: boolean;
}

const join = (dir: string, name: string) => `${dir}/${name}`;

/**
 * The command's environment as docker's CreateDaemonEnvironment makes it: PATH, HOSTNAME, TERM (-t),
 * `--link`'s variables, each replaced or followed by Config.Env's.
 */
function containerEnv(record: ContainerRecord, linkEnv: string[] = []): string[] {
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${record.Config.Hostname}`];
  if (record.Config.Tty) base.push("TERM=xterm");
  return mergeEnv([...base, ...linkEnv], record.Config.Env);
}

function initSpec(root: StateRoot, record: ContainerRecord): InitSpec {
  const dir = root.container(record.Id);
  const host = record.HostConfig;
  const mounts = mountsFor(record, record.LowerDirs, dir);
  return {
    containerDir: dir,
    namespaces: [...DEFAULT_NAMESPACES],
    lowerDirs: mounts.rootfs.lowerDirs,
    upperDir: mounts.rootfs.upperDir!,
    workDir: mounts.rootfs.workDir!,
    mergedDir: mounts.rootfs.target,
    errorFile: join(dir, "init-error"),
    hostname: record.Config.Hostname,
    domainname: record.Config.Domainname,
    args: [record.Path, ...record.Args],
    env: containerEnv(record),
    workingDir: record.Config.WorkingDir || "/",
    user: record.Config.User,
    groupAdd: host.GroupAdd ?? [],
    nullStdin: !record.Config.OpenStdin && !record.Config.Tty,
    privileged: host.Privileged,
    readOnlyRootfs: host.ReadonlyRootfs,
    shmSize: host.ShmSize || DEFAULT_SHM_SIZE,
    volatileRootfs: host.AutoRemove || undefined,
    tmpfs: mounts.tmpfs,
    mounts: mounts.binds,
    capabilities: capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], host.Privileged).toString(),
    maskedPaths: host.MaskedPaths,
    readonlyPaths: host.ReadonlyPaths,
    ...processLimits(host),
    init: host.Init === true,
  };
}

/** Whether the container's writes are throttled (--device-write-bps/-iops): see holdRootUntilReleased. */
export function throttlesWrites(host: ContainerRecord["HostConfig"]): boolean {
  return !!(host.BlkioDeviceWriteBps?.length || host.BlkioDeviceWriteIOps?.length);
}

/**
 * Keeps a reference to the container's overlay mount (an O_PATH fd of its root) until the cgroup's
 * release, then drops it. The overlay's last unmount syncs the filesystem of its upper layer (the
 * host's), in whoever drops the last reference: the container's last process when its mount
 * namespace dies with it, so inside its cgroup, at its own --device-write-bps. At 10k/s here that
 * held the dying process in D state for over 20 s (rm -f gave up: "still in the container's cgroup
 * after SIGKILL"); docker's daemon unmounts the root itself, outside the container's cgroup. Held
 * here, the sync runs when this process closes the fd, after the cgroup is gone, on a thread of
 * Deno's pool: on the JS thread it froze the supervisor (every container's logs, every request) for
 * as long as the host's dirty data took to write, 38 s behind another throttled writer. `held` is a
 * root fd or, after a supervisor's restart, the container's mount namespace (adopt.ts).
 */
export function holdRootUntilReleased(cgroup: CgroupHandle, held: number): void {
  const destroy = cgroup.destroy.bind(cgroup);
  let holding = true;
  cgroup.destroy = async () => {
    try {
      await destroy();
    } finally {
      // once: the number may be another fd's after
      if (holding) closeAsync(held).catch(() => {});
      holding = false;
    }
  };
}

/** --ulimit, --sysctl, --oom-score-adj and --device's nodes (read from the host now, as docker does). */
function processLimits(host: ContainerRecord["HostConfig"]): Partial<InitSpec> {
  const out: Partial<InitSpec> = {};
  if (host.Ulimits?.length) out.rlimits = rlimitSettings(host.Ulimits);
  if (host.Sysctls && Object.keys(host.Sysctls).length) out.sysctls = host.Sysctls;
  if (host.OomScoreAdj) out.oomScoreAdj = host.OomScoreAdj;
  // --privileged: docker gives every host device already; the mapped ones are made all the same
  if (host.Devices?.length) out.devices = host.Devices.flatMap(hostDevices);
  // --blkio-weight-device, --device-*-bps/iops: their cgroup lines left out a path that cannot
  // be stat'ed; the start fails here with docker's error, once the container exists
  const blkioProblem = blkioDeviceProblem(host);
  if (blkioProblem) throw blkioProblem;
  return out;
}

/** Saves a state change (and its event) unless another skiff removed the container meanwhile (rm -f). */
function updateRecord(
  root: StateRoot,
  id: string,
  action: string,
  change: (r: ContainerRecord) => void,
  attributes?: (r: ContainerRecord) => Record<string, string>,
): void {
  try {
    transition(root, id, action, change, attributes);
  } catch { /* the record is gone or unreadable: the exit code still reaches the caller */ }
}

/**
 * What a run's end releases with: the resource list without the network's code (~130 KB of modules)
 * for a container without an endpoint of its own (--network none or host), else all of it.
 */
export function releaseCodeFor(record: ContainerRecord | undefined) {
  return record && plainNetworkNamespaces(record.HostConfig.NetworkMode)
    ? import("./resources_core.ts")
    : import("./resources.ts");
}

/** --rm: the container's directory goes, with the lock file of its record and its anonymous volumes. */
async function removeContainer(root: StateRoot, record: ContainerRecord): Promise<void> {
  const { releaseAndRemove } = await releaseCodeFor(record);
  await releaseAndRemove({ root, id: record.Id, record, removeVolumes: true }, {
    exitReleased: true,
    onRemoved: () => containerEvent(root, record, "destroy"),
  });
}

function readInitError(path: string): { code: number; message: string; daemon: boolean } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path).trim();
  } catch {
    return undefined;
  }
  const m = /^(\d+)(!?) (.*)$/s.exec(text);
  return m ? { code: Number(m[1]), message: m[3], daemon: m[2] === "!" } : undefined;
}

function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

export interface LaunchOptions {
  /** lib/cgroups containerCgroupView: mounted at /sys/fs/cgroup in the container. */
  cgroupView?: InitSpec["cgroupView"];
  /**
   * PID 1's cgroup join, started by the caller (the foreground run starts it right after the fork):
   * skiff sets up the rootfs while it completes; PID 1 becomes the container only after.
   */
  cgroupJoin?: Promise<void>;
  /** The caller's terminal follows the container's pty (window size). */
  terminal?: boolean;
  /** run -d / start: the container outlives the launching process (see monitor.ts). */
  detached?: boolean;
  /**
   * The network, set up by the caller already (the foreground run does it while its cgroup join
   * waits for the kernel), or why that failed: launch fails then as if it had tried itself.
   */
  network?: ContainerNetwork | Error;
  /** Detached, without -t: the output pipes PID 1 takes for fds 1 and 2 (engine/output.ts). */
  outputPipes?: InitSpec["outputPipes"];
  /**
   * Called right before the go, with the pty (-t): whatever must see the container's first byte
   * or name its fds while they are still skiff's (the supervisor's attach hub and output pumps).
   */
  beforeGo?: (pty: PtyMaster | undefined) => void;
}

/**
 * Sets a waiting init stage up: joins the cgroup, records "running" with this process as the
 * monitor, and gives the go. With -t, returns the pty master whose slave the container gets. On
 * failure everything is undone (the stage killed, the cgroup destroyed, --rm honoured) and it throws.
 */
export async function launchContainer(
  root: StateRoot,
  record: ContainerRecord,
  cgroup: CgroupHandle | undefined,
  stage: InitStage,
  options: LaunchOptions = {},
): Promise<PtyMaster | undefined> {
  const id = record.Id;
  const dir = root.container(id);
  const child = stage.child;
  let pty: PtyMaster | undefined;
  let master: number | undefined;
  try {
    const spec: InitSpec = initSpec(root, record);
    spec.cgroupView = options.cgroupView;
    spec.detached = options.detached;
    if (record.Config.Tty) spec.console = true; // the setup makes the pty in the container's devpts
    // the first cgroup.procs write waits ~10-20 ms for an RCU grace period: PID 1 waits for its
    // last program until the join is done, while skiff sets up the rootfs; nothing of the
    // container runs before the join
    // (the supervisor starts it here, before the setup: started after, its grace period was on
    // the critical path of every run -d)
    const joining = options.cgroupJoin ??
      (options.detached === true ? cgroup?.addProcessAsync?.(child.pid) : undefined);
    joining?.catch(() => {}); // awaited below; a failure before that is the one reported
    if (!joining) cgroup?.addProcess(child.pid);
    // the network before the setup: it joins the namespace made (or named) here
    if (options.network instanceof Error) throw options.network;
    const network = options.network ?? (await import("./network.ts")).setupNetwork(root, record);
    if (network.linkEnv) spec.env = containerEnv(record, network.linkEnv);
    // --ipc, --uts, --cgroupns on top of the network's (engine/namespaces.ts)
    const modes = await prepareNamespaces(root, record, network.namespaces);
    spec.namespaces = modes.namespaces;
    spec.shm = modes.shm;
    // the rootfs while the cgroup join waits for the kernel, and the seccomp filter, the ports and
    // the "running" record while PID 1 joins the namespaces and mounts its proc
    const setup = setUpStage(stage, spec);
    setup.catch(() => {}); // awaited below; a failure before that is the one reported
    const confinement = await containerConfinement(record.HostConfig, root.path);
    // nothing to publish without an endpoint of its own (none, host, container:NAME)
    const published = network.endpoint
      ? (await import("./network.ts")).publishPorts(root, record, network.endpoint)
      : undefined;
    updateRecord(root, id, "start", (r) => {
      if (network.endpoint) r.NetworkEndpoint = network.endpoint;
      else delete r.NetworkEndpoint;
      if (network.extraEndpoints) r.ExtraEndpoints = network.extraEndpoints;
      else delete r.ExtraEndpoints;
      if (published) r.PublishedPorts = published;
      else delete r.PublishedPorts;
      r.State = {
        ...r.State,
        Status: "running",
        Running: true,
        Paused: false,
        Restarting: false,
        Pid: child.pid,
        PidStartTime: processStartTime(child.pid),
        MonitorPid: Deno.pid,
        MonitorStartTime: processStartTime(Deno.pid),
        StartedAt: new Date().toISOString(),
        ExitCode: 0,
        Error: "",
        // docker's initHealthMonitor: a container with a probe starts as "starting"
        ...(probeCommand(r.Config) ? { Health: startingHealth(r.State.Health) } : {}),
      };
    });
    const ready = await setup;
    if (joining) {
      try {
        await joining;
      } catch (e) {
        // a stage that failed its setup is gone already (a zombie cannot join: ESRCH): its init
        // error says why, not this
        if (ready.ok && isProcessAlive(child.pid, undefined)) throw e;
      }
    }
    if (!ready.ok) return undefined; // PID 1 was killed: its init error says why
    if (cgroup && throttlesWrites(record.HostConfig)) {
      holdRootUntilReleased(cgroup, dupAbove(ready.rootFd, 3));
    }
    master = ready.console?.master;
    if (master !== undefined) {
      // loaded for -t only: a run without a terminal never needs it
      pty = (await import("../runtime/pty.ts")).PtyMaster.adopt(master);
      // the caller's window size before anything of the command runs
      if (!options.detached && options.terminal !== false) pty.syncWindowSize();
    }
    options.beforeGo?.(pty);
    startContainer(stage, spec, ready, { confinement, outputPipes: options.outputPipes });
    return pty;
  } catch (e) {
    await abortInitStage(stage);
    if (pty) pty.close();
    else if (master !== undefined) close(master);
    await cgroup?.destroy();
    if (!cgroup) (await import("./resources.ts")).releaseNetwork(root, id);
    if (record.HostConfig.AutoRemove) await removeContainer(root, record);
    else for (const file of ["init-error", "init.json"]) removeQuietly(join(dir, file));
    throw e;
  }
}

/**
 * After the init stage exited: reads why (init error or exit status), tears the cgroup down and
 * records the exit, or removes the container (--rm).
 */
export async function finishContainer(
  root: StateRoot,
  record: ContainerRecord,
  cgroup: CgroupHandle | undefined,
  status: Deno.CommandStatus,
): Promise<RunOutcome> {
  const id = record.Id;
  const dir = root.container(id);
  const initError = readInitError(join(dir, "init-error"));
  const exitCode = initError?.code ?? exitCodeOf(status);
  let oomKilled = false;
  try {
    oomKilled = cgroup?.oomKilled() ?? false;
  } finally {
    await cgroup?.destroy();
  }
  if (oomKilled) containerEvent(root, record, "oom");
  if (record.HostConfig.AutoRemove) {
    containerEvent(root, record, "die", { exitCode: String(exitCode) });
    await removeContainer(root, record);
  } else if (exists(dir)) {
    for (const file of ["init-error", "init.json"]) removeQuietly(join(dir, file));
    updateRecord(root, id, "die", (r) => {
      r.State = {
        ...r.State,
        // docker leaves a container whose process never started in "created"
        Status: initError ? "created" : "exited",
        Running: false,
        Paused: false,
        Pid: 0,
        ExitCode: exitCode,
        Error: initError?.message ?? "",
        OOMKilled: oomKilled,
        FinishedAt: new Date().toISOString(),
        // docker 20.10 marks a health check whose monitor stopped unhealthy ("for compatibility")
        ...(r.State.Health ? { Health: { ...r.State.Health, Status: "unhealthy" as const } } : {}),
      };
      delete r.NetworkEndpoint; // released with the cgroup ("exit" resources)
      delete r.ExtraEndpoints; // network connect's, released with it
      delete r.PublishedPorts;
    }, () => ({ exitCode: String(exitCode) }));
  }
  return { exitCode, error: initError?.message, daemonError: initError?.daemon || undefined };
}

/** Waits (bounded) for a pump of the container's output to deliver what is left. */
export async function drain(output: Promise<void> | undefined, ms = 2000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([output, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export interface ForegroundOptions {
  /** lib/cgroups containerCgroupView: mounted at /sys/fs/cgroup in the container. */
  cgroupView?: InitSpec["cgroupView"];
  /** docker's --sig-proxy (default true): pass skiff's signals on to the container. */
  signalProxy?: boolean;
  /** Tee the container's output (its pipes, or the pty with -t) into the json log. */
  keepLog?: boolean;
  /** The stage's cgroup join under way (LaunchOptions.cgroupJoin). */
  cgroupJoin?: Promise<void>;
  /** See LaunchOptions.network. */
  network?: ContainerNetwork | Error;
  /** Where the container's stdio goes (the CLI: callerIO()). */
  io: ContainerIO;
}

/** Writes a chunk to the caller; false once the caller's end is closed. */
async function writeAllTo(sink: ByteSink, chunk: Uint8Array): Promise<boolean> {
  try {
    for (let written = 0; written < chunk.length;) written += await sink.write(chunk.subarray(written));
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a created container in the foreground with skiff's own stdio and returns when it has exited.
 * `stage` comes from startInitStage(); `cgroup` is already created with the container's limits and
 * is destroyed here.
 */
export async function runForeground(
  root: StateRoot,
  record: ContainerRecord,
  cgroup: CgroupHandle | undefined,
  stage: InitStage,
  options: ForegroundOptions,
): Promise<RunOutcome> {
  const io = options.io;
  let pty;
  try {
    pty = await launchContainer(root, record, cgroup, stage, {
      cgroupView: options.cgroupView,
      cgroupJoin: options.cgroupJoin,
      network: options.network,
      terminal: io.terminal,
    });
  } catch (e) {
    // launchContainer undid the rest; the record must not stay "running" (the cgroup join can fail
    // after it was written), as the supervisor records a detached one's failed start
    if (!record.HostConfig.AutoRemove) {
      try {
        transition(root, record.Id, null, (r) => {
          if (!r.State.Running || r.State.MonitorPid !== Deno.pid) return false;
          Object.assign(r.State, { Status: "exited", Running: false, Pid: 0, Error: (e as Error).message });
        });
      } catch { /* removed meanwhile */ }
    }
    throw e;
  }
  const running = stage.child;
  // what the run's end releases with (resources.ts), loaded while the container runs
  releaseCodeFor(record).catch(() => {});
  // its health check, probed by this process as docker's daemon would (loaded only for one)
  const health = probeCommand(record.Config)
    ? (await import("./health.ts")).HealthMonitor.start(root, record.Id)
    : undefined;
  const forward = (signal: Deno.Signal) => () => {
    try {
      kill(running.pid, SIGNAL_NUMBERS[signal]!);
    } catch { /* exited meanwhile */ }
  };
  const listeners = options.signalProxy === false ? [] : PROXIED_SIGNALS.map((s) => [s, forward(s)] as const);
  for (const [s, fn] of listeners) Deno.addSignalListener(s, fn);
  let restoreStdin = () => {};
  let output: Promise<void> | undefined;
  // without -t the container's stdout/stderr are pipes skiff copies (see run.ts), stdin with -i too
  const piped = stage.outputPiped;
  let log: JsonLogWriter | undefined;
  if (options.keepLog && (piped || pty)) {
    const { JsonLogWriter, logPath, logSettings } = await import("../runtime/logs.ts");
    log = new JsonLogWriter(logPath(root, record.Id), logSettings(record));
  }
  const pipes = piped
    ? [
      copyOutput(running.stdout, io.stdout, log && { writer: log, stream: "stdout" }),
      copyOutput(running.stderr, io.stderr, log && { writer: log, stream: "stderr" }),
    ]
    : [];
  if (stage.inputPiped) feedInput(running.stdin.getWriter(), io.stdin);
  const onWinch = () => pty?.syncWindowSize();
  if (pty) {
    if (io.terminal) Deno.addSignalListener("SIGWINCH", onWinch);
    let callerOpen = true;
    const ptyLog = log;
    output = ptyLog
      ? pty.pumpOutput(async (chunk) => {
        ptyLog.write("stdout", chunk);
        if (callerOpen) callerOpen = await writeAllTo(io.stdout, chunk);
      })
      : pty.pumpOutput(undefined, io.stdout);
    if (record.Config.OpenStdin) {
      if (io.terminal) restoreStdin = (await import("../runtime/pty.ts")).rawStdin();
      pty.pumpInput(io.stdin);
    }
  }

  const status = await running.status;
  health?.stop();
  for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
  if (pty) {
    if (io.terminal) Deno.removeSignalListener("SIGWINCH", onWinch);
    // what the container wrote last is still in the pty: drain it, but never hang on it
    await drain(output);
    restoreStdin();
    pty.close();
  }
  // every byte the container wrote reaches the caller and the log before the exit is recorded
  await Promise.all(pipes.map((p) => p.done));
  log?.close();
  return await finishContainer(root, record, cgroup, status);
}
