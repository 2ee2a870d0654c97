// exec's way into a container, planned as a syscall program (pure: planned and encoded here, run
// by ffi/exec_program.ts). `skiff exec` opens everything the way needs in its own process (the
// namespaces of the container's PID 1, its cgroups' files, the stdio, an error pipe, a sealed empty
// memfd), resolves the user and the command in the container's root through a directory fd, and
// writes the order runc's nsexec keeps as a table of system calls. A fork of skiff exec (that runs
// only the interpreter's machine code) executes it:
//
//   middle (host PID namespace: never visible in the container)
//     unregister glibc's rseq, unmap every page but the program's, exe := the memfd (PR_SET_MM_MAP),
//     non-dumpable, signals to default, setsid; "0" into the container's cgroups; setns cgroup, ipc,
//     uts, net, mnt (root and cwd the container's); chdir -w; stdio onto 0-2; close every other fd
//     but the error pipe and the PID namespace's; setns pid (for its children); seccomp and
//     credentials in runc's order; clone(CLONE_PARENT): the command is skiff exec's own child
//     parent path: {0, pid} into the error pipe, exit
//   command (the container's PID namespace, born without privileges and without skiff's memory)
//     [-t: setsid, TIOCSCTTY]; unblock signals; execve (its failure: {index + 1, errno} in the pipe)

import type { RseqRegistration } from "../../ffi/exec_program.ts";

/** One argument: a number, or data laid out with the program (the call gets its address). */
export type Arg =
  | number
  | bigint
  | { bytes: Uint8Array }
  | { strings: string[] } // a NULL-terminated char *[]
  | { fprog: Uint8Array } // struct sock_fprog for this BPF
  | { mmMap: number } // struct prctl_mm_map: this program's pages, the exe from this fd
  | { resultOf: string } // the result field of the step with that label (its address)
  | { resultValue: string }; // the result of the step with that label itself (an fd it got)

export type StepOp = "syscall" | "fork" | "unmapOthers" | "resetSignals" | "rseqUnregister" | "chain";

export interface Step {
  /** Names the step in errors and tests: "chdir", "setns mnt", "execve" ... */
  label: string;
  op: StepOp;
  nr?: number;
  args?: Arg[];
  ignoreError?: boolean;
  /** A result of 0 fails too, as EPIPE (a read of a sync byte that met EOF: the parent is gone). */
  zeroFails?: boolean;
  /** The process's exit code when this step fails. */
  exitCode: number;
  /** fork: the step the parent continues with. */
  jumpTo?: string;
}

export interface ExecProgram {
  steps: Step[];
  /** A cgroup v2 directory fd: the fork goes there at birth (clone3 CLONE_INTO_CGROUP, no RCU wait). */
  intoCgroupFd?: number;
  /** Where a failing step writes {index + 1, errno}; the middle writes {0, pid} there too. */
  errorFd: number;
  /** clone flags of the fork besides SIGCHLD (run's stage: CLONE_NEWPID). */
  cloneFlags?: number;
}

export interface ExecPlan {
  /** This architecture's system call numbers (ffi SYSCALLS). */
  sys: Record<
    | "write"
    | "prctl"
    | "setsid"
    | "setns"
    | "chdir"
    | "dup3"
    | "close_range"
    | "close"
    | "seccomp"
    | "setgroups"
    | "setresgid"
    | "setresuid"
    | "capset"
    | "clone"
    | "exit_group"
    | "ioctl"
    | "rt_sigprocmask"
    | "execve"
    | "prlimit64",
    number
  >;
  rseq: RseqRegistration | null;
  /** Read-only fd of a sealed empty memfd: the command's /proc/<pid>/exe until its execve. */
  exeFd: number;
  /** `tasks` (v1) / `cgroup.procs` (v2) of the container's groups, open for writing. */
  cgroupFds: number[];
  /** The container's v2 group (a directory fd) to fork into instead of writing its cgroup.procs. */
  intoCgroupFd?: number;
  /** The container's namespaces other than pid, in joining order (mnt last), and its pid one. */
  namespaces: { fd: number; type: number; name: string }[];
  pidNamespaceFd?: number;
  workingDir: string;
  /** What becomes the command's fds 0, 1 and 2 (all 3 or above). */
  stdio: [number, number, number];
  errorFd: number;
  /** The stdio is a pty slave: the command's session gets it as its terminal. */
  tty: boolean;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Bounding set; unless privileged, every other capability up to lastCap is dropped. */
  capabilities: bigint;
  privileged: boolean;
  lastCap: number;
  /** The capabilities skiff holds: what capset may grant (these hosts lack CAP_SYS_RESOURCE). */
  held: bigint;
  seccomp?: { filter: Uint8Array; flags: number };
  noNewPrivileges: boolean;
  path: string;
  argv: string[];
  env: string[];
  setupFailed: number;
  notFound: number;
  notExecutable: number;
  /** The container's --ulimit (docker's exec gets them from the container's spec), soft and hard. */
  rlimits?: { resource: number; soft: bigint; hard: bigint }[];
}

