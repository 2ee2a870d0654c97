// `exec`: a new process in a running container. `skiff exec` makes everything from the container's
// stored configuration: the capabilities from HostConfig (CapAdd, CapDrop, Privileged) and exec's own
// --privileged, the user from -u or Config.User (looked up in the container's root through a
// directory fd), the cgroups from the container's id. Nothing that decides the new process's
// privileges or paths is read from the container's processes. It then plans the way in as a syscall
// program (exec_program.ts) that a fork of its own runs in machine code; skiff copies the command's
// stdio through pipes (docker's attach: the container never gets the caller's own files or terminal)
// or a pty, and returns its exit code.

import { findContainer, isRunning, monitorAlive, processStartTime } from "../state/containers.ts";
import { type ErrorKind, SkiffError, withExitCode } from "../errors.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { hostConfinement, type StageConfinement } from "./confine.ts";
import { capabilityMask } from "./caps.ts";
import { readMountInfo } from "../mountinfo.ts";
import { cgroupParentPath } from "../cgroups/parent.ts";
import { DEFAULT_PATH, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED } from "./spec.ts";
import {
  AT_FDCWD,
  bindLibc,
  close,
  dupAbove,
  exitStatusNow,
  O,
  open,
  pidfdOpen,
  pipe,
  readAsync,
  readSome,
  sealedEmptyMemfd,
  setNonBlocking,
  spliceNow,
  strerror,
  SYSCALLS,
  waitForExitAsync,
  writeAsync,
} from "../../ffi/libc.ts";
import { forkProgram, mapProgram, rseqRegistration, unmapProgram } from "../../ffi/exec_program.ts";
import { CLONE } from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import { releaseReopen, statAt, statPath } from "../fs/at.ts";
import { resolveUser } from "./user.ts";
import { containerNull, lookPath } from "./lookpath.ts";
import { RLIMIT_NUMBERS } from "./process_limits.ts";
import {
  decodeRecord,
  encodeProgram,
  type ExecPlan,
  type ExecProgram,
  planExecProgram,
} from "./exec_program.ts";
import { type ByteSink, type ByteSource, drainAfterExit, type OutputCopy, sleep } from "./stdio.ts";
import type { PtyMaster } from "./pty.ts";
import { poller } from "./poller.ts";

/** How the command's stdio is made: pipes to skiff (docker's attach), a pty, or nothing (-d). */
export type ExecStdio = "pipes" | "tty" | "detached";

export interface ExecRequest {
  /** argv, not yet resolved against PATH. */
  command: string[];
  /** -e/--env-file entries (KEY=VALUE), applied over the container's Config.Env. */
  env: string[];
  /** -w; the container's WorkingDir (or /) when absent. */
  workingDir?: string;
  /** -u; the container's Config.User when absent. */
  user?: string;
  privileged: boolean;
  tty: boolean;
}

/** A container refused for exec: docker's CLI reports it with exit code 1. */
export class ExecRefused extends SkiffError {
  static override readonly defaultKind: ErrorKind = "conflict";
  constructor(message: string) {
    super(message, 1);
  }
}

/**
 * The container to exec into: running and not paused, else docker's errors. Its record as it truly
 * is (reconcile.ts), which only loads when the record's monitor is gone: reconcile leaves a record
 * with a live monitor as it is.
 */
export async function execTarget(root: StateRoot, ref: string): Promise<ContainerRecord> {
  let record = findContainer(root, ref);
  if (!monitorAlive(record)) record = (await import("../state/reconcile.ts")).reconcile(root, record);
  if (!isRunning(record)) throw new ExecRefused(`Container ${record.Id} is not running`);
  if (record.State.Paused) {
    throw new ExecRefused(`Container ${record.Id} is paused, unpause the container before exec`);
  }
  return record;
}

/**
 * The container's environment with exec's -e on top (same key: exec wins), HOME from the user;
 * `--link`'s variables first, under Config.Env (docker's CreateDaemonEnvironment).
 */
