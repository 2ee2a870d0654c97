// skiff rm: refusals, removal, -f of a container started by `skiff run`, stale state after
// `kill -9` of skiff itself, and containers whose upper dir holds root-owned files and whiteouts.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createContainer, processStartTime } from "../lib/state/containers.ts";
import { StateRoot } from "../lib/state/root.ts";
import { type ContainerState, initialState, ZERO_TIME as ZERO } from "../lib/state/types.ts";
import { MAIN, type TestRoot, withBusybox, withRoot } from "./helpers.ts";

async function fakeContainer(root: TestRoot, name: string, state: Partial<ContainerState> = {}) {
  const sr = new StateRoot(root.path);
  sr.ensure();
  return await createContainer(sr, name, (id, n, dir) => {
    for (const sub of ["upper", "work", "merged"]) Deno.mkdirSync(join(dir, sub));
    return {
      Id: id,
      Created: new Date().toISOString(),
      Path: "sleep",
      Args: ["100"],
      State: {
        ...initialState(),
        ...state,
      },
      Image: `sha256:${"ab".repeat(32)}`,
      Name: `/${n}`,
      RestartCount: 0,
      Driver: "overlay2",
      HostConfig: {
        AutoRemove: false,
        Privileged: false,
        ReadonlyRootfs: false,
        CapAdd: null,
        CapDrop: null,
        NetworkMode: "none",
        Memory: 0,
        MemorySwap: 0,
        NanoCpus: 0,
        CpuShares: 0,
        CpuPeriod: 0,
        CpuQuota: 0,
        CpusetCpus: "",
        CpusetMems: "",
        PidsLimit: null,
        BlkioWeight: 0,
        MaskedPaths: [],
        ReadonlyPaths: [],
      },
      Config: {
        Hostname: "h",
        Domainname: "",
        User: "",
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        OpenStdin: false,
        StdinOnce: false,
        Env: [],
        Cmd: ["sleep", "100"],
        Image: "busybox",
        Volumes: null,
        WorkingDir: "",
        Entrypoint: null,
        Labels: {},
      },
      LowerDirs: [],
    };
  });
}