const PR_SET_DUMPABLE = 4, PR_SET_KEEPCAPS = 8, PR_CAPBSET_DROP = 24, PR_SET_MM = 35, PR_SET_MM_MAP = 14;
const PR_SET_NO_NEW_PRIVS = 38, PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_CLEAR_ALL = 4;
const SECCOMP_SET_MODE_FILTER = 1, CLONE_NEWPID = 0x20000000, CLONE_PARENT = 0x8000, SIGCHLD = 17;
const CLONE_INTO_CGROUP = 0x200000000n;
const TIOCSCTTY = 0x540e, SIG_SETMASK = 2, CAP_V3 = 0x20080522;
export const PRCTL_MM_MAP_SIZE = 104;

/** The program for one exec, in order (see the top of this file). */
export function planExecProgram(p: ExecPlan): ExecProgram {
  const s = p.sys;
  const steps: Step[] = [];
  const call = (label: string, nr: number, args: Arg[], exitCode = p.setupFailed, ignoreError = false) =>
    steps.push({ label, op: "syscall", nr, args, exitCode, ignoreError });
  // out of skiff's memory and binary before anything else
  leaveSkiffMemory(steps, p.rseq, p.setupFailed);
  call("prctl PR_SET_MM_MAP", s.prctl, [PR_SET_MM, PR_SET_MM_MAP, { mmMap: p.exeFd }, PRCTL_MM_MAP_SIZE]);
  call("prctl PR_SET_DUMPABLE", s.prctl, [PR_SET_DUMPABLE, 0]);
  steps.push({ label: "signals", op: "resetSignals", exitCode: p.setupFailed });
  // a session of its own: the caller's terminal is never the container's
  call("setsid", s.setsid, []);
  // the cgroups first: once in the container's cgroup namespace, ours is out of sight (ENOENT)
  for (const fd of p.cgroupFds) call("cgroup", s.write, [fd, { bytes: new TextEncoder().encode("0") }, 1]);
  for (const ns of p.namespaces) call(`setns ${ns.name}`, s.setns, [ns.fd, ns.type]);
  call("chdir", s.chdir, [{ bytes: cString(p.workingDir) }], p.notExecutable);
  p.stdio.forEach((fd, target) => call("dup3", s.dup3, [fd, target, 0]));
  closeAllBut(call, s.close_range, [
    p.errorFd,
    ...(p.pidNamespaceFd === undefined ? [] : [p.pidNamespaceFd]),
  ]);
  if (p.pidNamespaceFd !== undefined) {
    call("setns pid", s.setns, [p.pidNamespaceFd, CLONE_NEWPID]);
    call("close", s.close, [p.pidNamespaceFd]);
  }
  // while the capabilities last (raising a hard limit takes CAP_SYS_RESOURCE); the clone inherits them
  confineSteps(p, call);
  // the command: skiff exec's child, in the container's PID namespace, already confined
  steps.push({
    label: "clone",
    op: "fork",
    nr: s.clone,
    args: [CLONE_PARENT | SIGCHLD, 0, 0, 0, 0],
    exitCode: p.setupFailed,
    jumpTo: "report pid",
  });
  if (p.tty) {
    call("setsid", s.setsid, []);
    call("ioctl TIOCSCTTY", s.ioctl, [0, TIOCSCTTY, 0]);
  }
  call("rt_sigprocmask", s.rt_sigprocmask, [SIG_SETMASK, { bytes: new Uint8Array(8) }, 0, 8]);
  call("execve", s.execve, [{ bytes: cString(p.path) }, { strings: p.argv }, { strings: p.env }], p.notFound);
  call("exit_group", s.exit_group, [p.notFound]);
  call("report pid", s.write, [p.errorFd, { resultOf: "clone" }, 8]);
  call("exit_group", s.exit_group, [0]);
  return { steps, errorFd: p.errorFd, intoCgroupFd: p.intoCgroupFd };
}

/** What the credential and confinement steps need (exec's plan, and run's stage's last program). */
export type ConfinePlan = Pick<
  ExecPlan,
  | "sys"
  | "rlimits"
  | "seccomp"
  | "noNewPrivileges"
  | "privileged"
  | "lastCap"
  | "capabilities"
  | "additionalGids"
  | "gid"
  | "uid"
  | "held"
>;