export function execEnvironment(
  record: ContainerRecord,
  extra: string[],
  home: string | undefined,
  tty: boolean,
  linkEnv: string[] = [],
): string[] {
  const byKey = new Map<string, string>();
  const key = (entry: string) => entry.includes("=") ? entry.slice(0, entry.indexOf("=")) : entry;
  for (const entry of [...linkEnv, ...(record.Config.Env ?? []), ...extra]) byKey.set(key(entry), entry);
  if (!byKey.has("PATH")) byKey.set("PATH", `PATH=${DEFAULT_PATH}`);
  if (!byKey.has("HOME") && home !== undefined) byKey.set("HOME", `HOME=${home}`);
  if (tty && !byKey.has("TERM")) byKey.set("TERM", "TERM=xterm");
  return [...byKey.values()];
}

// ---- cgroups ----

/** "hierarchy-id:controllers:path" lines of /proc/<pid>/cgroup, keyed by controllers. */
function cgroupPaths(procFile: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of Deno.readTextFileSync(procFile).split("\n")) {
    const first = line.indexOf(":"), second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    out.set(line.slice(first + 1, second), line.slice(second + 1));
  }
  return out;
}

const asSet = (controllers: string) => controllers.split(",").filter(Boolean).sort().join(",");

/** Mount point of each cgroup hierarchy's root in our mount namespace, keyed by its sorted controllers. */
function cgroupMounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of readMountInfo()) {
    if (m.root !== "/") continue; // a hierarchy mounted from a sub-cgroup is not its root
    if (m.fsType === "cgroup2" && !out.has("")) out.set("", m.mountPoint);
    if (m.fsType !== "cgroup") continue;
    const names = m.superOptions.split(",").filter((o) =>
      !["rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"].includes(o) &&
      !o.startsWith("release_agent=")
    );
    const key = asSet(names.join(","));
    if (!out.has(key)) out.set(key, m.mountPoint);
  }
  return out;
}

/**
 * The files that put a process into the container's groups, named by its id under skiff's parent in
 * every hierarchy we are in (as `run` made them): v1 `tasks` ("0" moves only the writing thread and
 * costs no RCU grace period), v2 `cgroup.procs`. Never read from /proc/<pid>/cgroup: the container's
 * PID 1 could have moved.
 */
export function containerCgroupFiles(root: StateRoot, record: ContainerRecord): string[] {
  const id = record.Id;
  // the recorded --cgroup-parent, cleaned as when the groups were made (parent.ts)
  const parent = record.HostConfig.CgroupParent
    ? cgroupParentPath(record.HostConfig.CgroupParent)
    : root.cgroupParent;
  const own = new Map([...cgroupPaths("/proc/thread-self/cgroup")].map(([k, v]) => [asSet(k), v]));
  const files: string[] = [];
  for (const [controllers, mount] of cgroupMounts()) {
    const containerDir = parent ? `${mount}/${parent}/${id}` : `${mount}/${id}`;
    // statx through FFI: Deno.lstatSync builds a FileInfo with dates (~0.1 ms each, 9 hierarchies here)
    if (!own.has(controllers) || statAt(AT_FDCWD, containerDir) === null) continue;
    files.push(`${containerDir}/${controllers === "" ? "cgroup.procs" : "tasks"}`);
  }
  return files;
}

/** The command could not start: runc's wording, docker's exit codes (126, 127). */
export class ExecFailed extends SkiffError {
  constructor(detail: string, exitCode: number) {
    super(
      `OCI runtime exec failed: exec failed: unable to start container process: ${detail}: unknown`,
      exitCode,
    );
  }
}

const NAMESPACES: [string, number][] = [
  ["cgroup", CLONE.NEWCGROUP],
  ["ipc", CLONE.NEWIPC],
  ["uts", CLONE.NEWUTS],
  ["net", CLONE.NEWNET],
  ["pid", CLONE.NEWPID],
  ["mnt", CLONE.NEWNS], // last: it changes the root, and /proc with it
];

/** statx through FFI: Deno.statSync builds a FileInfo with dates, ~0.1 ms each at exec's start. */
function sameFile(a: string, b: string): boolean {
  const x = statPath(a), y = statPath(b);
  if (!x || !y) throw new SkiffError("the container stopped meanwhile", EXIT_SETUP_FAILED);
  return x.key === y.key;
}

