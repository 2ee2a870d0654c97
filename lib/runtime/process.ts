// Running a created container in the foreground: the parent's half of the process model.
//
//   stage.ts: unshare(CLONE_NEWPID) → spawn `skiff __init FIFO` (PID 1 of the new namespace) → setns
//   back; meanwhile the CLI creates the container and its cgroups; then here: join the cgroups →
//   record "running" → send the spec through the FIFO (the go signal) → forward signals (and pump
//   the pty with -t) → wait → record "exited" (or remove with --rm).

import { close, kill } from "../../ffi/libc.ts";
import {
  containerLockPath,
  processStartTime,
  removeContainerDir,
  updateContainerSync,
} from "../state/containers.ts";
import { exists, withLockSync } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { capabilityMask } from "./caps.ts";
import { mergeEnv } from "./container.ts";
import { PtyMaster, rawStdin } from "./pty.ts";
import { abortInitStage, type InitStage, removeQuietly, writeAll } from "./stage.ts";
import { DEFAULT_PATH, DEFAULT_SHM_SIZE, type InitSpec } from "./spec.ts";

/** What the runtime needs of a container's cgroup (lib/cgroups/mod.ts's ContainerCgroup). */
export interface CgroupHandle {
  addProcess(pid: number): void;
  oomKilled(): boolean;
  destroy(): void;
}

export interface RunOutcome {
  /** The container's exit code (128+N when killed by signal N), or the init stage's failure code. */
  exitCode: number;
  /** Set when the container's process never started: one line, docker's wording. */
  error?: string;
}

/** Signals `skiff run` passes on to the container (docker's sig-proxy forwards these and more). */
const FORWARDED_SIGNALS: Deno.Signal[] = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGALRM",
  "SIGCONT",
];
const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

const join = (dir: string, name: string) => `${dir}/${name}`;

