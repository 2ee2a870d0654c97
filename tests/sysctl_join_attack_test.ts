// Attack: --sysctl of an IPC key in a container that joins the IPC namespace of an `--ipc host`
// container (--ipc container:NAME). The joined namespace is the host's, so the stage's write went to
// the host's kernel.msgmnb (the check asked only whether the namespace was given, not whose it is):
// 3 of 3 runs on the old code changed the host's value (no race: every run). --ipc host itself is refused by docker's
// check; the join into the host's namespace must be too, with the same words.

import assert from "node:assert/strict";
import { runDetached, withDetached } from "./detach_helpers.ts";

const HOST_KEY = "/proc/sys/kernel/msgmnb";

Deno.test("attack: --sysctl through --ipc container:NAME of an --ipc host container writes the host's", async () => {
  const before = Deno.readTextFileSync(HOST_KEY);
  const changed = String(Number(before.trim()) + 1);
  try {
    await withDetached(async (root) => {
      await runDetached(root, ["--name", "hostipc", "--ipc", "host", "busybox", "sleep", "300"]);
      const r = await root.skiff([
        "run",
        "--rm",
        "--ipc",
        "container:hostipc",
        "--sysctl",
        `kernel.msgmnb=${changed}`,
        "busybox",
        "cat",
        HOST_KEY,
      ]);
      assert.equal(Deno.readTextFileSync(HOST_KEY), before, "the host's sysctl was written");
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /sysctl "kernel\.msgmnb" is not allowed in the hosts ipc namespace/);
      // a joiner of a private-namespace donor still sets its (shared) namespace's value
      await runDetached(root, ["--name", "own", "--ipc", "shareable", "busybox", "sleep", "300"]);
      const ok = await root.skiff([
        "run",
        "--rm",
        "--ipc",
        "container:own",
        "--sysctl",
        `kernel.msgmnb=${changed}`,
        "busybox",
        "cat",
        HOST_KEY,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), changed);
      assert.equal(Deno.readTextFileSync(HOST_KEY), before);
    });
  } finally {
    Deno.writeTextFileSync(HOST_KEY, before);
  }
});