/** The caller's side of the command's stdio. */
export interface ExecIO {
  stdin: ByteSource;
  stdout: ByteSink;
  stderr: ByteSink;
  /** The caller's stdin is a terminal to put in raw mode (exec -it). */
  terminal: boolean;
  /** Told the command's pid (our child, not yet reaped) once it is forked: a health probe's timeout kills it. */
  started?(pid: number): void;
  /**
   * For a long-lived caller (the supervisor's health probes): the output is read through the one
   * poller instead of a thread of Deno's pool per pipe, and let go a moment after the command has
   * exited, even if something it left behind still holds the pipe (a `sleep 1000 &` in a probe
   * would otherwise keep two of the pool's 32 threads for as long).
   */
  letGoAfterExit?: boolean;
}

const callerIO = (): ExecIO => ({
  stdin: Deno.stdin,
  stdout: Deno.stdout,
  stderr: Deno.stderr,
  terminal: Deno.stdin.isTerminal(),
});

/**
 * Copies one of the command's output pipes (a raw fd, read on Deno's blocking pool) to the caller's
 * stream, as stdio.ts copyOutput does for a web stream: without web streams, whose first use loads
 * their implementation (~1.5 ms of exec's start). The fd is closed at its end, and when the caller's
 * end is closed (`| head`): the command's next write fails with EPIPE, as with docker.
 */
function copyFd(fd: number, caller: ByteSink): OutputCopy {
  const copy: OutputCopy = { done: Promise.resolve(), writing: false, lastActivity: Date.now() };
  copy.done = (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await readAsync(fd, buf);
        if (n <= 0) return;
        copy.lastActivity = Date.now();
        copy.writing = true;
        try {
          for (let written = 0; written < n;) written += await caller.write(buf.subarray(written, n));
        } catch {
          return;
        } finally {
          copy.writing = false;
          copy.lastActivity = Date.now();
        }
      }
    } finally {
      close(fd);
    }
  })();
  return copy;
}

/**
 * copyFd through the poller (non-blocking reads, no pool thread held while the pipe is quiet), for
 * letGoAfterExit: `letGo()` stops it and closes the fd.
 */
function pollFd(fd: number, caller: ByteSink): OutputCopy & { letGo(): void } {
  let stopped = false;
  setNonBlocking(fd);
  const copy = {
    done: Promise.resolve(),
    writing: false,
    lastActivity: Date.now(),
    letGo() {
      if (stopped) return;
      stopped = true;
      poller.forget(fd);
    },
  };
  copy.done = (async () => {
    const buf = new Uint8Array(64 * 1024);
    let discard = -1; // /dev/null, once the caller keeps no more (a probe's 4096 bytes)
    try {
      while (!stopped) {
        // what the caller no longer keeps is still read, as docker does, but spliced away in the
        // kernel: a probe writing without end costs the supervisor no copy through JavaScript
        const n = discard >= 0 ? spliceNow(fd, discard, 1 << 20) : readSome(fd, buf);
        if (n === 0) return;
        if (n < 0) {
          await poller.readable(fd);
          continue;
        }
        copy.lastActivity = Date.now();
        if (discard >= 0) {
          // and at a pace: a probe that writes without end waits on its full pipe between turns,
          // instead of keeping the supervisor's thread busy (20 ms: a 100 KB burst drains in ~40 ms)
          await sleep(20);
          continue;
        }
        copy.writing = true;
        try {
          for (let written = 0; written < n;) written += await caller.write(buf.subarray(written, n));
        } catch {
          return;
        } finally {
          copy.writing = false;
          copy.lastActivity = Date.now();
        }
        if ((caller as { full?: boolean }).full) discard = open("/dev/null", O.WRONLY | O.CLOEXEC);
      }
    } finally {
      stopped = true;
      close(fd);
      if (discard >= 0) close(discard);
    }
  })();
  return copy;
}

/**
 * Which pid the program may report as the command: our child (CLONE_PARENT), started after the
 * middle, not the container's PID 1, in the container's PID namespace (or a zombie already, whose
 * namespace can no longer be read). A container that holds the error pipe's write end (it needs
 * CAP_SYS_PTRACE) could write any pid there: it must not make skiff wait on, reap or (a health
 * probe's timeout) kill another process, such as another container's PID 1 in the supervisor.
 */
