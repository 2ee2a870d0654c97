// A detached container's stdout and stderr, so that a supervisor crash loses nothing of them.
//
// Per stream an anonymous pipe: the supervisor makes it, the init stage reopens it read-write as
// its fd 1 or 2 (InitSpec.outputPipes), so the container itself always holds a reader: with no
// supervisor, a write blocks once the pipe is full (64 KiB); it never fails with EPIPE. The
// supervisor moves the pipe's bytes into a spool file with splice(2) (the kernel moves them: a
// kill leaves each byte in the pipe or in the spool, never in the supervisor's memory only), logs
// them from the spool, and after each batch commits how far each stream is logged into
// output.state (one small write at offset 0), with where the log ended. A new supervisor takes the
// pipes back from a process of the container (pidfd_getfd), counts the entries written after the
// last commit (a kill between an entry and its commit), and logs on from the first byte not in the
// log (MONITOR.md, "A supervisor crash").

import { close, O, open, pidfdGetfd, pipe, punchHole, seekToEnd, spliceNow } from "../../ffi/libc.ts";
import type { StateRoot } from "../state/root.ts";
import { type JsonLogWriter, loggedSince, type LogStream } from "../runtime/logs.ts";
import { SUPERVISED_MARKER } from "../state/reconcile.ts";
import { poller } from "../runtime/poller.ts";
import type { HolderInfo } from "./holder.ts";

const STREAMS: readonly LogStream[] = ["stdout", "stderr"];
/** output.state is rewritten in place at this fixed size: one write that a kill cannot cut. */
const STATE_SIZE = 512;
/** Spool blocks already logged are freed (hole punched) past this much. */
const PUNCH_EVERY = 1 << 20;
const SPLICE_MAX = 1 << 20;
/**
 * How long the output may take to be logged once the container has exited. The pipes end then (no
 * writer outlives the container's PID namespace), but what is still spooled must be logged first.
 */
export const SPOOL_DRAIN_MS = 15_000;
/** One for every stream: the spool is read synchronously and each chunk copied out of it. */
const spoolBuffer = new Uint8Array(64 * 1024);

/** What output.state says (JSON). */
interface OutputState {
  /** dev and inode of each stream's pipe; absent for a -t container (its pty is not kept). */
  pipes?: Record<LogStream, [number, number]>;
  /** The live log file and its length at the commit. */
  log: { ino: number; size: number };
  /** Per stream, the spool offset up to which the bytes are in the log. */
  logged: Record<LogStream, number>;
  /** The process that holds the container's pty master or stdin pipe (holder.ts). */
  holder?: HolderInfo;
}

const statePath = (root: StateRoot, id: string) => `${root.container(id)}/${SUPERVISED_MARKER}`;
const spoolPath = (root: StateRoot, id: string, stream: LogStream) => `${root.container(id)}/${stream}.spool`;

function identity(path: string): [number, number] | undefined {
  try {
    const info = Deno.statSync(path); // follows /proc/<pid>/fd/<n> to the pipe, opens nothing
    return info.isFifo ? [info.dev, info.ino ?? 0] : undefined;
  } catch {
    return undefined;
  }
}

interface Stream {
  name: LogStream;
  /** The read end (-1: none, e.g. the container no longer holds the pipe). */
  pipeFd: number;
  /** The supervisor's own write end until the container holds the pipe (-1 then). */
  writeFd: number;
  /** splice target: the spool at its end. */
  spoolFd: number;
  spool: Deno.FsFile;
  /** Spool bytes moved in; bytes handed to the log (next read from here). */
  spooled: number;
  handed: number;
  /** Spool offset where this supervisor's log writer began counting (its `logged` adds to it). */
  base: number;
  punched: number;
}

export class ContainerOutput {
  private readonly state: Deno.FsFile;
  private closed = false;
  /** The container's holder (-t, -i), once it is set up. */
  holder?: HolderInfo;
  private constructor(
    private readonly streams: Stream[],
    private readonly pipes: OutputState["pipes"],
    statePathname: string,
    private log: JsonLogWriter,
  ) {
    this.state = Deno.openSync(statePathname, { read: true, write: true, create: true, mode: 0o600 });
  }