/**
 * rlimits, the seccomp filter, the bounding set, the ids, the capabilities and no_new_privs, in
 * runc's order (the filter first when it needs CAP_SYS_ADMIN, last under no_new_privs).
 */
export function confineSteps(
  p: ConfinePlan,
  call: (label: string, nr: number, args: Arg[]) => void,
): void {
  const s = p.sys;
  // while the capabilities last (raising a hard limit takes CAP_SYS_RESOURCE)
  for (const r of p.rlimits ?? []) {
    const limits = new BigUint64Array([BigInt.asUintN(64, r.soft), BigInt.asUintN(64, r.hard)]);
    call(`rlimit ${r.resource}`, s.prlimit64, [0, r.resource, { bytes: new Uint8Array(limits.buffer) }, 0]);
  }
  // runc's order: without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes on first
  const filter = () =>
    call("seccomp", s.seccomp, [SECCOMP_SET_MODE_FILTER, p.seccomp!.flags, { fprog: p.seccomp!.filter }]);
  if (p.seccomp && !p.noNewPrivileges) filter();
  if (!p.privileged) {
    for (let cap = 0; cap <= p.lastCap; cap++) {
      if (!(p.capabilities & (1n << BigInt(cap)))) {
        call("prctl PR_CAPBSET_DROP", s.prctl, [PR_CAPBSET_DROP, cap]);
      }
    }
  }
  call("prctl PR_SET_KEEPCAPS", s.prctl, [PR_SET_KEEPCAPS, 1]);
  call("setgroups", s.setgroups, [p.additionalGids.length, {
    bytes: new Uint8Array(Uint32Array.from(p.additionalGids).buffer),
  }]);
  call("setresgid", s.setresgid, [p.gid, p.gid, p.gid]);
  call("setresuid", s.setresuid, [p.uid, p.uid, p.uid]);
  const granted = p.held & (p.privileged ? ~0n : p.capabilities);
  call("capset", s.capset, [{ bytes: new Uint8Array(Uint32Array.from([CAP_V3, 0]).buffer) }, {
    bytes: capData(granted),
  }]);
  call("prctl PR_CAP_AMBIENT", s.prctl, [PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]);
  if (p.noNewPrivileges) call("prctl PR_SET_NO_NEW_PRIVS", s.prctl, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]);
  if (p.seccomp && p.noNewPrivileges) filter();
}

/** The first steps of every fork of skiff: glibc's rseq undone, then every page but the program's gone. */
export function leaveSkiffMemory(steps: Step[], rseq: RseqRegistration | null, exitCode: number): void {
  if (rseq) {
    steps.push({
      label: "rseq unregister",
      op: "rseqUnregister",
      args: [rseq.offset, rseq.size, rseq.signature],
      exitCode,
    });
  }
  steps.push({ label: "unmap", op: "unmapOthers", exitCode });
}

/** close_range over every fd from `from` up but those in `keep`. */
export function closeAllBut(
  call: (label: string, nr: number, args: Arg[]) => void,
  closeRangeNr: number,
  keep: number[],
  from = 3,
): void {
  let first = from;
  for (const fd of [...[...new Set(keep)].sort((a, b) => a - b), 0xffffffff + 1]) {
    if (fd > first) call("close_range", closeRangeNr, [first, fd - 1, 0]);
    first = Math.max(first, fd + 1);
  }
}

export function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  if (bytes.includes(0)) throw new Error("a string with a NUL byte");
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function capData(caps: bigint): Uint8Array {
  const lo = Number(caps & 0xffffffffn), hi = Number(caps >> 32n);
  return new Uint8Array(Uint32Array.from([lo, lo, 0, hi, hi, 0]).buffer);
}

const OPS: Record<StepOp, number> = {
  syscall: 0,
  fork: 1,
  unmapOthers: 2,
  resetSignals: 3,
  rseqUnregister: 4,
  chain: 5,
};
const HEADER = 80, ENTRY = 80;

/** Where the program goes: its data right after the code, its stack at the end of the mapping. */
export interface ProgramLayout {
  base: bigint;
  size: number;
  codeSize: number;
  cloneNr: number;
  clone3Nr: number;
  stackSize: number;
  /** Where in the mapping this program goes (default: right after the code). */
  dataOffset?: number;
}

/**
 * The program as the interpreter reads it (struct program, then the data its arguments point to),
 * for a mapping at `layout` (the data part starts at base + codeSize). With base 0: its size.
 */
