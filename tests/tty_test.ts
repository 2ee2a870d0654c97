// -t: the container's terminal comes from its own devpts, as docker's does (runc makes the pty in the
// container and sends the master out over a console socket), never from the host's: `tty` prints
// /dev/pts/0, /proc/self/fd/0 reads /dev/pts/0, /dev/pts holds "0 ptmx", /dev/console is the slave.

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { eventually, Proc, runDetached, skiffLine, withDetached, withProcs } from "./detach_helpers.ts";

/** What the terminal looks like from inside (the same probe was run under docker). */
const PROBE = "tty; for f in 0 1 2; do readlink /proc/self/fd/$f; done; ls /dev/pts; " +
  'stat -c "%n %A %u %g %t,%T" /dev/console /dev/pts/0 /dev/pts/ptmx; readlink /dev/ptmx';

// docker 20.10 on this machine (script -qec "docker run --rm -t --network none bb sh -c '<PROBE>'",
// \r removed; the same with -u 1000:1000 gave 1000 as the owner of /dev/console and /dev/pts/0)
const DOCKER_RUN_T = (owner: number) =>
  [
    "/dev/pts/0",
    "/dev/pts/0",
    "/dev/pts/0",
    "/dev/pts/0",
    "0     ptmx",
    `/dev/console crw--w---- ${owner} 5 88,0`,
    `/dev/pts/0 crw--w---- ${owner} 5 88,0`,
    "/dev/pts/ptmx crw-rw-rw- 0 0 5,2",
    "pts/ptmx",
  ].join("\n");

/** exec -t's probe: its own terminal, the container's ptys, PID 1's fds. */
const EXEC_PROBE = "tty; for f in 0 1 2; do readlink /proc/self/fd/$f; done; ls /dev/pts; " +
  'stat -c "%n %A %u %g %t,%T" /dev/pts/0 /dev/pts/1; ls /proc/1/fd';

// docker 20.10 on this machine: `docker run -d -t --network none bb sleep 300`, then
// script -qec "docker exec -t CTR sh -c '<EXEC_PROBE>'" (\r removed)
const DOCKER_EXEC_T = [
  "/dev/pts/1",
  "/dev/pts/1",
  "/dev/pts/1",
  "/dev/pts/1",
  "0     1     ptmx",
  "/dev/pts/0 crw--w---- 0 5 88,0",
  "/dev/pts/1 crw--w---- 0 5 88,1",
  "0  1  2",
].join("\n");

/** `command` on a pty of the given size (script(1)); its output with \r and escape sequences gone. */
async function onTerminal(
  command: string,
  size = "rows 33 cols 101",
): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command("script", {
    args: ["-qec", `stty ${size}; ${command}`, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).replaceAll("\r", "")
    // deno's own progress line (ESC [ ... letter), when it checks its cache
    .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g"), "");
  return { code: out.code, text };
}

const sh = (script: string) => `sh -c '${script}'`;

Deno.test("run -t: the terminal is the container's /dev/pts/0, as docker's, with the caller's size", async () => {
  await withBusybox(async (root) => {
    const run = skiffLine(root, `run --rm -t --network none busybox ${sh(`${PROBE}; stty size`)}`);
    const r = await onTerminal(run);
    assertEquals(r.code, 0, r.text);
    assertEquals(r.text.trimEnd(), `${DOCKER_RUN_T(0)}\n33 101`);

    // the command's user owns its terminal (runc chowns it; the group stays tty's)
    const asUser = skiffLine(root, `run --rm -t -u 1000:1000 --network none busybox ${sh(PROBE)}`);
    const u = await onTerminal(asUser);
    assertEquals(u.code, 0, u.text);
    assertEquals(u.text.trimEnd(), DOCKER_RUN_T(1000));
  });
});

Deno.test("run -d -t, exec -t: the container's devpts gives both their ptys, as docker's", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      "-t",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      `${PROBE}; sleep 600`,
    ]);
    await eventually(
      "the probe is logged",
      async () => (await root.ok(["logs", id])).includes("pts/ptmx\r\n"),
    );
    assertEquals((await root.ok(["logs", id])).replaceAll("\r", "").trimEnd(), DOCKER_RUN_T(0));

    const exec = await onTerminal(
      skiffLine(root, `exec -t ${id} ${sh(`${EXEC_PROBE}; stty size`)}`),
      "rows 21 cols 64",
    );
    assertEquals(exec.code, 0, exec.text);
    assertEquals(exec.text.trimEnd(), `${DOCKER_EXEC_T}\n21 64`);

    // -u: the exec's own terminal is the user's (docker's too)
    const asUser = await onTerminal(
      skiffLine(root, `exec -t -u 1000 ${id} ${sh('stat -c "%n %u %g" $(tty)')}`),
    );
    assertEquals(asUser.code, 0, asUser.text);
    assertMatch(asUser.text, /^\/dev\/pts\/\d+ 1000 5\n$/);
    // gone with its exec: only PID 1's pty is left
    assertEquals(await root.ok(["exec", id, "ls", "/dev/pts"]), "0\nptmx\n");
  });
});

