// exec's stage: the process that puts a command into a running container. `skiff exec` starts it in
// the host's namespaces as soon as main.ts sees the verb, then sends it a spec made from the
// container's stored configuration (never from anything the container can change) on its stdin.
//
//   skiff __exec-stage   (source checkout: deno run -A --no-config lib/runtime/exec_stage.ts)
//
// Nothing of it may be visible in the container's PID namespace while it holds a host root, cwd or
// fd (as runc's nsexec orders it). The stage itself never enters that namespace: setns(CLONE_NEWPID)
// only places its children there. Its main thread first gets an fd table and fs info of its own
// (unshare CLONE_FILES|CLONE_FS: Deno's other threads keep theirs), joins the container's other
// namespaces (setns to the mount namespace makes its root and cwd the container's), closes every fd
// but the command's stdio in its own table and takes the container's credentials (per-thread
// syscalls), and only then forks the command: a fork of its own (clone without CLONE_VM) that runs
// nothing but a few machine instructions before execve (ffi forkExecFromThisThread). posix_spawn's
// child would share the stage's memory until its execve, and a container with CAP_SYS_PTRACE that
// opens its /proc/N/mem in that instant keeps the stage's memory, whose other threads hold the host's
// root, fds and capabilities. The process is non-dumpable throughout. The stage stays outside, waits for the
// command and exits with its code: its main thread is of no further use to Deno (its fds are gone,
// and a thread whose children go to another PID namespace cannot start threads).
//
// Only synchronous code from the spec on: the main thread never returns to Deno's event loop.

import {
  bindLibc,
  capget,
  capset,
  chdir,
  CLONE,
  close,
  closeRange,
  dup2,
  dup3,
  exitNow,
  forkExecFromThisThread,
  ioctlInt,
  isNullDevice,
  mount,
  MS,
  O,
  open,
  pipe,
  PR,
  prctl,
  prepareForkExec,
  read,
  resetSignals,
  setgroupsThread,
  setns,
  setresgidThread,
  setresuidThread,
  setsid,
  type SymbolName,
  TIOC,
  unshare,
  waitForExit,
  write,
} from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import { SkiffError } from "../errors.ts";
import { confineBeforeCredentials, confineLast, type StageConfinement } from "./confine.ts";
import { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED } from "./spec.ts";
import { type ExecUser, resolveUser } from "./user.ts";

/** How the command's stdio is made: pipes to skiff (docker's attach), a pty, or nothing (-d). */
export type ExecStdio = "pipes" | "tty" | "detached";

/** One move of the stage's main thread (v1 `tasks`) or process (v2 `cgroup.procs`). */
export interface CgroupMove {
  file: "tasks" | "cgroup.procs";
  /** The container's group, named by its id in the state root (never read from /proc/<pid>). */
  containerDir: string;
  /** The group the stage comes from and goes back to once the command is born. */
  ownDir: string;
  /** Already joined by `skiff exec` (a hybrid host's v2 group, which charges nothing). */
  joined?: boolean;
}

/** What `skiff exec` sends the stage: everything comes from the container's record. */
export interface ExecStageSpec extends StageConfinement {
  containerId: string;
  /** Host pid of the container's PID 1 and its start time (whose namespaces are joined). */
  pid: number;
  startTime?: number;
  cgroups: CgroupMove[];
  stdio: ExecStdio;
  /** -i with pipes: the stage's stdin (after the spec) becomes the command's; else /dev/null. */
  interactive: boolean;
  /** Host path of the pty slave (stdio "tty"). */
  ttySlave?: string;
  /** docker's -u syntax, looked up in the container's /etc/passwd and /etc/group. */
  user: string;
  groupAdd: string[];
  /** The container's env with exec's -e on top, without HOME (the user's home is added). */
  env: string[];
  workingDir: string;
  command: string[];
  /** Bounding set (decimal): the container's CapAdd/CapDrop on docker's defaults, or all. */
  capabilities: string;
  /** The container's or exec's --privileged: the host's bounding set is kept. */
  privileged: boolean;
}

/** The command could not start: runc's wording, docker's exit codes (126, 127). */
class ExecFailed extends SkiffError {
  constructor(detail: string, exitCode: number) {
    super(
      `OCI runtime exec failed: exec failed: unable to start container process: ${detail}: unknown`,
      exitCode,
    );
  }
}

/** How `skiff exec` starts the stage: the compiled binary's hidden verb, or this file from source. */
function execStageCommand(): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: ["__exec-stage"] };
  const self = decodeURIComponent(new URL(import.meta.url).pathname);
  // no V8 code cache: its SQLite fds are gone from the main thread after close_range (see below)
  return { cmd: Deno.execPath(), args: ["run", "-A", "--no-config", "--no-code-cache", self] };
}

