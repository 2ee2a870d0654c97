// A foreground `skiff run` served by a warm supervisor (lib/engine/foreground.ts, monitor.ts
// serveForegroundRun): the first run of a root runs its container itself and leaves a supervisor
// that stays a while (LINGER_MS); the runs after it are the supervisor's, and must give the caller
// exactly what a run of its own gives (output, codes, docker's words, signals, the container killed
// with the caller), and the spare PID 1 the supervisor keeps waits in cgroups made ahead for the
// next container, which takes its own limits over them at the claim.

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";
import { existsSync } from "node:fs";
import {
  eventually,
  lastSpare,
  Proc,
  sleep,
  supervisorListening,
  supervisorPids,
  withProcs,
} from "./detach_helpers.ts";

/** The cgroup v1 hierarchy `controller`'s directory of container `id`, or v2's, and the file's name there. */
function hostCgroupFile(id: string, v1: [string, string], v2: string): string {
  const unified = (() => {
    try {
      return Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").trim() !== "";
    } catch {
      return false;
    }
  })();
  return unified ? `/sys/fs/cgroup/skiff/${id}/${v2}` : `/sys/fs/cgroup/${v1[0]}/skiff/${id}/${v1[1]}`;
}

/** A first run (its own), then the supervisor it leaves behind, up and listening. */
async function warmUp(root: TestRoot): Promise<number> {
  await root.ok(["run", "--rm", "--network", "none", "busybox", "true"]);
  await eventually("a warm supervisor", () => supervisorPids(root).length === 1);
  await eventually("it listens", () => supervisorListening(root));
  return supervisorPids(root)[0];
}

/** The id of the spare the supervisor made last, once its PID 1 is in its groups. */
async function spareWaiting(root: TestRoot): Promise<string> {
  let id = "";
  await eventually("a spare PID 1 in its groups", () => {
    try {
      id = lastSpare(root);
      if (!/^[0-9a-f]{64}$/.test(id) || root.containerIds().includes(id)) return false;
      return Deno.readTextFileSync(hostCgroupFile(id, ["pids", "cgroup.procs"], "cgroup.procs")).trim() !==
        "";
    } catch {
      return false;
    }
  });
  return id;
}

const parentOf = (pid: number) =>
  Number(/PPid:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1]);

Deno.test("foreground run through a warm supervisor: its child, the same output, codes and words as a run of its own", async () => {
  await withBusybox(async (root) => {
    const supervisor = await warmUp(root);
    await withProcs(async (track) => {
      // the container's PID 1 is the supervisor's child, not this run's
      const p = track(
        Proc.skiff(root, [
          "run",
          "--name",
          "ww",
          "--network",
          "none",
          "busybox",
          "sh",
          "-c",
          "echo up; sleep 2",
        ]),
      );
      await p.waitFor("up");
      const pid = Number((await root.ok(["inspect", "-f", "{{.State.Pid}}", "ww"])).trim());
      assertEquals(parentOf(pid), supervisor);
      assertEquals(await p.finish(), 0);
    });
    // served (no -i) and its own (-i: a stdin to relay) give the same, byte for byte
    const cases: string[][] = [
      ["sh", "-c", "echo out; echo err >&2; exit 7"],
      ["sh", "-c", "for i in $(seq 1 300); do echo line$i; echo e$i >&2; done"],
      ["nosuchcommand"],
      ["/etc"],
      ["sh", "-c", "kill -9 $$"],
    ];
    for (const command of cases) {
      const served = await root.skiff(["run", "--rm", "--network", "none", "busybox", ...command]);
      const own = await root.skiff(["run", "-i", "--rm", "--network", "none", "busybox", ...command]);
      assertEquals(served, own, command.join(" "));
    }
    // -a stdout: stderr is not shown (docker's attach), the code is the container's
    const attached = await root.skiff([
      "run",
      "--rm",
      "-a",
      "stdout",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      "echo o; echo e >&2; exit 2",
    ]);
    assertEquals(attached, { code: 2, stdout: "o\n", stderr: "" });
    // refusals before the container exists: the CLI's own line and code
    await root.ok(["create", "--name", "taken", "busybox", "true"]);
    const conflict = await root.skiff(["run", "--name", "taken", "--network", "none", "busybox", "true"]);
    assertEquals(conflict.code, 125);
    assertMatch(conflict.stderr, /^skiff: Conflict\. The container name "\/taken" is already in use/);
    // an image that is not here: the CLI pulls it itself (no registry here: docker's words)
    const missing = await root.skiff(["run", "--rm", "localhost:2/none", "true"]);
    assertEquals(missing.code, 125);
    assertMatch(missing.stderr, /Unable to find image 'localhost:2\/none:latest' locally/);
    // --rm: gone when the run returns, its name free at once
    for (let i = 0; i < 3; i++) {
      await root.ok(["run", "--rm", "--name", "again", "--network", "none", "busybox", "true"]);
    }
    const names = (await root.ok(["ps", "-a", "--format", "{{.Names}}"])).trim().split("\n").sort();
    assertEquals(names, ["taken", "ww"]);
    assertEquals(supervisorPids(root), [supervisor]);
  });
});

