// skiff exec: exit codes, environment, user, working dir, and that the process really joins the
// container (namespaces, cgroups, capabilities) while PID 1 is busy and ignores SIGTERM.

import assert from "node:assert/strict";
import { MAIN, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

const statusField = (status: string, name: string) =>
  status.match(new RegExp(`^${name}:\\s*(\\S+)`, "m"))?.[1];

Deno.test("exec: exit codes 0, 3, 126, 127 with docker's messages", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "ex1", async () => {
      assert.equal((await root.skiff(["exec", "ex1", "true"])).code, 0);
      assert.equal((await root.skiff(["exec", "ex1", "sh", "-c", "exit 3"])).code, 3);
      const missing = await root.skiff(["exec", "ex1", "nosuch"]);
      assert.equal(missing.code, 127);
      assert.match(
        missing.stderr,
        /OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in \$PATH: unknown/,
      );
      const notExecutable = await root.skiff(["exec", "ex1", "/etc/passwd"]);
      assert.equal(notExecutable.code, 126);
      assert.match(notExecutable.stderr, /exec: "\/etc\/passwd": permission denied/);
      const badDir = await root.skiff(["exec", "-w", "/nosuch", "ex1", "true"]);
      assert.equal(badDir.code, 126);
      assert.match(badDir.stderr, /chdir to cwd \("\/nosuch"\)/);
    });
  });
});

Deno.test("exec: the container's env with -e and --env-file on top, -w, -u", async () => {
  await withBusybox(async (root) => {
    const envFile = await Deno.makeTempFile();
    try {
      Deno.writeTextFileSync(envFile, "# comment\nFROM_FILE=f\nBOTH=file\n");
      await withBackground(
        root,
        "ex2",
        async () => {
          const out = await root.ok([
            "exec",
            "--env-file",
            envFile,
            "-e",
            "BOTH=flag",
            "-e",
            "RUNENV=exec",
            "ex2",
            "sh",
            "-c",
            "echo $RUNENV $ONLYRUN $FROM_FILE $BOTH $HOME; pwd",
          ]);
          assert.equal(out, "exec keep f flag /root\n/\n");
          assert.equal(await root.ok(["exec", "-w", "/tmp", "ex2", "pwd"]), "/tmp\n");
          assert.equal(
            await root.ok(["exec", "-u", "user", "ex2", "sh", "-c", "id; echo $HOME"]),
            "uid=1000(user) gid=1000(user) groups=1000(user),2000(extra)\n/home/user\n",
          );
          assert.equal(await root.ok(["exec", "-u", "1234:55", "ex2", "id"]), "uid=1234 gid=55 groups=55\n");
        },
        ["sleep", "100"],
        ["-e", "RUNENV=run", "-e", "ONLYRUN=keep"],
      );
    } finally {
      Deno.removeSync(envFile);
    }
  });
});

Deno.test("exec: same namespaces, cgroups and capabilities as PID 1", async () => {
  await withBusybox(async (root) => {
    await withBackground(
      root,
      "ex3",
      async (c) => {
        const script = [
          ...["net", "uts", "ipc"].flatMap((
            ns,
          ) => [`readlink /proc/self/ns/${ns}`, `readlink /proc/1/ns/${ns}`]),
          "echo pid=$$",
          "hostname",
          "cat /proc/self/cgroup",
          "echo ---",
          "cat /proc/1/cgroup",
          "echo ---",
          "cat /proc/self/status",
        ].join("; ");
        const out = await root.ok(["exec", "ex3", "sh", "-c", script]);
        const lines = out.split("\n");
        assert.equal(lines[0], lines[1], "net ns");
        assert.equal(lines[2], lines[3], "uts ns");
        assert.equal(lines[4], lines[5], "ipc ns");
        const pid = Number(lines[6].slice(4));
        assert.ok(pid > 1, `pid inside the container's namespace: ${pid}`);
        assert.equal(lines[7], c.id.slice(0, 12), "hostname");
        const [own, ofPid1, status] = lines.slice(8).join("\n").split("---\n");
        assert.equal(own, ofPid1, "cgroups");
        const pid1 = Deno.readTextFileSync(`/proc/${c.pid}/status`);
        for (const field of ["CapEff", "CapPrm", "CapBnd", "NoNewPrivs"]) {
          assert.equal(statusField(status, field), statusField(pid1, field), field);
        }
        // busybox sh ignores SIGQUIT for its last command: look at a process exec'd directly
        const direct = await root.ok(["exec", "ex3", "cat", "/proc/self/status"]);
        assert.equal(statusField(direct, "SigIgn"), "0000000000000000");
        // ps inside the container sees the exec'd process next to PID 1
        const ps = await root.ok(["exec", "ex3", "ps", "-o", "pid,comm"]);
        assert.match(ps, /^\s*1 sleep$/m);
        assert.match(ps, /^\s*\d+ ps$/m);
        // --privileged: every capability the host grants
        const privileged = await root.ok(["exec", "--privileged", "ex3", "cat", "/proc/self/status"]);
        assert.notEqual(statusField(privileged, "CapEff"), statusField(pid1, "CapEff"));
        // skiff itself left the container's cgroups: rm -f (cleanup) can remove them
      },
      ["sleep", "100"],
      ["--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME"],
    );
  });
});