/** A started stage, waiting for its spec on stdin. */
export interface ExecStage {
  child: Deno.ChildProcess;
}

let prestarted: ExecStage | undefined;

/**
 * main.ts starts the stage as soon as it sees `exec`, before the verb's modules load: the stage's
 * Deno start-up then overlaps with all of skiff exec's own work. The verb takes it.
 */
export function prestartExecStage(): void {
  prestarted ??= spawnExecStage();
}

/** The stage main.ts started, or a new one. */
export function takeExecStage(): ExecStage {
  const stage = prestarted ?? spawnExecStage();
  prestarted = undefined;
  return stage;
}

/**
 * Its stdin carries the spec, then the command's input with -i; its stdout and stderr are the
 * command's with pipes, and its own failures go to its stderr in every mode.
 */
function spawnExecStage(): ExecStage {
  const { cmd, args } = execStageCommand();
  const child = withReadOnlyBinary(cmd, () =>
    new Deno.Command(cmd, {
      args,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn());
  return { child };
}

/** A stage that will get no spec (bad flags, or the container cannot be exec'd into). */
export async function abortExecStage(stage: ExecStage): Promise<void> {
  try {
    stage.child.kill("SIGKILL");
  } catch { /* gone */ }
  await stage.child.status;
  for (const stream of [stage.child.stdout, stage.child.stderr]) await stream.cancel().catch(() => {});
}

/**
 * Runs `spawn` (which forks from this thread) in a mount namespace of its own where `binary` is a
 * read-only bind of itself. The command's process shares the stage's memory until its execve, so
 * its /proc/<pid>/exe is the stage's binary for that moment: a container with CAP_SYS_PTRACE could
 * open it, and an fd on the host's binary would let its root fchmod, fchown or set file capabilities
 * on it (CAP_FOWNER, CAP_CHOWN, CAP_SETFCAP are docker's defaults). Through a read-only mount all of
 * that fails with EROFS (runc seals its own binary for the same reason). The namespace goes with
 * the stage; this thread returns to ours.
 */
function withReadOnlyBinary<T>(binary: string, spawn: () => T): T {
  bindLibc(["syscall6"]);
  let cwd: string | undefined;
  try {
    cwd = Deno.cwd();
  } catch { /* removed under us: the stage starts at / then */ }
  const own = open("/proc/self/ns/mnt", O.RDONLY | O.CLOEXEC);
  try {
    unshare(CLONE.FS | CLONE.NEWNS); // this thread only: Deno's others stay where they are
    try {
      mount(null, "/", null, MS.REC | MS.SLAVE); // nothing done here reaches the host's namespace
      mount(binary, binary, null, MS.BIND);
      mount(null, binary, null, MS.BIND | MS.REMOUNT | MS.RDONLY);
      return spawn();
    } finally {
      setns(own, CLONE.NEWNS);
      if (cwd !== undefined) chdir(cwd); // setns into a mount namespace moved this thread's cwd to its root
    }
  } finally {
    close(own);
  }
}

/** The frame on the stage's stdin: the spec's length in decimal, a newline, the JSON. */
export function encodeSpec(spec: ExecStageSpec): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(JSON.stringify(spec));
  const head = new TextEncoder().encode(`${json.length}\n`);
  const frame = new Uint8Array(head.length + json.length);
  frame.set(head);
  frame.set(json, head.length);
  return frame;
}

/** Reads exactly one frame from fd 0 and nothing more: what follows is the command's stdin. */
function readSpec(): ExecStageSpec {
  const one = new Uint8Array(1);
  let head = "";
  while (true) {
    if (read(0, one) !== 1) exitNow(EXIT_SETUP_FAILED); // skiff exec is gone
    if (one[0] === 0x0a) break;
    head += String.fromCharCode(one[0]);
    if (head.length > 12) throw new Error("bad spec frame");
  }
  const json = new Uint8Array(Number(head));
  for (let done = 0; done < json.length;) {
    const n = read(0, json.subarray(done));
    if (n === 0) exitNow(EXIT_SETUP_FAILED);
    done += n;
  }
  return JSON.parse(new TextDecoder().decode(json)) as ExecStageSpec;
}

/** Go's exec.LookPath as runc uses it, with docker's errors; the path found. */
function checkExecutable(name: string, searchPath: string): string {
  const statOrNull = (path: string) => {
    try {
      return Deno.statSync(path);
    } catch {
      return null;
    }
  };
  const executable = (info: Deno.FileInfo | null) => info && !info.isDirectory && ((info.mode ?? 0) & 0o111);
  if (name.includes("/")) {
    const info = statOrNull(name);
    if (!info) {
      throw new ExecFailed(`exec: "${name}": stat ${name}: no such file or directory`, EXIT_NOT_FOUND);
    }
    if (!executable(info)) throw new ExecFailed(`exec: "${name}": permission denied`, EXIT_NOT_EXECUTABLE);
    return name;
  }
  for (const dir of searchPath.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (executable(statOrNull(candidate))) return candidate;
  }
  throw new ExecFailed(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}

const NAMESPACES: [string, number][] = [
  ["cgroup", CLONE.NEWCGROUP],
  ["ipc", CLONE.NEWIPC],
  ["uts", CLONE.NEWUTS],
  ["net", CLONE.NEWNET],
  ["pid", CLONE.NEWPID],
  ["mnt", CLONE.NEWNS], // last: it changes this thread's root, and /proc with it
];

/** Fds of PID 1's namespaces that differ from ours, opened through the host's /proc. */
function openNamespaces(pid: number): { fd: number; type: number }[] {
  const out: { fd: number; type: number }[] = [];
  for (const [name, type] of NAMESPACES) {
    const path = `/proc/${pid}/ns/${name}`;
    if (Deno.readLinkSync(path) === Deno.readLinkSync(`/proc/self/ns/${name}`)) continue;
    out.push({ fd: open(path, O.RDONLY | O.CLOEXEC), type });
  }
  return out;
}

/**
 * The bounding set first (needs CAP_SETPCAP), then the ids with the permitted set kept across the
 * change, then exactly the configured capabilities. All per thread: execve computes the command's
 * sets from these (root gets the bounding set, any other user nothing), as the container's PID 1 got
 * them. Nothing here comes from the container's processes.
 */
function becomeContainerUser(user: ExecUser, spec: ExecStageSpec, lastCap: number): void {
  const mask = BigInt(spec.capabilities);
  if (!spec.privileged) {
    for (let cap = 0; cap <= lastCap; cap++) {
      if (!(mask & (1n << BigInt(cap)))) prctl(PR.CAPBSET_DROP, BigInt(cap));
    }
  }
  prctl(PR.SET_KEEPCAPS, 1n);
  setgroupsThread(user.additionalGids);
  setresgidThread(user.gid);
  setresuidThread(user.uid);
  // the host may lack some capability (these machines have no CAP_SYS_RESOURCE): grant what we hold
  const held = capget().permitted & (spec.privileged ? ~0n : mask);
  capset({ effective: held, permitted: held, inheritable: 0n });
  prctl(PR.CAP_AMBIENT, BigInt(PR.CAP_AMBIENT_CLEAR_ALL));
}

const encoder = new TextEncoder();

/** Field 22 of /proc/<pid>/stat (as lib/state/containers.ts reads it; not imported: start-up cost). */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" || fields[0] === "X" ? undefined : Number(fields[19]);
  } catch {
    return undefined;
  }
}

