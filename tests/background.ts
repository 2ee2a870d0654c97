// Containers running in the background for the container-operation tests (cp, pause, stats, ...):
// `skiff run --name NAME busybox sleep 100` as a child process, ready once inspect says it runs.
// `stop` removes it (rm -f) and waits for the child, so no test leaks a process.

import { MAIN, type TestRoot } from "./helpers.ts";

export interface Background {
  name: string;
  id: string;
  pid: number;
  /** Kills the container (SIGKILL of its process) and waits until the run has recorded the exit. */
  kill(): Promise<void>;
  /** rm -f, then waits for the `skiff run` child. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startBackground(
  root: TestRoot,
  name: string,
  command: string[] = ["sleep", "100"],
  runFlags: string[] = [],
): Promise<Background> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, "run", "--name", name, ...runFlags, "busybox", ...command],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const status = child.status;
  let exited = false;
  status.then(() => exited = true);
  const deadline = Date.now() + 20_000;
  while (true) {
    const r = await root.skiff(["inspect", "-f", "{{.State.Running}} {{.State.Pid}} {{.Id}}", name]);
    const [running, pid, id] = r.stdout.trim().split(" ");
    // "running" is recorded before the init stage execs the command: wait until PID 1 is the command
    if (running === "true" && !stillInitStage(Number(pid))) {
      return {
        name,
        id,
        pid: Number(pid),
        async kill() {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* gone */ }
          await status;
        },
        async stop() {
          if (!exited) await root.skiff(["rm", "-f", name]);
          try {
            child.kill("SIGKILL");
          } catch { /* exited */ }
          await status;
        },
      };
    }
    if (exited || Date.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await status;
      throw new Error(`container ${name} did not start: ${r.stdout}${r.stderr}`);
    }
    await sleep(50);
  }
}

/** Runs fn with a background container, always stopping it afterwards. */
export async function withBackground(
  root: TestRoot,
  name: string,
  fn: (c: Background) => Promise<void>,
  command?: string[],
  runFlags?: string[],
): Promise<void> {
  const c = await startBackground(root, name, command, runFlags);
  try {
    await fn(c);
  } finally {
    await c.stop();
  }
}

/** True while the process is still skiff's Deno init stage (its exe is this Deno binary). */
function stillInitStage(pid: number): boolean {
  try {
    return Deno.readLinkSync(`/proc/${pid}/exe`) === Deno.execPath();
  } catch {
    return false; // gone, or not readable: let the caller see what the record says
  }
}
