// run's init stage as three syscall programs (pure: planned and encoded here; run by the interpreter
// of ffi/exec_program, as exec's way in). No second Deno starts for a container: skiff forks its
// future PID 1 at once, and skiff's own thread builds the root filesystem in namespaces of its own
// (init.ts) while the child waits. The child runs only the interpreter's code:
//
//   at the fork (CLONE_NEWPID: PID 1 of a new PID namespace)
//     out of skiff's memory; parent-death signal; non-dumpable; signals to default; setsid; stdio
//     pipes onto 0-2; wait for the next program (EOF: skiff is gone, exit)
//   namespaces (written by skiff once its thread has them and the overlay root)
//     join that thread's namespaces (mnt last) by pidfd_getfd of skiff's fds; oom_score_adj; mount
//     a proc of its PID namespace on the /proc target skiff made; tell skiff; wait
//   the container (written by skiff once the cgroups are joined)
//     pivot_root into the overlay root skiff holds; cgroupns; the container's stdio;
//     working directory; --read-only; credentials and seccomp in runc's order; execve
//
// A failing step writes {index + 1, errno} to the error pipe (stage.ts turns it into docker's words).

import type { RseqRegistration } from "../../ffi/exec_program.ts";
import {
  type Arg,
  closeAllBut,
  type ConfinePlan,
  confineSteps,
  cString,
  type ExecProgram,
  leaveSkiffMemory,
  type Step,
} from "./exec_program.ts";

export type StageSys = Record<
  | "read"
  | "write"
  | "openat"
  | "close"
  | "prctl"
  | "setsid"
  | "setns"
  | "chdir"
  | "fchdir"
  | "dup3"
  | "mount"
  | "umount2"
  | "pivot_root"
  | "unshare"
  | "umask"
  | "close_range"
  | "pidfd_getfd"
  | "ioctl"
  | "rt_sigprocmask"
  | "execve"
  | "execveat"
  | "exit_group"
  | "clone"
  | "clone3",
  number
>;

const PR_SET_PDEATHSIG = 1, PR_SET_DUMPABLE = 4, SIGKILL = 9, CLONE_NEWPID = 0x20000000;
const CLONE_NEWCGROUP = 0x02000000, O_WRONLY = 1, O_CLOEXEC = 0o2000000;
const MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_RDONLY = 1, MS_REMOUNT = 32, MS_BIND = 4096;
const MNT_DETACH = 2, CLOSE_RANGE_CLOEXEC = 4, TIOCSCTTY = 0x540e, SIG_SETMASK = 2, AT_EMPTY_PATH = 0x1000;

/** The fork's program: what the child does before it knows anything of the container. */
export interface ForkPlan {
  sys: StageSys;
  rseq: RseqRegistration | null;
  /** run's stdio pipes (child ends), dup'ed onto 0, 1, 2; undefined: the inherited fd stays. */
  stdio: [number | undefined, number | undefined, number | undefined];
  /** What the child keeps of skiff's fds (besides 0-2): its pipe ends and skiff's pidfd. Every other fd goes. */
  keep: number[];
  /** The child's end of the go pipe: one byte per next program. */
  goFd: number;
  errorFd: number;
  /** Address of the namespaces program (in the same shared mapping). */
  next: bigint;
  /** A private PID namespace (clone's CLONE_NEWPID); false: the one this thread's children get. */
  newPidNamespace: boolean;
  setupFailed: number;
}

function builder(setupFailed: number) {
  const steps: Step[] = [];
  const call = (label: string, nr: number, args: Arg[], more: Partial<Step> = {}) =>
    steps.push({ label, op: "syscall", nr, args, exitCode: setupFailed, ...more });
  return { steps, call };
}