const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/** Starts `skiff run ARGS` in the background, as a user's shell would. */
function spawnRun(root: TestRoot, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, "run", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  return { child, output };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("rm: unknown container → one line, exit 1; the others are still removed", async () => {
  await withRoot(async (root) => {
    const a = await fakeContainer(root, "aa");
    const r = await root.skiff(["rm", "ghost", "aa"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "skiff: No such container: ghost\n");
    assert.equal(r.stdout, "aa\n");
    assert.equal(exists(join(root.path, "containers", a.Id)), false);
    const none = await root.skiff(["rm"]);
    assert.equal(none.code, 1); // docker's CLI: 1 for a wrong number of arguments
    assert.match(none.stderr, /"skiff rm" requires at least 1 argument/);
  });
});

Deno.test("rm: prints the reference as given (name, short id, full id)", async () => {
  await withRoot(async (root) => {
    const a = await fakeContainer(root, "byname", { Status: "exited", StartedAt: ZERO, FinishedAt: ZERO });
    const b = await fakeContainer(root, "byshort");
    const c = await fakeContainer(root, "byfull");
    const out = await root.ok(["rm", "byname", b.Id.slice(0, 12), c.Id]);
    assert.equal(out, `byname\n${b.Id.slice(0, 12)}\n${c.Id}\n`);
    assert.deepEqual(root.containerIds(), []);
    assert.equal(exists(join(root.path, "containers", a.Id)), false);
  });
});

Deno.test("rm: a running container is refused without -f and nothing changes", async () => {
  await withRoot(async (root) => {
    const sleeper = new Deno.Command("sleep", { args: ["1000"], stdout: "null", stderr: "null" }).spawn();
    try {
      const c = await fakeContainer(root, "busy", {
        Status: "running",
        Running: true,
        Pid: sleeper.pid,
        PidStartTime: processStartTime(sleeper.pid),
        StartedAt: new Date().toISOString(),
      });
      const before = Deno.readTextFileSync(join(root.path, "containers", c.Id, "container.json"));
      const r = await root.skiff(["rm", "busy"]);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `skiff: cannot remove container "/busy": container is running: stop the container before removing or force remove\n`,
      );
      assert.equal(r.stdout, "");
      assert.equal(Deno.readTextFileSync(join(root.path, "containers", c.Id, "container.json")), before);
      assert.ok(processStartTime(sleeper.pid) !== undefined, "the process was left alone");
      // -f kills it (the pid's start time matches) and removes the container
      assert.equal(await root.ok(["rm", "-f", "busy"]), "busy\n");
      const status = await sleeper.status;
      assert.equal(status.signal, "SIGKILL");
      assert.equal(exists(join(root.path, "containers", c.Id)), false);
    } finally {
      try {
        sleeper.kill("SIGKILL");
      } catch { /* gone */ }
      await sleeper.status;
    }
  });
});

Deno.test("rm -f: a reused pid (start time differs) is not killed", async () => {
  await withRoot(async (root) => {
    const bystander = new Deno.Command("sleep", { args: ["1000"], stdout: "null", stderr: "null" }).spawn();
    try {
      await fakeContainer(root, "reused", {
        Status: "running",
        Running: true,
        Pid: bystander.pid,
        PidStartTime: processStartTime(bystander.pid)! - 1,
        StartedAt: new Date().toISOString(),
      });
      assert.equal(await root.ok(["rm", "-f", "reused"]), "reused\n");
      assert.ok(processStartTime(bystander.pid) !== undefined, "the bystander process survived");
    } finally {
      bystander.kill("SIGKILL");
      await bystander.status;
    }
  });
});

Deno.test("rm: removes an upper dir with root-owned files, whiteouts and read-only dirs", async () => {
  await withRoot(async (root) => {
    const c = await fakeContainer(root, "messy", { Status: "exited", StartedAt: ZERO, FinishedAt: ZERO });
    const upper = join(root.path, "containers", c.Id, "upper");
    Deno.mkdirSync(join(upper, "etc/deep"), { recursive: true });
    Deno.writeTextFileSync(join(upper, "etc/deep/file"), "x");
    const mk = await new Deno.Command("mknod", { args: [join(upper, "etc/removed"), "c", "0", "0"] })
      .output();
    assert.ok(mk.success, "mknod whiteout");
    Deno.chmodSync(join(upper, "etc/deep"), 0o500);
    Deno.chmodSync(join(upper, "etc"), 0o000);
    assert.equal(await root.ok(["rm", "messy"]), "messy\n");
    assert.equal(exists(join(root.path, "containers", c.Id)), false);
  });
});

Deno.test("rm -f: a container started by `skiff run` is killed, the run exits 137, nothing leaks", async () => {
  await withBusybox(async (root) => {
    const run = spawnRun(root, ["--name", "victim", "busybox", "sleep", "100"]);
    try {
      await waitFor(
        "victim running",
        async () => (await root.ok(["ps", "--format", "{{.Names}}"])) === "victim\n",
      );
      const id = (await root.ok(["ps", "-q", "--no-trunc"])).trim();
      const r = await root.skiff(["rm", "victim"]);
      assert.equal(r.code, 1, "refused without -f");
      assert.equal(await root.ok(["rm", "-f", "victim"]), "victim\n");
      const out = await run.output;
      assert.equal(out.code, 137, new TextDecoder().decode(out.stderr));
      assert.equal(await root.ok(["ps", "-aq"]), "");
      assert.equal(exists(join(root.path, "containers", id)), false);
      assert.equal(exists(join(root.path, "locks", `ctr-${id}.lock`)), false);
    } finally {
      try {
        run.child.kill("SIGKILL");
      } catch { /* already exited */ }
      await run.output;
    }
  });
});

Deno.test("kill -9 of skiff run: the next ps shows the container exited, rm cleans it", async () => {
  await withBusybox(async (root) => {
    const run = spawnRun(root, ["--name", "orphan", "busybox", "sleep", "100"]);
    let containerPid = 0;
    try {
      await waitFor(
        "orphan running",
        async () => (await root.ok(["ps", "--format", "{{.Names}}"])) === "orphan\n",
      );
      containerPid = Number((await root.ok(["inspect", "-f", "{{.State.Pid}}", "orphan"])).trim());
      assert.ok(containerPid > 0);
      run.child.kill("SIGKILL");
      await run.output;
      // PR_SET_PDEATHSIG takes the container down with its monitor
      await waitFor(
        "container process gone",
        () => Promise.resolve(processStartTime(containerPid) === undefined),
      );
      assert.equal(await root.ok(["ps", "-q"]), "");
      assert.match(
        await root.ok(["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]),
        /^orphan exited Exited \(137\) /,
      );
      assert.equal(
        await root.ok(["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "orphan"]),
        "false 137\n",
      );
      assert.equal(await root.ok(["rm", "orphan"]), "orphan\n");
      assert.equal(await root.ok(["ps", "-aq"]), "");
    } finally {
      try {
        run.child.kill("SIGKILL");
      } catch { /* already exited */ }
      await run.output;
    }
  });
});

Deno.test("rm: a full id whose creation never completed (no container.json) is cleared", async () => {
  await withRoot(async (root) => {
    const id = "f".repeat(64);
    const dir = join(root.path, "containers", id);
    Deno.mkdirSync(join(dir, "upper"), { recursive: true });
    assert.equal(await root.ok(["ps", "-aq"]), ""); // not a container
    const partial = await root.skiff(["rm", id.slice(0, 12)]);
    assert.equal(partial.code, 1, "only the full id clears it");
    assert.equal(await root.ok(["rm", id]), `${id}\n`);
    assert.equal(exists(dir), false);
  });
});

Deno.test("rm -f racing a container that exits by itself (with and without --rm): always ends clean", async () => {
  await withBusybox(async (root) => {
    for (let i = 0; i < 6; i++) {
      const autoRemove = i % 2 === 1;
      const name = `race${i}`;
      const run = spawnRun(root, [
        ...(autoRemove ? ["--rm"] : []),
        "--name",
        name,
        "busybox",
        "sleep",
        "0.4",
      ]);
      try {
        await waitFor(
          `${name} running`,
          async () => (await root.ok(["ps", "-a", "--format", "{{.Names}}"])).includes(name),
        );
        await new Promise((r) => setTimeout(r, 80 * i)); // before, around and after the exit
        const rm = await root.skiff(["rm", "-f", name]);
        if (rm.code !== 0) {
          // only acceptable failure: --rm removed it first
          assert.ok(autoRemove, rm.stderr);
          assert.equal(rm.stderr, `skiff: No such container: ${name}\n`);
        }
        const out = await run.output;
        assert.ok(
          [0, 137].includes(out.code),
          `run exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
        );
        assert.equal(await root.ok(["ps", "-aq"]), "");
        assert.deepEqual(root.containerIds(), []);
      } finally {
        try {
          run.child.kill("SIGKILL");
        } catch { /* already exited */ }
        await run.output;
      }
    }
  });
});
