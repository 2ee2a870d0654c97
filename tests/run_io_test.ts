// The foreground `skiff run` as a process: stdin with -i, a pty with -t, signals forwarded to the
// container, SIGKILL and OOM as 137, and many runs at once.

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";

/** A `skiff run ...` started without waiting, whose stdout and stderr are collected as they come. */
class Running {
  stdout = "";
  stderr = "";
  private readonly drained: Promise<void>;
  readonly child: Deno.ChildProcess;

  constructor(root: TestRoot, args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "--root", root.path, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
    };
    this.drained = Promise.all([collect(this.child.stdout, "stdout"), collect(this.child.stderr, "stderr")])
      .then(() => {});
  }

  /** Waits until stdout contains `marker`. */
  async waitFor(marker: string, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(marker)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${marker}; got ${this.stdout} ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async finish(): Promise<number> {
    const [status] = await Promise.all([this.child.status, this.drained]);
    return status.code;
  }
}

function record(root: TestRoot, id: string) {
  return JSON.parse(Deno.readTextFileSync(join(root.path, "containers", id, "container.json")));
}

Deno.test("run -i: stdin reaches the container; without -i it is empty", async () => {
  await withBusybox(async (root) => {
    assertEquals(
      await root.ok(["run", "--rm", "-i", "busybox", "cat"], { stdin: "data line\n" }),
      "data line\n",
    );
    assertEquals(await root.ok(["run", "--rm", "busybox", "cat"], { stdin: "ignored\n" }), "");
  });
});

