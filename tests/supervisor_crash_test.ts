// A supervisor crash loses nothing (issue 10, deliverable 3): kill -9 of the state root's supervisor
// idle, during a restart back-off, while a container writes 10 MB, during `logs -f`. After each the
// next command wakes a new supervisor that adopts the containers: their output goes on byte-exact
// from where it stopped, their restart policy fires, stop/kill/wait work. With no supervisor at
// all a container's output blocks; it is never lost (before this, the writer died of SIGPIPE).
// -t and -d -i containers keep their terminal and stdin through their holder (4 runs of 4 failed on
// the code before it: the interactive shell exited at the hang-up, the -d -i container read EOF).

import assert from "node:assert/strict";
import { holders, MAIN, type TestRoot } from "./helpers.ts";
import { loggedSince } from "../lib/runtime/logs.ts";
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

const alive = (pid: number) => {
  try {
    return !Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
};

/** Kills the root's one supervisor with SIGKILL and waits until it is gone. */
async function killSupervisor(root: TestRoot): Promise<number> {
  const pids = supervisorPids(root);
  assert.equal(pids.length, 1, `one supervisor: ${pids}`);
  Deno.kill(pids[0], "SIGKILL");
  await eventually("the supervisor is gone", () => !alive(pids[0]));
  return pids[0];
}

/** The container's record as on disk, read without a skiff command (which would wake a supervisor). */
function recordOnDisk(root: TestRoot, id: string): { State: { Status: string }; RestartCount: number } {
  return JSON.parse(Deno.readTextFileSync(`${root.path}/containers/${id}/container.json`));
}

/** Everything the container wrote to stdout, from its json log on disk. */
function loggedStdout(root: TestRoot, id: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${root.path}/containers/${id}/${id}-json.log`);
  } catch {
    return "";
  }
  let out = "";
  // a line being written is not there yet
  for (const line of text.slice(0, text.lastIndexOf("\n") + 1).split("\n")) {
    if (!line) continue;
    const entry = JSON.parse(line);
    if (entry.stream === "stdout") out += entry.log;
  }
  return out;
}

/** Lines 1..n, as `seq 1 n` prints them. */
const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

/** The numbers a counter container printed: they must be 1, 2, 3, ... with no gap or repeat. */
function assertCounting(text: string, atLeast: number): void {
  const numbers = text.split("\n").filter((l) => l !== "").map(Number);
  assert.ok(numbers.length >= atLeast, `${numbers.length} lines, wanted ${atLeast}`);
  assert.equal(text, seq(numbers.length), "the output is 1..n with nothing lost or repeated");
}

const COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done";

/** A skiff command as a child process, for `wait` and `logs -f` that run across the kill. */
function spawnSkiff(root: TestRoot, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function outputOf(child: Deno.ChildProcess): Promise<{ code: number; stdout: string }> {
  const out = await child.output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("supervisor killed while idle: a new one adopts; output, restart policy, kill, wait and stop go on", async () => {
  await withDetached(async (root) => {
    const a = await runDetached(root, ["--name", "aa", "busybox", "sh", "-c", COUNTER]);
    const r = await runDetached(root, [
      "--name",
      "rr",
      "--restart",
      "always",
      "busybox",
      "sh",
      "-c",
      "echo up; sleep 1; exit 3",
    ]);
    await eventually("a has logged", () => loggedStdout(root, a).split("\n").length > 10);
    const old = await killSupervisor(root);
    const atKill = loggedStdout(root, a).length;
    const restartsAtKill = recordOnDisk(root, r).RestartCount;
    // any command wakes a new supervisor, which takes both over
    assert.equal(await status(root, "aa"), "running");
    await eventually(
      "a new supervisor",
      () => supervisorPids(root).length === 1 && supervisorPids(root)[0] !== old,
    );
    await eventually("a logs on", () => loggedStdout(root, a).length > atKill + 200);
    assertCounting(loggedStdout(root, a), 20);
    // r's adopted run exits (status unknown: 255) and `always` starts it again, under the new one
    await eventually("r restarted", () => recordOnDisk(root, r).RestartCount > restartsAtKill, 15_000);
    assert.match(loggedStdout(root, r), /^(up\n){2,}$/);
    // wait and kill on the adopted a: the status is lost with the old parent, docker's 255
    const waiting = spawnSkiff(root, ["wait", "aa"]);
    await sleep(300);
    await root.ok(["kill", "aa"]);
    assert.deepEqual(await outputOf(waiting), { code: 0, stdout: "255\n" });
    assert.equal(await inspect(root, "aa", "{{.State.Status}} {{.State.ExitCode}}"), "exited 255");
    // r runs as the new supervisor's child: stop and wait know its status (its own 3, or 137 when
    // the SIGKILL after the 1 s timeout comes first)
    await eventually("r running", async () => (await status(root, "rr")) === "running");
    await root.ok(["stop", "-t", "1", "rr"]);
    const [state, code] = (await inspect(root, "rr", "{{.State.Status}} {{.State.ExitCode}}")).split(" ");
    assert.equal(state, "exited");
    assert.ok(code === "3" || code === "137", code);
    assert.equal(await root.ok(["wait", "rr"]), `${code}\n`);
  });
});

Deno.test("supervisor killed during a restart back-off: the new one starts the container again", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      "--name",
      "bb",
      "--restart",
      "always",
      "busybox",
      "sh",
      "-c",
      "echo up; exit 3",
    ]);
    // back-off 100 ms doubling: from the 4th restart on it waits >= 800 ms
    await eventually(
      "b in a long back-off",
      () => recordOnDisk(root, id).RestartCount >= 3 && recordOnDisk(root, id).State.Status === "restarting",
      20_000,
    );
    // the kill lands at times while the old supervisor was making the next run (its cgroup made, the
    // record still "restarting"): the resumed start met that cgroup ("already exists") in 2 of 4 runs
    // of this file, before the new supervisor released it first
    await killSupervisor(root);
    const atKill = recordOnDisk(root, id);
    assert.equal(atKill.State.Status, "restarting");
    await sleep(1500); // longer than the back-off was: nobody restarts it without a supervisor
    assert.equal(recordOnDisk(root, id).RestartCount, atKill.RestartCount);
    assert.equal(supervisorPids(root).length, 0);
    await root.ok(["ps"]); // wakes one
    try {
      await eventually(
        "restarted again",
        () => recordOnDisk(root, id).RestartCount > atKill.RestartCount + 1,
        15_000,
      );
    } catch (e) {
      // what the supervisor saw, for the report
      console.log(JSON.stringify(recordOnDisk(root, id)), supervisorPids(root));
      try {
        console.log(Deno.readTextFileSync(`${root.path}/supervisor.log`));
      } catch { /* none */ }
      throw e;
    }
    assert.match(loggedStdout(root, id), /^(up\n)+$/);
    await root.ok(["stop", "-t", "1", "bb"]);
    assert.equal(await status(root, "bb"), "exited");
    await sleep(1500);
    assert.equal(await status(root, "bb"), "exited", "no restart after stop");
  });
});

// 100,000 lines of 100 bytes: 10 MB, every line numbered so a gap or a repeat shows where it is
const BIG_LINES = 100_000;
const BIG = `p=$(printf '%091d' 0 | tr 0 x); ` +
  `awk -v p="$p" 'BEGIN { for (i = 1; i <= ${BIG_LINES}; i++) printf "%07d %s\\n", i, p }'`;
const bigExpected = () => {
  const pad = "x".repeat(91);
  return Array.from({ length: BIG_LINES }, (_, i) => `${String(i + 1).padStart(7, "0")} ${pad}\n`).join("");
};

Deno.test("supervisor killed while a container writes 10 MB: the log goes on byte-exact, on-failure fires", async () => {
  await withDetached(async (root) => {
    // the first run writes and fails; the restart (on-failure:1) only sleeps
    const script = `if [ -e /ran ]; then exec sleep 100; fi; touch /ran; ${BIG}; exit 5`;
    const id = await runDetached(root, [
      "--name",
      "big",
      "--restart",
      "on-failure:1",
      "busybox",
      "sh",
      "-c",
      script,
    ]);
    await eventually("2 MB logged", () => loggedStdout(root, id).length > 2_000_000, 30_000);
    await killSupervisor(root);
    const atKill = loggedStdout(root, id).length;
    // bytes the killed supervisor had taken from the pipe but not logged yet: in the spool, not lost
    const state = JSON.parse(Deno.readTextFileSync(`${root.path}/containers/${id}/output.state`));
    const inFlight = Deno.statSync(`${root.path}/containers/${id}/stdout.spool`).size - state.logged.stdout;
    console.log(`killed at ${atKill} bytes logged, ${inFlight} taken from the pipe and not yet logged`);
    assert.ok(atKill < 10_000_000, `killed mid-way (${atKill} bytes logged)`);
    // with nobody reading, the writer blocks on its full pipe: it neither dies nor drops bytes
    const pid = Number(
      await Deno.readTextFile(`${root.path}/containers/${id}/container.json`).then((t) =>
        JSON.parse(t).State.Pid
      ),
    );
    const writer = () =>
      Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(" ").map(Number)[0];
    await eventually(
      "the writer blocks",
      () => /pipe_write/.test(Deno.readTextFileSync(`/proc/${writer()}/wchan`)),
    );
    assert.equal(loggedStdout(root, id).length, atKill);
    await root.ok(["ps"]); // wakes the next supervisor
    await eventually("all 10 MB logged", () => loggedStdout(root, id).length >= 10_000_000, 60_000);
    assert.ok(loggedStdout(root, id) === bigExpected(), "the log is exactly the 10 MB written, in order");
    await eventually("restarted once", () => recordOnDisk(root, id).RestartCount === 1, 15_000);
    await eventually("running again", async () => (await status(root, "big")) === "running");
    const waiting = spawnSkiff(root, ["wait", "big"]);
    await sleep(300);
    await root.ok(["kill", "big"]);
    assert.deepEqual(await outputOf(waiting), { code: 0, stdout: "137\n" });
    assert.ok(loggedStdout(root, id) === bigExpected(), "nothing more, nothing repeated");
  });
});

Deno.test("supervisor killed during logs -f: the follower keeps getting lines; always still restarts", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "ff", "--restart", "always", "busybox", "sh", "-c", COUNTER]);
    const follower = spawnSkiff(root, ["logs", "-f", "ff"]);
    let followed = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of follower.stdout) followed += decoder.decode(chunk, { stream: true });
    })();
    try {
      await eventually("following", () => followed.split("\n").length > 10);
      await killSupervisor(root);
      const atKill = followed.length;
      await eventually("lines after the kill", () => followed.length > atKill + 300, 15_000);
      assertCounting(followed.slice(0, followed.lastIndexOf("\n") + 1), 30);
      // the adopted run dies: `always` starts it again under the new supervisor
      const pid = Number(await inspect(root, "ff", "{{.State.Pid}}"));
      Deno.kill(pid, "SIGKILL");
      await eventually(
        "restarted",
        async () => (await inspect(root, "ff", "{{.RestartCount}} {{.State.Status}}")) === "1 running",
        15_000,
      );
      await root.ok(["stop", "-t", "1", "ff"]);
      assert.equal(await status(root, "ff"), "exited");
    } finally {
      try {
        follower.kill("SIGKILL");
      } catch { /* ended with the container */ }
      await follower.status;
      await reading.catch(() => {});
      await follower.stderr.cancel().catch(() => {});
    }
  });
});

Deno.test("no supervisor: a container's output blocks instead of being lost", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, ["--name", "qq", "busybox", "sh", "-c", "sleep 1; exec seq 1 100000"]);
    await killSupervisor(root); // before the first byte: nobody reads when seq writes
    const pid = Number(
      JSON.parse(Deno.readTextFileSync(`${root.path}/containers/${id}/container.json`)).State.Pid,
    );
    // 589 KB against a 64 KiB pipe: seq blocks in write (before this change: SIGPIPE, dead)
    await eventually(
      "seq blocks",
      () => alive(pid) && /pipe_write/.test(Deno.readTextFileSync(`/proc/${pid}/wchan`)),
      8000,
    );
    await sleep(500);
    assert.ok(alive(pid), "the writer is alive");
    assert.equal(supervisorPids(root).length, 0);
    await root.ok(["ps"]);
    await eventually("everything logged", () => loggedStdout(root, id).length >= seq(100_000).length, 20_000);
    assert.ok(loggedStdout(root, id) === seq(100_000), "seq 1 100000, byte for byte");
    await eventually("recorded", async () => (await status(root, "qq")) === "exited");
  });
});

// Attack: the container's fd 1 and 2 are the supervisor's pipes, opened read-write by the init stage.
// Through /proc/self/fd the container may reopen, chmod or chown what they point to: that must be an
// anonymous pipe, not a file of the host (a FIFO in the state root would be the host's inode, which
// root in the container could chmod or chown through the magic link).
Deno.test("attack: /proc/self/fd/1 and /2 of a detached container reach nothing of the host", async () => {
  await withDetached(async (root) => {
    const script = "readlink /proc/self/fd/1; readlink /proc/self/fd/2; " +
      "chmod 666 /proc/self/fd/1 && echo chmod-ok; chown 1234:1234 /proc/self/fd/2 && echo chown-ok; " +
      "echo reopened > /proc/self/fd/1; sleep 100";
    const id = await runDetached(root, ["--name", "xx", "busybox", "sh", "-c", script]);
    await eventually("it ran", () => loggedStdout(root, id).includes("reopened"));
    const lines = loggedStdout(root, id).split("\n");
    assert.match(lines[0], /^pipe:\[\d+\]$/);
    assert.match(lines[1], /^pipe:\[\d+\]$/);
    // whatever chmod/chown did, it was to the pipe inodes: no file of the state root changed
    const dir = `${root.path}/containers/${id}`;
    for (const entry of Deno.readDirSync(dir)) {
      const info = Deno.lstatSync(`${dir}/${entry.name}`);
      assert.ok(!info.isFifo, `${entry.name} is not a FIFO`);
      assert.notEqual(info.uid, 1234, `${entry.name} kept its owner`);
      assert.notEqual((info.mode ?? 0) & 0o777, 0o666, `${entry.name} kept its mode`);
    }
    // the host end: the supervisor's pipe, the same inode the container chmodded
    const pid = Number(await inspect(root, "xx", "{{.State.Pid}}"));
    const inode = Deno.readLinkSync(`/proc/${pid}/fd/1`);
    assert.equal(inode, lines[0]);
    await root.ok(["rm", "-f", "xx"]);
  });
});

// -t and -d -i: a holder (lib/engine/holder.ts), a fork of the supervisor that runs only exec's
// interpreter, keeps a copy of the pty master and of the stdin pipe's write end for the container's
// life. Before it, the kill hung the terminal up (an interactive shell as PID 1 exited at the EOF,
// a writer's output was lost: EIO) and a -d -i container read EOF.

/** The holder of container PID 1 `pid` (engine/holder.ts): watched through its pidfd's fdinfo. */
const holderOf = (pid: number) => holders().filter((h) => h.watches === pid);

/** stdout from the log without the pty's carriage returns. */
const ttyStdout = (root: TestRoot, id: string) => loggedStdout(root, id).replaceAll("\r", "");

Deno.test("-t container and a supervisor crash: its terminal is held; logs go on without loss; attach works", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      // a line a second, through the pty
      const t = await runDetached(root, [
        "-t",
        "--name",
        "tt",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i; sleep 1; done",
      ]);
      const shell = await runDetached(root, ["-it", "--name", "sh", "busybox", "sh"]);
      const pid = Number(await inspect(root, t, "{{.State.Pid}}"));
      const shellPid = Number(await inspect(root, shell, "{{.State.Pid}}"));
      await eventually(
        "a holder per -t container",
        () => holderOf(pid).length + holderOf(shellPid).length === 2,
      );
      await eventually("t logs", () => ttyStdout(root, t).split("\n").length > 2);
      await killSupervisor(root);
      const atKill = ttyStdout(root, t).split("\n").length - 1;
      await sleep(3000); // it goes on writing into its terminal meanwhile
      assert.ok(alive(pid) && alive(shellPid), "both survive the crash");
      assert.equal(recordOnDisk(root, shell).State.Status, "running");
      await inspect(root, t, "{{.State.Pid}}"); // wakes the next supervisor, which adopts them
      await eventually("the lines written without a supervisor are logged", () => {
        return ttyStdout(root, t).split("\n").length - 1 >= atKill + 4;
      }, 15_000);
      assertCounting(ttyStdout(root, t), atKill + 4);
      // the interactive shell kept its terminal: attach, type, detach with ctrl-p ctrl-q
      const a = track(Proc.onPty(`${skiffLine(root, `attach ${shell}`)}; echo attach-rc=$?`));
      await a.send("echo mark-$((6*7))\r");
      await a.waitFor("mark-42");
      await a.send(new Uint8Array([16]));
      await sleep(200);
      await a.send(new Uint8Array([17]));
      await a.waitFor("attach-rc=1");
      assert.match(a.stdout, /read escape sequence/);
      await a.closeInput();
      await a.finish();
      assert.equal(await status(root, shell), "running");
      // and its output reached the log too
      assert.match(ttyStdout(root, shell), /mark-42/);
      // exit through the terminal after the adoption: recorded, and the holders go with them
      const e = track(Proc.onPty(`${skiffLine(root, `attach ${shell}`)}; echo attach-rc=$?`));
      await e.send("exit 3\r");
      await e.waitFor("attach-rc=");
      await e.closeInput();
      await e.finish();
      await eventually("sh exited", async () => (await status(root, shell)) === "exited");
      // the adopted -t container's restart policy: a new run, a new terminal and holder
      Deno.kill(pid, "SIGKILL");
      await eventually(
        "restarted",
        async () => (await inspect(root, t, "{{.RestartCount}} {{.State.Status}}")) === "1 running",
        15_000,
      );
      const pid2 = Number(await inspect(root, t, "{{.State.Pid}}"));
      await eventually("a holder for the new run", () => holderOf(pid2).length === 1);
      await root.ok(["stop", "-t", "1", t]);
      await eventually(
        "no holder left",
        () => holderOf(pid).length + holderOf(shellPid).length + holderOf(pid2).length === 0,
      );
    });
  });
});

Deno.test("-d -i container and a supervisor crash: its stdin is held; attach sends input after the adoption", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, [
        "-i",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; echo eof",
      ]);
      const pid = Number(await inspect(root, id, "{{.State.Pid}}"));
      await eventually("a holder", () => holderOf(pid).length === 1);
      await killSupervisor(root);
      await sleep(500);
      assert.ok(alive(pid), "it did not read EOF");
      await inspect(root, id, "{{.State.Pid}}"); // wakes the next supervisor
      // attach is served once the new supervisor has taken the container over (it records itself)
      await eventually("the adoption", () => {
        const monitor = (recordOnDisk(root, id).State as { MonitorPid?: number }).MonitorPid;
        return supervisorPids(root).length === 1 && monitor === supervisorPids(root)[0];
      }, 15_000);
      const a = track(Proc.skiff(root, ["attach", id], { stdin: true }));
      await a.send("hello\n");
      await a.waitFor("got:hello\n");
      await a.closeInput(); // not StdinOnce: ends this attach only, not the container's stdin
      await sleep(500);
      assert.equal(await status(root, id), "running");
      assert.equal(await root.ok(["logs", id]), "got:hello\n");
      await root.ok(["stop", "-t", "1", id]);
      await a.finish(); // attach waits for the container, as docker's
      await eventually("the holder went with the container", () => holderOf(pid).length === 0);
    });
  });
});

// What a holder is, seen from the host and from its container. Before the holder program unmaps
// skiff, the fork is a copy of the supervisor: every check below is what must not remain of it.
Deno.test("attack: a holder has no pid in its container, none of skiff's memory, and only the held fds", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, ["-it", "busybox", "sh"]);
    const pid = Number(await inspect(root, id, "{{.State.Pid}}"));
    await eventually("a holder", () => holderOf(pid).length === 1);
    const [h] = holderOf(pid);
    // its exe is the sealed empty memfd, not skiff's binary
    assert.equal(Deno.readLinkSync(`/proc/${h.pid}/exe`), "/memfd:skiff-holder (deleted)");
    // its memory: the program's pages only (no file mapped, nothing of Deno, libc or the heap)
    const maps = Deno.readTextFileSync(`/proc/${h.pid}/maps`).trim().split("\n");
    for (const line of maps) {
      const name = line.split(/\s+/).slice(5).join(" ");
      assert.ok(["", "[stack]", "[heap]", "[vsyscall]"].includes(name), `a mapping of skiff: ${line}`);
    }
    const rss = Number(/Rss:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${h.pid}/smaps_rollup`))![1]);
    assert.ok(rss <= 256, `${rss} kB resident`);
    assert.equal(Deno.readTextFileSync(`/proc/${h.pid}/cmdline`), "");
    // its fds: the pty master and the pidfd of the container's PID 1, nothing else
    assert.deepEqual(
      h.fds.map((f) => f.split(" ")[1].replace(/^\/dev\/pts\/ptmx$/, "/dev/ptmx")).sort(),
      ["/dev/ptmx", "anon_inode:[pidfd]"],
    );
    // the host's PID namespace only (one NSpid entry; the container's PID 1 has two), not in the
    // container's cgroups
    const nspid = (p: number) =>
      /NSpid:\s+(.*)/.exec(Deno.readTextFileSync(`/proc/${p}/status`))![1].split(/\s+/);
    assert.equal(nspid(h.pid).length, 1);
    assert.equal(nspid(pid).length, 2);
    assert.equal(Deno.readLinkSync(`/proc/${h.pid}/ns/pid`), Deno.readLinkSync("/proc/self/ns/pid"));
    assert.ok(!Deno.readTextFileSync(`/proc/${h.pid}/cgroup`).includes(id), "not in the container's cgroup");
    // from inside: every process there is the container's own (sh, and exec's sh and cat), none
    // named skiff-holder
    assert.equal(Deno.readTextFileSync(`/proc/${h.pid}/comm`), "skiff-holder\n");
    const seen = (await root.ok(["exec", id, "sh", "-c", "cat /proc/[0-9]*/stat"])).trim().split("\n");
    assert.ok(seen.length >= 2 && seen.every((s) => /^\d+ \((sh|cat)\)/.test(s)), seen.join("\n"));
    await root.ok(["rm", "-f", id]);
    await eventually("the holder went with the container", () => holderOf(pid).length === 0);
  });
});

