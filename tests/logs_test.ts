// logs: docker's json-file log of detached containers.

import assert from "node:assert/strict";
import { eventually, inspect, runDetached, status, withDetached } from "./detach_helpers.ts";
import { MAIN } from "./helpers.ts";

const exited = (root: Parameters<Parameters<typeof withDetached>[0]>[0], ref: string) =>
  eventually(`${ref} exits`, async () => (await status(root, ref)) === "exited");

Deno.test("logs: stdout and stderr are kept apart, in order, each on its own stream", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "both",
      "busybox",
      "sh",
      "-c",
      "echo o1; echo e1 >&2; echo o2; printf partial",
    ]);
    await exited(root, "both");
    const r = await root.skiff(["logs", "both"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "o1\no2\npartial");
    assert.equal(r.stderr, "e1\n");
    const id = await inspect(root, "both", "{{.Id}}");
    const lines = Deno.readTextFileSync(`${root.path}/containers/${id}/${id}-json.log`).trim().split("\n");
    const first = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(first).sort(), ["log", "stream", "time"]);
    assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });
});

Deno.test("logs -f follows until the container exits", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "ff", "busybox", "sh", "-c", "echo a; sleep 1; echo b; sleep 0.5"]);
    const start = Date.now();
    const r = await root.skiff(["logs", "-f", "ff"], { timeoutMs: 15_000 });
    const took = Date.now() - start;
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "a\nb\n");
    assert.ok(took >= 1000 && took < 6000, `took ${took} ms`);
  });
});

Deno.test("logs --tail, -t, --since, --until", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "tt", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"]);
    await exited(root, "tt");
    assert.equal(await root.ok(["logs", "--tail", "2", "tt"]), "4\n5\n");
    assert.equal(await root.ok(["logs", "-n", "0", "tt"]), "");
    assert.equal(await root.ok(["logs", "--tail", "all", "tt"]), "1\n2\n3\n4\n5\n");
    const stamped = (await root.ok(["logs", "-t", "--tail", "1", "tt"])).trimEnd();
    assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z 5$/);
    assert.equal(await root.ok(["logs", "--since", "1m", "tt"]), "1\n2\n3\n4\n5\n");
    const future = new Date(Date.now() + 60_000).toISOString();
    assert.equal(await root.ok(["logs", "--since", future, "tt"]), "");
    assert.equal(await root.ok(["logs", "--until", "2000-01-01T00:00:00Z", "tt"]), "");
    assert.equal(
      await root.ok(["logs", "--since", String(Math.floor(Date.now() / 1000) - 60), "tt"]).then((s) =>
        s.length
      ),
      10,
    );
    // docker 20.10's daemon reads --tail with strconv.Atoi: anything else is every line, "+2" is 2
    for (const all of ["x", " 2", "2x", "1e1", "-3"]) {
      assert.equal(await root.ok(["logs", "--tail", all, "tt"]), "1\n2\n3\n4\n5\n", `--tail '${all}'`);
    }
    assert.equal(await root.ok(["logs", "--tail", "+2", "tt"]), "4\n5\n");
    assert.equal(await root.ok(["logs", "--tail", "99", "tt"]), "1\n2\n3\n4\n5\n");
    const missing = await root.skiff(["logs", "nosuch"]);
    assert.equal(missing.code, 1); // docker 20.10: "Error: No such container: nosuch", exit 1
    assert.match(missing.stderr, /No such container: nosuch/);
  });
});

Deno.test("logs: max-size/max-file rotation keeps the newest output within the cap", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      "--name",
      "rot",
      "--log-opt",
      "max-size=2k",
      "--log-opt",
      "max-file=2",
      "busybox",
      "sh",
      "-c",
      "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    await exited(root, "rot");
    const dir = `${root.path}/containers/${id}`;
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("-json.log")).sort();
    assert.deepEqual(files, [`${id}-json.log`, `${id}-json.log.1`]);
    for (const f of files) assert.ok(Deno.statSync(`${dir}/${f}`).size <= 2048, f);
    const out = (await root.ok(["logs", "rot"])).trim().split("\n");
    assert.equal(out.at(-1), "line-399");
    assert.ok(out.length < 400 && out.length > 20, `${out.length} lines`);
    // consecutive: nothing lost between the rotated file and the live one
    const first = Number(out[0].slice(5));
    assert.deepEqual(out, out.map((_, i) => `line-${first + i}`));
  });
});

Deno.test("logs: --log-driver none and bad --log-opt", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "quiet", "--log-driver", "none", "busybox", "echo", "hi"]);
    const r = await root.skiff(["logs", "quiet"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /configured logging driver does not support reading/);
    for (
      const flags of [["--log-opt", "bogus=1"], ["--log-driver", "syslogx"], ["--log-opt", "max-size=abc"]]
    ) {
      const bad = await root.skiff(["run", "-d", ...flags, "busybox", "true"]);
      assert.equal(bad.code, 125, flags.join(" "));
    }
  });
});