  /**
   * A fresh start: new pipes and empty spools. `spec()` is what the init stage opens; -t
   * containers pass `tty` and get no pipes (only the marker that the supervisor keeps them).
   */
  static create(root: StateRoot, id: string, log: JsonLogWriter, tty: boolean): ContainerOutput {
    const streams: Stream[] = [];
    const pipes = {} as Record<LogStream, [number, number]>;
    try {
      if (!tty) {
        for (const name of STREAMS) {
          const [pipeFd, writeFd] = pipe(O.CLOEXEC | O.NONBLOCK);
          const stream = openSpool(root, id, name, true);
          streams.push({ ...stream, name, pipeFd, writeFd, spooled: 0, handed: 0, base: 0, punched: 0 });
          pipes[name] = identity(`/proc/self/fd/${pipeFd}`)!;
        }
      }
      const output = new ContainerOutput(streams, tty ? undefined : pipes, statePath(root, id), log);
      output.commit();
      return output;
    } catch (e) {
      for (const s of streams) closeStream(s);
      throw e;
    }
  }

  /**
   * Takes over the output of a running container whose supervisor died: its pipes from one of its
   * processes, the spools and the commit, and what it says of the container's holder. Undefined
   * without an output.state.
   */
  static adopt(
    root: StateRoot,
    id: string,
    pid: number,
    pidfd: number,
    log: JsonLogWriter,
  ): ContainerOutput | undefined {
    let saved: OutputState;
    try {
      saved = JSON.parse(new TextDecoder().decode(Deno.readFileSync(statePath(root, id))).trim());
    } catch {
      return undefined;
    }
    if (!saved.pipes) {
      // -t: no pipes, only the holder of its terminal (if it had one)
      const output = new ContainerOutput([], undefined, statePath(root, id), log);
      output.holder = saved.holder;
      output.commit();
      return output;
    }
    // entries the dead supervisor wrote after its last commit are in the log already
    const after = loggedSince(log.path, log.settings.maxFile, saved.log);
    log.resync();
    const streams: Stream[] = [];
    for (const name of STREAMS) {
      const spool = openSpool(root, id, name, false);
      const spooled = seekToEnd(spool.spoolFd);
      const logged = Math.min(spooled, (saved.logged[name] ?? 0) + after[name]);
      streams.push({
        ...spool,
        name,
        pipeFd: takePipe(pid, pidfd, saved.pipes[name]),
        writeFd: -1,
        spooled,
        handed: logged,
        base: logged,
        punched: 0,
      });
    }
    const output = new ContainerOutput(streams, saved.pipes, statePath(root, id), log);
    output.holder = saved.holder;
    output.commit();
    return output;
  }

  /** Records the container's holder (or that it has none any more). */
  setHolder(holder: HolderInfo | undefined): void {
    this.holder = holder;
    this.commit();
  }

  /** The init stage's InitSpec.outputPipes (undefined with -t). */
  spec(): { stdout: string; stderr: string } | undefined {
    if (this.streams.length === 0) return undefined;
    const [out, err] = this.streams;
    return { stdout: `/proc/${Deno.pid}/fd/${out.writeFd}`, stderr: `/proc/${Deno.pid}/fd/${err.writeFd}` };
  }

  /**
   * Drops the supervisor's write ends: once the container holds its own (it has execve()d, or it
   * failed), the pipes end when the container's last process does.
   */
  releaseWriters(): void {
    for (const s of this.streams) {
      if (s.writeFd >= 0) close(s.writeFd);
      s.writeFd = -1;
    }
  }

  /** Each stream's chunks, in order, for pumpStream (monitor.ts); ends when the pipe does. */
  sources(): [LogStream, AsyncIterable<Uint8Array>][] {
    return this.streams.map((s) => [s.name, this.chunks(s)]);
  }

