// skiff top: the container's processes as ps -ef shows them (pids from its cgroup).

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("top: lists the sleep with ps -ef columns; ps options pass through", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "t", async (c) => {
      const out = await root.ok(["top", "t"]);
      const [header, ...rows] = out.trimEnd().split("\n");
      assert.deepEqual(header.trim().split(/\s+/), [
        "UID",
        "PID",
        "PPID",
        "C",
        "STIME",
        "TTY",
        "TIME",
        "CMD",
      ]);
      assert.equal(rows.length, 1, out);
      const fields = rows[0].trim().split(/\s+/);
      assert.equal(fields[0], "root");
      assert.equal(Number(fields[1]), c.pid);
      assert.match(rows[0], /sleep 100$/);

      const custom = await root.ok(["top", "t", "-o", "pid,comm"]);
      assert.match(custom, new RegExp(`^PID\\s+COMMAND\\n${c.pid}\\s+sleep\\n$`));
    });
    await root.ok(["run", "--name", "gone", "busybox", "true"]);
    const stopped = await root.skiff(["top", "gone"]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /is not running/);
  });
});
