// Attack: a hostile image puts 50,000 files under a VOLUME. The volume's copy-up runs in skiff's
// own process, and in the supervisor that process serves every detached container: copied in one go
// on its thread, it held up an unrelated `run -d` until the whole copy was done (3.2 s and 2.0 s
// against 131 ms, reviewer's measure on the fork-based stage before the copy got turns). Now the copy
// gives the event loop a turn every few hundred entries (rootfs.ts copyUps): the unrelated start
// finishes while the hostile one is still copying. With the copy in one go (no turns) the unrelated
// `run -d` returned after the hostile one (this test failed, 1 of 1 run); with the turns, before it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar } from "./helpers.ts";
import { withDetached } from "./detach_helpers.ts";

/** busybox plus /data with `count` empty files, as a tar to import. */
async function manyFilesTar(dir: string, count: number): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await Deno.mkdir(rootfs);
  const untar = await new Deno.Command("tar", { args: ["-xf", await busyboxTar(), "-C", rootfs] }).output();
  assert.ok(untar.success);
  await Deno.mkdir(join(rootfs, "data"));
  for (let i = 0; i < count; i++) Deno.writeFileSync(join(rootfs, "data", `f${i}`), new Uint8Array(0));
  const tar = join(dir, "many.tar");
  const made = await new Deno.Command("tar", { args: ["-cf", tar, "-C", rootfs, "."] }).output();
  assert.ok(made.success);
  return tar;
}

Deno.test("attack: an image's 50,000-file VOLUME does not hold up another container's start in the supervisor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-copyup-stall-" });
  try {
    await withDetached(async (root) => {
      await root.ok([
        "import",
        "--change",
        "VOLUME /data",
        await manyFilesTar(dir, 50_000),
        "hostile:latest",
      ]);
      await root.ok(["run", "-d", "--name", "warm", "busybox", "sleep", "100"]); // the supervisor runs
      const order: string[] = [];
      const hostile = root.skiff(["run", "-d", "--name", "hostile", "hostile", "sleep", "100"]).then((r) => {
        order.push("hostile");
        return r;
      });
      await new Promise((r) => setTimeout(r, 300)); // its copy-up under way
      const other = await root.skiff(["run", "-d", "--name", "other", "busybox", "true"]);
      order.push("other");
      const h = await hostile;
      assert.equal(other.code, 0, other.stderr);
      assert.equal(h.code, 0, h.stderr);
      assert.deepEqual(order, ["other", "hostile"], "the unrelated start waited for the whole copy-up");
      // and the copy-up itself is complete, as docker's
      assert.equal((await root.ok(["exec", "hostile", "sh", "-c", "ls /data | wc -l"])).trim(), "50000");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
