// skiff commit: the container's changes become a layer; the new image runs with the committed
// files, deletions stay deleted (whiteouts), --change and -m/-a reach the config.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("commit: new image has the added file, the deleted file stays deleted, changes apply", async () => {
  await withBusybox(async (root) => {
    await root.ok([
      "run",
      "--name",
      "builder",
      "busybox",
      "sh",
      "-c",
      "echo committed > /root/new.txt && rm /etc/group && mkdir -p /data/deep && echo x > /data/deep/f",
    ]);
    const out = await root.ok([
      "commit",
      "-m",
      "my message",
      "-a",
      "Tester <t@example.com>",
      "-c",
      'CMD ["cat", "/root/new.txt"]',
      "-c",
      "ENV FOO=bar",
      "-c",
      "WORKDIR /data",
      "-c",
      "LABEL purpose=test",
      "builder",
      "committed:v1",
    ]);
    assert.match(out, /^sha256:[0-9a-f]{64}\n$/);
    const id = out.trim();
    assert.equal(await root.ok(["images", "-q", "--no-trunc", "committed:v1"]), `${id}\n`);

    // default command from -c CMD
    assert.equal(await root.ok(["run", "--rm", "committed:v1"]), "committed\n");
    // the deletion is a whiteout in the new layer: still gone
    const r = await root.skiff(["run", "--rm", "committed:v1", "ls", "/etc/group"]);
    assert.notEqual(r.code, 0);
    assert.equal(
      await root.ok(["run", "--rm", "committed:v1", "sh", "-c", "pwd; echo $FOO; cat deep/f"]),
      "/data\nbar\nx\n",
    );

    const config = JSON.parse(await root.ok(["inspect", "-f", "{{json .}}", "committed:v1"]));
    assert.equal(config.Author, "Tester <t@example.com>");
    assert.equal(config.Comment, "my message");
    assert.equal(config.Config.Labels.purpose, "test");
    assert.equal(config.RootFS.Layers.length, 2, "one new layer on top of busybox's");
    // the runtime's own bind-mount placeholders are not part of the layer
    const diff = await root.ok(["diff", "builder"]);
    assert.match(diff, /^D \/etc\/group$/m);
    assert.doesNotMatch(diff, /hostname|resolv\.conf|hosts/);
  });
});

Deno.test("commit: a running container is paused meanwhile and keeps running; bad input changes nothing", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "live", async () => {
      const before = await root.ok(["images", "-q"]);
      const bad = await root.skiff(["commit", "-c", "FROM busybox", "live", "x:1"]);
      assert.equal(bad.code, 1); // docker 20.10: "Error response from daemon: from is not a valid change command"
      assert.match(bad.stderr, /FROM is not a valid change command/);
      assert.equal(await root.ok(["images", "-q"]), before);
      const id = (await root.ok(["commit", "live"])).trim();
      assert.match(id, /^sha256:/);
      assert.equal((await root.ok(["inspect", "-f", "{{.State.Status}}", "live"])).trim(), "running");
      // an untagged commit is listed as <none>
      assert.match(await root.ok(["images"]), /<none>\s+<none>/);
    });
    const ghost = await root.skiff(["commit", "ghost"]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /No such container: ghost/);
  });
});
