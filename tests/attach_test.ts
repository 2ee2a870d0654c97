// attach, start -a/-i and run -d -i against the real kernel: output and exit codes, stdin, detach
// keys on a pty (driven through script(1)), the signal proxy, docker's refusals; and the attacks:
// a container that never reads its stdin while a client sends, and one that writes 50 MB while its
// client reads nothing (the supervisor, the log and other containers must not suffer).

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import {
  eventually,
  inspect,
  Proc,
  runDetached,
  skiffLine,
  sleep,
  status,
  supervisorPids,
  withDetached,
  withProcs,
} from "./detach_helpers.ts";
import {
  DEFAULT_DETACH_KEYS,
  encodeFrame,
  EscapeDetector,
  FrameDecoder,
  parseDetachKeys,
} from "../lib/engine/attach_stream.ts";

Deno.test("attach stream: stdcopy frames split anywhere decode back; docker's detach keys", () => {
  const frames = [encodeFrame(1, new TextEncoder().encode("out")), encodeFrame(2, new Uint8Array(70_000))];
  const wire = new Uint8Array(frames[0].length + frames[1].length);
  wire.set(frames[0]);
  wire.set(frames[1], frames[0].length);
  for (const cut of [1, 5, 8, 11, 12, 4000, wire.length - 1]) {
    const d = new FrameDecoder();
    const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assertEquals(got.map((f) => [f.stream, f.payload.length]), [[1, 3], [2, 70_000]]);
  }
  assertEquals([...parseDetachKeys("ctrl-p,ctrl-q")!], [...DEFAULT_DETACH_KEYS]);
  assertEquals([...parseDetachKeys("ctrl-a,x,ctrl-@,ctrl-_,DEL")!], [1, 120, 0, 31, 127]);
  for (const bad of ["ctrl-P", "ctrl-", "ctrl-ab", "a,,b", "", "é", "esc"]) {
    assertEquals(parseDetachKeys(bad), undefined, bad);
  }
  const esc = new EscapeDetector(new Uint8Array([16, 17]));
  assertEquals(esc.feed(new Uint8Array([97, 16])), { pass: new Uint8Array([97]), detach: false });
  assertEquals(esc.feed(new Uint8Array([98])), { pass: new Uint8Array([16, 98]), detach: false });
  assertEquals(esc.feed(new Uint8Array([16])), { pass: new Uint8Array([]), detach: false });
  assertEquals(esc.feed(new Uint8Array([17, 99])).detach, true);
});

Deno.test("create + start -a: stdout and stderr apart, the container's exit code; start -a -i with piped input", async () => {
  await withDetached(async (root) => {
    const id = (await root.ok(["create", "busybox", "sh", "-c", "echo out-line; echo err-line >&2; exit 3"]))
      .trim();
    const r = await root.skiff(["start", "-a", id]);
    assertEquals([r.code, r.stdout, r.stderr], [3, "out-line\n", "err-line\n"]);
    // the log has it too
    assertEquals((await root.ok(["logs", id])).trim(), "out-line");
    const cat = (await root.ok(["create", "-i", "busybox", "sh", "-c", "cat; echo cat-done; exit 4"])).trim();
    const i = await root.skiff(["start", "-a", "-i", cat], { stdin: "line one\nline two\n" });
    assertEquals([i.code, i.stdout], [4, "line one\nline two\ncat-done\n"]);
    // --rm: the container is gone when start -a / attach / wait ask for its code (its die event has it)
    const rm = (await root.ok(["create", "--rm", "busybox", "sh", "-c", "echo bye; exit 5"])).trim();
    const gone = await root.skiff(["start", "-a", rm]);
    assertEquals([gone.code, gone.stdout, gone.stderr], [5, "bye\n", ""]);
    assertEquals(root.containerIds().includes(rm), false);
    const rmd = (await root.ok(["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 1; exit 6"])).trim();
    assertEquals(await root.ok(["wait", rmd]), "6\n");
    // start -a of a container whose command does not exist: docker's line, and 1 (docker 20.10 here:
    // its CLI returns the start's error as is)
    const bad = (await root.ok(["create", "busybox", "/nonexistent"])).trim();
    const b = await root.skiff(["start", "-a", bad]);
    assertEquals(b.code, 1, b.stderr);
    assertMatch(b.stderr, /nonexistent/);
    // a user the image lacks: the daemon's own line, no runtime wording (docker 20.10: "Error response
    // from daemon: unable to find user nosuch: no matching entries in passwd file", exit 1)
    const nouser = (await root.ok(["create", "-u", "nosuch", "busybox", "true"])).trim();
    const u = await root.skiff(["start", "-a", nouser]);
    assertEquals([u.code, u.stderr], [
      1,
      "skiff: unable to find user nosuch: no matching entries in passwd file\n",
    ]);
  });
});