export function planForkProgram(p: ForkPlan): ExecProgram {
  const s = p.sys;
  const { steps, call } = builder(p.setupFailed);
  // a container with CAP_SYS_PTRACE could otherwise read a copy of skiff's heap in its PID 1
  leaveSkiffMemory(steps, p.rseq, p.setupFailed);
  call("prctl PR_SET_PDEATHSIG", s.prctl, [PR_SET_PDEATHSIG, SIGKILL]); // the container dies with skiff
  call("prctl PR_SET_DUMPABLE", s.prctl, [PR_SET_DUMPABLE, 0]);
  steps.push({ label: "signals", op: "resetSignals", exitCode: p.setupFailed });
  // a session of its own: the caller's terminal signals reach it only through skiff
  call("setsid", s.setsid, []);
  p.stdio.forEach((fd, target) => {
    if (fd !== undefined) call("dup3", s.dup3, [fd, target, 0]);
  });
  // every fd of skiff's but those (a client's socket, skiff's own pipe ends): the fork has a copy
  // of all, and one held here would keep a caller waiting or reach the container's setup
  closeAllBut(call, s.close_range, p.keep);
  waitAndChain(call, steps, s, p.goFd, p.next, p.setupFailed);
  return { steps, errorFd: p.errorFd, cloneFlags: p.newPidNamespace ? CLONE_NEWPID : 0 };
}

function waitAndChain(
  call: (label: string, nr: number, args: Arg[], more?: Partial<Step>) => void,
  steps: Step[],
  s: StageSys,
  goFd: number,
  next: bigint,
  setupFailed: number,
) {
  call("wait", s.read, [goFd, { bytes: new Uint8Array(8) }, 1], { zeroFails: true });
  steps.push({ label: "next", op: "chain", args: [next], exitCode: setupFailed });
}

/** An fd of skiff's, copied into the child (pidfd_getfd): steps labelled `name`, its value usable by label. */
function pull(
  call: (label: string, nr: number, args: Arg[], more?: Partial<Step>) => void,
  s: StageSys,
  pidfd: number,
  fd: number,
  name: string,
) {
  call(name, s.pidfd_getfd, [pidfd, fd, 0]);
}

/** The namespaces program: written by skiff's setup (init.ts) once its thread has them. */
export interface NamespacesPlan {
  sys: StageSys;
  /** A pidfd of skiff itself (open in the child since the fork). */
  pidfd: number;
  /** skiff's fds of its thread's namespaces, in joining order (mnt last). */
  namespaces: { fd: number; type: number; name: string }[];
  /** skiff's O_PATH fd of the /proc mount target in the container's root (in that thread's mount namespace). */
  procTarget: number;
  oomScoreAdj?: number;
  readyFd: number;
  goFd: number;
  errorFd: number;
  next: bigint;
  setupFailed: number;
}

export function planNamespacesProgram(p: NamespacesPlan): ExecProgram {
  const s = p.sys;
  const { steps, call } = builder(p.setupFailed);
  // --oom-score-adj: through the host's /proc, which the new mount namespace still shows
  if (p.oomScoreAdj !== undefined) {
    call("open oom_score_adj", s.openat, [
      -100,
      { bytes: cString("/proc/self/oom_score_adj") },
      O_WRONLY | O_CLOEXEC,
    ]);
    const text = new TextEncoder().encode(String(p.oomScoreAdj));
    call("write oom_score_adj", s.write, [
      { resultValue: "open oom_score_adj" },
      { bytes: text },
      text.length,
    ]);
    call("close oom_score_adj", s.close, [{ resultValue: "open oom_score_adj" }]);
  }
  for (const ns of p.namespaces) {
    pull(call, s, p.pidfd, ns.fd, `getfd ${ns.name}`);
    call(`setns ${ns.name}`, s.setns, [{ resultValue: `getfd ${ns.name}` }, ns.type]);
    call(`close ${ns.name}`, s.close, [{ resultValue: `getfd ${ns.name}` }]);
  }
  // proc belongs to the PID namespace of whoever mounts it: this process, PID 1 of the container's
  pull(call, s, p.pidfd, p.procTarget, "getfd /proc");
  call("fchdir /proc", s.fchdir, [{ resultValue: "getfd /proc" }]);
  call("mount /proc", s.mount, [
    { bytes: cString("proc") },
    { bytes: cString(".") },
    { bytes: cString("proc") },
    MS_NOSUID | MS_NODEV | MS_NOEXEC,
    0,
  ]);
  call("chdir /", s.chdir, [{ bytes: cString("/") }]);
  call("close /proc", s.close, [{ resultValue: "getfd /proc" }]);
  call("ready", s.write, [p.readyFd, { bytes: new Uint8Array(8).fill(1) }, 1]);
  waitAndChain(call, steps, s, p.goFd, p.next, p.setupFailed);
  return { steps, errorFd: p.errorFd };
}

