// The engine's resource list on real removals: what a crashed runtime left mounted below a
// container's directory is released by `rm` and by `container prune` alike (both go through
// engine/resources.ts releaseAndRemove), and the container's cgroup is gone after each.

import assert from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";

const mountedUnder = (dir: string) =>
  Deno.readTextFileSync("/proc/self/mountinfo").split("\n").map((l) => l.split(" ")[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + "/")));

async function mountTmpfs(target: string): Promise<void> {
  Deno.mkdirSync(target, { recursive: true });
  const r = await new Deno.Command("mount", { args: ["-t", "tmpfs", "leftover", target] }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
}

Deno.test("resources: rm and container prune release a leftover mount before the directory goes", async () => {
  await withBusybox(async (root) => {
    for (const remove of [["rm"], ["container", "prune", "-f"]]) {
      await root.ok(["run", "--name", "crashed", "busybox", "true"]);
      const id = (await root.ok(["inspect", "-f", "{{.Id}}", "crashed"])).trim();
      const dir = join(root.path, "containers", id);
      // what an init stage killed mid-setup, or a cp killed with its overlay mounted, could leave
      await mountTmpfs(join(dir, "merged"));
      Deno.writeTextFileSync(join(dir, "merged", "file"), "x");
      try {
        await root.ok(remove[0] === "rm" ? ["rm", "crashed"] : remove);
        // anywhere under the root: a directory renamed away (the removal's tombstone) takes its mounts along
        assert.deepEqual(mountedUnder(root.path), [], `${remove.join(" ")} left a mount`);
        assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);
        assert.equal((await root.skiff(["inspect", "crashed"])).code, 1);
      } finally {
        for (const m of mountedUnder(root.path)) {
          await new Deno.Command("umount", { args: ["-l", m] }).output();
        }
      }
    }
  });
});
