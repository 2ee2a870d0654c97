// One poll(2) for every fd skiff waits on (container output pipes, pidfds of adopted containers and of
// run's PID 1, its error and ready pipes), on a single thread of Deno's blocking pool. A blocking call per fd would take a
// thread each, and the pool has 32: a supervisor with 16 containers would stall (measured: 20
// detached containers left every new start waiting for a thread).

import { O, pipe, pollReadable, read, write } from "../../ffi/libc.ts";

class Poller {
  private readonly waiting = new Map<number, (() => void)[]>();
  private wakeRead = -1;
  private wakeWrite = -1;
  private polling = false;

  /** Resolves once `fd` is readable, hung up or in error (closed: as well). */
  readable(fd: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiting.get(fd);
      if (waiters) waiters.push(resolve);
      else this.waiting.set(fd, [resolve]);
      if (this.polling) this.interrupt();
      else this.loop();
    });
  }

  /** The poll in progress returns and starts again with the new set. */
  private interrupt(): void {
    try {
      write(this.wakeWrite, new Uint8Array(1));
    } catch { /* full: a wake-up is pending already */ }
  }

  private async loop(): Promise<void> {
    if (this.wakeRead < 0) [this.wakeRead, this.wakeWrite] = pipe(O.CLOEXEC | O.NONBLOCK);
    this.polling = true;
    try {
      while (this.waiting.size > 0) {
        const fds = [this.wakeRead, ...this.waiting.keys()];
        const revents = await pollReadable(fds);
        if (revents[0]) this.drainWakeups();
        for (let i = 1; i < fds.length; i++) {
          if (!revents[i]) continue;
          const waiters = this.waiting.get(fds[i]);
          this.waiting.delete(fds[i]);
          for (const resolve of waiters ?? []) resolve();
        }
      }
    } finally {
      this.polling = false;
    }
  }

  private drainWakeups(): void {
    const buf = new Uint8Array(64);
    try {
      while (read(this.wakeRead, buf) > 0) { /* more */ }
    } catch { /* EAGAIN: empty */ }
  }
}

/** The supervisor's one poller. */
export const poller = new Poller();
