// Health checks on the real kernel: --health-* and the image's HEALTHCHECK probed as docker's daemon
// does (the supervisor for detached containers, `run` itself in the foreground), State.Health and
// ps's status, the health_status events, stop, restart and pause; docker's refusals. The attacks: a
// hostile image's probe that floods its output, leaves a child holding it, or hopes for more
// privilege than its container has.

import * as assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { eventually, inspect, runDetached, supervisorPids } from "./detach_helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

async function health(root: TestRoot, name: string): Promise<Health | null> {
  return JSON.parse(await inspect(root, name, "{{json .State.Health}}"));
}

const healthStatus = async (root: TestRoot, name: string) => (await health(root, name))?.Status;

async function psStatus(root: TestRoot, name: string): Promise<string> {
  return (await root.ok(["ps", "-a", "--filter", `name=^${name}$`, "--format", "{{.Status}}"])).trim();
}

Deno.test("health: probes of a detached container, ps status, events, stop, restart, pause", async () => {
  await withBusybox(async (root) => {
    const fast = ["--health-interval", "200ms"];
    await runDetached(root, [
      "--name",
      "ok",
      ...fast,
      "--health-cmd",
      "echo probing; exit 0",
      "busybox",
      "sleep",
      "60",
    ]);
    await runDetached(root, [
      "--name",
      "bad",
      ...fast,
      "--health-retries",
      "2",
      "--health-cmd",
      "echo nope >&2; exit 1",
      "busybox",
      "sleep",
      "60",
    ]);
    await runDetached(root, [
      "--name",
      "slow",
      ...fast,
      "--health-timeout",
      "150ms",
      "--health-retries",
      "1",
      "--health-cmd",
      "sleep 5",
      "busybox",
      "sleep",
      "60",
    ]);
    await runDetached(root, ["--name", "plain", "busybox", "sleep", "60"]);
    // an interval past setTimeout's 2^31-1 ms waits as long, not 1 ms (docker takes 600h)
    await runDetached(root, [
      "--name",
      "rare",
      "--health-interval",
      "600h",
      "--health-cmd",
      "true",
      "busybox",
      "sleep",
      "60",
    ]);
    assert.match(await psStatus(root, "ok"), /^Up .* \((health: starting|healthy)\)$/);
    await eventually("ok healthy", async () => await healthStatus(root, "ok") === "healthy");
    await eventually("bad unhealthy", async () => await healthStatus(root, "bad") === "unhealthy");
    await eventually("slow unhealthy", async () => await healthStatus(root, "slow") === "unhealthy");
    assert.match(await psStatus(root, "ok"), /^Up .* \(healthy\)$/);
    assert.match(await psStatus(root, "bad"), /^Up .* \(unhealthy\)$/);
    assert.match(await psStatus(root, "plain"), /^Up [^(]*$/);

    const ok = (await health(root, "ok"))!;
    assert.equal(ok.FailingStreak, 0);
    assert.equal(ok.Log.at(-1)!.ExitCode, 0);
    assert.equal(ok.Log.at(-1)!.Output, "probing\n");
    assert.ok(Date.parse(ok.Log[0].End) >= Date.parse(ok.Log[0].Start));
    const bad = (await health(root, "bad"))!;
    assert.ok(bad.FailingStreak >= 2);
    assert.equal(bad.Log.at(-1)!.Output, "nope\n");
    assert.equal(bad.Log.at(-1)!.ExitCode, 1);
    const slow = (await health(root, "slow"))!;
    assert.equal(slow.Log[0].ExitCode, -1);
    assert.equal(slow.Log[0].Output, "Health check exceeded timeout (150ms)");
    // the timed-out probes were killed: no `sleep 5` piles up in the container
    const procs = await root.ok(["top", "slow"]);
    assert.ok(procs.split("\n").filter((l) => l.includes("sleep 5")).length <= 1, procs);
    await eventually("five results kept", async () => (await health(root, "ok"))!.Log.length === 5);
    assert.equal(await inspect(root, "plain", "{{json .State.Health}}"), "null");
    assert.deepEqual(await health(root, "rare"), { Status: "starting", FailingStreak: 0, Log: [] });

    // ps -f health=
    const names = async (value: string) =>
      (await root.ok(["ps", "--filter", `health=${value}`, "--format", "{{.Names}}"])).trim().split("\n")
        .sort();
    assert.deepEqual(await names("healthy"), ["ok"]);
    assert.deepEqual(await names("unhealthy"), ["bad", "slow"]);
    assert.deepEqual(await names("none"), ["plain"]);
    assert.deepEqual(await names("starting"), ["rare"]);
    const bogus = await root.skiff(["ps", "--filter", "health=bogus"]);
    assert.equal(bogus.code, 1);
    assert.equal(bogus.stderr, "skiff: Unrecognised filter value for health: bogus\n");

    // --until 0s is now in whole seconds (docker's too): an event of this second shows once it passed
    const events = () =>
      root.ok(["events", "--since", "5m", "--until", "0s", "--filter", "event=health_status"]);
    const wanted = [
      /container health_status: healthy [0-9a-f]{64} \(image=busybox, name=ok\)/,
      /container health_status: unhealthy [0-9a-f]{64} \(image=busybox, name=bad\)/,
    ];
    await eventually("health_status events", async () => {
      const text = await events();
      return wanted.every((re) => re.test(text));
    });
    assert.doesNotMatch(await events(), /exec_/);

    // paused: unhealthy and no probes (docker 20.10 closes its monitor); unpaused: they go on
    await root.ok(["pause", "ok"]);
    const frozen = (await health(root, "ok"))!.Log.at(-1)!.Start;
    assert.equal(await healthStatus(root, "ok"), "unhealthy");
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await health(root, "ok"))!.Log.at(-1)!.Start, frozen);
    await root.ok(["unpause", "ok"]);
    await eventually("probes again", async () => (await health(root, "ok"))!.Log.at(-1)!.Start !== frozen);
    await eventually("healthy again", async () => await healthStatus(root, "ok") === "healthy");

    // stop: docker 20.10 marks the stopped monitor's container unhealthy; restart starts over
    await root.ok(["stop", "-t", "0", "ok"]);
    const stopped = (await health(root, "ok"))!;
    assert.equal(stopped.Status, "unhealthy");
    assert.equal(stopped.FailingStreak, 0);
    assert.match(await psStatus(root, "ok"), /^Exited \(137\)/);
    await root.ok(["restart", "-t", "0", "bad"]);
    const restarted = (await health(root, "bad"))!;
    assert.ok(["starting", "unhealthy"].includes(restarted.Status));
    await eventually("bad unhealthy again", async () => await healthStatus(root, "bad") === "unhealthy");
  });
});