/** The last program: into the root, the container's process, its command. */
export interface ContainerPlan extends ConfinePlan {
  sys: StageSys & ConfinePlan["sys"];
  pidfd: number;
  /** skiff's O_PATH fd of the overlay root (with everything mounted below it). */
  rootFd: number;
  /** --cgroupns private: made now that the cgroups are joined (its root is the container's group). */
  newCgroupNamespace: boolean;
  /** skiff's fds that become the command's stdio (a pty slave, the container's /dev/null, output pipes). */
  stdio: { fd: number; targets: number[] }[];
  /** -t: the session's controlling terminal is fd 0. */
  tty: boolean;
  workingDir: string;
  readOnlyRoot: boolean;
  /** Detached containers outlive their monitor: no parent-death signal after the credentials. */
  detached: boolean;
  /** --init: skiff's fd of the sealed init; the command is its argv then. */
  initFd?: number;
  path: string;
  argv: string[];
  env: string[];
  errorFd: number;
  setupFailed: number;
  notFound: number;
  notExecutable: number;
}

export function planContainerProgram(p: ContainerPlan): ExecProgram {
  const s = p.sys;
  const { steps, call } = builder(p.setupFailed);
  pull(call, s, p.pidfd, p.rootFd, "getfd root");
  call("fchdir root", s.fchdir, [{ resultValue: "getfd root" }]);
  call("close root", s.close, [{ resultValue: "getfd root" }]);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours
  call("pivot_root", s.pivot_root, [{ bytes: cString(".") }, { bytes: cString(".") }]);
  call("umount2", s.umount2, [{ bytes: cString(".") }, MNT_DETACH]);
  call("chdir /", s.chdir, [{ bytes: cString("/") }]);
  if (p.newCgroupNamespace) call("unshare cgroup", s.unshare, [CLONE_NEWCGROUP]);
  p.stdio.forEach((io, i) => {
    const label = `getfd stdio ${i}`;
    pull(call, s, p.pidfd, io.fd, label);
    for (const target of io.targets) call("dup3", s.dup3, [{ resultValue: label }, target, 0]);
    call("close", s.close, [{ resultValue: label }]);
  });
  if (p.initFd !== undefined) pull(call, s, p.pidfd, p.initFd, "getfd init");
  call("chdir", s.chdir, [{ bytes: cString(p.workingDir) }], { exitCode: p.notExecutable });
  if (p.readOnlyRoot) {
    call("remount / read-only", s.mount, [
      0,
      { bytes: cString("/") },
      0,
      MS_BIND | MS_REMOUNT | MS_RDONLY,
      0,
    ]);
  }
  // fds inherited from skiff's caller must not reach the container (the error pipe and the init
  // go at execve: they are close-on-exec like everything else now)
  call("close_range", s.close_range, [3, 0xffffffff, CLOSE_RANGE_CLOEXEC]);
  confineSteps(p, (label, nr, args) => call(label, nr, args));
  // a credential change clears the parent-death signal: armed again (a detached container must
  // survive its monitor)
  call("prctl PR_SET_PDEATHSIG", s.prctl, [PR_SET_PDEATHSIG, p.detached ? 0 : SIGKILL]);
  call("umask", s.umask, [0o022]);
  if (p.tty) call("ioctl TIOCSCTTY", s.ioctl, [0, TIOCSCTTY, 0]);
  call("rt_sigprocmask", s.rt_sigprocmask, [SIG_SETMASK, { bytes: new Uint8Array(8) }, 0, 8]);
  if (p.initFd !== undefined) {
    call("execve", s.execveat, [
      { resultValue: "getfd init" },
      { bytes: cString("") },
      { strings: p.argv },
      { strings: p.env },
      AT_EMPTY_PATH,
    ], { exitCode: p.notFound });
  } else {
    call("execve", s.execve, [{ bytes: cString(p.path) }, { strings: p.argv }, { strings: p.env }], {
      exitCode: p.notFound,
    });
  }
  call("exit_group", s.exit_group, [p.notFound]);
  return { steps, errorFd: p.errorFd };
}
