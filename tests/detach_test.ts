// run -d: the supervisor starts the container, run prints its id once its command runs.

import assert from "node:assert/strict";
import { eventually, inspect, runDetached, status, supervisorPids, withDetached } from "./detach_helpers.ts";

Deno.test("run -d prints the full id once the container runs; ps and inspect show it", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, ["--name", "web", "busybox", "sleep", "100"]);
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await root.ok(["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert.match(ps, new RegExp(`^${id.slice(0, 12)} web Up`, "m"));
    assert.equal(await status(root, "web"), "running");
    const pid = Number(await inspect(root, "web", "{{.State.Pid}}"));
    assert(pid > 0);
    assert.equal(Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0], "sleep");
    // one supervisor for the root, not one per container
    await runDetached(root, ["--name", "web2", "busybox", "sleep", "100"]);
    assert.equal(supervisorPids(root).length, 1);
  });
});

Deno.test("run -d: stdin is closed without -i, kept open with -i", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "closed", "busybox", "sh", "-c", "cat; echo eof:$?"]);
    await eventually("cat sees EOF", async () => (await root.ok(["logs", "closed"])).includes("eof:0"));
    await runDetached(root, ["-i", "--name", "open", "busybox", "sh", "-c", "cat; echo eof"]);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await status(root, "open"), "running");
    assert.equal(await root.ok(["logs", "open"]), "");
  });
});

Deno.test("run -d: exec failures are reported like foreground run (127, 126, 125)", async () => {
  await withDetached(async (root) => {
    const missing = await root.skiff(["run", "-d", "--name", "mm", "busybox", "nosuchcmd"]);
    assert.equal(missing.code, 127);
    // docker 20.10 prints the id of the container it made before the start's error
    assert.match(missing.stdout, /^[0-9a-f]{64}\n$/);
    assert.match(missing.stderr, /exec: "nosuchcmd": executable file not found in \$PATH/);
    assert.equal(await status(root, "mm"), "created");
    const notExec = await root.skiff(["run", "-d", "busybox", "/etc/passwd"]);
    assert.equal(notExec.code, 126, notExec.stderr);
    const noImage = await root.skiff(["run", "-d", "nosuchimage"]);
    assert.equal(noImage.code, 125);
    assert.match(noImage.stderr, /^skiff: /m);
  });
});

Deno.test("run -d --rm: removed after it exits", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, ["--rm", "busybox", "sh", "-c", "sleep 0.3"]);
    assert(root.containerIds().includes(id));
    await eventually("the container is removed", () => !root.containerIds().includes(id));
    // a failing exec with --rm leaves nothing either
    const r = await root.skiff(["run", "-d", "--rm", "busybox", "nosuchcmd"]);
    assert.equal(r.code, 127);
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("run -d -t: the pty output is logged as stdout", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["-t", "--name", "tty", "busybox", "sh", "-c", "tty; echo err >&2"]);
    await eventually("it exits", async () => (await status(root, "tty")) === "exited");
    const logs = await root.skiff(["logs", "tty"]);
    assert.match(logs.stdout, /^\/dev\/pts\/0\r\nerr\r\n$/);
    assert.equal(logs.stderr, "");
  });
});