Deno.test("health: the image's HEALTHCHECK, flags over it, --no-healthcheck, a foreground run", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-health-ctx-" });
    try {
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        'FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD ["sh", "-c", "echo from image; exit 1"]\n',
      );
      await root.ok(["build", "-q", "-t", "hc:img", dir]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    await runDetached(root, ["--name", "img", "hc:img", "sleep", "60"]);
    assert.equal(
      await inspect(root, "img", "{{json .Config.Healthcheck}}"),
      '{"Test":["CMD","sh","-c","echo from image; exit 1"],"Interval":200000000,"Retries":1}',
    );
    await eventually("image's probe fails", async () => await healthStatus(root, "img") === "unhealthy");
    assert.equal((await health(root, "img"))!.Log[0].Output, "from image\n");

    // the flags take the image's place field by field
    await runDetached(root, ["--name", "mine", "--health-cmd", "exit 0", "hc:img", "sleep", "60"]);
    assert.equal(
      await inspect(root, "mine", "{{json .Config.Healthcheck}}"),
      '{"Test":["CMD-SHELL","exit 0"],"Interval":200000000,"Retries":1}',
    );
    await eventually("flags' probe passes", async () => await healthStatus(root, "mine") === "healthy");

    await runDetached(root, ["--name", "none", "--no-healthcheck", "hc:img", "sleep", "60"]);
    // docker's merge keeps the image's other fields (checked against docker 20.10)
    assert.equal(
      await inspect(root, "none", "{{json .Config.Healthcheck}}"),
      '{"Test":["NONE"],"Interval":200000000,"Retries":1}',
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await inspect(root, "none", "{{json .State.Health}}"), "null");
    assert.match(await psStatus(root, "none"), /^Up [^(]*$/);

    // a foreground run probes its own container
    await root.ok([
      "run",
      "--name",
      "fg",
      "--health-cmd",
      "echo fg",
      "--health-interval",
      "100ms",
      "busybox",
      "sleep",
      "1",
    ]);
    const fg = (await health(root, "fg"))!;
    assert.equal(fg.Status, "unhealthy"); // stopped
    assert.ok(fg.Log.length >= 3, JSON.stringify(fg));
    assert.ok(fg.Log.every((r) => r.ExitCode === 0 && r.Output === "fg\n"));
  });
});

