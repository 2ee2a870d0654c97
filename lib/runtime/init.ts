// The container-side init stage: `skiff __init SPEC`, started by `skiff run` as PID 1 of a fresh PID
// namespace. It waits for the parent's go, unshares the other namespaces, builds the root filesystem,
// becomes the container's user with docker's capabilities and execve()s the container's command.
//
// Only *Sync Deno APIs and FFI here: after unshare, async APIs would run on threads that still live
// in the host's namespaces. No npm imports (this runs with --no-config).

import {
  AT_FDCWD,
  capget,
  capset,
  CLONE,
  CLOSE_RANGE_CLOEXEC,
  closeRange,
  dup2,
  execve,
  interfaceUp,
  O,
  open,
  PR,
  prctl,
  read,
  resetSignals,
  setgroupsThread,
  sethostname,
  setns,
  setresgidThread,
  setresuidThread,
  setsid,
  statxAt,
  SysError,
  umask,
  unshare,
  write,
} from "../../ffi/mod.ts";
import { close } from "../../ffi/mod.ts";
import { releaseReopen } from "../fs/at.ts";
import { execInit, INIT_PATH, initProgramFd } from "./init_program.ts";
import {
  attachConsole,
  awaitConsoleReady,
  connectConsoleSocket,
  giveConsoleTo,
  sendMaster,
} from "./console.ts";
import { confineBeforeCredentials, confineLast } from "./confine.ts";
import { enterWorkingDir, makeRootReadOnly, setupRootfs } from "./rootfs.ts";
import {
  EXIT_NOT_EXECUTABLE,
  EXIT_NOT_FOUND,
  EXIT_SETUP_FAILED,
  type InitSpec,
  type NamespaceSpec,
  parseLateLine,
} from "./spec.ts";
import { type ExecUser, resolveUser } from "./user.ts";
import { applyRlimits, checkSysctls, LimitFailure, setOomScoreAdj, writeSysctls } from "./limits_stage.ts";

/** A failure before execve, with the exit code docker gives it. */
class InitFailure extends Error {
  /** `daemon`: docker's daemon says this itself (a user lookup), not its runtime: no runc wording */
  constructor(message: string, readonly exitCode: number, readonly daemon = false) {
    super(message);
  }
}

const SIGKILL = 9n;

/**
 * Blocks until the parent sends the spec's path (one line) through the FIFO, then reads the spec.
 * Exits quietly when the parent is gone instead: it died before PDEATHSIG was armed, or it aborted.
 */
function receiveSpec(fifo: string, parentPid: number): { spec: InitSpec; fifo: FifoReader } {
  // reparented: the parent died before PDEATHSIG was armed. getppid() says 0 in a new PID
  // namespace and /proc/<parent> outlives the parent as a zombie: ask the host's /proc for our ppid
  const stat = Deno.readTextFileSync("/proc/self/stat");
  if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== parentPid) Deno.exit(EXIT_SETUP_FAILED);
  const reader = new FifoReader(open(fifo, O.RDONLY | O.CLOEXEC));
  const specPath = reader.line();
  return { spec: JSON.parse(Deno.readTextFileSync(specPath)) as InitSpec, fifo: reader };
}

/** Lines from the parent through the FIFO; a read may split a line or hold two. */
class FifoReader {
  private buf = new Uint8Array(4096);
  private length = 0;
  constructor(readonly fd: number) {}

  /** The next line; exits quietly when every writer closed (the parent is gone). */
  line(): string {
    let end: number;
    while ((end = this.buf.subarray(0, this.length).indexOf(0x0a)) === -1) {
      if (this.length === this.buf.length) { // a long line (the late spec): room for more
        const bigger = new Uint8Array(this.buf.length * 4);
        bigger.set(this.buf);
        this.buf = bigger;
      }
      const n = read(this.fd, this.buf.subarray(this.length));
      if (n === 0) Deno.exit(EXIT_SETUP_FAILED);
      this.length += n;
    }
    const text = new TextDecoder().decode(this.buf.subarray(0, end));
    this.buf.copyWithin(0, end + 1, this.length);
    this.length -= end + 1;
    return text;
  }
}