/**
 * Each fd of PID 1 and of the probing shell itself: "fd <pid> <n> <device> <major,minor>", then
 * the device of the container's devpts. stat runs as a child, so the shell holds no extra fd.
 */
const fdProbe = (pids: string) =>
  `for p in ${pids}; do for f in $(seq 0 300); do ` +
  '[ -e /proc/$p/fd/$f ] && echo "fd $p $f $(stat -L -c "%d %t,%T" /proc/$p/fd/$f)"; done; done; ' +
  'echo "pts $(stat -c %d /dev/pts/ptmx)"; echo "self $$"';

/**
 * The fds a probe saw: every terminal among them must be a slave of the container's own devpts,
 * never the host's (its device differs) nor a pty master (5,2, the ptmx).
 */
function checkFds(text: string, expected: Record<string, string[]>): void {
  const pts = /^pts (\d+)$/m.exec(text)?.[1];
  assert(pts, text);
  const seen: Record<string, string[]> = {};
  for (const [, pid, fd, device, rdev] of text.matchAll(/^fd (\S+) (\d+) (\d+) ([0-9a-f]+,[0-9a-f]+)$/gm)) {
    (seen[pid] ??= []).push(fd);
    assert(rdev !== "5,2", `fd ${fd} of ${pid} is a pty master: ${text}`);
    if (rdev.startsWith("88,")) {
      assertEquals(device, pts, `fd ${fd} of ${pid} is a pty of another devpts: ${text}`);
    }
  }
  for (const [pid, fds] of Object.entries(expected)) assertEquals(seen[pid], fds, text);
}

// The attack: what the container's processes hold. Before this change PID 1's fds 0-2 were slaves
// of the host's devpts (the parent opened the pty from the host's /dev/ptmx): this test failed on
// every run of the old code (3 of 3; no race, the fds are there from the start).
Deno.test("attack: no fd of the host's devpts and no pty master reaches the container's processes", async () => {
  await withDetached(async (root) => {
    // the foreground run: PID 1 is the probe itself (docker's has 0, 1 and 2, all /dev/pts/0)
    const fg = await onTerminal(skiffLine(root, `run --rm -t --network none busybox ${sh(fdProbe("1"))}`));
    assertEquals(fg.code, 0, fg.text);
    checkFds(fg.text, { "1": ["0", "1", "2"] });

    // detached (the supervisor's, and the holder's copy of the master): PID 1 and an exec -t
    const id = await runDetached(root, ["-t", "--network", "none", "busybox", "sleep", "600"]);
    const plain = await root.ok(["exec", id, "sh", "-c", fdProbe("1")]);
    checkFds(plain, { "1": ["0", "1", "2"] });
    const ex = await onTerminal(skiffLine(root, `exec -t ${id} ${sh(fdProbe("1 $$"))}`));
    assertEquals(ex.code, 0, ex.text);
    const self = /^self (\d+)$/m.exec(ex.text)?.[1];
    assert(self !== undefined && self !== "1", ex.text);
    checkFds(ex.text, { "1": ["0", "1", "2"], [self]: ["0", "1", "2"] });
  });
});