  private async *chunks(s: Stream): AsyncGenerator<Uint8Array> {
    const buf = spoolBuffer;
    while (true) {
      while (s.handed < s.spooled) {
        if (this.closed) return;
        s.spool.seekSync(s.handed, Deno.SeekMode.Start);
        const n = s.spool.readSync(buf.subarray(0, Math.min(buf.length, s.spooled - s.handed)));
        if (!n) break;
        s.handed += n;
        yield buf.slice(0, n);
        this.commit(); // the consumer has logged the chunk (what makes whole entries of it)
      }
      // closed (the drain gave up): its fd numbers may be another container's by now
      if (this.closed || s.pipeFd < 0) return;
      const n = spliceNow(s.pipeFd, s.spoolFd, SPLICE_MAX);
      if (n === 0) return; // every writer is gone: the container has ended
      if (n < 0) {
        await poller.readable(s.pipeFd); // empty: wait with the other pipes
        continue;
      }
      s.spooled += n;
      // a container that writes without pause must not keep the supervisor from its other work
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** Records how far each stream is in the log (see the header). */
  private commit(): void {
    if (this.closed) return;
    const logged = {} as Record<LogStream, number>;
    for (const s of this.streams) {
      logged[s.name] = s.base + this.log.logged[s.name];
      if (logged[s.name] - s.punched >= PUNCH_EVERY) {
        const upTo = logged[s.name] - (logged[s.name] % 4096);
        if (punchHole(s.spoolFd, upTo)) s.punched = upTo;
        else s.punched = Infinity; // not supported here: keep the spool whole
      }
    }
    for (const name of STREAMS) logged[name] ??= 0;
    const state: OutputState = { pipes: this.pipes, log: this.log.position(), logged, holder: this.holder };
    const bytes = new TextEncoder().encode(JSON.stringify(state).padEnd(STATE_SIZE - 1) + "\n");
    this.state.seekSync(0, Deno.SeekMode.Start);
    this.state.writeSync(bytes);
  }

  /** After the streams ended and the log is closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseWriters();
    for (const s of this.streams) closeStream(s);
    this.state.close();
  }
}

function openSpool(root: StateRoot, id: string, name: LogStream, fresh: boolean) {
  const path = spoolPath(root, id, name);
  const flags = O.WRONLY | O.CREAT | O.CLOEXEC | (fresh ? O.TRUNC : 0);
  const spoolFd = open(path, flags, 0o600);
  try {
    return { spoolFd, spool: Deno.openSync(path, { read: true }) };
  } catch (e) {
    close(spoolFd);
    throw e;
  }
}

function closeStream(s: { pipeFd: number; writeFd: number; spoolFd: number; spool: Deno.FsFile }): void {
  for (const fd of [s.pipeFd, s.writeFd, s.spoolFd]) {
    if (fd >= 0) close(fd);
  }
  s.spool.close();
}

const sameIdentity = (a: [number, number] | undefined, b: [number, number]) =>
  a !== undefined && a[0] === b[0] && a[1] === b[1];

/**
 * A read-only fd of the container's output pipe `want`, taken from a process of the container
 * that holds it (PID 1's fd 1/2 first, then any fd of PID 1), or -1 when none does (then nothing
 * can write to it any more). pidfd_getfd copies the container's own open file, so nothing is
 * opened from a path the container controls; the read-only reopen is of our own copy.
 */
function takePipe(pid: number, pidfd: number, want: [number, number]): number {
  const candidates = [1, 2];
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
      const n = Number(e.name);
      if (!candidates.includes(n) && sameIdentity(identity(`/proc/${pid}/fd/${n}`), want)) candidates.push(n);
    }
  } catch { /* gone */ }
  for (const n of candidates) {
    let copy: number;
    try {
      copy = pidfdGetfd(pidfd, n);
    } catch {
      continue;
    }
    try {
      if (sameIdentity(identity(`/proc/self/fd/${copy}`), want)) {
        // the container's copy is read-write: holding it would keep the pipe from ever ending
        return open(`/proc/self/fd/${copy}`, O.RDONLY | O.NONBLOCK | O.CLOEXEC);
      }
    } finally {
      close(copy);
    }
  }
  return -1;
}