export function commandCheck(middle: number, containerPid: number): (pid: number) => boolean {
  const middleStart = processStat(middle)?.start ?? Infinity;
  const pidNamespace = statPath(`/proc/${containerPid}/ns/pid`)?.key;
  return (pid) => {
    if (pid <= 0 || pid === containerPid || pid === middle) return false;
    const stat = processStat(pid);
    if (!stat || stat.ppid !== Deno.pid || stat.start < middleStart) return false;
    const namespace = statPath(`/proc/${pid}/ns/pid`)?.key;
    return namespace !== undefined ? namespace === pidNamespace : stat.state === "Z";
  };
}

/** /proc/PID/stat's state, parent and start time (clock ticks), or undefined when it is gone. */
function processStat(pid: number): { state: string; ppid: number; start: number } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], ppid: Number(fields[1]), start: Number(fields[19]) };
}

/** waitForExitAsync through the poller (a pidfd): no thread of Deno's pool for as long as it runs. */
async function waitForExitPolled(pid: number): Promise<number> {
  const pidfd = pidfdOpen(pid); // our child, not reaped yet: this very process
  try {
    while (true) {
      const code = exitStatusNow(pid);
      if (code !== undefined) return code;
      await poller.readable(pidfd);
    }
  } finally {
    close(pidfd);
  }
}

/** Copies the caller's stdin into the command's pipe (a raw fd) until it ends, then closes the fd. */
async function feedFd(fd: number, input: ByteSource): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await input.read(buf);
      if (n === null) break;
      for (let done = 0; done < n;) {
        const wrote = await writeAsync(fd, buf.subarray(done, n));
        if (wrote < 0) return; // the command's stdin is closed
        done += wrote;
      }
    }
  } catch {
    /* stdin closed */
  } finally {
    close(fd);
  }
}

/** An fd of ours at 3 or above: the program puts the command's stdio on 0-2 from these. */
function aboveStdio(fd: number): number {
  if (fd >= 3) return fd;
  const copy = dupAbove(fd, 3);
  close(fd);
  return copy;
}

/**
 * Runs `request` in the container: the command's exit code (128 + N for a signal), 0 at once with
 * -d; throws ExecFailed (126, 127) or SkiffError when it could not start.
 */
