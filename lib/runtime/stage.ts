// run's init stage: the container's PID 1, forked from skiff as early as `skiff run` can. No second
// Deno starts: the fork runs only syscall programs (stage_program.ts, in the interpreter of
// ffi/exec_program) and waits on a pipe between them, while skiff's own thread builds its root
// filesystem (init.ts).
//
//   startInitStage   fork (CLONE_NEWPID)                              the fork's program
//   setUpStage       skiff: namespaces, mounts, copy-up, user, command  the namespaces program
//   startContainer   once the cgroups are joined: the go              the container program
//
// Every program lives in one shared mapping: the child keeps only those pages (and forgets skiff's
// memory at once), and the later programs are written there after the fork.

import {
  CLONE,
  close,
  kill,
  O,
  open,
  pidfdOpen,
  pipe,
  read,
  readSome,
  setNonBlocking,
  setns,
  strerror,
  SYSCALLS,
  waitForExit,
  write,
} from "../../ffi/libc.ts";
import {
  forkProgram,
  mapProgram,
  type ProgramMapping,
  rseqRegistration,
  unmapProgram,
  writeIntoMapping,
} from "../../ffi/exec_program.ts";
import { decodeRecord, encodeProgram, type ExecProgram } from "./exec_program.ts";
import { copyUps } from "./rootfs.ts";
import {
  abandonContainerRoot,
  beginContainerRoot,
  finishContainerRoot,
  resolveContainerProcess,
  type StageRequest,
  type StageResult,
} from "./init.ts";
import { planContainerProgram, planForkProgram } from "./stage_program.ts";
import { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED, type InitSpec } from "./spec.ts";
import { hostConfinement, type StageConfinement } from "./confine.ts";
import { fdSource, fdWritable, type PipeSource } from "./stdio.ts";
import { poller } from "./poller.ts";
import { INIT_PATH, initProgramFd } from "./init_program.ts";

/** The container's PID 1, as skiff's callers see it (the shape of a Deno.ChildProcess they use). */
export interface StageChild {
  pid: number;
  /** Once it exited, and its error record (if any) is in the container's init-error. */
  status: Promise<Deno.CommandStatus>;
  /** Only with the matching pipes (InitStage.inputPiped / outputPiped); stdin is made when first used. */
  readonly stdin: WritableStream<Uint8Array>;
  stdout: PipeSource;
  stderr: PipeSource;
}

/** A started init stage: PID 1 waiting for its next program. */
export interface InitStage {
  child: StageChild;
  /** The child's stdout/stderr are pipes skiff reads. */
  outputPiped: boolean;
  /** The child's stdin is a pipe that skiff feeds (run -i). */
  inputPiped: boolean;
  /** Set by whoever took the stage over (Engine.runForeground): it aborts the stage on failure. */
  taken?: boolean;
  /** internal */
  inner: StageInternals;
}

interface StageInternals {
  mapping: ProgramMapping;
  layout: StageRequest["layout"];
  pidfd: number;
  goFd: number;
  readyFd: number;
  /** The child's fd numbers of its pipes' ends. */
  childGo: number;
  childReady: number;
  childError: number;
  /** Resolves when the child execve()d or exited: its failure record, if it wrote one. */
  failure: Promise<{ failed: number; errno: number } | undefined>;
  /** skiff's fds the child pulls (pidfd_getfd) in its last program: closed once it exec'd or exited. */
  lend: number[];
  /** Set with the go for the namespaces program: what a failure there means. */
  namespaces?: ExecProgram;
  /** Set with the go for the container program: what a failure there means. */
  container?: { program: ExecProgram; command: string; workingDir: string };
  errorFile?: string;
  closed: boolean;
}

const STACK_SIZE = 16 * 1024;
/** Where the later programs go in the shared mapping's data part, and how much the last may take. */
const NAMESPACES_AT = 64 * 1024, CONTAINER_AT = 128 * 1024, CONTAINER_MAX = 4 * 1024 * 1024;

