// The init stage's process, started as early as `skiff run` can: PID 1 of a new PID namespace,
// waiting on a FIFO for its spec. Its Deno startup (~15-20 ms) then overlaps with loading the rest
// of the runtime, creating the container and its cgroups. Kept small: run.ts imports it up front
// and starts the stage right after parsing its command line.

import { CLONE, close, kill, mkfifo, O, open, setns, unshare, write } from "../../ffi/libc.ts";
import { processStartTime } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import { initCommand, stageEnv } from "./self.ts";

/** A started init stage waiting for its spec on the sync FIFO. */
export interface InitStage {
  child: Deno.ChildProcess;
  fifoPath: string;
  /** Our end of the FIFO, O_RDWR: the child's open() never blocks and never sees EOF while we live. */
  fifoFd: number;
  /** The child's stdout/stderr are pipes (Deno's child.stdout throws when they are not). */
  outputPiped: boolean;
  /** The child's stdin is a pipe that skiff feeds (run -i). */
  inputPiped: boolean;
  /** Set by whoever took the stage over (Engine.runForeground): it aborts the stage on failure. */
  taken?: boolean;
}

/**
 * Spawns the init stage as PID 1 of a new PID namespace (this process stays in its own). It starts
 * before the container exists and waits on the FIFO until launchContainer() sends the spec; a caller
 * that cannot create the container must abortInitStage(). `output` "piped": the caller reads the
 * container's stdout/stderr; "null": the supervisor, which gives the stage pipes of its own
 * through the spec (engine/output.ts).
 */
export function startInitStage(
  root: StateRoot,
  stdin: "inherit" | "null" | "piped",
  output: "inherit" | "piped" | "null" = "inherit",
  /** --pid: "host" spawns it in our own PID namespace, an fd joins that one (container:NAME) */
  pidNamespace?: "host" | number,
): InitStage {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  // <kind>-<pid>-<start time>-<hex>: the image store's tmp sweeper removes it once we are gone
  const fifoPath = `${root.tmp}/initfifo-${Deno.pid}-${processStartTime(Deno.pid) ?? 0}-${rand}`;
  mkfifo(fifoPath, 0o600);
  let fifoFd = -1;
  try {
    fifoFd = open(fifoPath, O.RDWR | O.CLOEXEC);
    const self = initCommand(fifoPath, Deno.pid);
    const ownPidNs = open("/proc/self/ns/pid", O.RDONLY | O.CLOEXEC);
    try {
      // affects only children spawned from this (the main) thread
      if (pidNamespace === undefined) unshare(CLONE.NEWPID);
      else if (pidNamespace !== "host") setns(pidNamespace, CLONE.NEWPID);
      try {
        const child = new Deno.Command(self.cmd, {
          args: self.args,
          clearEnv: true,
          env: stageEnv(),
          stdin,
          stdout: output,
          stderr: output,
        })
          .spawn();
        return { child, fifoPath, fifoFd, outputPiped: output === "piped", inputPiped: stdin === "piped" };
      } finally {
        setns(ownPidNs, CLONE.NEWPID);
      }
    } finally {
      close(ownPidNs);
    }
  } catch (e) {
    if (fifoFd >= 0) close(fifoFd);
    removeQuietly(fifoPath);
    throw e;
  }
}

/** Kills an init stage that will never get a spec (the container could not be created). */
export async function abortInitStage(stage: InitStage): Promise<void> {
  try {
    kill(stage.child.pid, 9);
  } catch { /* already gone */ }
  await stage.child.status;
  close(stage.fifoFd);
  removeQuietly(stage.fifoPath);
}

export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* not there */ }
}

/** Writes all of `data` to a blocking fd. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  for (let done = 0; done < data.length;) done += write(fd, data.subarray(done));
}
