// skiff container prune: removes every stopped container (not running ones), docker's output.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("container prune: stopped containers go, running ones stay; filters; prompt", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "aa", "busybox", "sh", "-c", "echo data > /root/f"]);
    await root.ok(["run", "--name", "bb", "--label", "keep=yes", "busybox", "true"]);
    const aId = (await root.ok(["inspect", "-f", "{{.Id}}", "aa"])).trim();
    await withBackground(root, "live", async () => {
      // without -f the prompt is answered "no": nothing happens
      const declined = await root.skiff(["container", "prune"], { stdin: "n\n" });
      assert.equal(declined.code, 0);
      assert.match(declined.stdout, /WARNING! This will remove all stopped containers\./);
      assert.equal((await root.ok(["ps", "-aq"])).trim().split("\n").length, 3);

      const filtered = await root.ok(["container", "prune", "-f", "--filter", "label!=keep"]);
      assert.match(
        filtered,
        new RegExp(`^Deleted Containers:\\n${aId}\\n\\nTotal reclaimed space: \\d+B\\n$`),
      );
      assert.match(filtered, /Total reclaimed space: [1-9]/, "the upper dir had data");

      const all = await root.ok(["container", "prune", "-f"]);
      assert.match(all, /^Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: /);
      assert.equal(await root.ok(["ps", "-a", "--format", "{{.Names}}"]), "live\n");

      assert.equal(await root.ok(["container", "prune", "-f"]), "Total reclaimed space: 0B\n");
      const bad = await root.skiff(["container", "prune", "-f", "--filter", "bogus=1"]);
      assert.equal(bad.code, 1); // docker: "Error response from daemon: Invalid filter 'bogus'"
    });
  });
});