Deno.test("health: docker's refusals of the flags (words and exit codes), nothing made", async () => {
  await withBusybox(async (root) => {
    const cases: [string[], string, number, number][] = [
      [
        ["--health-interval", "1us", "--health-cmd", "true"],
        "Interval in Healthcheck cannot be less than 1ms",
        125,
        1,
      ],
      [["--health-timeout", "500us"], "Timeout in Healthcheck cannot be less than 1ms", 125, 1],
      [["--health-start-period", "10us"], "StartPeriod in Healthcheck cannot be less than 1ms", 125, 1],
      [["--health-interval", "-1s"], "--health-interval cannot be negative", 125, 125],
      [["--health-retries", "-1"], "--health-retries cannot be negative", 125, 125],
      [
        ["--no-healthcheck", "--health-cmd", "true"],
        "--no-healthcheck conflicts with --health-* options",
        125,
        125,
      ],
      [
        ["--health-interval", "bogus"],
        'invalid argument "bogus" for "--health-interval" flag: time: invalid duration "bogus"',
        125,
        125,
      ],
    ];
    for (const [flags, words, runCode, createCode] of cases) {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assert.equal(r.code, runCode, `run ${flags.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`skiff: ${words}`), r.stderr);
      const c = await root.skiff(["create", ...flags, "busybox", "true"]);
      assert.equal(c.code, createCode, `create ${flags.join(" ")}: ${c.stderr}`);
    }
    assert.deepEqual(root.containerIds(), []);
    // docker takes these
    for (const flags of [["--no-healthcheck", "--health-retries", "0"], ["--health-interval", "0s"]]) {
      await root.ok(["run", "--rm", ...flags, "busybox", "true"]);
    }
  });
});

Deno.test("attack: a hostile image's probe floods its output, keeps it open, or looks for privilege", async () => {
  await withBusybox(async (root) => {
    const fast = ["--health-interval", "200ms", "--health-timeout", "1s"];
    // a probe that writes without end: 4096 bytes are kept, it is killed at its timeout
    await runDetached(root, [
      "--name",
      "flood",
      ...fast,
      "--health-cmd",
      "yes xxxxxxxx",
      "busybox",
      "sleep",
      "60",
    ]);
    // a probe whose child keeps its output open after it exits, ten times a second
    await runDetached(root, [
      "--name",
      "linger",
      "--health-interval",
      "100ms",
      "--health-cmd",
      "sleep 1000 & echo left",
      "busybox",
      "sleep",
      "60",
    ]);
    // what the probe can do is what its container can: the container's capabilities and cgroup
    await runDetached(root, [
      "--name",
      "priv",
      ...fast,
      "--cap-drop",
      "ALL",
      "--health-cmd",
      "grep CapEff /proc/self/status; cat /proc/self/cgroup | grep memory; cat /proc/1/cmdline",
      "busybox",
      "sleep",
      "60",
    ]);
    await eventually("flood probed", async () => ((await health(root, "flood"))?.Log.length ?? 0) >= 2);
    const flood = (await health(root, "flood"))!.Log[0];
    assert.equal(flood.ExitCode, -1);
    assert.equal(flood.Output, "Health check exceeded timeout (1s)");
    await eventually("linger probed", async () => ((await health(root, "linger"))?.Log.length ?? 0) >= 2);
    const linger = (await health(root, "linger"))!;
    assert.equal(linger.Log[0].Output, "left\n");
    assert.equal(linger.Status, "healthy");
    // each probe's pipes are let go once it exits: 40 lingering children hold no thread of the
    // supervisor's (Deno's blocking pool has 32; a read per pipe would stall every container)
    await eventually("40 lingering probes", async () => {
      const top = await root.ok(["top", "linger"]);
      return top.split("\n").filter((l) => l.includes("sleep 1000")).length >= 40;
    }, 20_000);
    const [supervisor] = supervisorPids(root);
    const threads = [...Deno.readDirSync(`/proc/${supervisor}/task`)].length;
    assert.ok(threads < 30, `the supervisor has ${threads} threads`);
    const before = (await health(root, "linger"))!.Log.at(-1)!.Start;
    await eventually(
      "probes go on",
      async () => (await health(root, "linger"))!.Log.at(-1)!.Start !== before,
    );
    const started = Date.now();
    await runDetached(root, ["--name", "after", "busybox", "sleep", "60"]);
    assert.ok(Date.now() - started < 5000, "a new container still starts at once");
    await root.ok(["rm", "-f", "linger"]);
    // the flood's output past its 4096 bytes is thrown away in the kernel and at a pace: the
    // supervisor stays mostly idle while it floods (reading it all took most of a core)
    const cpu = () => {
      const f = Deno.readTextFileSync(`/proc/${supervisor}/stat`).split(") ")[1].split(" ");
      return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks
    };
    const cpuBefore = cpu(), wallBefore = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    const share = ((cpu() - cpuBefore) * 10) / (Date.now() - wallBefore); // ticks of 10 ms
    assert.ok(share < 0.4, `the supervisor used ${Math.round(share * 100)}% of a CPU`);
    await root.ok(["rm", "-f", "flood"]); // the rest of the test on a quieter machine
    await eventually("priv probed", async () => ((await health(root, "priv"))?.Log.length ?? 0) >= 1);
    const out = (await health(root, "priv"))!.Log[0].Output;
    assert.match(out, /^CapEff:\s+0000000000000000$/m);
    const id = (await inspect(root, "priv", "{{.Id}}")).trim();
    const memory = out.split("\n").find((l) => l.includes("memory"));
    if (memory) assert.ok(memory.includes(id), memory); // v1: the container's own memory cgroup
    assert.ok(
      out.endsWith("sleep\u000060\u0000") || out.endsWith("sleep\u000060"),
      "its /proc is the container's",
    );
    // a flood that ends before its timeout: cut at 4096 bytes, with docker's "..."
    await runDetached(root, [
      "--name",
      "burst",
      ...fast,
      "--health-cmd",
      "head -c 100000 /dev/zero | tr '\\0' y",
      "busybox",
      "sleep",
      "60",
    ]);
    await eventually(
      "burst probed",
      async () => ((await health(root, "burst"))?.Log.length ?? 0) >= 1,
      20_000,
    );
    const burst = (await health(root, "burst"))!.Log[0];
    assert.equal(burst.ExitCode, 0);
    assert.equal(burst.Output, "y".repeat(4096) + "...");
  });
});

// docker where the peer runs (/tmp/peers/env.sh): the same refusals, the same Config.Healthcheck
Deno.test("docker refuses and records the health flags the same way (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  await withBusybox(async (root) => {
    for (
      const flags of [
        ["--health-interval", "1us", "--health-cmd", "true"],
        ["--health-interval", "-1s"],
        ["--no-healthcheck", "--health-cmd", "true"],
        ["--health-retries", "-1"],
      ]
    ) {
      const d = await docker(["create", ...flags, "localhost/bb:latest", "true"]);
      const s = await root.skiff(["create", ...flags, "busybox", "true"]);
      assert.equal(s.code, d.code, `${flags.join(" ")}: ${d.stderr} / ${s.stderr}`);
      const words = (text: string) =>
        text.split("\n")[0].replace(/^(docker|skiff): |^Error response from daemon: /, "").replace(
          / \(see 'skiff create --help'\)$|\.$/,
          "",
        );
      assert.equal(words(s.stderr), words(d.stderr));
    }
    const flags = ["--health-cmd", "exit 0", "--health-interval", "2s", "--health-retries", "2"];
    const d = await docker(["create", ...flags, "localhost/bb:latest", "true"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    try {
      const want = (await docker(["inspect", "-f", "{{json .Config.Healthcheck}}", id])).stdout;
      await root.ok(["create", "--name", "hc", ...flags, "busybox", "true"]);
      assert.equal(await inspect(root, "hc", "{{json .Config.Healthcheck}}"), want.trim());
    } finally {
      await docker(["rm", "-f", id]);
    }
  });
});