Deno.test("loggedSince: counts each stream's bytes after the commit, across a rotation; cuts a half-written line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-loggedsince-" });
  try {
    const path = `${dir}/c-json.log`;
    const entry = (log: string, stream: string) =>
      JSON.stringify({ log, stream, time: "2026-12-06T00:00:00.000000000Z" }) + "\n";
    Deno.writeTextFileSync(path, entry("before\n", "stdout"));
    const committed = { ino: Deno.statSync(path).ino!, size: Deno.statSync(path).size };
    // written after the commit, then rotated (max-file 3), then more in the new live file and a cut line
    Deno.writeTextFileSync(path, entry("é1\n", "stdout") + entry("err\n", "stderr"), { append: true });
    Deno.renameSync(path, `${path}.1`);
    Deno.writeTextFileSync(path, entry("22\n", "stdout") + entry("333", "stdout").slice(0, 20));
    const counts = loggedSince(path, 3, committed);
    assert.deepEqual(counts, { stdout: new TextEncoder().encode("é1\n22\n").length, stderr: 4 });
    assert.equal(Deno.readTextFileSync(path), entry("22\n", "stdout"), "the cut line is gone");
    // the committed file is the live one: only what follows the committed length counts
    assert.deepEqual(loggedSince(`${path}.1`, 1, committed), { stdout: 4, stderr: 4 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