export async function execInContainer(
  root: StateRoot,
  record: ContainerRecord,
  request: ExecRequest,
  stdio: ExecStdio,
  interactive: boolean,
  confinement: StageConfinement,
  io: ExecIO = callerIO(),
): Promise<number> {
  const host = record.HostConfig;
  const privileged = request.privileged || host.Privileged;
  const pid = record.State.Pid;
  const childFds: number[] = []; // the command's side: closed here once it is forked
  const own = (fd: number) => {
    const high = aboveStdio(fd);
    childFds.push(high);
    return high;
  };
  // --link's variables, read again as docker's exec does (its daemon refuses, exit 1, once a linked
  // container stopped)
  let linkEnv: string[] = [];
  if (record.LinkedContainers?.length) {
    try {
      linkEnv = (await import("../network/linked.ts")).linksAtStart(root, record).env;
    } catch (e) {
      throw e instanceof SkiffError ? withExitCode(e, 1) : e;
    }
  }
  // the pty code only loads for -t
  const ptys = stdio === "tty" ? await import("./pty.ts") : undefined;
  const consoles = stdio === "tty" ? await import("./console.ts") : undefined;
  // every libc symbol of the way in, bound in one dlopen instead of one each on first use
  bindLibc([
    "syscall6",
    "statx",
    "read_async",
    "waitpid_async",
    ...(interactive ? ["write_async" as const] : []),
  ]);
  let errorRead = -1, pty: PtyMaster | undefined;
  const parentEnds: { stdin?: number; stdout?: number; stderr?: number } = {};
  let middle: number, program: ExecProgram;
  let restoreOomScore: (() => void) | undefined;
  const workingDir = request.workingDir || record.Config.WorkingDir || "/";
  try {
    const namespaces: { fd: number; type: number; name: string }[] = [];
    for (const [name, type] of NAMESPACES) {
      const path = `/proc/${pid}/ns/${name}`;
      const ours = statPath(`/proc/self/ns/${name}`);
      if (!ours) continue; // a kind of namespace this kernel does not have
      const theirs = statPath(path);
      if (!theirs) throw new SkiffError("the container stopped meanwhile", EXIT_SETUP_FAILED);
      if (theirs.key === ours.key) continue; // shared with us (nsfs: one inode per namespace)
      namespaces.push({ fd: own(open(path, O.RDONLY | O.CLOEXEC)), type, name });
    }
    // the fds pin the namespaces: make sure they are still the container's
    if (processStartTime(pid) !== record.State.PidStartTime) {
      throw new SkiffError("the container stopped meanwhile", EXIT_SETUP_FAILED);
    }
    // and that PID 1 is the container's command already, not skiff's init stage setting it up: its
    // mount namespace would still have the host's root
    if (sameFile(`/proc/${pid}/root`, "/") || sameFile(`/proc/${pid}/exe`, "/proc/self/exe")) {
      throw new ExecRefused(`Container ${record.Id} is not running`);
    }
    const rootFd = own(open(`/proc/${pid}/root`, O.PATH | O.DIRECTORY | O.CLOEXEC));
    let user;
    try {
      user = resolveUser(request.user ?? record.Config.User ?? "", host.GroupAdd ?? [], rootFd);
    } catch (e) {
      // dockerd's own lookup: its message as is, no runtime wording around it
      throw new SkiffError((e as Error).message, EXIT_NOT_EXECUTABLE);
    } finally {
      releaseReopen(); // the host's /proc/self/fd, opened to read the files
    }
    const baseEnv = execEnvironment(record, request.env, undefined, request.tty, linkEnv);
    const env = baseEnv.some((e) => e.startsWith("HOME=")) ? baseEnv : [...baseEnv, `HOME=${user.home}`];
    const searchPath = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "";
    const path = lookPath(
      rootFd,
      workingDir,
      request.command[0],
      searchPath,
      (m, code) => new ExecFailed(m, code),
    );
    // v2: the middle is forked into the group (clone3 CLONE_INTO_CGROUP) where the kernel can: a
    // write to cgroup.procs waits for an RCU grace period (~5 ms here)
    const cgroupFiles = containerCgroupFiles(root, record);
    const v2File = cgroupFiles.find((f) => f.endsWith("/cgroup.procs"));
    const intoCgroupFd = v2File && !clone3Refused
      ? own(open(v2File.slice(0, -"/cgroup.procs".length), O.RDONLY | O.DIRECTORY | O.CLOEXEC))
      : undefined;
    const cgroupFds = cgroupFiles.filter((f) => f !== v2File || intoCgroupFd === undefined)
      .map((f) => own(open(f, O.WRONLY | O.CLOEXEC)));

    let stdioFds: [number, number, number];
    if (stdio === "tty") {
      const made = consoles!.openContainerPty(rootFd);
      pty = ptys!.PtyMaster.adopt(made.master);
      const slave = own(made.slave);
      pty.syncWindowSize();
      consoles!.giveConsoleTo(slave, user.uid);
      stdioFds = [slave, slave, slave];
    } else if (stdio === "detached") {
      const nullFd = own(containerNull(rootFd));
      stdioFds = [nullFd, nullFd, nullFd];
    } else {
      let stdinFd: number;
      if (interactive) {
        const [r, w] = pipe();
        stdinFd = own(r);
        parentEnds.stdin = w;
      } else stdinFd = own(containerNull(rootFd));
      const [outR, outW] = pipe(), [errR, errW] = pipe();
      parentEnds.stdout = outR;
      parentEnds.stderr = errR;
      stdioFds = [stdinFd, own(outW), own(errW)];
    }
    const [r, w] = pipe();
    errorRead = r;
    const errorFd = own(w);
    const pidNamespace = namespaces.find((n) => n.type === CLONE.NEWPID);
    const plan: ExecPlan = {
      sys: SYSCALLS,
      rseq: rseqRegistration(),
      exeFd: own(sealedEmptyMemfd("skiff-exec")),
      cgroupFds,
      intoCgroupFd,
      namespaces: namespaces.filter((n) => n !== pidNamespace),
      pidNamespaceFd: pidNamespace?.fd,
      workingDir,
      stdio: stdioFds,
      errorFd,
      tty: stdio === "tty",
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      capabilities: capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], privileged),
      privileged,
      ...hostConfinement(confinement),
      path,
      argv: request.command,
      env,
      setupFailed: EXIT_SETUP_FAILED,
      notFound: EXIT_NOT_FOUND,
      notExecutable: EXIT_NOT_EXECUTABLE,
      rlimits: host.Ulimits?.map((u) => ({
        resource: RLIMIT_NUMBERS[u.Name],
        soft: BigInt(u.Soft),
        hard: BigInt(u.Hard),
      })),
    };
    program = planExecProgram(plan);
    // --oom-score-adj: the middle and the command inherit skiff exec's own score at the fork
    restoreOomScore = host.OomScoreAdj ? takeOomScoreAdj(host.OomScoreAdj) : undefined;
    try {
      middle = fork(program);
    } catch (e) {
      // clone3 or CLONE_INTO_CGROUP unknown to this kernel (before 5.7): the middle writes cgroup.procs
      if (!(e instanceof SysError) || ![7, 22, 38].includes(e.errno) || plan.intoCgroupFd === undefined) {
        throw e;
      }
      clone3Refused = true;
      plan.cgroupFds = [...plan.cgroupFds, own(open(v2File!, O.WRONLY | O.CLOEXEC))];
      plan.intoCgroupFd = undefined;
      program = planExecProgram(plan);
      middle = fork(program);
    }
  } catch (e) {
    for (const fd of [errorRead, ...Object.values(parentEnds)]) if (fd >= 0) close(fd);
    pty?.close();
    throw e;
  } finally {
    for (const fd of childFds) close(fd);
    restoreOomScore?.();
  }

  // what the program says: the command's pid, or the step that failed (EOF: execve went through)
  const copy = io.letGoAfterExit ? pollFd : copyFd;
  const outputs = stdio === "pipes"
    ? [
      copy(parentEnds.stdout!, io.stdout),
      copy(parentEnds.stderr!, io.stderr),
    ]
    : [];
  let commandPid = 0, failure: { failed: number; errno: number } | undefined;
  let pidKnown = () => {};
  const known = new Promise<void>((resolve) => pidKnown = resolve);
  // a long-lived caller waits on the poller, never on a thread of Deno's pool (see letGoAfterExit)
  const polled = io.letGoAfterExit === true;
  const waitExit = polled ? waitForExitPolled : waitForExitAsync;
  // recordsOpen: errorRead is still ours (the loop closes it at its end, and its number may be taken
  // by another file right after: the poller must not be told to forget that one's waiters)
  let recordsStopped = false, recordsOpen = true;
  if (polled) setNonBlocking(errorRead);
  const readRecord = async (buf: Uint8Array<ArrayBuffer>): Promise<number> => {
    if (!polled) return await readAsync(errorRead, buf);
    while (!recordsStopped) {
      const n = readSome(errorRead, buf);
      if (n >= 0) return n;
      await poller.readable(errorRead);
    }
    return 0;
  };
  const isCommand = commandCheck(middle, pid);
  const records = (async () => {
    const record = new Uint8Array(8);
    while (await readRecord(record) === 8) {
      const got = decodeRecord(record);
      if ("pid" in got) {
        if (commandPid || !isCommand(got.pid)) continue;
        io.started?.(got.pid);
        commandPid = got.pid;
        pidKnown();
      } else failure ??= got;
    }
    recordsOpen = false;
    close(errorRead);
  })();
  const stopRecords = () => {
    if (!polled || recordsStopped || !recordsOpen) return;
    recordsStopped = true;
    poller.forget(errorRead);
  };
  await Promise.race([records, known]);
  await waitExit(middle);
  // a container with CAP_SYS_PTRACE can open the command's end of the pipe before its execve and
  // hold it: once the command is known, its exit ends the wait as the pipe's EOF does
  const exited = commandPid ? waitExit(commandPid) : undefined;
  exited?.finally(stopRecords).catch(() => {});
  if (exited && !(await Promise.race([records.then(() => true), exited.then(() => false)]))) {
    await Promise.race([records, sleep(20)]); // its execve's failure, written before it exited
  }
  if (failure) {
    await exited?.catch(() => {});
    for (const fd of [parentEnds.stdin]) if (fd !== undefined) close(fd);
    await drainAfterExit(outputs);
    pty?.close();
    throw programFailure(
      program.steps[failure.failed]?.label ?? "?",
      failure.errno,
      request.command[0],
      workingDir,
    );
  }
  if (!exited) {
    pty?.close();
    throw new SkiffError("exec: the command was not started", EXIT_SETUP_FAILED);
  }
  if (stdio === "detached") return 0; // the container's PID 1 reaps it once we are gone
  if (stdio === "pipes") {
    if (interactive) feedFd(parentEnds.stdin!, io.stdin);
    const code = await exited;
    await drainAfterExit(outputs, io.letGoAfterExit ? 200 : undefined);
    for (const o of outputs) (o as Partial<ReturnType<typeof pollFd>>).letGo?.();
    return code;
  }
  return await pumpTerminal(pty!, exited, interactive, io, ptys!.rawStdin);
}

