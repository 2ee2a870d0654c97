// Shared by the detached-container tests (detach, logs, lifecycle, restart, robust): a busybox root
// whose containers are all removed, and whose supervisor has exited, before the leak check runs.

import { MAIN, supervisorPidsOf, type TestRoot, withBusybox } from "./helpers.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, or fails after `ms`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(25);
  }
}

/** Pids of this root's supervisor (helpers.ts supervisorPidsOf). */
export function supervisorPids(root: TestRoot): number[] {
  return supervisorPidsOf(root.path);
}

/** The id of the spare its supervisor made last (<root>/supervisor/spares lists them in order). */
export function lastSpare(root: TestRoot): string {
  return Deno.readTextFileSync(`${root.path}/supervisor/spares`).trim().split("\n").at(-1) ?? "";
}

/** Whether the root's supervisor takes connections now (its socket file may be a killed one's). */
export async function supervisorListening(root: TestRoot): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path: `${root.path}/supervisor/sock` })).close();
    return true;
  } catch {
    return false;
  }
}

/** withBusybox, plus: every container removed and the supervisor gone before the leak check. */
export async function withDetached(fn: (root: TestRoot) => Promise<void>): Promise<void> {
  await withBusybox(async (root) => {
    try {
      await fn(root);
    } finally {
      const ids = root.containerIds();
      if (ids.length) await root.skiff(["rm", "-f", ...ids]);
      await eventually("the supervisor exits", () => supervisorPids(root).length === 0, 8000);
    }
  });
}

/** run -d ...args; returns the printed id. */
export async function runDetached(root: TestRoot, args: string[]): Promise<string> {
  return (await root.ok(["run", "-d", ...args])).trim();
}

export async function inspect(root: TestRoot, ref: string, format: string): Promise<string> {
  return (await root.ok(["inspect", "-f", format, ref])).trim();
}

export async function status(root: TestRoot, ref: string): Promise<string> {
  return await inspect(root, ref, "{{.State.Status}}");
}

/** A skiff process started without waiting; its output collected unless `hold` (then never read). */
export class Proc {
  stdout = "";
  stderr = "";
  readonly child: Deno.ChildProcess;
  private readonly input?: WritableStreamDefaultWriter<Uint8Array>;
  private readonly drained: Promise<void>;

  constructor(cmd: string, args: string[], opts: { stdin?: boolean; holdStdout?: boolean } = {}) {
    this.child = new Deno.Command(cmd, {
      args,
      stdin: opts.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.stdin) this.input = this.child.stdin.getWriter();
    const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
    };
    this.drained = Promise.all([
      opts.holdStdout ? Promise.resolve() : collect(this.child.stdout, "stdout"),
      collect(this.child.stderr, "stderr"),
    ]).then(() => {});
  }

  static skiff(root: TestRoot, args: string[], opts: { stdin?: boolean; holdStdout?: boolean } = {}) {
    return new Proc(Deno.execPath(), ["run", "-A", MAIN, "--root", root.path, ...args], opts);
  }

  /** script(1): `command` runs with a pty as its terminal; our pipe is that terminal's keyboard. */
  static onPty(command: string) {
    return new Proc("script", ["-qec", command, "/dev/null"], { stdin: true });
  }

  async send(text: string | Uint8Array): Promise<void> {
    await this.input!.write(typeof text === "string" ? new TextEncoder().encode(text) : text);
  }

  async closeInput(): Promise<void> {
    await this.input!.close().catch(() => {});
  }

  async waitFor(marker: string | RegExp, ms = 15_000): Promise<void> {
    const seen = () => typeof marker === "string" ? this.stdout.includes(marker) : marker.test(this.stdout);
    const deadline = Date.now() + ms;
    while (!seen()) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${marker}; stdout ${JSON.stringify(this.stdout)} stderr ${this.stderr}`,
        );
      }
      await sleep(20);
    }
  }

  async finish(ms = 20_000): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`still running; stdout ${this.stdout} stderr ${this.stderr}`)),
        ms,
      );
    });
    try {
      const [s] = await Promise.race([Promise.all([this.child.status, this.drained]), timeout]);
      return s.signal ? 128 + (s.signal === "SIGTERM" ? 15 : s.signal === "SIGKILL" ? 9 : 0) : s.code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cleanup on failure: the process and whatever it holds go. */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.input?.close().catch(() => {});
    await this.child.status;
    await this.child.stdout.cancel().catch(() => {});
    await this.drained.catch(() => {});
  }
}

/** Runs `fn` with the processes it starts killed afterwards whatever happens. */
export async function withProcs(fn: (track: <P extends Proc>(p: P) => P) => Promise<void>): Promise<void> {
  const procs: Proc[] = [];
  try {
    await fn((p) => (procs.push(p), p));
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
  }
}

export const skiffLine = (root: TestRoot, args: string) => `deno run -A ${MAIN} --root ${root.path} ${args}`;
