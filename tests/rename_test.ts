// skiff rename: the new name is used by every verb, docker's errors for conflicts and bad names.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("rename: stopped and running containers; conflicts and bad names refused", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "old", "busybox", "true"]);
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "old"])).trim();
    assert.equal(await root.ok(["rename", "old", "new"]), "");
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", "new"]), "/new\n");
    assert.equal((await root.skiff(["inspect", "old"])).code, 1);

    await withBackground(root, "busy", async () => {
      const conflict = await root.skiff(["rename", "new", "busy"]);
      assert.equal(conflict.code, 1);
      const busyId = (await root.ok(["inspect", "-f", "{{.Id}}", "busy"])).trim();
      assert.equal(
        conflict.stderr,
        `skiff: Error when allocating new name: Conflict. The container name "/busy" is already in use by container "${busyId}". ` +
          "You have to remove (or rename) that container to be able to reuse that name.\n",
      );
      await root.ok(["rename", "busy", "busy2"]);
      assert.equal(await root.ok(["ps", "--format", "{{.Names}}"]), "busy2\n");
      await root.ok(["rename", "busy2", "busy"]); // stop() removes it by its first name
    });

    const same = await root.skiff(["rename", "new", "new"]);
    assert.match(same.stderr, /Renaming a container with the same name as its current name/);
    const bad = await root.skiff(["rename", "new", "no/slash"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error when allocating new name: Invalid container name \(\/no\/slash\)/);
    const ghost = await root.skiff(["rename", "ghost", "x"]);
    assert.notEqual(ghost.code, 0);
    assert.match(ghost.stderr, /No such container: ghost/);
    assert.equal((await root.skiff(["rename", "new"])).code, 1); // docker's CLI: 1 for a wrong number of arguments
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", id]), "/new\n");
  });
});