function sameFile(a: string, b: string): boolean {
  const x = Deno.statSync(a), y = Deno.statSync(b);
  return x.dev === y.dev && x.ino === y.ino;
}

/**
 * What docker gives a command without -i: /dev/null. The container's own (skiff made it with mknod in
 * the container's /dev), never the host's: root in the container could chmod or chown that inode
 * through /proc/self/fd/0. Opened inside the container's root, so it is checked to be the null
 * device (the container may have replaced it); otherwise an empty pipe, which reads as EOF too.
 */
function containerNull(): number {
  try {
    const fd = open("/dev/null", O.RDWR | O.NOFOLLOW | O.NONBLOCK | O.NOCTTY | O.CLOEXEC);
    if (isNullDevice(fd)) return fd;
    close(fd);
  } catch { /* absent, or a FIFO without a writer, or ... */ }
  const [readEnd, writeEnd] = pipe();
  close(writeEnd);
  return readEnd;
}

function run(spec: ExecStageSpec, report: { fd: number }): never {
  // everything the container may not get is opened now, in the host's namespaces
  const lastCap = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
  const namespaces = openNamespaces(spec.pid);
  // the fds pin the namespaces: make sure they are still the container's
  if (processStartTime(spec.pid) !== spec.startTime) {
    throw new SkiffError("the container stopped meanwhile", EXIT_SETUP_FAILED);
  }
  // and that PID 1 is the container's command already, not skiff's init stage setting it up: its
  // mount namespace would still have the host's root, and the stage its host fds
  if (sameFile(`/proc/${spec.pid}/root`, "/") || sameFile(`/proc/${spec.pid}/exe`, "/proc/self/exe")) {
    throw new SkiffError(`Container ${spec.containerId} is not running`, 1);
  }
  let stdioSource = -1;
  if (spec.stdio === "tty") {
    stdioSource = open(spec.ttySlave!, O.RDWR | O.NOCTTY | O.CLOEXEC);
    ioctlInt(stdioSource, TIOC.SCTTY, 0); // the session's terminal: the command's too
  }
  // v1: "0" moves only the writing thread, and costs no RCU grace period (see exec.ts); skiff exec
  // moves us back once the command is born
  for (const m of spec.cgroups) {
    if (!m.joined) {
      Deno.writeTextFileSync(`${m.containerDir}/${m.file}`, m.file === "tasks" ? "0" : String(Deno.pid));
    }
  }

  unshare(CLONE.FS | CLONE.FILES); // this thread's own root, cwd and fd table from here on
  // the PID namespace last of all: a thread whose children go there can start no thread itself
  const pidNamespace = namespaces.find((n) => n.type === CLONE.NEWPID);
  for (const { fd, type } of namespaces) if (type !== CLONE.NEWPID) setns(fd, type);
  try {
    chdir(spec.workingDir);
  } catch (e) {
    const why = e instanceof SysError ? e.detail.toLowerCase() : String(e);
    throw new ExecFailed(
      `chdir to cwd ("${spec.workingDir}") set in config.json failed: ${why}`,
      EXIT_NOT_EXECUTABLE,
    );
  }
  let user: ExecUser;
  try {
    user = resolveUser(spec.user, spec.groupAdd);
  } catch (e) {
    throw new ExecFailed((e as Error).message, EXIT_NOT_EXECUTABLE);
  }
  const env = spec.env.some((e) => e.startsWith("HOME=")) ? spec.env : [...spec.env, `HOME=${user.home}`];
  const path = checkExecutable(spec.command[0], env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "");
  if (spec.stdio === "detached" || (spec.stdio === "pipes" && !spec.interactive)) {
    stdioSource = containerNull();
  }

  // the command's stdio on 0-2, and nothing else in this thread's table
  if (spec.stdio === "detached") {
    dup3(2, 3, O.CLOEXEC); // failures still reach skiff exec; execve closes it
    report.fd = 3;
  }
  if (spec.stdio === "tty" || spec.stdio === "detached") {
    for (const fd of [0, 1, 2]) {
      dup2(stdioSource, fd);
    }
  } else if (stdioSource >= 0) dup2(stdioSource, 0);
  if (pidNamespace) setns(pidNamespace.fd, CLONE.NEWPID);
  closeRange(report.fd === 3 ? 4 : 3);
  // the child inherits this thread's mask and the process's ignored signals (SIGPIPE: Deno's), which
  // survive execve; the stage runs only synchronous code from here on
  resetSignals();
  const execError = pipe(); // close-on-exec: EOF once the command's execve went through
  // the container's seccomp filter and no-new-privileges on this thread, in runc's order (see
  // confine.ts); the forked child inherits them. docker's profile lets clone (no namespace flags),
  // read, close, waitpid and _exit through.
  confineBeforeCredentials(spec);
  becomeContainerUser(user, spec, lastCap);
  confineLast(spec);
  let child: number;
  try {
    child = forkExecFromThisThread(path, spec.command, env, execError);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const code = e.code === "ENOENT" || e.code === "ENOTDIR" ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
    throw new ExecFailed(`exec: "${spec.command[0]}": ${e.detail.toLowerCase()}`, code);
  }
  if (spec.stdio === "detached") exitNow(0); // the container's PID 1 reaps it
  for (const fd of [0, 1, 2]) close(fd); // only the command holds its stdio now
  exitNow(waitForExit(child));
}