/**
 * Detached: fds 1 and 2 become the supervisor's output pipes, opened read-write (see
 * InitSpec.outputPipes). Anonymous pipes, not files: the container can reopen or chmod them through
 * /proc/self/fd, which reaches nothing of the host's filesystem.
 */
function attachOutput(pipes: { stdout: string; stderr: string }): void {
  const targets = [[pipes.stdout, 1], [pipes.stderr, 2]] as const;
  for (const [path, target] of targets) {
    const fd = open(path, O.RDWR | O.CLOEXEC);
    dup2(fd, target); // dup2 clears close-on-exec on the copy
    close(fd);
  }
}

function envValue(env: string[], key: string): string | undefined {
  const entry = env.find((e) => e.startsWith(`${key}=`));
  return entry?.slice(key.length + 1);
}

const statBuf = new Uint8Array(256);
/**
 * stat(2) of a PATH candidate (after pivot_root: inside the container's root), its symlinks followed
 * as exec.LookPath does. A raw statx, not Deno.statSync: each missing candidate (five of six for
 * `true` with docker's PATH) was an exception, ~0.1 ms each on the stage's critical path.
 */
function isExecutableFile(path: string): "ok" | "missing" | "directory" | "denied" {
  if (statxAt(AT_FDCWD, path, 0, statBuf) !== 0) return "missing";
  const mode = new DataView(statBuf.buffer).getUint16(28, true); // stx_mode
  if ((mode & 0o170000) === 0o040000) return "directory";
  return mode & 0o111 ? "ok" : "denied";
}