function initSpec(root: StateRoot, record: ContainerRecord, ttySlave: string | undefined): InitSpec {
  const dir = root.container(record.Id);
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${record.Config.Hostname}`];
  if (record.Config.Tty) base.push("TERM=xterm");
  const host = record.HostConfig;
  return {
    containerDir: dir,
    lowerDirs: record.LowerDirs,
    upperDir: join(dir, "upper"),
    workDir: join(dir, "work"),
    mergedDir: join(dir, "merged"),
    errorFile: join(dir, "init-error"),
    hostname: record.Config.Hostname,
    args: [record.Path, ...record.Args],
    env: mergeEnv(base, record.Config.Env),
    workingDir: record.Config.WorkingDir || "/",
    user: record.Config.User,
    groupAdd: host.GroupAdd ?? [],
    ttySlave,
    privileged: host.Privileged,
    readOnlyRootfs: host.ReadonlyRootfs,
    shmSize: host.ShmSize || DEFAULT_SHM_SIZE,
    tmpfs: Object.entries(host.Tmpfs ?? {}).map(([path, options]) => ({ path, options })),
    mounts: (record.Mounts ?? []).filter((m) => m.Type !== "tmpfs").map((m) => ({
      source: m.Source,
      destination: m.Destination,
      readOnly: !m.RW,
      // docker copies the image's files into an empty volume, never into a bind
      copyUp: m.Type === "volume" && !m.Mode.split(",").includes("nocopy"),
    })),
    capabilities: capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], host.Privileged).toString(),
    maskedPaths: host.MaskedPaths,
    readonlyPaths: host.ReadonlyPaths,
  };
}

/** Saves a state change unless another skiff removed the container meanwhile (rm -f). */
function updateRecord(root: StateRoot, id: string, change: (r: ContainerRecord) => void): void {
  try {
    updateContainerSync(root, id, change);
  } catch { /* the record is gone or unreadable: the exit code still reaches the caller */ }
}

/** --rm: the container's directory goes, with the lock file of its record and its anonymous volumes. */
async function removeContainer(root: StateRoot, record: ContainerRecord): Promise<void> {
  const lock = containerLockPath(root, record.Id);
  withLockSync(lock, () => removeContainerDir(root, record.Id));
  try {
    Deno.removeSync(lock);
  } catch { /* removed by another skiff */ }
  if (record.Mounts?.some((m) => m.Type === "volume")) {
    const { removeAnonymousVolumes } = await import("../volume/store.ts");
    await removeAnonymousVolumes(root, record);
  }
}

function readInitError(path: string): { code: number; message: string } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path).trim();
  } catch {
    return undefined;
  }
  const m = /^(\d+) (.*)$/s.exec(text);
  return m ? { code: Number(m[1]), message: m[2] } : undefined;
}

function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

/**
 * Runs a created container in the foreground with skiff's own stdio and returns when it has exited.
 * `stage` comes from startInitStage(); `cgroup` is already created with the container's limits and
 * is destroyed here.
 */
export interface ForegroundOptions {
  /** lib/cgroups containerCgroupView: mounted at /sys/fs/cgroup in the container. */
  cgroupView?: InitSpec["cgroupView"];
  /** docker's --sig-proxy (default true): pass skiff's signals on to the container. */
  signalProxy?: boolean;
}

export async function runForeground(
  root: StateRoot,
  record: ContainerRecord,
  cgroup: CgroupHandle | undefined,
  stage: InitStage,
  options: ForegroundOptions = {},
): Promise<RunOutcome> {
  const id = record.Id;
  const dir = root.container(id);
  const tty = record.Config.Tty;
  const interactive = record.Config.OpenStdin;
  const child = stage.child;
  let pty: PtyMaster | undefined;

  try {
    const spec = initSpec(root, record, undefined);
    spec.cgroupView = options.cgroupView;
    if (tty) {
      pty = PtyMaster.open();
      spec.ttySlave = pty.slavePath;
      pty.syncWindowSize();
    }
    cgroup?.addProcess(child.pid);
    updateRecord(root, id, (r) => {
      r.State = {
        ...r.State,
        Status: "running",
        Running: true,
        Pid: child.pid,
        PidStartTime: processStartTime(child.pid),
        MonitorPid: Deno.pid,
        StartedAt: new Date().toISOString(),
        ExitCode: 0,
        Error: "",
      };
    });
    // the spec goes into a file (no size limit), its path through the FIFO is the go signal
    const specPath = join(dir, "init.json");
    Deno.writeTextFileSync(specPath, JSON.stringify(spec));
    writeAll(stage.fifoFd, new TextEncoder().encode(specPath + "\n"));
  } catch (e) {
    await abortInitStage(stage);
    pty?.close();
    cgroup?.destroy();
    if (record.HostConfig.AutoRemove) await removeContainer(root, record);
    else for (const file of ["init-error", "init.json"]) removeQuietly(join(dir, file));
    throw e;
  }

  const running = child;
  const forward = (signal: Deno.Signal) => () => {
    try {
      kill(running.pid, SIGNAL_NUMBERS[signal]!);
    } catch { /* exited meanwhile */ }
  };
  const listeners = options.signalProxy === false
    ? []
    : FORWARDED_SIGNALS.map((s) => [s, forward(s)] as const);
  for (const [s, fn] of listeners) Deno.addSignalListener(s, fn);
  let restoreStdin = () => {};
  let output: Promise<void> | undefined;
  const onWinch = () => pty?.syncWindowSize();
  if (pty) {
    Deno.addSignalListener("SIGWINCH", onWinch);
    output = pty.pumpOutput();
    if (interactive) {
      restoreStdin = rawStdin();
      pty.pumpInput();
    }
  }

  const status = await running.status;
  close(stage.fifoFd);
  removeQuietly(stage.fifoPath);
  for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
  if (pty) {
    Deno.removeSignalListener("SIGWINCH", onWinch);
    pty.releaseSlave();
    // what the container wrote last is still in the pty: drain it, but never hang on it
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([output, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    restoreStdin();
    pty.close();
  }

  const initError = readInitError(join(dir, "init-error"));
  const exitCode = initError?.code ?? exitCodeOf(status);
  let oomKilled = false;
  try {
    oomKilled = cgroup?.oomKilled() ?? false;
  } finally {
    cgroup?.destroy();
  }
  if (record.HostConfig.AutoRemove) {
    await removeContainer(root, record);
  } else if (exists(dir)) {
    for (const file of ["init-error", "init.json"]) removeQuietly(join(dir, file));
    updateRecord(root, id, (r) => {
      r.State = {
        ...r.State,
        // docker leaves a container whose process never started in "created"
        Status: initError ? "created" : "exited",
        Running: false,
        Pid: 0,
        ExitCode: exitCode,
        Error: initError?.message ?? "",
        OOMKilled: oomKilled,
        FinishedAt: new Date().toISOString(),
      };
    });
  }
  return { exitCode, error: initError?.message };
}
