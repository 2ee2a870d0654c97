// --stop-signal, --stop-timeout and the image's STOPSIGNAL as stop, restart, kill, rm -f and a
// restart policy honour them (lib/engine/lifecycle.ts). Every expectation below was seen with
// docker 20.10.24 on this machine, same busybox image and scripts, 2026-12-06; the tests run without
// docker.

import assert from "node:assert/strict";
import type { TestRoot } from "./helpers.ts";
import { eventually, inspect, Proc, runDetached, withDetached } from "./detach_helpers.ts";

const LOOP = "while :; do sleep 0.1; done";
// "ready" once the traps are set: a signal before that finds PID 1 without a handler (ignored)
const TRAPS = `trap "echo got-usr1; exit 3" USR1; trap "echo got-term; exit 4" TERM; echo ready; ${LOOP}`;

async function readyCount(root: TestRoot, name: string, times = 1): Promise<void> {
  await eventually(
    `${name} set its traps`,
    async () =>
      (await root.skiff(["logs", name])).stdout.split("\n").filter((l) => l === "ready").length >= times,
  );
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = Date.now();
  await fn();
  return Date.now() - start;
}

Deno.test("--stop-signal: stop and restart send it, kill sends SIGKILL (docker)", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "s1", "--stop-signal", "USR1", "busybox", "sh", "-c", TRAPS]);
    await readyCount(root, "s1");
    // docker: `stop s1` prints s1; logs: ready, got-usr1; ExitCode 3
    assert.equal(await root.ok(["stop", "s1"]), "s1\n");
    assert.equal(await root.ok(["logs", "s1"]), "ready\ngot-usr1\n");
    assert.equal(await inspect(root, "s1", "{{.State.ExitCode}}"), "3");
    // docker: start, restart → logs ready, got-usr1, ready, got-usr1, ready; running 0
    await root.ok(["start", "s1"]);
    await readyCount(root, "s1", 2);
    await root.ok(["restart", "s1"]);
    await readyCount(root, "s1", 3);
    assert.equal(await root.ok(["logs", "s1"]), "ready\ngot-usr1\nready\ngot-usr1\nready\n");
    assert.equal(await inspect(root, "s1", "{{.State.Status}} {{.State.ExitCode}}"), "running 0");
    // docker: kill without -s is SIGKILL, whatever the stop signal: no trap runs, exited 137
    await root.ok(["kill", "s1"]);
    await eventually("s1 exits", async () => await inspect(root, "s1", "{{.State.Status}}") === "exited");
    assert.equal(await inspect(root, "s1", "{{.State.ExitCode}}"), "137");
    assert.equal((await root.ok(["logs", "s1"])).split("\n").at(-2), "ready");
  });
});

Deno.test("--stop-timeout: stop and restart wait for it; stop -t and restart -t override it (docker)", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "s2",
      "--stop-timeout",
      "2",
      "busybox",
      "sh",
      "-c",
      `trap "" TERM; echo ready; ${LOOP}`,
    ]);
    await readyCount(root, "s2");
    // docker: stop took 2.14 s, ExitCode 137
    let took = await timed(() => root.ok(["stop", "s2"]));
    assert.ok(took >= 2000 && took < 4000, `stop took ${took} ms`);
    assert.equal(await inspect(root, "s2", "{{.State.ExitCode}}"), "137");
    // docker: stop -t 0 took 0.11 s
    await root.ok(["start", "s2"]);
    await readyCount(root, "s2", 2);
    took = await timed(() => root.ok(["stop", "-t", "0", "s2"]));
    assert.ok(took < 1500, `stop -t 0 took ${took} ms`);
    // docker: restart (no -t) took 2.29 s, restart -t 0 0.31 s
    await root.ok(["start", "s2"]);
    await readyCount(root, "s2", 3);
    took = await timed(() => root.ok(["restart", "s2"]));
    assert.ok(took >= 2000 && took < 4500, `restart took ${took} ms`);
    await readyCount(root, "s2", 4);
    took = await timed(() => root.ok(["restart", "-t", "0", "s2"]));
    assert.ok(took < 2000, `restart -t 0 took ${took} ms`);
    assert.equal(await inspect(root, "s2", "{{.State.Status}}"), "running");
  });
});

