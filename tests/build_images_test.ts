// A build's intermediate images as docker shows them: each step's image is the parent of the
// next (inspect .Parent); `images` hides untagged parents (`-a` shows them), they are never
// dangling; `history` names each step by its image; `image prune` removes a dangling build result
// with the untagged steps only it used, and keeps the steps another image was built from.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

const lines = (s: string) => s.trim().split("\n").filter(Boolean);
const id = async (root: TestRoot, ref: string) => (await root.ok(["inspect", "-f", "{{.Id}}", ref])).trim();
const parentOf = async (root: TestRoot, ref: string) =>
  (await root.ok(["inspect", "-f", "{{.Parent}}", ref])).trim();

Deno.test("build images: intermediate images are hidden without -a, named in history, pruned with their dangling child", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-build-images-" });
    try {
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nRUN echo one > /a\nENV X=1\nCOPY f /f\n",
      );
      Deno.writeTextFileSync(join(dir, "f"), "1");
      await root.ok(["build", "-t", "demo", dir]);
      const base = await id(root, "busybox");
      const top1 = await id(root, "demo");
      const env = await parentOf(root, top1);
      const run = await parentOf(root, env);
      assertEqual(await parentOf(root, run), base);
      assertEqual(await parentOf(root, base), ""); // an imported image has none

      // no <none> rows without -a; -a lists the two steps; none is dangling
      const shown = await root.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
      assertEqual(lines(shown).sort(), ["busybox:latest", "demo:latest"]);
      const everything = lines(await root.ok(["images", "-a", "--no-trunc", "-q"])).sort();
      assertEqual(everything, [base, top1, env, run].sort());
      assertEqual(
        lines(await root.ok(["images", "-a", "--format", "{{.Repository}}"])).filter((r) => r === "<none>")
          .length,
        2,
      );
      assertEqual(await root.ok(["images", "-q", "-f", "dangling=true"]), "");

      // history: every step by its image's id, the base's top entry by the base's, older ones <missing>
      const history = lines(await root.ok(["history", "--no-trunc", "--format", "{{.ID}}", "demo"]));
      assertEqual(history.slice(0, 4), [top1, env, run, base]);
      assert(history.slice(4).every((h) => h === "<missing>"), history.join(","));

      // a changed COPY source: the old result is dangling (shown without -a), its steps are shared
      Deno.writeTextFileSync(join(dir, "f"), "2");
      await root.ok(["build", "-t", "demo", dir]);
      const top2 = await id(root, "demo");
      assertEqual(await parentOf(root, top2), env);
      assertEqual(lines(await root.ok(["images", "-q", "--no-trunc", "-f", "dangling=true"])), [top1]);
      assert((await root.ok(["images"])).includes("<none>"));

      // prune: the dangling image goes; the steps demo was built from stay, and still hit the cache
      const pruned = await root.ok(["image", "prune", "-f"]);
      assert(pruned.includes(`deleted: ${top1}`), pruned);
      assertEqual(
        lines(await root.ok(["images", "-a", "--no-trunc", "-q"])).sort(),
        [base, top2, env, run].sort(),
      );
      const again = await root.ok(["build", "-t", "demo", dir]);
      assertEqual(again.split("\n").filter((l) => l === " ---> Using cache").length, 3);

      // untagged: demo's result and every step only it used are removed together; busybox stays
      await root.ok(["tag", "demo", "keep"]);
      await root.ok(["rmi", "demo"]);
      await root.ok(["build", "--no-cache", "-t", "other", dir]); // a second chain, then untagged
      await root.ok(["rmi", "other"]);
      await root.ok(["image", "prune", "-f"]);
      assertEqual(
        lines(await root.ok(["images", "-a", "--no-trunc", "-q"])).sort(),
        [base, top2, env, run].sort(),
      );
      // -a: every unused image, the steps and the base too
      await root.ok(["image", "prune", "-a", "-f"]);
      assertEqual(await root.ok(["images", "-a", "-q"]), "");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
