// skiff top: the container's processes as ps -ef shows them (pids from its cgroup).

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("top: lists the sleep with ps -ef columns; ps options pass through", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "tt", async (c) => {
      const out = await root.ok(["top", "tt"]);
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

      const custom = await root.ok(["top", "tt", "-o", "pid,comm"]);
      assert.match(custom, new RegExp(`^PID\\s+COMMAND\\n${c.pid}\\s+sleep\\n$`));
    });
    await root.ok(["run", "--name", "gone", "busybox", "true"]);
    const stopped = await root.skiff(["top", "gone"]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /is not running/);
    // docker 20.10: "Error response from daemon: No such container: ghost", exit 1
    const missing = await root.skiff(["top", "ghost"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "skiff: No such container: ghost\n");
  });
});

Deno.test("top: without a ps binary the listing comes from /proc", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "np", async (c) => {
      const out = await root.ok(["top", "np"], { env: { PATH: "/nonexistent" } });
      const [header, row, ...rest] = out.trimEnd().split("\n");
      assert.equal(rest.length, 0, out);
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
      const fields = row.trim().split(/\s+/);
      assert.equal(fields[0], "root");
      assert.equal(Number(fields[1]), c.pid);
      assert.match(fields[4], /^\d\d:\d\d$/);
      assert.match(fields[6], /^\d\d:\d\d:\d\d$/);
      assert.match(row, /sleep 100$/);
      // ps options need ps
      const r = await root.skiff(["top", "np", "-o", "pid"], { env: { PATH: "/nonexistent" } });
      assert.equal(r.code, 1);
    });
  });
});