/**
 * Gives this process the container's oom_score_adj (so the fork inherits it, as runc's exec sets
 * it); returns what puts the old score back (lowering needs nothing below the process's minimum).
 */
function takeOomScoreAdj(value: number): () => void {
  const path = "/proc/self/oom_score_adj";
  const before = Deno.readTextFileSync(path).trim();
  try {
    Deno.writeTextFileSync(path, String(value));
  } catch (e) {
    throw new SkiffError(`write ${path}: ${(e as Error).message}`, EXIT_SETUP_FAILED);
  }
  return () => {
    try {
      Deno.writeTextFileSync(path, before);
    } catch { /* without CAP_SYS_RESOURCE a score lowered by the container stays: harmless for a client */ }
  };
}

let clone3Refused = false;
const STACK_SIZE = 16 * 1024;

/** Maps, encodes and forks the program: the middle's pid. */
function fork(program: ExecProgram): number {
  const layout = { cloneNr: SYSCALLS.clone, clone3Nr: SYSCALLS.clone3, stackSize: STACK_SIZE };
  const sizing = encodeProgram(program, { base: 0n, size: 0, codeSize: 0, ...layout });
  const mapping = mapProgram(sizing.length, STACK_SIZE);
  try {
    return forkProgram(mapping, encodeProgram(program, { ...mapping, ...layout }));
  } finally {
    unmapProgram(mapping); // the child has its own copy
  }
}