Deno.test("rm -f kills with SIGKILL, not the stop signal; a restart policy's container stops with it", async () => {
  await withDetached(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-stopsig-" });
    try {
      const trapToFile =
        `trap "echo got-usr1 > /out/log; exit 3" USR1; trap "echo got-term > /out/log; exit 4" TERM; ` +
        `echo ready; ${LOOP}`;
      await runDetached(root, [
        "--name",
        "s3",
        "-v",
        `${dir}:/out`,
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        trapToFile,
      ]);
      await readyCount(root, "s3");
      // docker: rm -f prints s3 and no trap ran (no /out/log)
      assert.equal(await root.ok(["rm", "-f", "s3"]), "s3\n");
      assert.throws(() => Deno.statSync(`${dir}/log`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // docker: --restart always, stop → logs ready, got-usr1; "exited 3 0" (status, code, RestartCount)
    await runDetached(root, [
      "--name",
      "s4",
      "--restart",
      "always",
      "--stop-signal",
      "USR1",
      "busybox",
      "sh",
      "-c",
      TRAPS,
    ]);
    await readyCount(root, "s4");
    await root.ok(["stop", "s4"]);
    await new Promise((r) => setTimeout(r, 1000)); // docker checked after 1 s: not restarted
    assert.equal(await root.ok(["logs", "s4"]), "ready\ngot-usr1\n");
    assert.equal(
      await inspect(root, "s4", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"),
      "exited 3 0",
    );
  });
});

Deno.test("the image's STOPSIGNAL is the default; --stop-signal overrides it (docker)", async () => {
  await withDetached(async (root) => {
    const ctx = await Deno.makeTempDir({ prefix: "skiff-stopsig-ctx-" });
    try {
      Deno.writeTextFileSync(`${ctx}/Dockerfile`, "FROM busybox\nSTOPSIGNAL SIGUSR1\n");
      await root.ok(["build", "-q", "-t", "stopsig", ctx]);
    } finally {
      await Deno.remove(ctx, { recursive: true });
    }
    // docker: image and container Config.StopSignal "SIGUSR1"; stop → got-usr1
    assert.equal(await inspect(root, "stopsig", "{{.Config.StopSignal}}"), "SIGUSR1");
    await runDetached(root, ["--name", "s5", "stopsig", "sh", "-c", TRAPS]);
    assert.equal(await inspect(root, "s5", "{{json .Config.StopSignal}}"), '"SIGUSR1"');
    await readyCount(root, "s5");
    await root.ok(["stop", "s5"]);
    assert.equal(await root.ok(["logs", "s5"]), "ready\ngot-usr1\n");
    // docker: --stop-signal TERM over it → "TERM", got-term
    await runDetached(root, ["--name", "s6", "--stop-signal", "TERM", "stopsig", "sh", "-c", TRAPS]);
    assert.equal(await inspect(root, "s6", "{{json .Config.StopSignal}}"), '"TERM"');
    await readyCount(root, "s6");
    await root.ok(["stop", "s6"]);
    assert.equal(await root.ok(["logs", "s6"]), "ready\ngot-term\n");
    // docker 20.10 without either: {{json .Config.StopSignal}} "" and {{json .Config.StopTimeout}} null
    const plain = (await root.ok(["create", "busybox", "true"])).trim();
    assert.equal(
      await inspect(root, plain, "{{json .Config.StopSignal}} {{json .Config.StopTimeout}}"),
      '"" null',
    );
  });
});

Deno.test("a foreground run is stopped with its stop signal and timeout; bad values refused (docker)", async () => {
  await withDetached(async (root) => {
    const run = Proc.skiff(root, [
      "run",
      "--name",
      "f1",
      "--stop-signal",
      "USR1",
      "busybox",
      "sh",
      "-c",
      TRAPS,
    ]);
    await run.waitFor("ready\n");
    assert.equal(await root.ok(["stop", "f1"]), "f1\n");
    assert.equal(await run.finish(), 3);
    assert.equal(run.stdout, "ready\ngot-usr1\n");
    const stubborn = Proc.skiff(root, [
      "run",
      "--name",
      "f2",
      "--stop-timeout",
      "1",
      "busybox",
      "sh",
      "-c",
      `trap "" TERM; echo ready; ${LOOP}`,
    ]);
    await stubborn.waitFor("ready\n");
    const took = await timed(() => root.ok(["stop", "f2"]));
    assert.ok(took >= 1000 && took < 3000, `stop took ${took} ms`);
    assert.equal(await stubborn.finish(), 137);
    // docker: "docker: Error response from daemon: Invalid signal: bogus." and
    // `invalid argument "x" for "--stop-timeout" flag: strconv.ParseInt: parsing "x": invalid syntax`, both 125
    let r = await root.skiff(["run", "--rm", "--stop-signal", "bogus", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "skiff: Invalid signal: bogus\n");
    r = await root.skiff(["run", "--rm", "--stop-timeout", "x", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.match(
      r.stderr,
      /invalid argument "x" for "--stop-timeout" flag: strconv.ParseInt: parsing "x": invalid syntax/,
    );
  });
});
