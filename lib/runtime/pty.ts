// The parent's side of `run -t`: a pty master as a Deno file (so it can be read asynchronously),
// pumps between it and skiff's own stdio, raw mode and window-size forwarding.

import { close, getWinsize, isatty, O, open, setWinsize, unlockPty } from "../../ffi/libc.ts";

export class PtyMaster {
  private slaveHold = -1;
  private constructor(readonly file: Deno.FsFile, readonly fd: number, readonly slavePath: string) {}

  /** Opens a new pty pair. The parent keeps the slave open until release(), so reads of the master
   * never see a hang-up before the container attached to it. */
  static open(): PtyMaster {
    const file = Deno.openSync("/dev/ptmx", { read: true, write: true });
    const fd = findFd(["/dev/ptmx", Deno.realPathSync("/dev/ptmx")]);
    const pty = new PtyMaster(file, fd, unlockPty(fd));
    pty.slaveHold = open(pty.slavePath, O.RDWR | O.NOCTTY | O.CLOEXEC);
    return pty;
  }

  /** Copies the caller's terminal size (stdout's, else stdin's) to the pty. */
  syncWindowSize(): void {
    const size = getWinsize(1) ?? getWinsize(0);
    if (size && size.rows > 0) setWinsize(this.fd, size.rows, size.cols);
  }

  /** Drops the parent's slave fd: once the container's processes are gone the master reads EOF. */
  releaseSlave(): void {
    if (this.slaveHold >= 0) close(this.slaveHold);
    this.slaveHold = -1;
  }

  /** Copies everything the container writes to skiff's stdout until the pty hangs up. */
  async pumpOutput(): Promise<void> {
    const buf = new Uint8Array(32 * 1024);
    try {
      while (true) {
        const n = await this.file.read(buf);
        if (n === null) return;
        let written = 0;
        while (written < n) written += await Deno.stdout.write(buf.subarray(written, n));
      }
    } catch { /* EIO: every slave fd is closed */ }
  }

  /** Copies skiff's stdin to the container's terminal until stdin ends. */
  async pumpInput(): Promise<void> {
    const buf = new Uint8Array(32 * 1024);
    try {
      while (true) {
        const n = await Deno.stdin.read(buf);
        if (n === null) return;
        let written = 0;
        while (written < n) written += await this.file.write(buf.subarray(written, n));
      }
    } catch { /* the pty is closed: the container is gone */ }
  }

  close(): void {
    this.releaseSlave();
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
}

/** The highest fd of this process that points at one of `targets` (Deno files do not expose their fd). */
function findFd(targets: string[]): number {
  let found = -1;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    try {
      if (targets.includes(Deno.readLinkSync(`/proc/self/fd/${fd}`)) && fd > found) found = fd;
    } catch { /* closed meanwhile */ }
  }
  if (found < 0) throw new Error(`cannot find the fd of ${targets[0]}`);
  return found;
}

/** Puts skiff's stdin in raw mode when it is a terminal; returns the function that restores it. */
export function rawStdin(): () => void {
  if (!isatty(0)) return () => {};
  Deno.stdin.setRaw(true, { cbreak: false });
  return () => {
    try {
      Deno.stdin.setRaw(false);
    } catch { /* not a terminal any more */ }
  };
}