/** A failed step of the program as docker words it. */
function programFailure(label: string, errno: number, command: string, workingDir: string): SkiffError {
  const why = strerror(errno).toLowerCase();
  if (label === "chdir") {
    return new ExecFailed(
      `chdir to cwd ("${workingDir}") set in config.json failed: ${why}`,
      EXIT_NOT_EXECUTABLE,
    );
  }
  if (label === "execve") {
    return new ExecFailed(
      `exec: "${command}": ${why}`,
      errno === 2 || errno === 20 ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE,
    );
  }
  return new SkiffError(`exec failed: ${label}: ${why}`, EXIT_SETUP_FAILED);
}

/** exec -t: our side of the pty until the command exits (raw mode with -i, window size). */
async function pumpTerminal(
  pty: PtyMaster,
  exited: Promise<number>,
  interactive: boolean,
  io: ExecIO,
  rawStdin: () => () => void,
) {
  let restoreStdin = () => {};
  const onWinch = () => pty.syncWindowSize();
  try {
    Deno.addSignalListener("SIGWINCH", onWinch);
    const output = pty.pumpOutput(undefined, io.stdout);
    if (interactive) {
      if (io.terminal) restoreStdin = rawStdin();
      pty.pumpInput(io.stdin);
    }
    const code = await exited;
    // what the command wrote last is still in the pty: drain it, but never hang on it
    await Promise.race([output, sleep(500)]);
    return code;
  } finally {
    Deno.removeSignalListener("SIGWINCH", onWinch);
    restoreStdin();
    pty.close();
  }
}
