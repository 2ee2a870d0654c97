// The parent's end of a -t container's console socket (runc's --console-socket): the init stage
// makes the pty in the container's own devpts and sends the master here (runtime/console.ts). A
// listening unix socket in the state root's tmp/ (0700, skiff's own), because Deno.Command passes
// no fd but stdio to the stage: the stage connects by path while it still sees the host's, and the
// connection is taken only from the stage itself (SO_PEERCRED: our unreaped child's pid).

import {
  acceptAsync,
  close,
  listenUnix,
  peerCredentials,
  receiveFd,
  shutdownSocket,
  SysError,
  write,
} from "../../ffi/mod.ts";
import { processStartTime } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import { poller } from "./poller.ts";

export class ConsoleSocket {
  private connection = -1;
  /** receiveMaster has returned: a later exit of the stage must not shut fds that may be reused. */
  private done = false;
  private closed = false;

  private constructor(readonly path: string, private listening: number) {}

  /** A new socket under `root`'s tmp/ (named as the tmp sweeper expects: removed once we are gone). */
  static listen(root: StateRoot): ConsoleSocket {
    const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
    const path = `${root.tmp}/tty-${Deno.pid}-${processStartTime(Deno.pid) ?? 0}-${rand}`;
    return new ConsoleSocket(path, listenUnix(path, 4));
  }

  /**
   * Waits for the stage `child` to connect and send its pty master: the master (close-on-exec), or
   * undefined when the stage exited first (its init error says why). Connections of any other
   * process are closed unread.
   */
  async receiveMaster(child: { pid: number; status: Promise<unknown> }): Promise<number | undefined> {
    let exited = false;
    child.status.then(() => {
      exited = true;
      // wakes the poll below (shutdown reports a hang-up; a close would not)
      if (this.done) return;
      if (this.listening >= 0) shutdownSocket(this.listening);
      if (this.connection >= 0) shutdownSocket(this.connection);
    });
    try {
      while (this.connection < 0) {
        await poller.readable(this.listening);
        if (exited || this.closed) return undefined;
        const fd = await acceptAsync(this.listening); // pending, or -1 after the shutdown
        if (fd < 0) continue;
        if (peerCredentials(fd).pid === child.pid) this.connection = fd;
        else close(fd);
      }
      this.stopListening();
      while (true) {
        await poller.readable(this.connection);
        if (this.closed) return undefined;
        try {
          return receiveFd(this.connection); // undefined: the stage closed it (it failed)
        } catch (e) {
          if (!(e instanceof SysError) || e.code !== "EAGAIN") throw e;
          if (exited) return undefined;
        }
      }
    } finally {
      this.done = true;
    }
  }

  /** Tells the stage the master is taken (and its window size set): the command may start. */
  ready(): void {
    if (this.connection >= 0) write(this.connection, new Uint8Array([1]));
    this.close();
  }

  /** Closes our ends and removes the socket's name; a stage waiting for ready() reads EOF and exits. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.done && this.connection >= 0) shutdownSocket(this.connection); // wakes a receiveMaster
    this.stopListening();
    if (this.connection >= 0) close(this.connection);
    this.connection = -1;
  }

  private stopListening(): void {
    if (this.listening < 0) return;
    if (!this.done) shutdownSocket(this.listening);
    close(this.listening);
    this.listening = -1;
    try {
      Deno.removeSync(this.path);
    } catch { /* removed already */ }
  }
}