/** Go's exec.LookPath as runc uses it, with docker's wording and exit codes. */
function findExecutable(name: string, searchPath: string): string {
  if (name.includes("/")) {
    const state = isExecutableFile(name);
    if (state === "ok") return name;
    if (state === "missing") {
      throw new InitFailure(`exec: "${name}": stat ${name}: no such file or directory`, EXIT_NOT_FOUND);
    }
    throw new InitFailure(`exec: "${name}": permission denied`, EXIT_NOT_EXECUTABLE);
  }
  for (const dir of searchPath.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (isExecutableFile(candidate) === "ok") return candidate;
  }
  throw new InitFailure(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}

/** Bounding set first (needs CAP_SETPCAP), then the ids, then the remaining capability sets. */
function becomeUser(spec: InitSpec, user: ExecUser): void {
  const mask = BigInt(spec.capabilities);
  if (!spec.privileged) {
    const lastCap = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
    for (let cap = 0; cap <= lastCap; cap++) {
      if (!(mask & (1n << BigInt(cap)))) prctl(PR.CAPBSET_DROP, BigInt(cap));
    }
  }
  if (user.uid !== 0) prctl(PR.SET_KEEPCAPS, 1n); // keep permitted caps across the uid change
  // this thread only: glibc's wrappers signal every Deno thread and wait for each (~1 ms, more on a
  // busy machine); execve leaves only this thread anyway
  setgroupsThread(user.additionalGids);
  setresgidThread(user.gid);
  setresuidThread(user.uid);
  if (!spec.privileged) {
    // the host may lack some capability (these machines have no CAP_SYS_RESOURCE): grant what we hold
    const held = capget().permitted & mask;
    capset({ effective: held, permitted: held, inheritable: 0n });
  }
  prctl(PR.CAP_AMBIENT, BigInt(PR.CAP_AMBIENT_CLEAR_ALL));
  // a credential change clears the parent-death signal: arm it again (a detached container must
  // survive its monitor: it has none from here on)
  prctl(PR.SET_PDEATHSIG, spec.detached ? 0n : SIGKILL);
}

function execErrorCode(e: SysError): number {
  if (e.code === "ENOENT" || e.code === "ENOTDIR") return EXIT_NOT_FOUND;
  if (e.code === "EACCES" || e.code === "EPERM" || e.code === "ENOEXEC" || e.code === "EISDIR") {
    return EXIT_NOT_EXECUTABLE;
  }
  return EXIT_SETUP_FAILED;
}

const NAMESPACE_FLAGS: Record<NamespaceSpec["type"], number> = {
  mount: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  network: CLONE.NEWNET,
  cgroup: CLONE.NEWCGROUP,
};

/** Joins the namespaces the spec names by path (setns), then makes the others anew in one unshare. */
function enterNamespaces(namespaces: NamespaceSpec[]): void {
  let fresh = 0;
  for (const ns of namespaces) {
    if (ns.type === "cgroup" && ns.path === undefined) continue; // made once in the cgroups (run)
    if (ns.path === undefined) {
      fresh |= NAMESPACE_FLAGS[ns.type];
      continue;
    }
    const fd = open(ns.path, O.RDONLY | O.CLOEXEC);
    try {
      setns(fd, NAMESPACE_FLAGS[ns.type]); // the flag makes the kernel check the fd's kind
    } finally {
      close(fd);
    }
  }
  if (fresh) unshare(fresh);
}

function run(spec: InitSpec, fifo: FifoReader): never {
  // --init: its sealed copy, made while /proc is still the host's (the reopen goes through it)
  const initFd = spec.init ? initProgramFd() : -1;
  // -t: the parent's socket, by its host path while the stage still sees the host's (console.ts)
  const consoleSocket = spec.consoleSocket !== undefined ? connectConsoleSocket(spec.consoleSocket) : -1;
  umask(0); // device nodes and files we create get exactly the modes we ask for
  if (spec.outputPipes) attachOutput(spec.outputPipes); // the host's /proc, before any unshare
  if (spec.oomScoreAdj !== undefined) setOomScoreAdj(spec.oomScoreAdj);
  const host = spec.sysctls ? { net: namespaceInode("net"), ipc: namespaceInode("ipc") } : undefined;
  enterNamespaces(spec.namespaces);
  if (spec.sysctls) checkSysctls(spec.sysctls, ownNamespaces(spec.namespaces, host!));
  setsid(); // a session of its own: the caller's terminal signals reach it only through skiff
  const { console } = setupRootfs(
    spec,
    spec.sysctls ? (procFd) => writeSysctls(procFd, spec.sysctls!) : undefined,
  );
  if (console) {
    attachConsole(console.slave);
    close(console.slave);
    sendMaster(consoleSocket, console.master);
  }
  // the mounts above open nothing the container controls but by O_PATH (lib/fs: a device node is
  // never opened); what follows reads its files by path (/etc/passwd and /etc/group, which an image
  // or an earlier run may have made device nodes): from here on only as a member of its cgroups,
  // whose device rules then apply, as they do to the container
  if (spec.awaitCgroup) {
    const late = parseLateLine(fifo.line());
    if (!late) throw new InitFailure("unexpected go signal", EXIT_SETUP_FAILED);
    Object.assign(spec, late);
  }
  close(fifo.fd);
  // the parent holds the master and set the window size before anything of the command runs
  if (consoleSocket >= 0 && !awaitConsoleReady(consoleSocket)) Deno.exit(EXIT_SETUP_FAILED);
  // --cgroupns private: its root is the cgroup the stage is in now, the container's own
  if (spec.namespaces.some((ns) => ns.type === "cgroup" && ns.path === undefined)) unshare(CLONE.NEWCGROUP);
  if (spec.nullStdin) {
    const devNull = open("/dev/null", O.RDWR | O.CLOEXEC); // made by setupRootfs: the container's own
    dup2(devNull, 0);
    close(devNull);
  }
  // --uts host: the host's namespace, whose name is not the container's to set
  if (spec.namespaces.some((ns) => ns.type === "uts")) sethostname(spec.hostname);
  // a namespace of its own (--network none) has lo down; a joined one is set up already
  if (spec.namespaces.some((ns) => ns.type === "network" && ns.path === undefined)) interfaceUp("lo");

  let user: ExecUser;
  const rootFd = open("/", O.PATH | O.DIRECTORY | O.CLOEXEC); // the container's, since pivot_root
  try {
    user = resolveUser(spec.user, spec.groupAdd, rootFd);
  } catch (e) {
    throw new InitFailure((e as Error).message, EXIT_SETUP_FAILED, true);
  } finally {
    close(rootFd);
    releaseReopen();
  }
  if (consoleSocket >= 0) giveConsoleTo(0, user.uid);
  const env = [...spec.env];
  if (envValue(env, "HOME") === undefined) env.push(`HOME=${user.home}`);
  enterWorkingDir(spec.workingDir);
  if (spec.readOnlyRootfs) makeRootReadOnly();
  // with --init the init looks the command up, as docker-init does (and reports it as tini)
  const path = spec.init ? "" : findExecutable(spec.args[0], envValue(env, "PATH") ?? "");

  confineBeforeCredentials(spec);
  // as runc does: while the capabilities last (raising a hard limit takes CAP_SYS_RESOURCE)
  if (spec.rlimits) applyRlimits(spec.rlimits, "privileged");
  becomeUser(spec, user);
  umask(0o022);
  resetSignals();
  closeRange(3, CLOSE_RANGE_CLOEXEC); // fds inherited from skiff's caller must not reach the container
  if (spec.rlimits) applyRlimits(spec.rlimits, "final");
  confineLast(spec);
  try {
    if (spec.init) execInit(initFd, spec.args, env);
    execve(path, spec.args, env);
  } catch (e) {
    if (e instanceof SysError) {
      const shown = spec.init ? INIT_PATH : spec.args[0];
      throw new InitFailure(`exec: "${shown}": ${e.detail.toLowerCase()}`, execErrorCode(e));
    }
    throw e;
  }
}

/** The inode of one of this process's namespaces (which one it is in now). */
function namespaceInode(type: string): number {
  return Deno.statSync(`/proc/self/ns/${type}`).ino ?? -1;
}

/** What runc's sysctl check asks: which namespaces are the container's own. */
function ownNamespaces(namespaces: NamespaceSpec[], host: { net: number; ipc: number }) {
  const has = (type: NamespaceSpec["type"]) => namespaces.some((ns) => ns.type === type);
  return {
    ipc: has("ipc"),
    // a joined namespace may be skiff's own (a container:X whose X runs with --ipc host or --network
    // host): a write there would change the host's value
    ipcIsHost: namespaceInode("ipc") === host.ipc,
    network: has("network"),
    networkIsHost: namespaceInode("net") === host.net,
    uts: has("uts"),
  };
}

/** Entry point of `skiff __init FIFO PARENT_PID`: never returns (execve or exit). */
export function initMain(args: string[]): never {
  let errorFd = -1;
  try {
    prctl(PR.SET_PDEATHSIG, SIGKILL); // the container dies with its skiff
    // until execve nothing in the container may read this process's host fds or root through /proc
    prctl(PR.SET_DUMPABLE, 0n);
    const { spec, fifo } = receiveSpec(args[0], Number(args[1]));
    errorFd = open(spec.errorFile, O.WRONLY | O.CREAT | O.TRUNC | O.CLOEXEC, 0o600);
    run(spec, fifo);
  } catch (e) {
    const code = e instanceof InitFailure || e instanceof LimitFailure ? e.exitCode : EXIT_SETUP_FAILED;
    const message = e instanceof InitFailure || e instanceof LimitFailure
      ? e.message
      : `failed to set up the container: ${(e as Error).message ?? String(e)}`;
    // "<code>[!] <message>": "!" marks the daemon's own words (process.ts readInitError)
    const daemon = e instanceof InitFailure && e.daemon ? "!" : "";
    const line = new TextEncoder().encode(`${code}${daemon} ${message}\n`);
    try {
      if (errorFd >= 0) write(errorFd, line);
      else Deno.stderr.writeSync(line);
    } catch { /* nowhere left to report */ }
    Deno.exit(code);
  }
}