Deno.test("attach: sees new output of a running container, exits with its code; refusals as docker", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, [
        "busybox",
        "sh",
        "-c",
        "echo before; while [ ! -e /tmp/go ]; do echo waiting; sleep 0.1; done; echo after-out; echo after-err >&2; exit 9",
      ]);
      await eventually("before is logged", async () => (await root.ok(["logs", id])).includes("before"));
      const a = track(Proc.skiff(root, ["attach", "--no-stdin", id]));
      await a.waitFor("waiting\n"); // attached
      await root.ok(["exec", id, "touch", "/tmp/go"]);
      assertEquals(await a.finish(), 9);
      // what came before the attach is not replayed (docker)
      assertMatch(a.stdout, /^(waiting\n)+after-out\n$/);
      assertEquals(a.stderr, "after-err\n");
      // stopped, missing, created: docker's words, exit 1
      const stopped = await root.skiff(["attach", id]);
      assertEquals([stopped.code, stopped.stderr], [
        1,
        "skiff: You cannot attach to a stopped container, start it first\n",
      ]);
      const missing = await root.skiff(["attach", "nosuch"]);
      assertEquals([missing.code, missing.stderr], [1, "skiff: No such container: nosuch\n"]);
      const created = (await root.ok(["create", "busybox", "true"])).trim();
      assertEquals((await root.skiff(["attach", created])).code, 1);
      const running = await runDetached(root, ["busybox", "sleep", "30"]);
      const keys = await root.skiff(["attach", "--detach-keys", "ctrl-P", running]);
      assertEquals([keys.code, keys.stderr], [1, "skiff: Invalid detach keys (ctrl-P) provided\n"]);
      // a foreground run that the supervisor serves (no -i, -t: engine/foreground.ts): attachable,
      // as docker's are
      const served = track(
        Proc.skiff(root, [
          "run",
          "--name",
          "fg1",
          "busybox",
          "sh",
          "-c",
          "echo fg-up; sleep 1; echo fg-late",
        ]),
      );
      await served.waitFor("fg-up");
      const attached = await root.skiff(["attach", "fg1"]);
      assertEquals([attached.code, attached.stdout], [0, "fg-late\n"]);
      // one whose process skiff runs itself (-i): its output is that process's, nothing to attach to
      const fg = track(
        Proc.skiff(root, ["run", "-i", "--name", "fg", "busybox", "sh", "-c", "echo fg-up; sleep 30"]),
      );
      await fg.waitFor("fg-up");
      const foreground = await root.skiff(["attach", "fg"]);
      assertEquals(foreground.code, 1);
      assertMatch(foreground.stderr, /not run by the skiff supervisor/);
      const usage = await root.skiff(["attach"]);
      assertEquals(usage.code, 1); // docker's CLI: 1 for a wrong number of arguments
      assertEquals(await status(root, running), "running");
    });
  });
});

Deno.test("attach to a container with --restart always: it returns at the run's exit, with its code", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, [
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 8 ]; do echo run; i=$((i+1)); sleep 0.2; done; exit 3",
      ]);
      const a = track(Proc.skiff(root, ["attach", "--no-stdin", id]));
      await a.waitFor("run\n");
      assertEquals(await a.finish(), 3);
      await eventually("it restarts", async () => Number(await inspect(root, id, "{{.RestartCount}}")) >= 1);
    });
  });
});