const sys = { ...SYSCALLS };

/**
 * Forks the container's PID 1 (of a new PID namespace; `pidNamespace` "host": skiff's own, a join:
 * that one, whose lock this stage holds until PID 1 has exec'd or exited). `stdin`/`output`: what
 * PID 1's fds 0 and 1-2 are until its last program: the caller's ("inherit"), pipes skiff copies
 * ("piped") or the host's /dev/null ("null").
 */
export function startInitStage(
  stdin: "inherit" | "null" | "piped",
  output: "inherit" | "piped" | "null" = "inherit",
  pidNamespace?: "host" | { fd: number; unlock: () => void },
): InitStage {
  const join = typeof pidNamespace === "object" ? pidNamespace : undefined;
  const ours: number[] = [], theirs: number[] = [];
  let mapping: ProgramMapping | undefined;
  try {
    const [goR, goW] = pipe(), [readyR, readyW] = pipe(), [errorR, errorW] = pipe();
    setNonBlocking(readyR); // ours only: PID 1's end stays blocking
    ours.push(goW, readyR, errorR);
    theirs.push(goR, readyW, errorW);
    const stdio: [number | undefined, number | undefined, number | undefined] = [
      undefined,
      undefined,
      undefined,
    ];
    const parentEnds: { stdin?: number; stdout?: number; stderr?: number } = {};
    if (stdin === "piped") {
      const [r, w] = pipe();
      theirs.push(r), ours.push(w);
      stdio[0] = r;
      parentEnds.stdin = w;
    }
    if (output === "piped") {
      for (const [i, name] of [[1, "stdout"], [2, "stderr"]] as const) {
        const [r, w] = pipe();
        ours.push(r), theirs.push(w);
        stdio[i] = w;
        parentEnds[name] = r;
      }
    }
    if (stdin === "null" || output === "null") {
      const devNull = open("/dev/null", O.RDWR | O.CLOEXEC);
      theirs.push(devNull);
      if (stdin === "null") stdio[0] = devNull;
      if (output === "null") stdio[1] = stdio[2] = devNull;
    }
    const pidfd = pidfdOpen(Deno.pid);
    ours.push(pidfd);
    mapping = mapProgram(CONTAINER_AT + CONTAINER_MAX, STACK_SIZE, true);
    const layout = {
      base: mapping.base,
      size: mapping.size,
      codeSize: mapping.codeSize,
      cloneNr: sys.clone,
      clone3Nr: sys.clone3,
      stackSize: STACK_SIZE,
      namespacesAt: mapping.codeSize + NAMESPACES_AT,
      containerAt: mapping.codeSize + CONTAINER_AT,
    };
    const program = planForkProgram({
      sys,
      rseq: rseqRegistration(),
      stdio,
      keep: [goR, readyW, errorW, pidfd],
      goFd: goR,
      errorFd: errorW,
      next: mapping.base + BigInt(layout.namespacesAt),
      newPidNamespace: pidNamespace === undefined,
      setupFailed: EXIT_SETUP_FAILED,
    });
    const bytes = encodeProgram(program, layout);
    let pid: number;
    const ownPidNs = join ? open("/proc/self/ns/pid", O.RDONLY | O.CLOEXEC) : -1;
    try {
      // container:NAME: this thread's children go there for the one fork
      if (join) setns(join.fd, CLONE.NEWPID);
      try {
        pid = forkProgram(mapping, bytes, join !== undefined);
      } finally {
        if (ownPidNs >= 0) setns(ownPidNs, CLONE.NEWPID);
      }
    } finally {
      if (ownPidNs >= 0) close(ownPidNs);
    }
    for (const fd of theirs.splice(0)) close(fd);
    const childPidfd = pidfdOpen(pid);
    const inner: StageInternals = {
      mapping,
      layout,
      pidfd,
      goFd: goW,
      readyFd: readyR,
      childGo: goR,
      childReady: readyW,
      childError: errorW,
      failure: readFailure(errorR),
      lend: [],
      closed: false,
    };
    let stdinStream: WritableStream<Uint8Array> | undefined;
    const child: StageChild = {
      pid,
      status: Promise.resolve({ success: false, code: 0, signal: null }),
      get stdin() {
        return stdinStream ??= parentEnds.stdin !== undefined ? fdWritable(parentEnds.stdin) : undefined!;
      },
      stdout: parentEnds.stdout !== undefined ? fdSource(parentEnds.stdout) : undefined!,
      stderr: parentEnds.stderr !== undefined ? fdSource(parentEnds.stderr) : undefined!,
    };
    const stage: InitStage = { child, outputPiped: output === "piped", inputPiped: stdin === "piped", inner };
    child.status = waitForChild(stage, childPidfd);
    if (join) inner.failure.finally(() => join.unlock());
    return stage;
  } catch (e) {
    for (const fd of [...ours, ...theirs]) close(fd);
    if (join) join.unlock();
    if (mapping) unmapProgram(mapping);
    throw e;
  }
}