/**
 * Binding costs ~0.2 ms per symbol: all of them now, before the spec arrives, off the critical path.
 */
const STAGE_SYMBOLS: readonly SymbolName[] = [
  "syscall6",
  "clone",
  "mmap",
  "mprotect",
  "waitpid",
  "_exit",
  "dup3",
  "statx",
  "pipe2",
];

/** Entry point of `skiff __exec-stage`: never returns. */
export function execStageMain(): never {
  const report = { fd: 2 };
  try {
    bindLibc(STAGE_SYMBOLS);
    // Deno loads some built-ins on first use (atob: confine.ts decodes the filter with it) and looks
    // them up in its code cache, whose fds the main thread no longer has after close_range: SQLite
    // then retried its lock for 20 s. So the stage runs without the code cache, and what is used
    // after close_range is used once now (a compiled skiff cannot take the flag).
    atob("");
    prepareForkExec(); // the forked child's code and stack, off the critical path
    // nothing of this process may be read through /proc by the container (root there, uid 0 here)
    prctl(PR.SET_DUMPABLE, 0n);
    // a session of its own: the caller's terminal signals reach the command only through skiff,
    // and with -t this session gets the pty as its terminal
    setsid();
    run(readSpec(), report);
  } catch (e) {
    const code = e instanceof SkiffError ? e.exitCode : EXIT_SETUP_FAILED;
    try {
      write(report.fd, encoder.encode(`skiff: ${(e as Error).message ?? String(e)}\n`));
    } catch { /* nowhere left to report */ }
    exitNow(code);
  }
}

if (import.meta.main) execStageMain();
