// image prune: dangling only by default, -a for every unused image, never one a container uses;
// unreferenced layers and blobs go too (after their grace period).

import assert from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";

const ids = async (root: { ok(a: string[]): Promise<string> }) =>
  (await root.ok(["images", "-q", "--no-trunc"])).trim().split("\n").filter(Boolean).sort();

Deno.test("image prune: dangling only, then -a spares images containers use", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "c1", "busybox", "sh", "-c", "echo 1 > /one"]);
    await root.ok(["commit", "c1", "keep:1"]);
    await root.ok(["commit", "c1", "dangling:1"]);
    const danglingId = (await root.ok(["inspect", "--format", "{{.Id}}", "dangling:1"])).trim();
    await root.ok(["tag", "keep:1", "dangling:1"]); // the tag moves: the other commit is dangling now
    await root.ok(["rmi", "dangling:1"]);
    assert.ok((await ids(root)).includes(danglingId));

    const r = await root.skiff(["image", "prune", "-f"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Deleted Images:\ndeleted: ${danglingId}\n`));
    assert.match(r.stdout, /\n\nTotal reclaimed space: \d+(\.\d+)?[kM]?B\n$/);
    assert.ok(!(await ids(root)).includes(danglingId));
    assert.ok((await ids(root)).length === 2, "busybox and keep:1 stay");

    // nothing left to prune: still the total line
    assert.equal(await root.ok(["image", "prune", "-f"]), "Total reclaimed space: 0B\n");

    // -a: keep:1 goes, busybox stays (container c1 uses it)
    const a = await root.ok(["image", "prune", "-a", "-f"]);
    assert.match(a, /untagged: keep:1\n/);
    assert.deepEqual((await root.ok(["images", "--format", "{{.Repository}}"])).trim(), "busybox");
    assert.equal((await root.ok(["run", "--rm", "busybox", "echo", "ok"])).trim(), "ok");
  });
});

Deno.test("image prune: the question (no answer keeps everything), bad filter, label filter", async () => {
  await withBusybox(async (root) => {
    const before = await ids(root);
    const no = await root.skiff(["image", "prune", "-a"], { stdin: "n\n" });
    assert.equal(no.code, 0);
    assert.match(no.stdout, /WARNING! This will remove all images without at least one container/);
    assert.deepEqual(await ids(root), before);
    const bad = await root.skiff(["image", "prune", "-f", "--filter", "bogus=1"]);
    assert.equal(bad.code, 1); // docker: "Error response from daemon: Invalid filter 'bogus'"
    assert.equal(bad.stderr.trim(), "skiff: invalid filter 'bogus'");
    const labelled = await root.ok(["image", "prune", "-a", "-f", "--filter", "label=nosuch"]);
    assert.equal(labelled, "Total reclaimed space: 0B\n");
    assert.deepEqual(await ids(root), before);
    const yes = await root.skiff(["image", "prune", "-a"], { stdin: "y\n" });
    assert.match(yes.stdout, /untagged: busybox:latest/);
    assert.deepEqual(await ids(root), []);
  });
});

Deno.test("image prune: unreferenced layers and blobs older than the grace period are removed", async () => {
  await withBusybox(async (root) => {
    const layers = join(root.path, "layers"), blobs = join(root.path, "blobs", "sha256");
    const orphanLayer = join(layers, "ab".repeat(32));
    Deno.mkdirSync(join(orphanLayer, "diff"), { recursive: true });
    Deno.writeTextFileSync(
      join(orphanLayer, "layer.json"),
      JSON.stringify({
        diffId: `sha256:${"ab".repeat(32)}`,
        chainId: `sha256:${"ab".repeat(32)}`,
        parent: null,
        size: 7,
      }),
    );
    const orphanBlob = join(blobs, "cd".repeat(32));
    Deno.writeTextFileSync(orphanBlob, "x");
    const youngBlob = join(blobs, "ef".repeat(32));
    Deno.writeTextFileSync(youngBlob, "y");
    const old = new Date(Date.now() - 3600_000);
    Deno.utimeSync(orphanLayer, old, old);
    Deno.utimeSync(orphanBlob, old, old);
    await root.ok(["image", "prune", "-f"]);
    assert.throws(() => Deno.statSync(orphanLayer));
    assert.throws(() => Deno.statSync(orphanBlob));
    Deno.statSync(youngBlob); // may belong to a pull that is running
    assert.equal((await root.ok(["run", "--rm", "busybox", "echo", "ok"])).trim(), "ok");
  });
});
