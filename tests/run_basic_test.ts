// `skiff run` in the foreground: namespaces, the container's own root, image config and flags, and
// docker's exit codes. Every test runs real containers against the kernel (root required).

import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  notStrictEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { join } from "node:path";
import { withBusybox, withRoot } from "./helpers.ts";
import { withDetached } from "./detach_helpers.ts";
import { hostSupport } from "../lib/cgroups/support.ts";

Deno.test("run: the command is PID 1 and ps sees only the container's processes", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok(["run", "--rm", "busybox", "sh", "-c", "echo pid=$$; ps -o pid,comm"]);
    assertMatch(out, /^pid=1$/m);
    const pids = out.split("\n").slice(2).map((l) => l.trim()).filter(Boolean);
    // sh itself and the ps it started: nothing of the host
    assert(pids.length <= 2, `unexpected processes:\n${out}`);
    assertEquals(root.containerIds(), []);
  });
});

Deno.test("run: hostname defaults to the short id, -h sets it, /etc/hostname agrees", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "h1", "busybox", "sh", "-c", "hostname; cat /etc/hostname"]);
    const [id] = root.containerIds();
    const record = JSON.parse(Deno.readTextFileSync(join(root.path, "containers", id, "container.json")));
    const logs = await root.ok([
      "run",
      "--rm",
      "-h",
      "web-1",
      "busybox",
      "sh",
      "-c",
      "hostname; cat /etc/hostname",
    ]);
    assertEquals(logs, "web-1\nweb-1\n");
    assertEquals(record.Config.Hostname, id.slice(0, 12));
    assertEquals(record.State.Status, "exited");
    assertEquals(record.State.ExitCode, 0);
    assertNotEquals(record.State.MonitorPid, undefined);
    const plain = await root.ok(["run", "--rm", "busybox", "hostname"]);
    assertMatch(plain.trim(), /^[0-9a-f]{12}$/);
  });
});

Deno.test("run: / is the overlay of the image; host files are not visible", async () => {
  await withBusybox(async (root) => {
    const marker = join(root.path, "host-only-marker");
    Deno.writeTextFileSync(marker, "x");
    const out = await root.ok([
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      `grep ' / ' /proc/mounts; ls /; test -e ${marker} && echo LEAK; test -e /work && echo LEAK; true`,
    ]);
    assertMatch(out, /^overlay \/ overlay /m);
    assert(!out.includes("LEAK"), out);
    assertMatch(out, /^bin$/m);
  });
});

Deno.test("run: a file written in one container is not visible in another", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "writer", "busybox", "sh", "-c", "echo secret > /written"]);
    const other = await root.skiff(["run", "--rm", "busybox", "cat", "/written"]);
    assertEquals(other.code, 1);
    const [id] = root.containerIds();
    assertEquals(Deno.readTextFileSync(join(root.path, "containers", id, "upper", "written")), "secret\n");
  });
});

