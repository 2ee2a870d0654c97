// skiff stats: docker's columns from the container's cgroup; --no-stream prints once; --format.

import assert from "node:assert/strict";
import { MAIN, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

Deno.test("stats --no-stream: memory figure, limit, PIDS; --format; -a shows stopped ones", async () => {
  await withBusybox(async (root) => {
    await withBackground(
      root,
      "ss",
      async (c) => {
        const out = await root.ok(["stats", "--no-stream"]);
        const [header, row, ...rest] = out.trimEnd().split("\n");
        assert.equal(rest.length, 0);
        assert.match(
          header,
          /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/,
        );
        assert.match(
          row,
          new RegExp(
            `^${
              c.id.slice(0, 12)
            }\\s+ss\\s+\\d+\\.\\d\\d%\\s+[\\d.]+[KMG]?i?B / 64MiB\\s+\\d+\\.\\d\\d%\\s+0B / 0B\\s+\\S+ / \\S+\\s+1$`,
          ),
        );
        const usage = /\s([\d.]+)(B|KiB|MiB)\s\//.exec(row)!;
        assert.ok(Number(usage[1]) > 0, "some memory in use");

        assert.equal(
          await root.ok(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "ss"]),
          "ss 1\n",
        );
        await root.ok(["run", "--name", "stopped", "busybox", "true"]);
        const all = await root.ok([
          "stats",
          "--no-stream",
          "-a",
          "--format",
          "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        ]);
        assert.match(all, /^ss \S+ \/ 64MiB 1$/m);
        assert.match(all, /^-- 0B \/ 0B 0$/m);
      },
      ["sleep", "100"],
      // no network: loopback only, so NET I/O is docker's 0B / 0B (a bridged one sees the bridge's traffic)
      ["--memory", "64m", "--network", "none"],
    );
    const ghost = await root.skiff(["stats", "--no-stream", "ghost"]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /No such container: ghost/);
  });
});

Deno.test("stats: streaming prints again and again when not on a terminal", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "st", async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "--root", root.path, "stats", "--format", "{{.Name}}"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      setTimeout(() => child.kill("SIGTERM"), 3500);
      const out = new TextDecoder().decode((await child.output()).stdout);
      assert.ok(out.split("\n").filter((l) => l === "st").length >= 2, out);
    });
  });
});

Deno.test("stats: CPU % of a busy container comes from two samples", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "busy", async () => {
      const out = await root.ok(["stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy"]);
      const cpu = Number(out.trim().replace("%", ""));
      assert.ok(cpu > 20 && cpu < 250, `a spinning shell uses a CPU: ${out}`);
    }, ["sh", "-c", "while :; do :; done"]);
  });
});