/**
 * The first failure record on the error pipe, read until its EOF (PID 1 exec'd or exited). Waits
 * through the one poller: a supervisor runs many containers, and a blocking read each would use up
 * Deno's blocking pool (32 threads).
 */
async function readFailure(errorFd: number): Promise<{ failed: number; errno: number } | undefined> {
  const record = new Uint8Array(8);
  let failure: { failed: number; errno: number } | undefined;
  try {
    while (true) {
      await poller.readable(errorFd);
      if (read(errorFd, record) !== 8) break; // PID 1 writes its record in one write
      const got = decodeRecord(record);
      if (!("pid" in got)) failure ??= got;
    }
  } catch {
    /* the pipe broke: as its end */
  } finally {
    close(errorFd);
  }
  return failure;
}

async function waitForChild(stage: InitStage, pidfd: number): Promise<Deno.CommandStatus> {
  await poller.readable(pidfd); // readable once it has exited: the wait below does not block
  close(pidfd);
  const code = waitForExit(stage.child.pid);
  const failure = await stage.inner.failure;
  if (failure && stage.inner.errorFile) writeInitError(stage.inner.errorFile, failureLine(stage, failure));
  release(stage);
  return { success: code === 0, code, signal: null };
}

/** "<code>[!] <message>": what finishContainer reads ("!": docker's daemon's own words). */
function writeInitError(path: string, line: { code: number; message: string; daemon?: boolean }): void {
  try {
    Deno.writeTextFileSync(path, `${line.code}${line.daemon ? "!" : ""} ${line.message}\n`, { mode: 0o600 });
  } catch { /* the container's directory is gone (rm -f) */ }
}

/** A failed step of PID 1's programs in docker's words (runc's for a chdir or an execve). */
function failureLine(stage: InitStage, failure: { failed: number; errno: number }) {
  const why = strerror(failure.errno).toLowerCase();
  const { container, namespaces } = stage.inner;
  // the container program's go is written only once the namespaces program is through, and the
  // fork's program fails (if ever) right after the fork
  const label = (container?.program ?? namespaces)?.steps[failure.failed]?.label ?? `step ${failure.failed}`;
  if (label.endsWith("oom_score_adj")) {
    return { code: EXIT_SETUP_FAILED, message: `write /proc/self/oom_score_adj: ${why}` };
  }
  if (!container) {
    return { code: EXIT_SETUP_FAILED, message: `failed to set up the container: ${label}: ${why}` };
  }
  if (label === "execve") {
    const e = failure.errno;
    const code = e === 2 || e === 20
      ? EXIT_NOT_FOUND
      : [1, 8, 13, 21].includes(e)
      ? EXIT_NOT_EXECUTABLE
      : EXIT_SETUP_FAILED;
    return { code, message: `exec: "${container.command}": ${why}` };
  }
  if (label === "chdir") {
    // runc's words; the exit code docker's CLI reads from them
    const code = failure.errno === 2
      ? EXIT_NOT_FOUND
      : failure.errno === 13
      ? EXIT_NOT_EXECUTABLE
      : EXIT_SETUP_FAILED;
    return { code, message: `chdir to cwd ("${container.workingDir}") set in config.json failed: ${why}` };
  }
  const rlimit = /^rlimit (\d+)$/.exec(label);
  if (rlimit) return { code: EXIT_SETUP_FAILED, message: `error setting rlimit type ${rlimit[1]}: ${why}` };
  return { code: EXIT_SETUP_FAILED, message: `failed to set up the container: ${label}: ${why}` };
}