Deno.test("run: env from the image, -e, bare -e, --env-file; HOME and PATH defaults", async () => {
  await withBusybox(async (root) => {
    const envFile = join(root.path, "env.list");
    Deno.writeTextFileSync(envFile, "# comment\n\nFROM_FILE=1\nSHARED=file\n");
    const out = await root.ok(
      [
        "run",
        "--rm",
        "--env-file",
        envFile,
        "-e",
        "SHARED=flag",
        "-e",
        "A=b=c",
        "-e",
        "PASSED",
        "-e",
        "UNSET_X",
        "busybox",
        "env",
      ],
      { env: { PASSED: "from-caller" } },
    );
    const env = Object.fromEntries(
      out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    assertEquals(env.FROM_FILE, "1");
    assertEquals(env.SHARED, "flag");
    assertEquals(env.A, "b=c");
    assertEquals(env.PASSED, "from-caller");
    assertEquals(env.UNSET_X, undefined);
    assertEquals(env.HOME, "/root");
    assertEquals(env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    assertMatch(env.HOSTNAME, /^[0-9a-f]{12}$/);
    assertEquals(env.TERM, undefined);
  });
});

Deno.test("run: --entrypoint, cmd and -w", async () => {
  await withBusybox(async (root) => {
    assertEquals(await root.ok(["run", "--rm", "--entrypoint", "/bin/echo", "busybox", "a", "b"]), "a b\n");
    assertEquals(await root.ok(["run", "--rm", "--entrypoint", "", "busybox", "echo", "c"]), "c\n");
    assertEquals(await root.ok(["run", "--rm", "-w", "/tmp", "busybox", "pwd"]), "/tmp\n");
    // docker creates a missing working directory
    assertEquals(await root.ok(["run", "--rm", "-w", "/new/dir", "busybox", "pwd"]), "/new/dir\n");
    const bad = await root.skiff(["run", "--rm", "-w", "relative", "busybox", "pwd"]);
    assertEquals(bad.code, 125);
    assertMatch(bad.stderr, /needs to be an absolute path/);
  });
});

Deno.test("run: -u user, -u uid:gid, unknown user", async () => {
  await withBusybox(async (root) => {
    const named = await root.ok(["run", "--rm", "-u", "user", "busybox", "sh", "-c", "id; echo $HOME"]);
    assertMatch(named, /^uid=1000\(user\) gid=1000\(user\) groups=.*2000\(extra\)/m);
    assertMatch(named, /^\/home\/user$/m);
    const ids = await root.ok(["run", "--rm", "-u", "1000:2000", "busybox", "id"]);
    assertMatch(ids, /^uid=1000\(user\) gid=2000\(extra\)/);
    const numeric = await root.ok(["run", "--rm", "-u", "4321", "busybox", "id", "-u"]);
    assertEquals(numeric, "4321\n");
    const missing = await root.skiff(["run", "--rm", "-u", "nosuchuser", "busybox", "id"]);
    assertEquals(missing.code, 125);
    assertMatch(missing.stderr, /unable to find user nosuchuser/);
    assertEquals(missing.stderr.trim().split("\n").length, 1);
  });
});

Deno.test("run: --add-host, --dns, --dns-search, --dns-option, --group-add", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--rm",
      "--add-host",
      "db:10.0.0.5",
      "--add-host",
      "six:::1",
      "--dns",
      "192.0.2.53",
      "--dns-search",
      "example.test",
      "--dns-option",
      "ndots:2",
      "--group-add",
      "extra",
      "--group-add",
      "4242",
      "-u",
      "1000",
      "busybox",
      "sh",
      "-c",
      // whole words: the container's own line names its id, which may contain "db"
      "grep -wE 'db|six' /etc/hosts; cat /etc/resolv.conf; id -G",
    ]);
    assertEquals(
      out,
      "10.0.0.5\tdb\n::1\tsix\nnameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n1000 2000 4242\n",
    );
    // without flags: the host's resolv.conf minus loopback servers, never empty
    const plain = await root.ok(["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assertMatch(plain, /^nameserver /m);
    assert(!/nameserver 127\./.test(plain), plain);
    for (
      const [flags, message] of [
        [["--add-host", "nohost"], /bad format for add-host: "nohost"/],
        [["--add-host", "h:not-an-ip"], /invalid IP address in add-host: "not-an-ip"/],
        [["--dns", "dns.example"], /dns.example is not an ip address/],
      ] as const
    ) {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assertEquals(r.code, 125, r.stderr);
      assertMatch(r.stderr, message);
    }
    const unknownGroup = await root.skiff(["run", "--rm", "--group-add", "nosuchgroup", "busybox", "true"]);
    assertEquals(unknownGroup.code, 125);
    // docker 20.10.24: "Unable to find group nosuchgroup: no matching entries in group file"
    assertMatch(unknownGroup.stderr, /Unable to find group nosuchgroup: no matching entries in group file/);
    assertEquals(root.containerIds(), []);
  });
});

Deno.test("run: --tmpfs with docker's defaults and options, --shm-size", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--rm",
      "--shm-size",
      "8m",
      "--tmpfs",
      "/scratch",
      "--tmpfs",
      "/run/app:size=1m,mode=700,exec",
      "busybox",
      "sh",
      "-c",
      "grep -E ' /(dev/shm|scratch|run/app) ' /proc/mounts; stat -c %a /run/app",
    ]);
    const mounts = out.trim().split("\n");
    assertMatch(mounts[0], /^shm \/dev\/shm tmpfs rw,nosuid,nodev,noexec,.*size=8192k/);
    assertMatch(mounts[1], /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,/);
    assertMatch(mounts[2], /^tmpfs \/run\/app tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=700/);
    assertEquals(mounts[3], "700");
    const bad = await root.skiff(["run", "--rm", "--tmpfs", "relative", "busybox", "true"]);
    assertEquals(bad.code, 125);
    assertMatch(bad.stderr, /mount path must be absolute/);
  });
});

Deno.test("run: exit codes 0, 1, N, 126, 127", async () => {
  await withBusybox(async (root) => {
    assertEquals((await root.skiff(["run", "--rm", "busybox", "true"])).code, 0);
    assertEquals((await root.skiff(["run", "--rm", "busybox", "false"])).code, 1);
    assertEquals((await root.skiff(["run", "--rm", "busybox", "sh", "-c", "exit 42"])).code, 42);
    const notExec = await root.skiff(["run", "--rm", "busybox", "/etc/passwd"]);
    assertEquals(notExec.code, 126);
    assertMatch(notExec.stderr, /permission denied/);
    const dir = await root.skiff(["run", "--rm", "busybox", "/etc"]);
    assertEquals(dir.code, 126);
    const missing = await root.skiff(["run", "--rm", "busybox", "nosuchcmd"]);
    assertEquals(missing.code, 127);
    assertMatch(missing.stderr, /exec: "nosuchcmd": executable file not found in \$PATH/);
    assertEquals(missing.stderr.trim().split("\n").length, 1);
    const missingPath = await root.skiff(["run", "--rm", "busybox", "/no/such"]);
    assertEquals(missingPath.code, 127);
    assertEquals(root.containerIds(), []);
  });
});

