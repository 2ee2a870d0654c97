// The holder of a detached container's terminal or stdin, planned as a syscall program (pure; run
// by exec's interpreter, ffi/exec_program.ts). The supervisor holds a -t container's pty master and
// a -d -i container's stdin pipe: a master cannot be had again once its last fd is closed, and the
// pipe's end is the container's EOF. So a fork of the supervisor keeps a copy of them for the
// container's life, the way docker's shim does, without a Deno runtime (a few pages, not ~18 MB):
//
//   holder (host PID namespace: never visible in the container; not in its cgroups)
//     unregister glibc's rseq, unmap every page but the program's, exe := a sealed empty memfd
//     (PR_SET_MM_MAP), non-dumpable, signals to default (and all blocked, from the fork), setsid,
//     named skiff-holder;
//     close every fd but the held ones and a pidfd of the container's PID 1 (the error pipe goes
//     too: its EOF tells the supervisor the holder is ready); ppoll(pidfd) until PID 1 has exited;
//     exit
//
// A new supervisor takes the held fds back with pidfd_getfd (engine/holder.ts).

import type { RseqRegistration } from "../../ffi/exec_program.ts";
import {
  closeAllBut,
  type ExecProgram,
  leaveSkiffMemory,
  PRCTL_MM_MAP_SIZE,
  type Step,
} from "./exec_program.ts";

export interface HolderPlan {
  sys: Record<"prctl" | "setsid" | "close_range" | "ppoll" | "exit_group", number>;
  rseq: RseqRegistration | null;
  /** Read-only fd of a sealed empty memfd: the holder's /proc/<pid>/exe. */
  exeFd: number;
  /** The fds to hold (kept at their numbers). */
  held: number[];
  /** A pidfd of the container's PID 1: the holder exits once it polls readable. */
  pidfd: number;
  /** Where a failing step writes {index + 1, errno}; closed once the holder is set up. */
  errorFd: number;
  setupFailed: number;
}

const PR_SET_DUMPABLE = 4, PR_SET_NAME = 15, PR_SET_MM = 35, PR_SET_MM_MAP = 14, POLLIN = 1;

export function planHolderProgram(p: HolderPlan): ExecProgram {
  const s = p.sys;
  const steps: Step[] = [];
  const call = (label: string, nr: number, args: Step["args"]) =>
    steps.push({ label, op: "syscall", nr, args, exitCode: p.setupFailed });
  leaveSkiffMemory(steps, p.rseq, p.setupFailed);
  call("prctl PR_SET_MM_MAP", s.prctl, [PR_SET_MM, PR_SET_MM_MAP, { mmMap: p.exeFd }, PRCTL_MM_MAP_SIZE]);
  call("prctl PR_SET_DUMPABLE", s.prctl, [PR_SET_DUMPABLE, 0]);
  steps.push({ label: "signals", op: "resetSignals", exitCode: p.setupFailed });
  call("setsid", s.setsid, []);
  // its name in ps (the fork's was the supervisor's; its cmdline is empty)
  call("prctl PR_SET_NAME", s.prctl, [PR_SET_NAME, { bytes: new TextEncoder().encode("skiff-holder\0") }]);
  // every fd but the held ones and the pidfd; the error pipe last of all (its EOF: ready)
  closeAllBut(call, s.close_range, [...p.held, p.pidfd, p.errorFd], 0);
  call("close error pipe", s.close_range, [p.errorFd, p.errorFd, 0]);
  // struct pollfd { int fd; short events; short revents; }: no timeout, no signal mask change
  const pollfd = new DataView(new ArrayBuffer(8));
  pollfd.setInt32(0, p.pidfd, true);
  pollfd.setInt16(4, POLLIN, true);
  call("ppoll", s.ppoll, [{ bytes: new Uint8Array(pollfd.buffer) }, 1, 0, 0, 8]);
  call("exit_group", s.exit_group, [0]);
  return { steps, errorFd: p.errorFd };
}