/**
 * Sets the container up from the spec on this thread (init.ts): namespaces and root filesystem (PID
 * 1 joins them and mounts its proc in between), the volumes' copy-up, the user and the command. A
 * failure is written to the spec's init-error and PID 1 is killed: the caller sees it exit as if it
 * had failed itself.
 */
export async function setUpStage(stage: InitStage, spec: InitSpec): Promise<StageResult> {
  const inner = stage.inner;
  inner.errorFile = spec.errorFile;
  const request: StageRequest = {
    spec,
    sys,
    pidfd: inner.pidfd,
    goFd: inner.goFd,
    childReadyFd: inner.childReady,
    childGoFd: inner.childGo,
    childErrorFd: inner.childError,
    layout: inner.layout,
  };
  const begun = beginContainerRoot(request);
  let result: StageResult;
  if (!begun.ok) result = begun;
  else {
    inner.namespaces = begun.halfway.program;
    // PID 1 joins the namespaces and mounts its proc: waited for off this thread (a stopped or
    // slow PID 1 must not hold up the rest of the process)
    // the fd is non-blocking: a wake-up that finds nothing (the poller may be woken for another
    // reason) waits again, and never blocks this thread, which PID 1 needs for its go
    let ready = 0;
    while (true) {
      await poller.readable(inner.readyFd);
      try {
        ready = readSome(inner.readyFd, new Uint8Array(1));
      } catch {
        ready = 0; // broken: as its EOF
      }
      if (ready !== -1) break;
    }
    if (ready !== 1) {
      abandonContainerRoot(begun.halfway);
      // PID 1 failed a step (its error record says which) or was killed
      result = { ok: false, exitCode: EXIT_SETUP_FAILED, message: "", daemon: false, childFailed: true };
    } else {
      const mounted = finishContainerRoot(begun.halfway);
      if (!mounted.ok) result = mounted;
      else {
        try {
          await copyUps(mounted.copyUps);
          result = resolveContainerProcess(spec, mounted);
        } catch (e) {
          for (const fd of [mounted.rootFd, mounted.console?.master, mounted.console?.slave]) {
            if (fd !== undefined) close(fd);
          }
          result = {
            ok: false,
            exitCode: EXIT_SETUP_FAILED,
            message: `failed to set up the container: ${(e as Error).message}`,
            daemon: false,
          };
        }
      }
    }
  }
  if (!result.ok) {
    if (!result.childFailed) {
      writeInitError(spec.errorFile, {
        code: result.exitCode,
        message: result.message,
        daemon: result.daemon,
      });
    }
    killQuietly(stage.child.pid);
  }
  return result;
}

/** What the container program needs besides the spec and the setup's result. */
export interface ContainerStart {
  confinement: StageConfinement;
  /** Detached, without -t: the supervisor's output pipes become fds 1 and 2. */
  outputPipes?: InitSpec["outputPipes"];
}

/**
 * The go: writes the container program (into the root, the container's stdio, credentials,
 * seccomp, execve) and lets PID 1 run it. Call once PID 1 is in the container's cgroups.
 */