Deno.test("foreground run through a warm supervisor: signals reach the container; the caller's death kills it", async () => {
  await withBusybox(async (root) => {
    await warmUp(root);
    await withProcs(async (track) => {
      const trap = "trap 'echo got-term; exit 3' TERM; echo up; while :; do sleep 0.1; done";
      const p = track(Proc.skiff(root, ["run", "--rm", "--network", "none", "busybox", "sh", "-c", trap]));
      await p.waitFor("up");
      p.child.kill("SIGTERM");
      assertEquals(await p.finish(), 3);
      assert(p.stdout.includes("got-term"), p.stdout);

      // killed outright: the container goes with it, and --rm removes it (a run of its own: PID 1's
      // parent-death signal)
      const k = track(
        Proc.skiff(root, [
          "run",
          "--rm",
          "--name",
          "kk",
          "--network",
          "none",
          "busybox",
          "sh",
          "-c",
          "echo up; sleep 60",
        ]),
      );
      await k.waitFor("up");
      const pid = Number((await root.ok(["inspect", "-f", "{{.State.Pid}}", "kk"])).trim());
      k.child.kill("SIGKILL");
      await eventually("the container is killed and removed", () => {
        let alive = true;
        try {
          Deno.statSync(`/proc/${pid}`);
        } catch {
          alive = false;
        }
        return !alive && root.containerIds().length === 0;
      });

      // --sig-proxy=false: SIGTERM ends the caller, and with it the container
      const n = track(
        Proc.skiff(root, [
          "run",
          "--sig-proxy=false",
          "--name",
          "nn",
          "--network",
          "none",
          "busybox",
          "sh",
          "-c",
          trap,
        ]),
      );
      await n.waitFor("up");
      n.child.kill("SIGTERM");
      await n.finish();
      assert(!n.stdout.includes("got-term"), n.stdout);
      await eventually(
        "the container is killed",
        async () => (await root.ok(["inspect", "-f", "{{.State.Status}}", "nn"])).trim() === "exited",
      );
      assertEquals((await root.ok(["inspect", "-f", "{{.State.ExitCode}}", "nn"])).trim(), "137");
    });
  });
});

Deno.test("foreground run through a warm supervisor: a caller that reads slowly gets every byte; the container cannot forge the outcome", async () => {
  await withBusybox(async (root) => {
    await warmUp(root);
    // 3 MB while the caller reads nothing for a second: the supervisor's queue for it passes its
    // limit (1 MiB); the output waits for the caller rather than being dropped
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--root",
        root.path,
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "head -c 3000000 /dev/zero | tr '\\0' a",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    await sleep(1500);
    let total = 0, other = 0;
    for await (const chunk of child.stdout) {
      total += chunk.length;
      for (const b of chunk) if (b !== 97) other++;
    }
    assertEquals((await child.status).code, 0);
    assertEquals([total, other], [3_000_000, 0]);
    // the container writes what an outcome frame looks like, then exits 5: its bytes are data
    const forged = await root.skiff([
      "run",
      "--rm",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      `printf '\\003\\000\\000\\000\\000\\000\\000\\016{"exitCode":0}'; exit 5`,
    ]);
    assertEquals(forged.code, 5);
    assertEquals(forged.stdout, '\u0003\u0000\u0000\u0000\u0000\u0000\u0000\u000e{"exitCode":0}');
  });
});

