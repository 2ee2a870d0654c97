// Shared by the detached-container tests (detach, logs, lifecycle, restart, robust): a busybox root
// whose containers are all removed, and whose supervisor has exited, before the leak check runs.

import { type TestRoot, withBusybox } from "./helpers.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, or fails after `ms`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(25);
  }
}

/** Pids of processes whose command line names this root's supervisor. */
export function supervisorPids(root: TestRoot): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (cmd.includes("__supervisor") && cmd.includes(root.path)) out.push(Number(e.name));
    } catch { /* exited */ }
  }
  return out;
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
