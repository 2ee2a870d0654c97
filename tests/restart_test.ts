// Restart policies: on-failure[:N], always, unless-stopped, with docker's back-off.

import assert from "node:assert/strict";
import { eventually, inspect, runDetached, sleep, status, withDetached } from "./detach_helpers.ts";

Deno.test("restart on-failure:3 restarts exactly 3 times, with back-off, then stays exited", async () => {
  await withDetached(async (root) => {
    const start = Date.now();
    await runDetached(root, [
      "--name",
      "of",
      "--restart",
      "on-failure:3",
      "busybox",
      "sh",
      "-c",
      "echo run; exit 2",
    ]);
    await eventually("three restarts", async () => (await inspect(root, "of", "{{.RestartCount}}")) === "3");
    await eventually("it ends", async () => (await status(root, "of")) === "exited");
    // back-off: 100 + 200 + 400 ms between the four runs
    assert.ok(Date.now() - start >= 700, `${Date.now() - start} ms`);
    await sleep(1000);
    assert.equal(await inspect(root, "of", "{{.RestartCount}} {{.State.ExitCode}}"), "3 2");
    assert.equal(await root.ok(["logs", "of"]), "run\nrun\nrun\nrun\n");
    assert.equal(
      await inspect(root, "of", "{{json .HostConfig.RestartPolicy}}"),
      '{"Name":"on-failure","MaximumRetryCount":3}', // docker's struct order
    );
  });
});

Deno.test("restart on-failure: a clean exit is not restarted", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "ok", "--restart", "on-failure", "busybox", "true"]);
    await eventually("it ends", async () => (await status(root, "ok")) === "exited");
    await sleep(500);
    assert.equal(await inspect(root, "ok", "{{.RestartCount}}"), "0");
  });
});

for (const policy of ["always", "unless-stopped"]) {
  Deno.test(`restart ${policy}: restarts after every exit until stopped`, async () => {
    await withDetached(async (root) => {
      await runDetached(root, [
        "--name",
        "aa",
        "--restart",
        policy,
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
      ]);
      await eventually(
        "two restarts",
        async () => Number(await inspect(root, "aa", "{{.RestartCount}}")) >= 2,
      );
      const seen = new Set<string>();
      await eventually("restarting shows", async () => {
        const s = await inspect(root, "aa", "{{.State.Status}} {{.State.Restarting}}");
        seen.add(s);
        return s === "restarting true";
      });
      const ps = await root.ok(["ps", "-a", "--format", "{{.Status}}"]);
      assert.match(ps, /Restarting|Up/);
      await root.ok(["stop", "aa"]);
      assert.equal(await status(root, "aa"), "exited");
      const count = await inspect(root, "aa", "{{.RestartCount}}");
      await sleep(800);
      assert.equal(await status(root, "aa"), "exited");
      assert.equal(await inspect(root, "aa", "{{.RestartCount}}"), count);
    });
  });
}

Deno.test("restart: a killed process is restarted by always; rm -f ends it at once", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "kk", "--restart", "always", "busybox", "sleep", "100"]);
    const pid = Number(await inspect(root, "kk", "{{.State.Pid}}"));
    Deno.kill(pid, "SIGKILL");
    await eventually("restarted", async () => {
      const [s, p] = (await inspect(root, "kk", "{{.State.Status}} {{.State.Pid}}")).split(" ");
      return s === "running" && Number(p) !== pid && Number(p) !== 0;
    });
    assert.equal(await inspect(root, "kk", "{{.RestartCount}}"), "1");
    const start = Date.now();
    await root.ok(["rm", "-f", "kk"]);
    assert.ok(Date.now() - start < 2000);
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("restart: bad policies and --rm are refused like docker", async () => {
  await withDetached(async (root) => {
    for (
      const [flags, message] of [
        [["--restart", "sometimes"], /invalid restart policy: unknown policy 'sometimes'/],
        [["--restart", "always:3"], /maximum retry count can only be used with 'on-failure'/],
        [["--restart", "on-failure:x"], /maximum retry count must be an integer/],
        [["--rm", "--restart", "always"], /Conflicting options: --restart and --rm/],
      ] as const
    ) {
      const r = await root.skiff(["run", "-d", ...flags, "busybox", "true"]);
      assert.equal(r.code, 125, flags.join(" "));
      assert.match(r.stderr, message);
    }
    assert.deepEqual(root.containerIds(), []);
  });
});