Deno.test("logs: --log-driver local (docker's defaults, its options, its refusals); logs reads it", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      ...["--name", "loc", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3"],
      ...[
        "busybox",
        "sh",
        "-c",
        "echo err >&2; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
      ],
    ]);
    await exited(root, "loc");
    const out = (await root.ok(["logs", "loc"])).trim().split("\n");
    assert.equal(out.at(-1), "line-299");
    const dir = `${root.path}/containers/${id}`;
    const files = [...Deno.readDirSync(dir)].filter((e) => e.name.includes("-json.log"));
    assert.equal(files.length, 3); // max-file
    assert.equal(
      await inspect(root, "loc", "{{json .HostConfig.LogConfig}} [{{.LogPath}}]"),
      '{"Type":"local","Config":{"max-file":"3","max-size":"1k"}} []', // a map: sorted, as Go's json,
    );
    for (
      const [opt, words] of [
        [
          "max-size=abc",
          "failed to initialize logging driver: invalid value for max-size: abc: invalid size: 'abc'",
        ],
        ["labels=x", "unknown log opt 'labels' for log driver local"],
        [
          "max-file=0",
          "failed to initialize logging driver: compression cannot be enabled when max file count is 1",
        ],
        [
          "compress=maybe",
          'error reading compress log option: strconv.ParseBool: parsing "maybe": invalid syntax',
        ],
      ]
    ) {
      const bad = await root.skiff([
        "run",
        "--rm",
        "--log-driver",
        "local",
        "--log-opt",
        opt,
        "busybox",
        "true",
      ]);
      assert.equal(bad.code, 125, opt);
      assert.ok(bad.stderr.includes(words), bad.stderr);
    }
  });
});

Deno.test("logs survive stop and start", async () => {
  await withDetached(async (root) => {
    await runDetached(root, [
      "--name",
      "ss",
      "busybox",
      "sh",
      "-c",
      "echo run; trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    await eventually("first output", async () => (await root.ok(["logs", "ss"])) === "run\n");
    await root.ok(["stop", "ss"]);
    await root.ok(["start", "ss"]);
    await eventually("second output", async () => (await root.ok(["logs", "ss"])) === "run\nrun\n");
  });
});

Deno.test("logs of a foreground run: stdout and stderr apart, and the caller got both", async () => {
  await withDetached(async (root) => {
    const run = await root.skiff([
      "run",
      "--name",
      "fg",
      "busybox",
      "sh",
      "-c",
      "echo o1; echo e1 >&2; exit 3",
    ]);
    assert.equal(run.code, 3);
    assert.equal(run.stdout, "o1\n");
    assert.equal(run.stderr, "e1\n");
    const r = await root.skiff(["logs", "fg"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "o1\n");
    assert.equal(r.stderr, "e1\n");
    // --log-driver none: nothing is written
    await root.ok(["run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "x"]);
    const id = await inspect(root, "quiet", "{{.Id}}");
    assert.throws(() => Deno.statSync(`${root.path}/containers/${id}/${id}-json.log`));
  });
});

Deno.test("logs of a foreground run survive start", async () => {
  await withDetached(async (root) => {
    assert.equal(await root.ok(["run", "--name", "again", "busybox", "echo", "run"]), "run\n");
    await root.ok(["start", "again"]);
    await exited(root, "again");
    await eventually("second output", async () => (await root.ok(["logs", "again"])) === "run\nrun\n");
  });
});

Deno.test("foreground run: 10 MB of output pass through byte-exact", async () => {
  await withDetached(async (root) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--root",
        root.path,
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 10485760 /dev/urandom > /tmp/d; sha256sum /tmp/d >&2; cat /tmp/d",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    const out = await child.output();
    assert.equal(out.code, 0);
    assert.equal(out.stdout.length, 10 * 1024 * 1024);
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", out.stdout)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(new TextDecoder().decode(out.stderr).split(" ")[0], digest);
  });
});

Deno.test("logs of a foreground run -t: the terminal's output, all as stdout", async () => {
  await withDetached(async (root) => {
    const run = await root.skiff([
      "run",
      "-t",
      "--name",
      "tty",
      "busybox",
      "sh",
      "-c",
      "echo out; echo err >&2",
    ]);
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "out\r\nerr\r\n");
    const r = await root.skiff(["logs", "tty"]);
    assert.equal(r.stdout, "out\r\nerr\r\n");
    assert.equal(r.stderr, "");
  });
});

Deno.test("foreground run: the caller's stdout closed, the container's writes fail (EPIPE)", async () => {
  await withDetached(async (root) => {
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        `deno run -A ${MAIN} --root ${root.path} run --name pp busybox sh -c 'yes; echo "yes=$?" >&2' | head -c 4`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout), "y\ny\n");
    assert.equal(new TextDecoder().decode(out.stderr), "yes=141\n");
    assert.equal((await root.skiff(["logs", "pp"])).stderr, "yes=141\n");
  });
});