Deno.test("run -d -i, then attach -i: input reaches the container; --no-stdin sends nothing", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, [
        "-i",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; echo eof",
      ]);
      assertEquals(await inspect(root, id, "{{.Config.OpenStdin}} {{.Config.StdinOnce}}"), "true false");
      // the container's stdin is a pipe of the supervisor's, never a file or terminal of a caller
      assertMatch(await root.ok(["exec", id, "readlink", "/proc/1/fd/0"]), /^pipe:\[\d+\]\n$/);
      const quiet = track(Proc.skiff(root, ["attach", "--no-stdin", id], { stdin: true }));
      await quiet.send("not-for-the-container\n");
      const a = track(Proc.skiff(root, ["attach", id], { stdin: true }));
      await a.send("hello\n"); // waits in the pipe until the attach is up
      await a.waitFor("got:hello\n");
      // every attached client sees the output (once the quiet one is up)
      for (let i = 0; !quiet.stdout.includes("got:ping"); i++) {
        assert(i < 100, `the --no-stdin attach saw nothing: ${quiet.stdout} ${quiet.stderr}`);
        await a.send("ping\n");
        await sleep(200);
      }
      await a.send("again\n");
      await a.waitFor("got:again\n");
      // run -d -i is not StdinOnce: the end of this client's input ends its attach, not the stdin
      await a.closeInput();
      await sleep(500);
      assertEquals(await status(root, id), "running");
      const logs = await root.ok(["logs", id]);
      assertMatch(logs, /^got:hello\n(got:ping\n)+got:again\n$/); // nothing of the --no-stdin client
      await root.ok(["stop", "-t", "1", id]);
      await a.finish();
      await quiet.finish();
    });
  });
});

Deno.test("attach -t: raw terminal, window size, ctrl-p ctrl-q and --detach-keys leave it running", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, ["-it", "busybox", "sh"]);
      // the container's own pty (its devpts'), whoever attaches; the supervisor holds the master
      assertEquals(await root.ok(["exec", id, "readlink", "/proc/1/fd/0"]), "/dev/pts/0\n");
      const t = track(
        Proc.onPty(`stty rows 33 cols 101; ${skiffLine(root, `attach ${id}`)}; echo attach-rc=$?`),
      );
      await t.send("stty size; echo mark-$((6*7))\r"); // kept by the pty until the attach reads it
      await t.waitFor("mark-42");
      assertMatch(t.stdout, /33 101/);
      await t.send(new Uint8Array([16]));
      await sleep(200);
      await t.send(new Uint8Array([17]));
      await t.waitFor("attach-rc=1");
      assertMatch(t.stdout, /read escape sequence/);
      await t.closeInput();
      await t.finish();
      assertEquals(await status(root, id), "running");

      // custom keys; ctrl-p ctrl-q are data then (and the shell survives them)
      const k = track(
        Proc.onPty(`${skiffLine(root, `attach --detach-keys ctrl-a,x ${id}`)}; echo attach-rc=$?`),
      );
      await k.send("echo ready-$((3+4))\r");
      await k.waitFor("ready-7"); // attached, the terminal raw
      await k.send(new Uint8Array([16, 17]));
      await k.send("echo still-$((1+1))\r");
      await k.waitFor("still-2");
      for (const b of [1, 120]) {
        await k.send(new Uint8Array([b]));
        await sleep(200);
      }
      await k.waitFor("attach-rc=1");
      await k.closeInput();
      await k.finish();
      assertEquals(await status(root, id), "running");

      // an attach to a -t container from a pipe: docker's refusal; --no-stdin is fine
      const piped = await root.skiff(["attach", id], { stdin: "" });
      assertEquals([piped.code, piped.stderr], [1, "skiff: the input device is not a TTY\n"]);

      // exit through the terminal: attach returns the code
      const e = track(Proc.onPty(`${skiffLine(root, `attach ${id}`)}; echo attach-rc=$?`));
      await e.send("exit 5\r");
      await e.waitFor("attach-rc=5");
      await e.closeInput();
      await e.finish();
    });
  });
});

