// One poll(2) for every fd skiff waits on (container output pipes, pidfds of adopted containers and of
// run's PID 1, its error and ready pipes), on a single thread of Deno's blocking pool. A blocking call per fd would take a
// thread each, and the pool has 32: a supervisor with 16 containers would stall (measured: 20
// detached containers left every new start waiting for a thread).

import { O, pipe, pollReadable, read, write } from "../../ffi/libc.ts";

const POLLIN = 1, POLLOUT = 4;

class Poller {
  /** Waiters by fd and event (POLLIN or POLLOUT). */
  private readonly waiting = new Map<string, { fd: number; events: number; resolve: (() => void)[] }>();
  private wakeRead = -1;
  private wakeWrite = -1;
  private polling = false;

  /** Resolves once `fd` is readable, hung up or in error (closed: as well). */
  readable(fd: number): Promise<void> {
    return this.wait(fd, POLLIN);
  }

  /** Resolves once `fd` can take a write (or its reader is gone: the write then says so). */
  writable(fd: number): Promise<void> {
    return this.wait(fd, POLLOUT);
  }

  private wait(fd: number, events: number): Promise<void> {
    return new Promise((resolve) => {
      const key = `${fd}:${events}`;
      const waiters = this.waiting.get(key);
      if (waiters) waiters.resolve.push(resolve);
      else this.waiting.set(key, { fd, events, resolve: [resolve] });
      if (this.polling) this.interrupt();
      else this.loop();
    });
  }

  /**
   * No more waiting on `fd` (its waiters resolve, as for a hang-up): the poll in progress starts
   * again without it, so the caller may close it (a read end it gives up on).
   */
  forget(fd: number): void {
    for (const [key, entry] of this.waiting) {
      if (entry.fd !== fd) continue;
      this.waiting.delete(key);
      for (const resolve of entry.resolve) resolve();
    }
    if (this.polling) this.interrupt();
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
        const keys = [...this.waiting.keys()];
        const entries = keys.map((k) => this.waiting.get(k)!);
        const revents = await pollReadable(
          [this.wakeRead, ...entries.map((e) => e.fd)],
          [POLLIN, ...entries.map((e) => e.events)],
        );
        if (revents[0]) this.drainWakeups();
        keys.forEach((key, i) => {
          if (!revents[i + 1]) return;
          const waiters = this.waiting.get(key);
          this.waiting.delete(key);
          for (const resolve of waiters?.resolve ?? []) resolve();
        });
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