Deno.test("run -it: the container gets a terminal with the caller's size", async () => {
  await withBusybox(async (root) => {
    const inner =
      `deno run -A ${MAIN} --root ${root.path} run --rm -it busybox sh -c 'tty; stty size; echo term=$TERM; [ -t 0 ] && echo stdin-tty'`;
    const out = await new Deno.Command("script", {
      args: ["-qec", `stty rows 33 cols 101; ${inner}`, "/dev/null"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, text);
    assertMatch(text, /\/dev\/pts\/0\r?\n/); // the container's own devpts (docker's: tests/tty_test.ts)
    assertMatch(text, /33 101/);
    assertMatch(text, /term=xterm/);
    assertMatch(text, /stdin-tty/);
  });
});

Deno.test("run -it: typed input reaches the container and ^D ends it", async () => {
  await withBusybox(async (root) => {
    const inner =
      `deno run -A ${MAIN} --root ${root.path} run --rm -it busybox sh -c 'echo ready; cat; echo cat-done; exit 3'; echo skiff-rc=$?`;
    const child = new Deno.Command("script", {
      args: ["-qec", inner, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const decoder = new TextDecoder();
    const reading = (async () => {
      for await (const chunk of child.stdout) text += decoder.decode(chunk, { stream: true });
    })();
    const waitFor = async (marker: string) => {
      const deadline = Date.now() + 15000;
      while (!text.includes(marker)) {
        if (Date.now() > deadline) throw new Error(`no ${marker} in ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const input = child.stdin.getWriter();
    await waitFor("ready");
    await input.write(new TextEncoder().encode("typed-line\n"));
    await waitFor("typed-line\r\ntyped-line"); // the pty's echo, then cat's copy
    await input.write(new Uint8Array([4])); // ^D: end of input for cat
    await waitFor("skiff-rc=");
    await input.close();
    await Promise.all([child.status, reading, child.stderr.cancel()]);
    assertMatch(text, /cat-done/);
    assertMatch(text, /skiff-rc=3/);
  });
});

Deno.test("run -it: refused when stdin is not a terminal, as docker does", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["run", "--rm", "-it", "busybox", "true"], { stdin: "" });
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim(), "skiff: the input device is not a TTY");
    assertEquals(root.containerIds(), []);
    // -t alone needs no terminal on our side
    assertEquals((await root.skiff(["run", "--rm", "-t", "busybox", "true"])).code, 0);
  });
});

Deno.test("run: SIGTERM to skiff reaches the container's trap", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, [
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      'trap "echo caught; exit 42" TERM; echo ready; while true; do sleep 0.1; done',
    ]);
    await run.waitFor("ready");
    run.child.kill("SIGTERM");
    assertEquals(await run.finish(), 42, run.stderr);
    assertMatch(run.stdout, /caught/);
  });
});

Deno.test("run --sig-proxy=false: skiff's SIGTERM is not passed on", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, [
      "run",
      "--rm",
      "--sig-proxy=false",
      "busybox",
      "sh",
      "-c",
      'trap "echo caught; exit 42" TERM; echo ready; while true; do sleep 0.1; done',
    ]);
    await run.waitFor("ready");
    run.child.kill("SIGTERM");
    // skiff itself dies of the signal; its container goes with it (parent-death signal)
    assertEquals(await run.finish(), 143);
    assert(!run.stdout.includes("caught"), run.stdout);
  });
});

Deno.test("run: a container killed with SIGKILL exits 137 and the record says so", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, ["run", "--name", "victim", "busybox", "sh", "-c", "echo ready; sleep 30"]);
    await run.waitFor("ready");
    const [id] = root.containerIds();
    const running = record(root, id);
    assertEquals(running.State.Status, "running");
    assertEquals(running.State.Running, true);
    assert(running.State.Pid > 0);
    assertEquals(running.State.MonitorPid, run.child.pid);
    // from inside, PID 1 cannot be killed (the kernel protects a namespace's init): kill from the host
    Deno.kill(running.State.Pid, "SIGKILL");
    assertEquals(await run.finish(), 137, run.stderr);
    const exited = record(root, id);
    assertEquals(exited.State.Status, "exited");
    assertEquals(exited.State.ExitCode, 137);
    assertEquals(exited.State.Running, false);
    assertEquals(exited.State.OOMKilled, false);
  });
});

Deno.test("run: skiff killed with SIGKILL takes its container along", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, ["run", "--rm", "busybox", "sh", "-c", "echo ready; sleep 30"]);
    await run.waitFor("ready");
    const [id] = root.containerIds();
    const pid = record(root, id).State.Pid;
    run.child.kill("SIGKILL");
    await run.finish();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      try {
        Deno.readTextFileSync(`/proc/${pid}/stat`);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    let gone = false;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      gone = / [ZX] /.test(stat.slice(stat.lastIndexOf(")")));
    } catch {
      gone = true;
    }
    assert(gone, "the container outlived its skiff");
  });
});

Deno.test("run: resource flags reach the container's cgroups and are recorded", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, [
      "run",
      "--rm",
      "-m",
      "32m",
      "--cpus",
      "0.5",
      "--pids-limit",
      "50",
      "--cpu-shares",
      "512",
      "busybox",
      "sh",
      "-c",
      "echo ready; sleep 30",
    ]);
    await run.waitFor("ready");
    const [id] = root.containerIds();
    const { HostConfig, State } = record(root, id);
    assertEquals(
      [HostConfig.Memory, HostConfig.NanoCpus, HostConfig.PidsLimit, HostConfig.CpuShares],
      [32 * 1024 * 1024, 5e8, 50, 512],
    );
    // the container's PID 1 sits in cgroups named after the container, with the limits applied
    const cgroups = Deno.readTextFileSync(`/proc/${State.Pid}/cgroup`);
    const pathOf = (controller: string) => {
      const line = cgroups.split("\n").find((l) => l.split(":")[1]?.split(",").includes(controller));
      return line ? line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1) : undefined;
    };
    const read = (controller: string, file: string) =>
      Deno.readTextFileSync(`/sys/fs/cgroup/${controller}${pathOf(controller)}/${file}`).trim();
    if (pathOf("memory")) {
      assertMatch(pathOf("memory")!, new RegExp(id));
      assertEquals(read("memory", "memory.limit_in_bytes"), String(32 * 1024 * 1024));
      assertEquals(read("pids", "pids.max"), "50");
      assertEquals(read("cpu", "cpu.cfs_quota_us"), "50000");
      assertEquals(read("cpu", "cpu.shares"), "512");
    } else {
      // cgroup v2: one path for everything
      const path = cgroups.split("\n").find((l) => l.startsWith("0::"))!.slice(3);
      assertMatch(path, new RegExp(id));
      const v2 = (file: string) => Deno.readTextFileSync(`/sys/fs/cgroup${path}/${file}`).trim();
      assertEquals(v2("memory.max"), String(32 * 1024 * 1024));
      assertEquals(v2("pids.max"), "50");
      assertEquals(v2("cpu.max"), "50000 100000");
    }
    Deno.kill(State.Pid, "SIGKILL");
    assertEquals(await run.finish(), 137);
  });
});

Deno.test("run: out of memory is 137 and OOMKilled", async () => {
  await withBusybox(async (root) => {
    // tail keeps a line without a newline in memory: it grows until the limit
    const r = await root.skiff([
      "run",
      "--name",
      "hog",
      "-m",
      "8m",
      "--memory-swap",
      "8m",
      "busybox",
      "tail",
      "/dev/zero",
    ]);
    assertEquals(r.code, 137, r.stderr);
    const [id] = root.containerIds();
    const state = record(root, id).State;
    assertEquals(state.OOMKilled, true);
    assertEquals(state.ExitCode, 137);
    assertEquals(record(root, id).HostConfig.Memory, 8 * 1024 * 1024);
  });
});

Deno.test("run: 20 --rm runs at once all succeed, distinct, and leave nothing", async () => {
  await withBusybox(async (root) => {
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => root.skiff(["run", "--rm", "busybox", "hostname"])),
    );
    for (const r of runs) assertEquals(r.code, 0, r.stderr);
    const hostnames = new Set(runs.map((r) => r.stdout.trim()));
    assertEquals(hostnames.size, 20);
    assertEquals(root.containerIds(), []);
    assertEquals([...Deno.readDirSync(join(root.path, "tmp"))], []);
  });
});

Deno.test("run: the container sees its own cgroup limits at /sys/fs/cgroup, read-only", async () => {
  await withBusybox(async (root) => {
    const v2 = (() => {
      try {
        return Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").trim() !== "";
      } catch {
        return false;
      }
    })();
    const limitFile = v2 ? "/sys/fs/cgroup/memory.max" : "/sys/fs/cgroup/memory/memory.limit_in_bytes";
    const r = await root.skiff([
      "run",
      "--rm",
      "-m",
      "64m",
      "busybox",
      "sh",
      "-c",
      `cat ${limitFile}; echo 1 > ${limitFile} && echo WROTE; true`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout.trim(), String(64 * 1024 * 1024));
    assertMatch(r.stderr, /Read-only file system/);
  });
});

Deno.test({
  name: "run: --cpu-period/--cpu-quota, --memory-reservation, --device-cgroup-rule reach the cgroups (v1)",
  ignore: (() => {
    try {
      return !Deno.statSync("/sys/fs/cgroup/memory").isDirectory;
    } catch {
      return true;
    }
  })(),
}, async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--rm",
      "--cpu-period",
      "50000",
      "--cpu-quota",
      "25000",
      "--memory-reservation",
      "16m",
      "--device-cgroup-rule",
      "c 10:200 rwm",
      "busybox",
      "sh",
      "-c",
      "cd /sys/fs/cgroup; cat cpu/cpu.cfs_period_us cpu/cpu.cfs_quota_us memory/memory.soft_limit_in_bytes; " +
      "grep -c '^c 10:200 rwm' devices/devices.list",
    ]);
    assertEquals(out.trim().split("\n"), ["50000", "25000", String(16 * 1024 * 1024), "1"]);
  });
});

Deno.test("run: rm -f from elsewhere ends the run and the container does not come back", async () => {
  await withBusybox(async (root) => {
    const run = new Running(root, ["run", "--name", "doomed", "busybox", "sh", "-c", "echo ready; sleep 30"]);
    await run.waitFor("ready");
    const removed = await root.skiff(["rm", "-f", "doomed"]);
    assertEquals(removed.code, 0, removed.stderr);
    assertEquals(await run.finish(), 137, run.stderr);
    assertEquals(root.containerIds(), []);
    assertEquals(run.stderr, "");
  });
});