// exec -t resolves the container's /dev/pts from the host: a container with CAP_SYS_ADMIN can put
// anything there. A link through /proc/self/root would lead a host-side lookup to the host's devpts
// (without RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: skiff exec's own root), a tmpfs with a ptmx node
// (c 5:2) of its own would have skiff open a device the container chose. Both are refused. (With a
// plain openat of "dev/pts" from the root fd instead, the first gave the exec'd shell a pty of the
// host's devpts: 3 of 3 runs, no race.)
Deno.test("attack: exec -t into a container that replaced its /dev/pts", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      "--cap-add",
      "SYS_ADMIN",
      "--network",
      "none",
      "busybox",
      "sleep",
      "600",
    ]);
    const replacements = {
      "a link to the resolver's root":
        "umount /dev/pts && rmdir /dev/pts && ln -s /proc/self/root/dev/pts /dev/pts",
      "a tmpfs with a ptmx node": "rm /dev/pts && mkdir /dev/pts && mount -t tmpfs fake /dev/pts && " +
        "mknod /dev/pts/ptmx c 5 2",
    };
    for (const [what, replace] of Object.entries(replacements)) {
      await root.ok(["exec", id, "sh", "-c", replace]);
      const r = await onTerminal(skiffLine(root, `exec -t ${id} ${sh(fdProbe("1 $$"))}`) + "; echo rc=$?");
      // refused as the exec's own failure: docker's "OCI runtime exec failed" code
      assertMatch(r.text, /^skiff: .*\nrc=126\n$/, `${what}: ${r.text}`);
    }
  });
});

Deno.test("start -a of a -t container: a fresh /dev/pts/0 each start, with the caller's size", async () => {
  await withDetached(async (root) => {
    await root.ok([
      "create",
      "-t",
      "--name",
      "cc",
      "--network",
      "none",
      "busybox",
      "sh",
      "-c",
      "tty; ls /dev/pts; stty size",
    ]);
    for (const size of ["rows 22 cols 66", "rows 23 cols 67"]) {
      const r = await onTerminal(skiffLine(root, "start -a cc") + "; echo rc=$?", size);
      // docker 20.10 printed the same two lines (its `stty size` failed: its CLI sizes the pty late)
      assertEquals(r.text.trimEnd(), `/dev/pts/0\n0     ptmx\n${size.replace(/[a-z]+ /g, "")}\nrc=0`);
    }
  });
});

Deno.test("run -t: a stage that fails before it made the pty reports it and ends", async () => {
  await withBusybox(async (root: TestRoot) => {
    // the sysctl check fails before the rootfs (and /dev/pts) is made
    const r = await onTerminal(
      skiffLine(root, "run --rm -t --network host --sysctl net.ipv4.ip_forward=1 busybox true") +
        "; echo rc=$?",
    );
    assertMatch(r.text, /rc=125\n/);
    assertMatch(r.text, /sysctl/);
  });
});

Deno.test("attach of a -t container: the same pty (the container's /dev/pts/0)", async () => {
  await withDetached(async (root) => {
    await withProcs(async (track) => {
      const id = await runDetached(root, ["-it", "--network", "none", "busybox", "sh"]);
      const t = track(Proc.onPty(`stty rows 30 cols 90; ${skiffLine(root, `attach ${id}`)}`));
      await t.send("tty; stty size; echo mark-$((6*7))\r");
      await t.waitFor("mark-42");
      assertMatch(t.stdout, /\/dev\/pts\/0\r\n30 90\r\n/);
      await t.send("exit\r");
      await t.finish();
    });
  });
});
