// skiff pause/unpause: the cgroup freezer stops every process (ps shows "(Paused)", the kernel
// reports the task frozen), unpause resumes it; docker's errors for the wrong state.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

/** The task state letter of /proc/<pid>/stat. */
function taskState(pid: number): string {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

/** Frozen as the kernel reports it: freezer.state on v1, cgroup.events frozen 1 on v2. */
function kernelFrozen(id: string): boolean {
  try {
    return Deno.readTextFileSync(`/sys/fs/cgroup/freezer/skiff/${id}/freezer.state`).trim() === "FROZEN";
  } catch {
    return /^frozen 1$/m.test(Deno.readTextFileSync(`/sys/fs/cgroup/skiff/${id}/cgroup.events`));
  }
}

Deno.test("pause/unpause: frozen and shown as paused, then running again", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "pp", async (c) => {
      assert.equal(await root.ok(["pause", "pp"]), "pp\n");
      assert.ok(kernelFrozen(c.id));
      // the frozen task sleeps in the freezer: D (v1 and v2 both report it uninterruptible) or T
      assert.match(taskState(c.pid), /^[DT]$/);
      assert.match(await root.ok(["ps", "--format", "{{.Status}}"]), /^Up .* \(Paused\)\n$/);
      assert.equal(
        await root.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "pp"]),
        "paused true true\n",
      );
      const again = await root.skiff(["pause", "pp"]);
      assert.equal(again.code, 1);
      assert.equal(again.stderr, `skiff: Container ${c.id} is already paused\n`);

      assert.equal(await root.ok(["unpause", "pp"]), "pp\n");
      assert.ok(!kernelFrozen(c.id));
      assert.match(taskState(c.pid), /^[SR]$/);
      assert.equal(
        await root.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pp"]),
        "running false\n",
      );
      const notPaused = await root.skiff(["unpause", "pp"]);
      assert.equal(notPaused.code, 1);
      assert.equal(notPaused.stderr, `skiff: Container ${c.id} is not paused\n`);

      // a paused container can still be force-removed (stop() does rm -f), not removed without it
      await root.ok(["pause", "pp"]);
      const rm = await root.skiff(["rm", "pp"]);
      assert.equal(rm.code, 1);
      assert.equal(
        rm.stderr,
        'skiff: cannot remove container "/pp": container is paused and must be unpaused first\n',
      );
    });
  });
});

Deno.test("pause: a stopped container is not running; unknown names fail one by one", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "done", "busybox", "true"]);
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "done"])).trim();
    const r = await root.skiff(["pause", "done", "ghost"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff: Container ${id} is not running\nskiff: No such container: ghost\n`);
    const u = await root.skiff(["unpause", "done"]);
    assert.equal(u.code, 1);
    const none = await root.skiff(["pause"]);
    assert.equal(none.code, 1); // docker's CLI: 1 for a wrong number of arguments
  });
});