Deno.test("run: a failed start leaves the container 'created' with docker's exit code", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["run", "--name", "broken", "busybox", "nosuchcmd"]);
    assertEquals(r.code, 127);
    const [id] = root.containerIds();
    const record = JSON.parse(Deno.readTextFileSync(join(root.path, "containers", id, "container.json")));
    assertEquals(record.State.Status, "created");
    assertEquals(record.State.ExitCode, 127);
    assertMatch(record.State.Error, /executable file not found/);
  });
});

// docker 20.10 on this machine: `run -d` prints the id of the container it made, then the start's error, and its
// CLI's code from the error's words (127 for a missing file); a user lookup is the daemon's own line:
//   $ docker run -d -u nosuch localhost/bb true   -> <id>, "docker: Error response from daemon: unable to find
//     user nosuch: no matching entries in passwd file.", exit 125
//   $ docker run -d localhost/bb nonexist_cmd     -> <id>, "... unable to start container process: exec:
//     \"nonexist_cmd\": executable file not found in $PATH: unknown.", exit 127
Deno.test("run -d: a failed start prints the container's id, then the error; docker's codes and wording", async () => {
  await withDetached(async (root) => {
    const user = await root.skiff(["run", "-d", "-u", "nosuch", "busybox", "true"]);
    assertEquals(user.code, 125);
    assertEquals(user.stderr, "skiff: unable to find user nosuch: no matching entries in passwd file\n");
    assertEquals(root.containerIds(), [user.stdout.trim()]);
    const cmd = await root.skiff(["run", "-d", "busybox", "nonexist_cmd"]);
    assertEquals(cmd.code, 127);
    assertEquals(
      cmd.stderr,
      'skiff: unable to start container process: exec: "nonexist_cmd": executable file not found in $PATH\n',
    );
    assertEquals(root.containerIds().includes(cmd.stdout.trim()), true);
    // the foreground run says the user lookup in the same words
    const fg = await root.skiff(["run", "--rm", "-u", "nosuch", "busybox", "true"]);
    assertEquals([fg.code, fg.stdout, fg.stderr], [125, "", user.stderr]);
  });
});

Deno.test("run: exit 125 and nothing on disk for unknown image, bad flags, name in use", async () => {
  await withBusybox(async (root) => {
    // --pull never: a name without a registry host would otherwise be pulled from Docker Hub, and
    // tests send traffic only to 127.0.0.0/8
    const unknown = await root.skiff(["run", "--rm", "--pull", "never", "nosuchimage", "true"]);
    assertEquals(unknown.code, 125);
    assertEquals(unknown.stderr.trim(), "skiff: Unable to find image 'nosuchimage:latest' locally");
    for (
      const [flags, message] of [
        [["--bogus"], /unknown flag: --bogus/],
        [["--memory", "12q"], /invalid argument "12q" for "-m, --memory" flag/],
        [["--cpus", "-1"], /Range of CPUs is from 0.01/],
        [["--cpus", "abc"], /invalid argument "abc" for "--cpus" flag/],
        [["--cpuset-cpus", "99"], /Requested CPUs are not available/],
        [["--memory", "1m"], /Minimum memory limit allowed is 6MB/],
        [["--cap-add", "NOPE"], /unknown capability: "CAP_NOPE"/],
        [["--cpus", "1", "--cpu-period", "50000"], /Conflicting options: Nano CPUs and CPU Period/],
        [["--device-cgroup-rule", "x 1:2"], /invalid device cgroup format 'x 1:2'/],
        // docker discards swappiness before its range check where the kernel has none (cgroup v2)
        ...hostSupport().memorySwappiness
          ? [[["--memory-swappiness", "200"], /valid memory swappiness range is 0-100/] as const]
          : [],
        [["-d", "--restart", "always"], /Conflicting options: --restart and --rm/],
        [["--name", "bad/name"], /Invalid container name/],
      ] as const
    ) {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assertEquals(r.code, 125, `${flags.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, message);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const noImage = await root.skiff(["run"]);
    assertEquals(noImage.code, 1); // docker's CLI: 1 for a wrong number of arguments, run's too
    assertEquals(root.containerIds(), []);
    assertEquals([...Deno.readDirSync(join(root.path, "tmp"))], []);

    await root.ok(["run", "--name", "taken", "busybox", "true"]);
    const conflict = await root.skiff(["run", "--rm", "--name", "taken", "busybox", "true"]);
    assertEquals(conflict.code, 125);
    assertMatch(conflict.stderr, /Conflict. The container name "\/taken" is already in use/);
    assertEquals(root.containerIds().length, 1);
  });
});

Deno.test("run: unknown image needs no image at all", async () => {
  await withRoot(async (root) => {
    const r = await root.skiff(["run", "--rm", "--pull", "never", "busybox"]);
    assertEquals(r.code, 125);
    assertEquals(r.stderr.trim(), "skiff: Unable to find image 'busybox:latest' locally");
  });
});
