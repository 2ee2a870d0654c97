// Attacks on --ipc, --pid and --network container:NAME (lib/engine/namespaces.ts, network.ts), each
// written as what must fail.
//
// A container is recorded "running" with its init stage's pid before the stage has made its
// namespaces: until then that process is in the host's IPC namespace and holds the host's root in
// the container's new PID namespace. A join that took the namespace of the recorded process at that
// moment landed in the host's IPC namespace, or next to a process with the host's root. A container
// can make its own starts frequent (a restart policy on a command that exits); the tests make the
// window certain by stopping the stage (SIGSTOP) while it waits for its go, the way a loaded host
// deschedules it. On a join without the checks (the namespace of the record's process, start time
// checked, as `--network container:` joined) both attacks hit 5 of 5 runs; with them 0 of 5 (the
// join waits for the command to run, then refuses: "is not running"). `--network container:` had
// the same hole: its joiner landed in the host's network namespace 5 of 5 runs before its check.

import assert from "node:assert/strict";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { eventually, Proc, runDetached, withDetached } from "./detach_helpers.ts";

const hostNs = (kind: string) => Deno.readLinkSync(`/proc/self/ns/${kind}`);

/**
 * Pids of this root's init stages: the forks of a skiff of this root that wait, before their execve,
 * as PID 1 of a PID namespace of their own (still skiff's executable).
 */
function stagePids(root: TestRoot): number[] {
  const out: number[] = [];
  const deno = Deno.execPath();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${e.name}/exe`) !== deno) continue;
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      const nspid = status.match(/^NSpid:\s+(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
      if (nspid.length < 2 || nspid[nspid.length - 1] !== "1") continue;
      const ppid = status.match(/^PPid:\s+(\d+)$/m)?.[1];
      const parent = Deno.readTextFileSync(`/proc/${ppid}/cmdline`).split("\0");
      if (parent.includes(root.path)) out.push(Number(e.name));
    } catch { /* exited */ }
  }
  return out;
}

/**
 * Starts `skiff run --name victim FLAGS busybox true` in the foreground and stops its init stage at
 * once, while it still waits for its go in the host's namespaces; returns the run and the stage.
 */
async function victimInItsWindow(root: TestRoot, flags: string[]): Promise<{ run: Proc; stage: number }> {
  const run = Proc.skiff(root, ["run", "--name", "victim", ...flags, "busybox", "true"]);
  let stage = 0;
  for (const deadline = Date.now() + 10_000; !stage && Date.now() < deadline;) {
    stage = stagePids(root)[0] ?? 0;
    if (stage) Deno.kill(stage, "SIGSTOP");
  }
  assert.ok(stage, "the victim's init stage was never seen");
  // recorded as running with that pid, while it is still in the host's IPC namespace
  await eventually("the victim is recorded as running", async () => {
    const r = await root.skiff(["inspect", "-f", "{{.State.Pid}}", "victim"]);
    return r.code === 0 && Number(r.stdout.trim()) === stage;
  });
  assert.equal(Deno.readLinkSync(`/proc/${stage}/ns/ipc`), hostNs("ipc"), "the window is real");
  return { run, stage };
}

async function endVictim(run: Proc, stage: number): Promise<void> {
  try {
    Deno.kill(stage, "SIGCONT");
  } catch { /* gone */ }
  assert.equal(await run.finish(), 0, run.stderr); // the victim itself runs on unharmed
}

Deno.test("attack: --ipc container:NAME while NAME's init stage is still in the host's IPC namespace", async () => {
  await withBusybox(async (root) => {
    const { run, stage } = await victimInItsWindow(root, ["--ipc", "shareable"]);
    try {
      const r = await root.skiff([
        "run",
        "--rm",
        "--ipc",
        "container:victim",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
      ]);
      assert.notEqual(r.stdout.trim(), hostNs("ipc"), "the joiner landed in the host's IPC namespace");
      assert.equal(r.code, 125);
      assert.match(
        r.stderr,
        /^skiff: can't join IPC of container [0-9a-f]{64}: container [0-9a-f]{64} is not running\n$/,
      );
    } finally {
      await endVictim(run, stage);
    }
  });
});

Deno.test("attack: --pid container:NAME with CAP_SYS_PTRACE next to NAME's init stage, which holds the host's root", async () => {
  await withBusybox(async (root) => {
    const marker = `${root.path}/host-marker`;
    Deno.writeTextFileSync(marker, "host\n");
    const { run, stage } = await victimInItsWindow(root, []);
    try {
      // PID 1 of the victim's namespace is its stage: through /proc/1/root a joiner allowed to trace
      // it would read the host's files
      const r = await root.skiff([
        "run",
        "--rm",
        "--cap-add",
        "SYS_PTRACE",
        "--pid",
        "container:victim",
        "busybox",
        "cat",
        `/proc/1/root${marker}`,
      ]);
      assert.ok(!r.stdout.includes("host"), "the joiner read the host's file");
      assert.equal(r.code, 125);
      assert.match(r.stderr, /^skiff: container [0-9a-f]{64} is not running\n$/);
    } finally {
      await endVictim(run, stage);
    }
  });
});

Deno.test("attack: --network container:NAME while NAME's init stage is still in the host's network namespace", async () => {
  await withBusybox(async (root) => {
    const { run, stage } = await victimInItsWindow(root, []);
    try {
      assert.equal(Deno.readLinkSync(`/proc/${stage}/ns/net`), hostNs("net"), "the window is real");
      const r = await root.skiff([
        "run",
        "--rm",
        "--network",
        "container:victim",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
      ]);
      assert.notEqual(r.stdout.trim(), hostNs("net"), "the joiner landed in the host's network namespace");
      assert.equal(r.code, 125);
      assert.equal(
        r.stderr,
        "skiff: cannot join network namespace of container victim: it is still starting\n",
      );
    } finally {
      await endVictim(run, stage);
    }
  });
});

Deno.test("attack: --pid/--ipc container:NAME give the joiner neither NAME's root nor its capabilities", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "strong",
      "--ipc",
      "shareable",
      "--cap-add",
      "SYS_ADMIN",
      // (a donor with SYS_PTRACE is refused: tests/pidjoin_trace_attack_test.ts)
      "busybox",
      "sh",
      "-c",
      "touch /strong-marker; exec sleep 300",
    ]);
    await eventually(
      "the marker is made",
      async () => (await root.skiff(["exec", "strong", "ls", "/strong-marker"])).code === 0,
    );
    // docker 20.10, a default joiner of a container with SYS_ADMIN:
    //   ls: /proc/1/root/: Permission denied
    //   cat: can't open '/proc/1/environ': Permission denied
    //   CapEff: 00000000a80425fb (docker's default set)
    const r = await root.skiff([
      "run",
      "--rm",
      "--pid",
      "container:strong",
      "--ipc",
      "container:strong",
      "busybox",
      "sh",
      "-c",
      "ls /strong-marker; ls /proc/1/root/; cat /proc/1/environ; grep CapEff /proc/self/status; " +
      "cat /proc/1/status | grep CapEff",
    ]);
    assert.match(r.stderr, /ls: \/strong-marker: No such file or directory/);
    assert.match(r.stderr, /ls: \/proc\/1\/root\/: Permission denied/);
    assert.match(r.stderr, /cat: can't open '\/proc\/1\/environ': Permission denied/);
    const caps = r.stdout.trim().split("\n");
    assert.equal(caps[0], "CapEff:\t00000000a80425fb");
    assert.notEqual(caps[1], caps[0], "the donor has more"); // its own set, seen but not shared
  });
});
