// Review of the warm foreground run (f96b262): a served run whose caller reads more slowly than the
// container writes on BOTH stdout and stderr. attach.ts Client.room() keeps one `drained` resolver
// per client, so the second output pump that waits for room overwrites the first one's; that pump
// never wakes again, its pipe is never read, and the container blocks writing forever: the
// `skiff run` never returns. A run of its own (-i) gives every byte and ends.

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MAIN, type TestRoot } from "./helpers.ts";
import { eventually, supervisorListening, supervisorPids, withDetached } from "./detach_helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function warmUp(root: TestRoot): Promise<void> {
  await root.ok(["run", "--rm", "--network", "none", "busybox", "true"]);
  await eventually("a warm supervisor", () => supervisorPids(root).length === 1);
  await eventually("it listens", () => supervisorListening(root));
}

/** Runs skiff, reads neither stream for `delayMs`, then both; {code,bytes} or "hung" after `ms`. */
async function slowReader(root: TestRoot, args: string[], delayMs: number, ms: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await sleep(delayMs);
    const count = async (s: ReadableStream<Uint8Array>) => {
      let n = 0;
      for await (const c of s) n += c.length;
      return n;
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      Promise.all([child.status, count(child.stdout), count(child.stderr)]).then(([s, o, e]) => ({
        code: s.code,
        bytes: o + e,
      })),
      new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), ms))),
    ]);
    clearTimeout(timer);
    return result;
  } finally {
    try {
      child.kill("SIGKILL"); // its container is killed with it (EOF on the supervisor's socket)
    } catch { /* ended */ }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
  }
}

const SCRIPT = "head -c 5000000 /dev/zero & head -c 5000000 /dev/zero >&2; wait; echo fin >&2";

Deno.test("review-warm: a served run whose caller is slow on stdout and stderr gets every byte and ends", async () => {
  await withDetached(async (root) => {
    // its own run: every byte, and it ends
    const own = await slowReader(root, ["run", "-i", "--rm", "busybox", "sh", "-c", SCRIPT], 3000, 40_000);
    assertEquals(own, { code: 0, bytes: 10_000_004 });
    await warmUp(root);
    const served = await slowReader(root, ["run", "--rm", "busybox", "sh", "-c", SCRIPT], 3000, 40_000);
    try {
      assertEquals(served, { code: 0, bytes: 10_000_004 });
    } finally {
      // the killed caller's container ends once the stuck pump's drain gives up (SPOOL_DRAIN_MS)
      await eventually("the container removed", () => root.containerIds().length === 0, 30_000);
    }
  });
});