Deno.test("exec: PID 1 busy and ignoring SIGTERM; -i stdin; -d returns at once", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "ex4", async () => {
      assert.equal(await root.ok(["exec", "-i", "ex4", "cat"], { stdin: "from stdin\n" }), "from stdin\n");
      assert.equal(await root.ok(["exec", "ex4", "cat"], { stdin: "ignored\n" }), "");
      const start = Date.now();
      assert.equal(await root.ok(["exec", "-d", "ex4", "sh", "-c", "sleep 2; touch /tmp/done"]), "");
      assert.ok(Date.now() - start < 1500, "-d returns before the command ends");
      assert.equal((await root.skiff(["exec", "ex4", "test", "-e", "/tmp/done"])).code, 1);
      let done = false;
      for (let i = 0; i < 60 && !done; i++) {
        done = (await root.skiff(["exec", "ex4", "test", "-e", "/tmp/done"])).code === 0;
        if (!done) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(done, "the detached command ran to its end");
    }, ["sh", "-c", "trap '' TERM; while :; do :; done"]);
  });
});

Deno.test("exec: unknown, stopped and paused containers are refused", async () => {
  await withBusybox(async (root) => {
    const unknown = await root.skiff(["exec", "nosuch", "true"]);
    assert.equal(unknown.code, 1); // docker 20.10: "Error: No such container: nosuch", exit 1
    assert.match(unknown.stderr, /No such container: nosuch/);
    await root.ok(["run", "--name", "stopped", "busybox", "true"]);
    const stopped = await root.skiff(["exec", "stopped", "true"]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /Container [0-9a-f]{64} is not running/);
    const usage = await root.skiff(["exec", "stopped"]);
    assert.equal(usage.code, 1); // docker's CLI: 1 for a wrong number of arguments
    await withBackground(root, "ex5", async () => {
      await root.ok(["pause", "ex5"]);
      const paused = await root.skiff(["exec", "ex5", "true"]);
      assert.equal(paused.code, 1);
      assert.match(paused.stderr, /Container [0-9a-f]{64} is paused, unpause the container before exec/);
      await root.ok(["unpause", "ex5"]);
    });
  });
});

Deno.test("exec -t / -it: the command gets a pty as controlling terminal (under script)", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "ex6", async () => {
      const skiff = `${Deno.execPath()} run -A ${MAIN} --root ${root.path}`;
      const script = async (line: string, input = "") => {
        const child = new Deno.Command("script", {
          args: ["-qec", line, "/dev/null"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const writer = child.stdin.getWriter();
        if (input) {
          await new Promise((r) => setTimeout(r, 1500)); // typed once the command is up
          await writer.write(new TextEncoder().encode(input));
        }
        await writer.close();
        const out = await child.output();
        return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
      };
      // field 7 of /proc/self/stat: the controlling terminal (0 when there is none)
      const t = await script(
        `${skiff} exec -t ex6 sh -c 'test -t 0 && test -t 1 && echo both-ttys; echo $TERM; cut -d" " -f7 /proc/self/stat; exit 4'`,
      );
      assert.equal(t.code, 4);
      assert.match(t.stdout, /both-ttys\r+\nxterm\r+\n/); // no raw mode without -i: \r\r\n
      assert.doesNotMatch(t.stdout, /^0\r/m);
      const it = await script(`${skiff} exec -it ex6 head -n1`, "typed\n");
      assert.equal(it.code, 0);
      assert.match(it.stdout, /typed\r\n/);
      const missing = await script(`${skiff} exec -t ex6 nosuch`);
      assert.equal(missing.code, 127);
      assert.match(missing.stdout, /executable file not found in \$PATH/);
    });
  });
});
