// run -d of an image that is here: the supervisor makes the container itself (lib/runtime/
// create_run.ts). What the CLI parsed in its own environment arrives intact, bad input is refused
// with the CLI's own line and code and leaves nothing, and a missing image still goes through the
// CLI's pull path.

import assert from "node:assert/strict";
import { inspect, runDetached, status, supervisorPids, withDetached } from "./detach_helpers.ts";

Deno.test("run -d: -e VAR takes the CLI's environment, not the supervisor's; flags reach the record", async () => {
  await withDetached(async (root) => {
    // a supervisor already running (started by another command, in another environment)
    await runDetached(root, ["--name", "first", "busybox", "sleep", "100"]);
    assert.equal(supervisorPids(root).length, 1);
    const r = await root.skiff(
      [
        "run",
        "-d",
        "--name",
        "envd",
        "-e",
        "ONLY_IN_CLI",
        "-e",
        "B=2",
        "-w",
        "/tmp",
        "-l",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "echo $ONLY_IN_CLI $B $(pwd); sleep 100",
      ],
      { env: { ONLY_IN_CLI: "from-the-cli" } },
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await inspect(root, "envd", "{{.Id}}"), id);
    assert.equal(await inspect(root, "envd", '{{index .Config.Labels "k"}}'), "v");
    assert.equal(await status(root, "envd"), "running");
    for (let i = 0; i < 50 && !(await root.ok(["logs", "envd"])).trim(); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal((await root.ok(["logs", "envd"])).trim(), "from-the-cli 2 /tmp");
  });
});

Deno.test("run -d: bad input refused by the supervisor gives the CLI's line and code, and makes nothing", async () => {
  await withDetached(async (root) => {
    const first = await runDetached(root, ["--name", "taken", "busybox", "sleep", "100"]);
    const before = root.containerIds().sort();
    const conflict = await root.skiff(["run", "-d", "--name", "taken", "busybox", "sleep", "1"]);
    assert.equal(conflict.code, 125);
    assert.equal(conflict.stdout, "");
    assert.equal(
      conflict.stderr.trim(),
      `skiff: Conflict. The container name "/taken" is already in use by container "${first}". You have to remove (or rename) that container to be able to reuse that name.`,
    );
    const workdir = await root.skiff(["run", "-d", "-w", "relative", "busybox", "true"]);
    assert.equal(workdir.code, 125);
    assert.equal(workdir.stderr.trim().split("\n").length, 1, workdir.stderr);
    assert.match(workdir.stderr, /the working directory 'relative' is invalid/);
    const cpuset = await root.skiff(["run", "-d", "--cpuset-cpus", "9999", "busybox", "true"]);
    assert.equal(cpuset.code, 125);
    assert.equal(cpuset.stderr.trim().split("\n").length, 1, cpuset.stderr);
    assert.deepEqual(root.containerIds().sort(), before, "a refused run -d left a container");
  });
});

Deno.test("run -d of an image that is not here: the CLI's pull path answers", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "keep", "busybox", "sleep", "100"]); // supervisor up
    const r = await root.skiff(["run", "-d", "localhost:1/no/such:image", "true"]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /Unable to find image 'localhost:1\/no\/such:image' locally/);
    assert.deepEqual(root.containerIds().length, 1);
  });
});
