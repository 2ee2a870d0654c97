// A detached container's holder: a fork of the supervisor that keeps a copy of its pty master (-t)
// or of its stdin pipe's write end (-d -i) until the container's PID 1 exits, so that a supervisor
// crash hangs up neither (lib/runtime/holder_program.ts: what it runs; MONITOR.md, "A supervisor
// crash"). The supervisor that forked it reaps it; a new supervisor takes the fds back from it with
// pidfd_getfd, the holder checked by its pid and start time (recorded in output.state).

import {
  close,
  O,
  pidfdGetfd,
  pidfdOpen,
  pidfdSignal,
  pipe,
  read,
  reapIfExited,
  sealedEmptyMemfd,
  SYSCALLS,
} from "../../ffi/libc.ts";
import { forkProgram, mapProgram, rseqRegistration, unmapProgram } from "../../ffi/exec_program.ts";
import { decodeRecord, encodeProgram } from "../runtime/exec_program.ts";
import { planHolderProgram } from "../runtime/holder_program.ts";
import { isProcessAlive, processStartTime } from "../state/containers.ts";
import { poller } from "../runtime/poller.ts";

/** What output.state records of a holder: the process and the numbers of the fds it holds. */
export interface HolderInfo {
  pid: number;
  startTime: number;
  pty?: number;
  stdin?: number;
}

const STACK_SIZE = 4096;
const SETUP_FAILED = 125;

export class Holder {
  private closed = false;
  private constructor(
    readonly info: HolderInfo,
    private readonly pidfd: number,
    /** Forked by this process: it reaps it (and closes the pidfd then). */
    private readonly own: boolean,
  ) {}

  /**
   * Forks a holder of `held` for the container whose PID 1 is `containerPid` (this process's
   * child: its pid cannot be reused under us). Resolves once it is set up; undefined if it could
   * not be (`why` says why).
   */
  static async start(
    containerPid: number,
    containerStart: number | undefined,
    held: { pty?: number; stdin?: number },
    why: (message: string) => void,
  ): Promise<Holder | undefined> {
    const fds = [held.pty, held.stdin].filter((fd): fd is number => fd !== undefined);
    const opened: number[] = [];
    let errorRead = -1, pid = 0;
    try {
      const pidfd = pidfdOpen(containerPid);
      opened.push(pidfd);
      if (containerStart === undefined || !isProcessAlive(containerPid, containerStart)) return undefined;
      const exeFd = sealedEmptyMemfd("skiff-holder");
      opened.push(exeFd);
      const [r, w] = pipe(O.CLOEXEC | O.NONBLOCK);
      errorRead = r;
      opened.push(w);
      const program = planHolderProgram({
        sys: SYSCALLS,
        rseq: rseqRegistration(),
        exeFd,
        held: fds,
        pidfd,
        errorFd: w,
        setupFailed: SETUP_FAILED,
      });
      const layout = { cloneNr: SYSCALLS.clone, clone3Nr: SYSCALLS.clone3, stackSize: STACK_SIZE };
      const sizing = encodeProgram(program, { base: 0n, size: 0, codeSize: 0, ...layout });
      const mapping = mapProgram(sizing.length, STACK_SIZE);
      try {
        pid = forkProgram(mapping, encodeProgram(program, { ...mapping, ...layout }));
      } finally {
        unmapProgram(mapping); // the holder has its own copy
      }
      for (const fd of opened.splice(0)) close(fd); // the holder's copies are its own
      // EOF once the holder closed its end (set up), or a failed step's record
      await poller.readable(errorRead);
      const record = new Uint8Array(8);
      let n = 0;
      try {
        n = read(errorRead, record);
      } catch { /* EAGAIN cannot happen after readable; read as nothing */ }
      const holderPidfd = pidfdOpen(pid); // our child, not reaped yet: it is the holder
      const startTime = processStartTime(pid);
      if (n === 8 || startTime === undefined) {
        const failed = n === 8 ? decodeRecord(record) : undefined;
        const step = failed && "failed" in failed
          ? `${program.steps[failed.failed]?.label}: errno ${failed.errno}`
          : "it exited";
        why(`holder for ${containerPid}: ${step}`);
        reapWhenExited(pid, holderPidfd);
        return undefined;
      }
      const holder = new Holder({ pid, startTime, ...held }, holderPidfd, true);
      reapWhenExited(pid, holderPidfd, () => holder.closed = true);
      return holder;
    } catch (e) {
      why(`holder for ${containerPid}: ${(e as Error).message}`);
      return undefined;
    } finally {
      for (const fd of opened) close(fd);
      if (errorRead >= 0) close(errorRead);
    }
  }

  /**
   * The holder a dead supervisor forked, if it still runs (pid and start time checked once its
   * pidfd is held), with copies of the fds it holds.
   */
  static adopt(info: HolderInfo): { holder: Holder; pty?: number; stdin?: number } | undefined {
    if (!info.pid || !isProcessAlive(info.pid, info.startTime)) return undefined;
    let pidfd: number;
    try {
      pidfd = pidfdOpen(info.pid);
    } catch {
      return undefined;
    }
    if (!isProcessAlive(info.pid, info.startTime)) {
      close(pidfd);
      return undefined;
    }
    const copy = (fd: number | undefined) => {
      if (fd === undefined) return undefined;
      try {
        return pidfdGetfd(pidfd, fd);
      } catch {
        return undefined;
      }
    };
    return { holder: new Holder(info, pidfd, false), pty: copy(info.pty), stdin: copy(info.stdin) };
  }

  /** Ends the holder now (its copy of the stdin must go for the container to read EOF). */
  kill(): void {
    if (this.closed) return;
    try {
      pidfdSignal(this.pidfd, 9);
    } catch { /* gone */ }
  }

  /** Lets go of an adopted holder (it exits with the container on its own). */
  release(): void {
    if (this.closed || this.own) return;
    this.closed = true;
    close(this.pidfd);
  }
}

/** Our own holder: reaped once it exits (it does once the container's PID 1 has). */
function reapWhenExited(pid: number, pidfd: number, onExit?: () => void): void {
  poller.readable(pidfd).then(() => {
    reapIfExited(pid);
    onExit?.();
    close(pidfd);
  });
}

/** What fd `fd` of process `pid` is ("pipe:[N]", ...), or undefined. */
export function fdTarget(pid: number, fd: number): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/**
 * This process's fd of the write end of pipe `target` ("pipe:[N]", read from the init stage's fd 0
 * before the container's command ran: nothing of the container chose it), or undefined.
 */
export function writeEndOf(target: string | undefined): number | undefined {
  if (!target?.startsWith("pipe:")) return undefined;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) !== target) continue;
      const flags = /flags:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & 3) === O.WRONLY) return Number(e.name);
    } catch { /* closed meanwhile */ }
  }
  return undefined;
}
