// Robustness: kill -9 of the supervisor, of the container, of `skiff run -d` at any point; 100
// commands at once. The next command tells the truth and rm -f cleans everything.

import assert from "node:assert/strict";
import { MAIN, type TestRoot } from "./helpers.ts";
import {
  eventually,
  inspect,
  runDetached,
  sleep,
  status,
  supervisorPids,
  withDetached,
} from "./detach_helpers.ts";

const alive = (pid: number) => {
  try {
    return !Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
};

Deno.test("kill -9 of the supervisor: containers keep running, a new one adopts them, rm -f cleans", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "aa", "busybox", "sleep", "100"]);
    await runDetached(root, ["--name", "bb", "busybox", "sleep", "100"]);
    const [supervisor] = supervisorPids(root);
    Deno.kill(supervisor, "SIGKILL");
    await eventually("the supervisor is gone", () => !alive(supervisor));
    const pidA = Number(await inspect(root, "aa", "{{.State.Pid}}"));
    assert.ok(alive(pidA), "the container survives its supervisor");
    assert.equal(await status(root, "aa"), "running");
    // the command above woke a new supervisor, which adopted both; it records the exit, whose
    // status it cannot know (it is not the parent): 255, what docker records for a lost status
    Deno.kill(pidA, "SIGKILL");
    await eventually("a is gone", () => !alive(pidA));
    await eventually("a recorded exited", async () => (await status(root, "aa")) === "exited");
    assert.equal(await inspect(root, "aa", "{{.State.ExitCode}}"), "255");
    assert.equal(supervisorPids(root).length, 1);
    // a new supervisor serves new containers; the orphan can still be stopped and removed
    await runDetached(root, ["--name", "cc", "busybox", "sleep", "100"]);
    assert.equal(await status(root, "cc"), "running");
    await root.ok(["stop", "-t", "1", "bb"]);
    assert.equal(await status(root, "bb"), "exited");
    await root.ok(["rm", "-f", "aa", "bb", "cc"]);
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("kill -9 of the container's process is recorded as exit 137", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "vv", "busybox", "sleep", "100"]);
    Deno.kill(Number(await inspect(root, "vv", "{{.State.Pid}}")), "SIGKILL");
    await eventually("exited", async () => (await status(root, "vv")) === "exited");
    assert.equal(
      await inspect(root, "vv", "{{.State.ExitCode}} {{.State.Pid}} {{.State.Running}}"),
      "137 0 false",
    );
    assert.notEqual(await inspect(root, "vv", "{{.State.FinishedAt}}"), "0001-01-01T00:00:00Z");
  });
});

function spawnRunDetached(root: TestRoot, name: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, "run", "-d", "--name", name, "busybox", "sleep", "100"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("kill -9 of `skiff run -d` at any point: ps works, rm -f cleans everything", async () => {
  await withDetached(async (root) => {
    for (let i = 0; i < 8; i++) {
      const child = spawnRunDetached(root, `k${i}`);
      await sleep(40 * i);
      try {
        child.kill("SIGKILL");
      } catch { /* already done */ }
      await child.status;
    }
    const ps = await root.skiff(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert.equal(ps.code, 0, ps.stderr);
    for (const line of ps.stdout.trim().split("\n").filter(Boolean)) {
      assert.match(line, /^k\d (Up|Created|Exited)/);
    }
    const ids = root.containerIds();
    if (ids.length) await root.ok(["rm", "-f", ...ids]);
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("50 run -d and 50 rm -f of other containers, all at once: every one succeeds", async () => {
  await withDetached(async (root) => {
    const N = 50;
    const old: string[] = [];
    for (let i = 0; i < N; i += 10) {
      const batch = Array.from({ length: Math.min(10, N - i) }, (_, j) => `old${i + j}`);
      await Promise.all(batch.map((name) => runDetached(root, ["--name", name, "busybox", "sleep", "100"])));
      old.push(...batch);
    }
    const results = await Promise.all([
      ...Array.from(
        { length: N },
        (_, i) => root.skiff(["run", "-d", "--name", `new${i}`, "busybox", "sleep", "100"]),
      ),
      ...old.map((name) => root.skiff(["rm", "-f", name])),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const ps = (await root.ok(["ps", "-a", "--format", "{{.Names}} {{.State}}"])).trim().split("\n").sort();
    assert.deepEqual(ps, Array.from({ length: N }, (_, i) => `new${i} running`).sort());
    assert.equal(supervisorPids(root).length, 1);
    await root.ok(["rm", "-f", ...Array.from({ length: N }, (_, i) => `new${i}`)]);
    assert.deepEqual(root.containerIds(), []);
  });
});
