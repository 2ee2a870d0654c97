// The parent's side of `run -t`: the pty master (made in the container's devpts: console.ts), pumps
// between it and skiff's own stdio, raw mode and window-size forwarding.

import { close, getWinsize, ioctlBuf, isatty, readAsync, setWinsize, writeAsync } from "../../ffi/libc.ts";
import type { ByteSink, ByteSource } from "./stdio.ts";

export class PtyMaster {
  private constructor(readonly fd: number) {}

  /**
   * A master made in the container's devpts (runtime/console.ts: sent by the init stage, or opened
   * by exec), or taken back from the container's holder by a new supervisor. It is a raw fd read
   * and written on Deno's blocking pool: one Deno file cannot be read and written at the same time
   * (a pending read holds it), and the input must reach the container while its output is awaited.
   * Reads end (EIO) once every slave fd is closed: the container made its slave before the master
   * reached us, so no hang-up is seen before it attached.
   */
  static adopt(master: number): PtyMaster {
    return new PtyMaster(master);
  }

  /** Copies the caller's terminal size (stdout's, else stdin's) to the pty. */
  syncWindowSize(): void {
    const size = getWinsize(1) ?? getWinsize(0);
    if (size && size.rows > 0) setWinsize(this.fd, size.rows, size.cols);
  }

  /** Copies everything the container writes to `out` (or `sink`) until the pty hangs up. */
  async pumpOutput(
    sink?: (chunk: Uint8Array) => void | Promise<void>,
    out: ByteSink = Deno.stdout,
  ): Promise<void> {
    const buf = new Uint8Array(32 * 1024);
    while (true) {
      const n = await readAsync(this.fd, buf);
      if (n <= 0) return; // EIO: every slave fd is closed
      if (sink) {
        await sink(buf.slice(0, n));
        continue;
      }
      let written = 0;
      while (written < n) written += await out.write(buf.subarray(written, n));
    }
  }

  /** Copies `input` (skiff's stdin) to the container's terminal until it ends or the pty is gone. */
  async pumpInput(input: ByteSource = Deno.stdin): Promise<void> {
    const buf = new Uint8Array(32 * 1024);
    try {
      while (true) {
        const n = await input.read(buf);
        if (n === null) return;
        for (let written = 0; written < n;) {
          const w = await writeAsync(this.fd, buf.subarray(written, n));
          if (w < 0) return; // the container is gone
          written += w;
        }
      }
    } catch { /* stdin closed */ }
  }

  close(): void {
    close(this.fd);
  }
}

/** The caller's terminal size (stdout's, else stdin's), if it has one. */
export function callerWindowSize(): { rows: number; cols: number } | undefined {
  const size = getWinsize(1) ?? getWinsize(0);
  return size && size.rows > 0 ? size : undefined;
}

// struct termios (kernel layout): four u32 flag words, c_line, c_cc[19]
const TCGETS = 0x5401, TCSETS = 0x5402;
const TERMIOS_SIZE = 36, CC_OFFSET = 17, VTIME = 5, VMIN = 6;

/**
 * Puts skiff's stdin in raw mode when it is a terminal, as docker's CLI does (moby/term MakeRaw:
 * output post-processing off too, so the container's own pty alone turns \n into \r\n).
 * Returns the function that restores the previous mode.
 */
export function rawStdin(): () => void {
  if (!isatty(0)) return () => {};
  const saved = new Uint8Array(TERMIOS_SIZE);
  ioctlBuf(0, TCGETS, saved);
  const raw = saved.slice();
  const flags = new DataView(raw.buffer);
  const iflag = flags.getUint32(0, true) & ~(0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x80 | 0x100 | 0x400);
  const oflag = flags.getUint32(4, true) & ~0x1; // OPOST
  const cflag = (flags.getUint32(8, true) & ~(0x30 | 0x100)) | 0x30; // CS8, no parity
  const lflag = flags.getUint32(12, true) & ~(0x8 | 0x40 | 0x2 | 0x1 | 0x8000); // ECHO ECHONL ICANON ISIG IEXTEN
  flags.setUint32(0, iflag >>> 0, true);
  flags.setUint32(4, oflag >>> 0, true);
  flags.setUint32(8, cflag >>> 0, true);
  flags.setUint32(12, lflag >>> 0, true);
  raw[CC_OFFSET + VMIN] = 1;
  raw[CC_OFFSET + VTIME] = 0;
  ioctlBuf(0, TCSETS, raw);
  return () => {
    try {
      ioctlBuf(0, TCSETS, saved);
    } catch { /* not a terminal any more */ }
  };
}