export function encodeProgram(program: ExecProgram, layout: ProgramLayout): Uint8Array<ArrayBuffer> {
  const dataBase = layout.base + BigInt(layout.dataOffset ?? layout.codeSize);
  const chunks: Uint8Array[] = [];
  let offset = HEADER + ENTRY * program.steps.length;
  const place = (bytes: Uint8Array): bigint => {
    const at = offset;
    chunks.push(bytes);
    offset += bytes.length;
    const pad = (8 - (offset % 8)) % 8;
    if (pad) chunks.push(new Uint8Array(pad)), offset += pad;
    return dataBase + BigInt(at);
  };
  const indexOf = (label: string) => {
    const i = program.steps.findIndex((s) => s.label === label);
    if (i < 0) throw new Error(`no step ${label}`);
    return i;
  };
  const value = (arg: Arg): bigint => {
    if (typeof arg === "number" || typeof arg === "bigint") return BigInt.asUintN(64, BigInt(arg));
    if ("resultValue" in arg) return BigInt(indexOf(arg.resultValue));
    if ("bytes" in arg) return place(arg.bytes);
    if ("strings" in arg) {
      const pointers = new BigUint64Array(arg.strings.length + 1);
      arg.strings.forEach((s, i) => pointers[i] = place(cString(s)));
      return place(new Uint8Array(pointers.buffer));
    }
    if ("fprog" in arg) {
      const fprog = new BigUint64Array(2); // unsigned short len; struct sock_filter *filter
      fprog[0] = BigInt(arg.fprog.length / 8);
      fprog[1] = place(arg.fprog);
      return place(new Uint8Array(fprog.buffer));
    }
    if ("mmMap" in arg) {
      // every field inside these pages (the kernel only checks they are ordered and mapped-able);
      // no arguments or environment to show in /proc/<pid>/cmdline meanwhile
      const b = layout.base, map = new BigUint64Array(PRCTL_MM_MAP_SIZE / 8);
      map.set([b, b + BigInt(layout.codeSize), b, b, b, b, b + BigInt(layout.size) - 8n, b, b, b, b, 0n]);
      new DataView(map.buffer).setUint32(100, arg.mmMap, true); // exe_fd (auxv_size 0: kept)
      return place(new Uint8Array(map.buffer));
    }
    return dataBase + BigInt(HEADER + ENTRY * indexOf(arg.resultOf) + 72);
  };
  const table = new DataView(new ArrayBuffer(HEADER + ENTRY * program.steps.length));
  const u64 = (at: number, v: bigint) => table.setBigUint64(at, v, true);
  const top = layout.base + BigInt(layout.size);
  if (program.intoCgroupFd === undefined) {
    u64(0, BigInt(layout.cloneNr)); // skiff_fork: clone(SIGCHLD, the stack's top)
    u64(8, BigInt(SIGCHLD | (program.cloneFlags ?? 0)));
    u64(16, top);
  } else {
    // clone3: struct clone_args (v2, 88 bytes) with CLONE_INTO_CGROUP and the stack at the end
    const args = new BigUint64Array(11);
    args[0] = CLONE_INTO_CGROUP | BigInt(program.cloneFlags ?? 0);
    args[4] = BigInt(SIGCHLD);
    args[5] = top - BigInt(layout.stackSize);
    args[6] = BigInt(layout.stackSize);
    args[10] = BigInt(program.intoCgroupFd);
    u64(0, BigInt(layout.clone3Nr));
    u64(8, place(new Uint8Array(args.buffer)));
    u64(16, 88n);
  }
  u64(48, layout.base);
  u64(56, layout.base + BigInt(layout.size));
  u64(64, BigInt(program.errorFd));
  u64(72, BigInt(program.steps.length));
  program.steps.forEach((step, i) => {
    const at = HEADER + ENTRY * i;
    table.setUint32(at, OPS[step.op], true);
    let flags = (step.ignoreError ? 1 : 0) | (step.zeroFails ? 2 : 0);
    (step.args ?? []).forEach((arg, k) => {
      if (typeof arg === "object" && "resultValue" in arg) flags |= 0x100 << k;
    });
    table.setUint32(at + 4, flags, true);
    table.setUint32(at + 8, step.exitCode, true);
    table.setUint32(at + 12, step.jumpTo === undefined ? 0 : indexOf(step.jumpTo), true);
    u64(at + 16, BigInt(step.nr ?? 0));
    (step.args ?? []).forEach((arg, k) => u64(at + 24 + 8 * k, value(arg)));
  });
  const out = new Uint8Array(offset);
  out.set(new Uint8Array(table.buffer));
  let at = table.byteLength;
  for (const c of chunks) out.set(c, at), at += c.length;
  return out;
}

/** What the error pipe says: the command's pid, or the step that failed and its errno. */
export type PipeRecord = { pid: number } | { failed: number; errno: number };

export function decodeRecord(bytes: Uint8Array): PipeRecord {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const first = v.getUint32(0, true), second = v.getUint32(4, true);
  return first === 0 ? { pid: second } : { failed: first - 1, errno: second };
}