Deno.test("attach -t: a new size of the caller's terminal reaches the container's pty (SIGWINCH)", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, ["-it", "busybox", "sh"]);
      // the attach in the background of a shell on the pty, so the shell can resize that terminal
      const dir = await Deno.makeTempDir({ prefix: "skiff-attach-winch-" });
      try {
        const script = `${dir}/resize.sh`;
        Deno.writeTextFileSync(
          script,
          `stty rows 20 cols 70\n${skiffLine(root, `attach ${id}`)} </dev/tty &\n` +
            `while [ ! -e ${dir}/resize ]; do sleep 0.05; done\n` +
            `stty rows 41 cols 123; kill -WINCH $!\nwait $!\necho attach-rc=$?\n`,
        );
        const t = track(Proc.onPty(`sh ${script}`));
        await t.send("stty size\r");
        await t.waitFor("20 70");
        Deno.writeTextFileSync(`${dir}/resize`, "");
        for (let i = 0; !t.stdout.includes("41 123"); i++) {
          assert(i < 50, t.stdout);
          await t.send("stty size\r");
          await sleep(200);
        }
        await t.send(new Uint8Array([16]));
        await sleep(200);
        await t.send(new Uint8Array([17]));
        await t.waitFor("attach-rc=1");
        await t.closeInput();
        await t.finish();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
});

Deno.test("start -a -i on a pty: create -it, type, detach quietly with ctrl-p ctrl-q", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = (await root.ok(["create", "-it", "busybox", "sh"])).trim();
      const t = track(Proc.onPty(`${skiffLine(root, `start -a -i ${id}`)}; echo start-rc=$?`));
      await t.waitFor("#", 20_000); // the prompt
      await t.send("echo typed-$((2*3))\r");
      await t.waitFor("typed-6");
      await t.send(new Uint8Array([16]));
      await sleep(200);
      await t.send(new Uint8Array([17]));
      await t.waitFor("start-rc=0");
      assert(!t.stdout.includes("read escape sequence"), t.stdout);
      await t.closeInput();
      await t.finish();
      assertEquals(await status(root, id), "running");
    });
  });
});

Deno.test("attach --sig-proxy: SIGTERM and SIGINT reach the container; with =false they end only the attach", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const script = 'trap "echo got-term; exit 5" TERM; trap "echo got-int; exit 6" INT; echo up; ' +
        "while true; do echo tick; sleep 0.2; done";
      for (const [signal, code, word] of [["SIGTERM", 5, "got-term"], ["SIGINT", 6, "got-int"]] as const) {
        const id = await runDetached(root, ["busybox", "sh", "-c", script]);
        await eventually("up", async () => (await root.ok(["logs", id])).includes("up"));
        const a = track(Proc.skiff(root, ["attach", id]));
        await a.waitFor("tick\n"); // attached, its signal handlers on
        a.child.kill(signal);
        assertEquals(await a.finish(), code);
        assertMatch(a.stdout, new RegExp(`^(tick\n)+${word}\n$`));
      }
      const id = await runDetached(root, ["busybox", "sh", "-c", script]);
      const a = track(Proc.skiff(root, ["attach", "--sig-proxy=false", id]));
      await a.waitFor("tick\n");
      a.child.kill("SIGTERM");
      await a.finish();
      await sleep(300);
      assertEquals(await status(root, id), "running");
      assert(!(await root.ok(["logs", id])).includes("got-term"));
    });
  });
});

/** VmRSS of a process in KiB. */
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

