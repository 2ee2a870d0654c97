// stop, kill, start, restart, wait of detached containers.

import assert from "node:assert/strict";
import { eventually, inspect, runDetached, status, withDetached } from "./detach_helpers.ts";

const LOOP = "while :; do sleep 0.1; done";
// `run -d` answers once the command runs, not once the shell has set its traps: a signal sent before
// that is ignored (PID 1 without a handler). The scripts print "ready" after their traps.
const READY = "echo ready";

async function trapsSet(root: Parameters<typeof inspect>[0], name: string, times = 1): Promise<void> {
  await eventually(
    `${name} set its traps`,
    async () =>
      (await root.skiff(["logs", name])).stdout.split("\n").filter((l) => l === "ready").length >= times,
  );
}

Deno.test("stop: a PID 1 that ignores SIGTERM is killed after the timeout, not much later", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "stubborn", "busybox", "sh", "-c", `trap "" TERM; ${LOOP}`]);
    const start = Date.now();
    const r = await root.skiff(["stop", "-t", "2", "stubborn"]);
    const took = Date.now() - start;
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "stubborn\n");
    assert.ok(took >= 2000 && took < 3000, `stop took ${took} ms`);
    assert.equal(await status(root, "stubborn"), "exited");
    assert.equal(await inspect(root, "stubborn", "{{.State.ExitCode}}"), "137");
  });
});

Deno.test("stop: a shell that exits on SIGTERM gives 143; --stop-signal and -s choose the signal", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "polite",
      "busybox",
      "sh",
      "-c",
      `trap "exit 143" TERM; ${READY}; ${LOOP}`,
    ]);
    await trapsSet(root, "polite");
    const start = Date.now();
    await root.ok(["stop", "polite"]);
    assert.ok(Date.now() - start < 2000);
    assert.equal(await inspect(root, "polite", "{{.State.ExitCode}}"), "143");
    const trapUsr1 = `trap "exit 10" USR1; trap "exit 15" TERM; ${READY}; ${LOOP}`;
    await runDetached(root, ["--name", "usr1", "--stop-signal", "USR1", "busybox", "sh", "-c", trapUsr1]);
    await trapsSet(root, "usr1");
    await root.ok(["stop", "usr1"]);
    assert.equal(await inspect(root, "usr1", "{{.State.ExitCode}}"), "10");
    await root.ok(["start", "usr1"]);
    await trapsSet(root, "usr1", 2);
    await root.ok(["stop", "-s", "TERM", "usr1"]);
    assert.equal(await inspect(root, "usr1", "{{.State.ExitCode}}"), "15");
    // stopping a stopped container is fine; an unknown one is not
    assert.equal(await root.ok(["stop", "usr1"]), "usr1\n");
    const missing = await root.skiff(["stop", "nosuch", "usr1"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "usr1\n");
    assert.match(missing.stderr, /No such container: nosuch/);
  });
});

Deno.test("start re-uses the container layer: a file written before stop is still there", async () => {
  await withDetached(async (root) => {
    const script = `if [ -f /marker ]; then echo again; else echo first; fi; touch /marker; ${LOOP}`;
    const id = await runDetached(root, ["--name", "keep", "busybox", "sh", "-c", script]);
    await eventually("first run", async () => (await root.ok(["logs", "keep"])) === "first\n");
    const firstStart = await inspect(root, "keep", "{{.State.StartedAt}}");
    await root.ok(["stop", "-t", "0", "keep"]);
    assert.equal(await root.ok(["start", "keep"]), "keep\n");
    assert.equal(await status(root, "keep"), "running");
    assert.equal(await inspect(root, "keep", "{{.Id}}"), id);
    assert.notEqual(await inspect(root, "keep", "{{.State.StartedAt}}"), firstStart);
    await eventually("second run", async () => (await root.ok(["logs", "keep"])) === "first\nagain\n");
    // start of a running container: nothing happens
    const pid = await inspect(root, "keep", "{{.State.Pid}}");
    await root.ok(["start", "keep"]);
    assert.equal(await inspect(root, "keep", "{{.State.Pid}}"), pid);
  });
});

Deno.test("start -a prints the output and exits with the container's code", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "att", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    await eventually("first run ends", async () => (await status(root, "att")) === "exited");
    const r = await root.skiff(["start", "-a", "att"]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
  });
});

Deno.test("wait prints the exit code, also from several waiters and for a stopped container", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "ww", "busybox", "sh", "-c", "sleep 0.7; exit 7"]);
    const [a, b] = await Promise.all([root.skiff(["wait", "ww"]), root.skiff(["wait", "ww"])]);
    assert.equal(a.stdout, "7\n");
    assert.equal(b.stdout, "7\n");
    assert.equal((await root.skiff(["wait", "ww"])).stdout, "7\n");
    const missing = await root.skiff(["wait", "nosuch"]);
    assert.equal(missing.code, 1);
  });
});

Deno.test("kill: -s delivers the signal; refuses containers that do not run and bad signals", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "kk",
      "busybox",
      "sh",
      "-c",
      `trap "echo got; exit 5" USR1; ${READY}; ${LOOP}`,
    ]);
    await trapsSet(root, "kk");
    assert.equal(await root.ok(["kill", "-s", "SIGUSR1", "kk"]), "kk\n");
    assert.equal((await root.ok(["wait", "kk"])).trim(), "5");
    assert.equal(await root.ok(["logs", "kk"]), "ready\ngot\n");
    const notRunning = await root.skiff(["kill", "kk"]);
    assert.equal(notRunning.code, 1);
    assert.match(notRunning.stderr, /is not running/);
    const bad = await root.skiff(["kill", "-s", "NOPE", "kk"]);
    assert.equal(bad.code, 1); // docker 20.10: "Error response from daemon: Invalid signal: NOPE", exit 1
    assert.match(bad.stderr, /Invalid signal: NOPE/);
    // one line per container named, a missing one too (docker checks the signal first)
    const several = await root.skiff(["kill", "-s", "NOPE", "kk", "nosuch"]);
    assert.equal(several.code, 1);
    assert.equal(several.stderr, "skiff: Invalid signal: NOPE\nskiff: Invalid signal: NOPE\n");
    await runDetached(root, ["--name", "k9", "busybox", "sleep", "100"]);
    await root.ok(["kill", "k9"]);
    assert.equal(await status(root, "k9"), "exited");
    assert.equal(await inspect(root, "k9", "{{.State.ExitCode}}"), "137");
  });
});

Deno.test("restart: stops and starts again (new pid, same container)", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "rr", "busybox", "sh", "-c", `trap "exit 0" TERM; echo up; ${LOOP}`]);
    await eventually("r set its trap", async () => (await root.ok(["logs", "rr"])) === "up\n");
    const pid = await inspect(root, "rr", "{{.State.Pid}}");
    assert.equal(await root.ok(["restart", "-t", "1", "rr"]), "rr\n");
    assert.equal(await status(root, "rr"), "running");
    assert.notEqual(await inspect(root, "rr", "{{.State.Pid}}"), pid);
    await eventually("two runs logged", async () => (await root.ok(["logs", "rr"])) === "up\nup\n");
  });
});