Deno.test("warm supervisor: the spare's cgroups are made ahead, take the container's limits, and are swept after a crash", async () => {
  await withBusybox(async (root) => {
    await warmUp(root);
    await withProcs(async (track) => {
      // the next container gets the spare's id and groups, with its own limits written at the claim
      await root.ok(["run", "--rm", "--network", "none", "busybox", "true"]); // a spare is made after it
      const spareId = await spareWaiting(root);
      const p = track(
        Proc.skiff(root, [
          "run",
          "--name",
          "limited",
          "-m",
          "64m",
          "--pids-limit",
          "20",
          "--network",
          "none",
          "busybox",
          "sh",
          "-c",
          "echo up; cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | head -1; sleep 2",
        ]),
      );
      await p.waitFor("up");
      const id = (await root.ok(["inspect", "-f", "{{.Id}}", "limited"])).trim();
      assertEquals(id, spareId);
      const memory = Deno.readTextFileSync(
        hostCgroupFile(id, ["memory", "memory.limit_in_bytes"], "memory.max"),
      );
      assertEquals(memory.trim(), "67108864");
      assertEquals(Deno.readTextFileSync(hostCgroupFile(id, ["pids", "pids.max"], "pids.max")).trim(), "20");
      assertEquals(await p.finish(), 0);
      if (!hostCgroupFile(id, ["x", "x"], "x").startsWith("/sys/fs/cgroup/skiff")) {
        // v1: the devices allow-list of an unprivileged container, not the spare's "a *:* rwm"
        assertMatch(p.stdout, /^up\nc \*:\* m\n/);
      }
      // two at once: one takes the spare's id, the other a new one; both run as their own would
      const [a, b] = await Promise.all([
        root.skiff(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo a; exit 1"]),
        root.skiff(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo b; exit 2"]),
      ]);
      assertEquals([a.code, a.stdout, b.code, b.stdout], [1, "a\n", 2, "b\n"]);

      // the supervisor killed with a spare: its PID 1 dies with it (parent-death signal), its groups
      // stay empty until the next supervisor removes them
      await root.ok(["run", "--rm", "--network", "none", "busybox", "true"]);
      const left = hostCgroupFile(await spareWaiting(root), ["pids", "cgroup.procs"], "cgroup.procs");
      const [supervisor] = supervisorPids(root);
      Deno.kill(supervisor, "SIGKILL");
      await eventually("the spare PID 1 gone", () => Deno.readTextFileSync(left).trim() === "");
      await root.ok(["run", "-d", "--rm", "--network", "none", "busybox", "true"]); // a new supervisor
      await eventually("the left groups removed", () => {
        try {
          Deno.statSync(left);
          return false;
        } catch {
          return true;
        }
      });
    });
  });
});

Deno.test("warm supervisor: stays a while after a foreground run, then exits; a supervisor for run -d alone does not linger", async () => {
  await withBusybox(async (root) => {
    const supervisor = await warmUp(root);
    // started by the caller's run, it does not keep the caller's directory (an unmount of it would fail)
    assertEquals(Deno.readLinkSync(`/proc/${supervisor}/cwd`), "/");
    await root.ok(["run", "--rm", "--network", "none", "busybox", "true"]);
    const served = Date.now();
    await eventually("the supervisor exits", () => supervisorPids(root).length === 0, 15_000);
    const lingered = Date.now() - served;
    assert(lingered > 3_000 && lingered < 8_000, `lingered ${lingered} ms (LINGER_MS is 5 s)`);
    // run -d only: it exits once its container is gone, as before
    const id = (await root.ok(["run", "-d", "--network", "none", "busybox", "sleep", "1"])).trim();
    await eventually(
      "the container exits",
      async () => (await root.ok(["inspect", "-f", "{{.State.Status}}", id])).trim() === "exited",
    );
    await root.ok(["rm", id]);
    await eventually("the supervisor exits", () => supervisorPids(root).length === 0, 3_000);
  });
});

Deno.test("foreground run with a restart policy: the first exit's code, then the supervisor restarts it (docker 20.10)", async () => {
  await withBusybox(async (root) => {
    // a bad policy is refused before anything is started (docker's exit code)
    assertEquals((await root.skiff(["run", "--restart", "bogus", "busybox", "true"])).code, 125);
    assert(!existsSync(`${root.path}/supervisor.lock`), "a supervisor was started"); // every one takes it
    assertEquals(supervisorPids(root), []);
    // no supervisor up: the run starts one, or the policy could not be honoured
    // docker 20.10: `docker run --restart on-failure:2 IMG sh -c 'echo hi; sleep 0.3; exit 3'` prints
    // hi, exits 3; the daemon restarts it twice (RestartCount 2, exited 3, three lines in its log)
    const r = await root.skiff([
      "run",
      "--restart",
      "on-failure:2",
      "--name",
      "rr",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      "echo hi; sleep 0.3; exit 3",
    ]);
    assertEquals([r.code, r.stdout], [3, "hi\n"]);
    await eventually(
      "two restarts",
      async () =>
        (await root.ok(["inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "rr"]))
          .trim() ===
          "2 exited 3",
      15_000,
    );
    assertEquals(await root.ok(["logs", "rr"]), "hi\nhi\nhi\n");
  });
});

Deno.test("foreground run: a supervisor that dies mid-run takes the container with it; an older supervisor's refusal leaves the run to the CLI", async () => {
  await withBusybox(async (root) => {
    const supervisor = await warmUp(root);
    await withProcs(async (track) => {
      const p = track(
        Proc.skiff(root, [
          "run",
          "--name",
          "dd",
          "--network",
          "none",
          "busybox",
          "sh",
          "-c",
          "echo up; sleep 30",
        ]),
      );
      await p.waitFor("up");
      const pid = Number((await root.ok(["inspect", "-f", "{{.State.Pid}}", "dd"])).trim());
      Deno.kill(supervisor, "SIGKILL");
      assertEquals(await p.finish(), 125);
      assertMatch(
        p.stderr,
        /the skiff supervisor went away while the container ran; its container was killed/,
      );
      // not left to run unattended (a script that tries again would run it twice)
      await eventually("the container is gone", () => {
        try {
          return !Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("sleep");
        } catch {
          return true;
        }
      });
      await root.ok(["rm", "-f", "dd"]);
    });
    await eventually("no supervisor", () => supervisorPids(root).length === 0);
    // a supervisor of an older skiff (one outlives an upgrade while it owns containers) does not
    // know the request: it answers as its serve() does, and makes nothing
    Deno.removeSync(`${root.path}/supervisor/sock`);
    const listener = Deno.listen({ transport: "unix", path: `${root.path}/supervisor/sock` });
    const seen: string[] = [];
    const old = (async () => {
      for await (const conn of listener) {
        const buf = new Uint8Array(65536);
        const n = await conn.read(buf);
        seen.push(new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\n")[0]);
        await conn.write(
          new TextEncoder().encode('{"ok":false,"error":"unknown request foreground","exitCode":125}\n'),
        );
        conn.close();
      }
    })();
    try {
      const r = await root.skiff(["run", "--rm", "--network", "none", "busybox", "echo", "own"]);
      assertEquals([r.code, r.stdout, r.stderr], [0, "own\n", ""]);
      assertEquals(JSON.parse(seen[0]).op, "foreground");
    } finally {
      listener.close();
      await old.catch(() => {});
      try {
        Deno.removeSync(`${root.path}/supervisor/sock`);
      } catch { /* gone */ }
    }
  });
});