export function startContainer(
  stage: InitStage,
  spec: InitSpec,
  setup: Extract<StageResult, { ok: true }>,
  start: ContainerStart,
): void {
  const inner = stage.inner;
  inner.lend.push(setup.rootFd);
  if (setup.console) inner.lend.push(setup.console.slave);
  if (setup.nullFd !== undefined) inner.lend.push(setup.nullFd);
  const stdio: { fd: number; targets: number[] }[] = [];
  if (setup.console) stdio.push({ fd: setup.console.slave, targets: [0, 1, 2] });
  else {
    if (setup.nullFd !== undefined) stdio.push({ fd: setup.nullFd, targets: [0] });
    if (start.outputPipes) {
      // read-write: the pipe keeps a reader in the container itself (engine/output.ts)
      for (const [path, target] of [[start.outputPipes.stdout, 1], [start.outputPipes.stderr, 2]] as const) {
        const fd = open(path, O.RDWR | O.CLOEXEC);
        inner.lend.push(fd);
        stdio.push({ fd, targets: [target] });
      }
    }
  }
  const initFd = spec.init ? initProgramFd() : undefined;
  if (initFd !== undefined) inner.lend.push(initFd);
  const program = planContainerProgram({
    sys,
    pidfd: inner.pidfd,
    rootFd: setup.rootFd,
    newCgroupNamespace: spec.namespaces.some((ns) => ns.type === "cgroup" && ns.path === undefined),
    stdio,
    tty: setup.console !== undefined,
    workingDir: spec.workingDir,
    readOnlyRoot: spec.readOnlyRootfs,
    detached: spec.detached === true,
    initFd,
    path: setup.path,
    argv: spec.init ? [INIT_PATH, "--", ...spec.args] : spec.args,
    env: setup.env,
    errorFd: inner.childError,
    setupFailed: EXIT_SETUP_FAILED,
    notFound: EXIT_NOT_FOUND,
    notExecutable: EXIT_NOT_EXECUTABLE,
    uid: setup.user.uid,
    gid: setup.user.gid,
    additionalGids: setup.user.additionalGids,
    capabilities: BigInt(spec.capabilities),
    privileged: spec.privileged,
    ...hostConfinement(start.confinement),
    rlimits: spec.rlimits?.map((r) => ({
      resource: r.resource,
      soft: BigInt(r.soft),
      hard: BigInt(r.hard),
    })),
  });
  const layout = { ...inner.layout, dataOffset: inner.layout.containerAt };
  const bytes = encodeProgram(program, layout);
  if (bytes.length > CONTAINER_MAX) {
    killQuietly(stage.child.pid);
    writeInitError(spec.errorFile, {
      code: EXIT_SETUP_FAILED,
      message: "failed to set up the container: its command line and environment are too large",
    });
    return;
  }
  writeIntoMapping(inner.mapping.base, inner.mapping.size, inner.layout.containerAt, bytes);
  inner.container = { program, command: spec.init ? INIT_PATH : spec.args[0], workingDir: spec.workingDir };
  // the lent fds go once PID 1 has taken them and exec'd (the error pipe's EOF) or exited
  inner.failure.then(() => release(stage));
  try {
    write(inner.goFd, new Uint8Array([1]));
  } catch { /* PID 1 is gone: its exit says why */ }
}

function killQuietly(pid: number): void {
  try {
    kill(pid, 9);
  } catch { /* gone already */ }
}

/** Closes what skiff still holds for the stage (idempotent). */
function release(stage: InitStage): void {
  const inner = stage.inner;
  for (const fd of inner.lend.splice(0)) close(fd);
  if (inner.closed) return;
  inner.closed = true;
  for (const fd of [inner.goFd, inner.readyFd, inner.pidfd]) close(fd);
  unmapProgram(inner.mapping);
}

/** Kills an init stage that will never start a container (it could not be created). */
export async function abortInitStage(stage: InitStage): Promise<void> {
  killQuietly(stage.child.pid);
  await stage.child.status;
}

export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* not there */ }
}
