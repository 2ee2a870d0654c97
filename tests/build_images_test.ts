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

Deno.test("build images: rmi refuses a parent as docker does, deletes a built image's untagged parents, --no-prune keeps them", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-build-rmi-" });
    try {
      // the chain base <- runA <- runB <- top (CMD: no layer of its own)
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        'FROM busybox\nRUN echo a > /a\nRUN echo b > /b\nCMD ["sh"]\n',
      );
      await root.ok(["build", "-q", "-t", "one", dir]);
      const base = await id(root, "busybox");
      const top = await id(root, "one");
      const runB = await parentOf(root, top);
      const runA = await parentOf(root, runB);
      assertEqual(await parentOf(root, runA), base);
      const all = async () => [...new Set(lines(await root.ok(["images", "-a", "--no-trunc", "-q"])))].sort();
      const before = await all();
      const layerCount = () => [...Deno.readDirSync(join(root.path, "layers"))].length;
      const baseLayers = 1;
      assertEqual(layerCount(), baseLayers + 2);

      // by id: refused, with or without -f, with no tag or with two tags (docker checks children first)
      const childConflict = `skiff: conflict: unable to delete ${runB.slice(7, 19)} (cannot be forced) - ` +
        "image has dependent child images\n";
      for (const args of [["rmi", runB], ["rmi", "-f", runB], ["rmi", runB.slice(7, 19)]]) {
        const r = await root.skiff(args);
        assertEqual([r.code, r.stdout, r.stderr], [1, "", childConflict], args.join(" "));
      }
      await root.ok(["tag", runB, "p1"]);
      await root.ok(["tag", runB, "p2"]);
      for (const args of [["rmi", runB], ["rmi", "-f", runB]]) {
        const r = await root.skiff(args);
        assertEqual([r.code, r.stdout, r.stderr], [1, "", childConflict], args.join(" "));
      }
      assertEqual(await all(), before);
      // by its last tag (-f or not): only untagged, the image stays for its child
      await root.ok(["tag", runA, "pa"]);
      assertEqual(await root.ok(["rmi", "pa"]), "Untagged: pa:latest\n");
      await root.ok(["tag", runA, "pa"]);
      assertEqual(await root.ok(["rmi", "-f", "pa"]), "Untagged: pa:latest\n");
      assertEqual(await all(), before);

      // the built image: deleted; its parent runB has tags, so the walk up stops there (quietly)
      assertEqual(await root.ok(["rmi", "one"]), `Untagged: one:latest\nDeleted: ${top}\n`);
      assertEqual(await root.ok(["rmi", "p1"]), "Untagged: p1:latest\n");
      // the last tag: runB goes, its layer, then the untagged runA (and its layer); busybox stays
      const out = lines(await root.ok(["rmi", "p2"]));
      assertEqual(out.length, 5, out.join("\n"));
      assertEqual(out[0], "Untagged: p2:latest");
      assertEqual(out[1], `Deleted: ${runB}`);
      assertEqual(out[3], `Deleted: ${runA}`);
      for (const i of [2, 4]) {
        assert(
          /^Deleted: sha256:[0-9a-f]{64}$/.test(out[i]) && ![runA, runB].includes(out[i].slice(9)),
          out[i],
        );
      }
      assertEqual(await all(), [base]);
      assertEqual(layerCount(), baseLayers);
      const events = await root.ok([
        "events",
        "--since",
        "0",
        "--until",
        String(Math.ceil(Date.now() / 1000) + 5),
        "--filter",
        "event=delete",
      ]);
      for (const i of [top, runB, runA]) assert(events.includes(i), `no delete event for ${i}:\n${events}`);

      // --no-prune: only the image goes; its parents stay, now dangling
      await root.ok(["build", "-q", "--no-cache", "-t", "two", dir]);
      const top2 = await id(root, "two");
      const runB2 = await parentOf(root, top2);
      const runA2 = await parentOf(root, runB2);
      assertEqual(await root.ok(["rmi", "--no-prune", "two"]), `Untagged: two:latest\nDeleted: ${top2}\n`);
      assertEqual(await all(), [base, runA2, runB2].sort());
      assertEqual(lines(await root.ok(["images", "-q", "--no-trunc", "-f", "dangling=true"])), [runB2]);
      await root.ok(["rmi", runB2]); // by id: runA2 goes with it
      assertEqual(await all(), [base]);

      // a parent a container uses stops the walk (docker: quietly); the container keeps working
      await root.ok(["build", "-q", "--no-cache", "-t", "three", dir]);
      const top3 = await id(root, "three");
      const runB3 = await parentOf(root, top3);
      const runA3 = await parentOf(root, runB3);
      await root.ok(["create", "--name", "user", runA3, "cat", "/a"]);
      const removed = lines(await root.ok(["rmi", "three"]));
      assertEqual(removed.slice(0, 2), ["Untagged: three:latest", `Deleted: ${top3}`]);
      assert(
        removed.includes(`Deleted: ${runB3}`) && !removed.includes(`Deleted: ${runA3}`),
        removed.join("\n"),
      );
      assertEqual(await all(), [base, runA3].sort());
      assertEqual((await root.ok(["start", "-a", "user"])).trim(), "a");
      await root.ok(["rm", "user"]);
      const check = await root.skiff(["system", "check"]);
      assertEqual(check.code, 0, check.stdout + check.stderr);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