Deno.test("attack: a container that never reads stdin while attach sends 32 MiB blocks neither the supervisor nor others", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const deaf = await runDetached(root, ["-i", "busybox", "sleep", "600"]);
      const ticker = await runDetached(root, [
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done",
      ]);
      const a = track(Proc.skiff(root, ["attach", deaf], { stdin: true }));
      const chunk = new Uint8Array(64 << 10).fill(65);
      let sent = 0;
      const flooding = (async () => {
        try {
          for (let i = 0; i < 512; i++) {
            await a.send(chunk);
            sent++;
          }
        } catch { /* the attach was killed */ }
      })();
      // more than the attach's own stdin pipe holds went: it is connected and copying; then it stalls
      await eventually("the attach takes input", () => sent >= 2, 20_000);
      let last = -1;
      await eventually("the input stalls", async () => {
        const now = sent;
        await sleep(1000);
        return now === sent && (last = sent) >= 0;
      }, 20_000);
      assert(last < 512, "a container that never reads cannot have taken 32 MiB");
      // the supervisor still serves: a new container starts, another's output keeps flowing, an
      // attach to it works
      const t0 = Date.now();
      const other = await runDetached(root, ["busybox", "sh", "-c", "echo other-ran"]);
      assert(Date.now() - t0 < 10_000, `run -d took ${Date.now() - t0} ms`);
      await eventually(
        "the other container ran",
        async () => (await root.ok(["logs", other])).includes("other-ran"),
      );
      const before = (await root.ok(["logs", ticker])).split("\n").length;
      await sleep(1000);
      assert((await root.ok(["logs", ticker])).split("\n").length > before + 3, "the ticker's log stalled");
      const watcher = track(Proc.skiff(root, ["attach", "--no-stdin", ticker]));
      await watcher.waitFor(/tick\d+/);
      const [sup] = supervisorPids(root);
      assert(rssKiB(sup) < 300 * 1024, `supervisor RSS ${rssKiB(sup)} KiB`);
      await a.kill();
      await flooding;
      assertEquals(await status(root, deaf), "running");
      await root.ok(["rm", "-f", deaf, ticker]);
      await watcher.finish();
    });
  });
});

Deno.test("attack: a container writes 50 MB while its attached client reads nothing: log complete, supervisor responsive", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const line = "x".repeat(999); // + newline: 1000 bytes a line
      const lines = 50_000;
      const id = await runDetached(root, [
        "busybox",
        "sh",
        "-c",
        `while [ ! -e /tmp/go ]; do echo waiting; sleep 0.1; done; yes ${line} | head -n ${lines}; echo flood-done`,
      ]);
      // a client that reads its first output, then nothing: its stdout pipe fills, it stops reading
      // the socket
      const a = track(Proc.skiff(root, ["attach", "--no-stdin", id], { holdStdout: true }));
      const reader = a.child.stdout.getReader();
      let received = (await reader.read()).value?.length ?? 0; // attached
      const [sup] = supervisorPids(root);
      const t0 = Date.now();
      await root.ok(["exec", id, "touch", "/tmp/go"]);
      // meanwhile the supervisor answers: another container starts and runs
      const other = await runDetached(root, ["busybox", "sh", "-c", "echo other-ran"]);
      await eventually(
        "the other container ran",
        async () => (await root.ok(["logs", other])).includes("other-ran"),
      );
      await eventually("the flood is logged", () => {
        const log = Deno.readTextFileSync(`${root.path}/containers/${id}/${id}-json.log`);
        return log.includes("flood-done");
      }, 120_000);
      const took = Date.now() - t0;
      const log = Deno.readTextFileSync(`${root.path}/containers/${id}/${id}-json.log`).trim().split("\n")
        .map((l) => JSON.parse(l).log as string);
      assertEquals(
        log.filter((l) => l === line + "\n").length,
        lines,
        "every line of the flood is in the log",
      );
      assert(rssKiB(sup) < 300 * 1024, `supervisor RSS ${rssKiB(sup)} KiB`);
      // the slow client was let go; the container went on
      await eventually("the container exits", async () => (await status(root, id)) === "exited", 30_000);
      console.log(`50 MB through the supervisor with a stuck client: ${took} ms`);
      // dropped, not buffered for it: it gets what its pipes and its 1 MiB queue held, not 50 MB
      for (let r = await reader.read(); !r.done; r = await reader.read()) received += r.value.length;
      assert(received > 0 && received < 8 << 20, `the stuck client received ${received} bytes`);
      await a.finish();
    });
  });
});
