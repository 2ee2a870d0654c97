// What a container may do: docker's capability set and its flags, masked and read-only paths,
// --read-only, and that skiff's caller's fds and ignored signals never reach the container.

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";

const DOCKER_DEFAULT_CAPS = "00000000a80425fb";

async function capabilities(
  root: TestRoot,
  flags: string[],
  user: string[] = [],
): Promise<Record<string, string>> {
  const out = await root.ok([
    "run",
    "--rm",
    ...flags,
    ...user,
    "busybox",
    "grep",
    "^Cap",
    "/proc/self/status",
  ]);
  return Object.fromEntries(out.trim().split("\n").map((l) => l.split(/:\s+/)));
}

function hostCapBnd(): string {
  return /^CapBnd:\s+(\S+)/m.exec(Deno.readTextFileSync("/proc/self/status"))![1];
}

Deno.test("run: docker's default capabilities, effective and bounding", async () => {
  await withBusybox(async (root) => {
    const caps = await capabilities(root, []);
    assertEquals(caps.CapEff, DOCKER_DEFAULT_CAPS);
    assertEquals(caps.CapPrm, DOCKER_DEFAULT_CAPS);
    assertEquals(caps.CapBnd, DOCKER_DEFAULT_CAPS);
    assertEquals(caps.CapInh, "0000000000000000");
    assertEquals(caps.CapAmb, "0000000000000000");
    // a non-root user keeps the bounding set but holds nothing, as with docker
    const user = await capabilities(root, [], ["-u", "1000"]);
    assertEquals(user.CapEff, "0000000000000000");
    assertEquals(user.CapBnd, DOCKER_DEFAULT_CAPS);
  });
});

Deno.test("run: --cap-add, --cap-drop, ALL and --privileged change the sets", async () => {
  await withBusybox(async (root) => {
    const added = await capabilities(root, ["--cap-add", "NET_ADMIN", "--cap-add", "cap_sys_ptrace"]);
    // NET_ADMIN is bit 12, SYS_PTRACE bit 19
    assertEquals(added.CapEff, "00000000a80c35fb");
    assertEquals(added.CapBnd, "00000000a80c35fb");
    const dropped = await capabilities(root, ["--cap-drop", "CHOWN", "--cap-drop", "CAP_NET_RAW"]);
    assertEquals(dropped.CapEff, "00000000a80405fa");
    const none = await capabilities(root, ["--cap-drop", "ALL"]);
    assertEquals(none.CapEff, "0000000000000000");
    assertEquals(none.CapBnd, "0000000000000000");
    const onlyOne = await capabilities(root, ["--cap-drop", "ALL", "--cap-add", "KILL"]);
    assertEquals(onlyOne.CapEff, "0000000000000020");
    const host = hostCapBnd();
    const privileged = await capabilities(root, ["--privileged"]);
    assertEquals(privileged.CapBnd, host);
    assertEquals(privileged.CapEff, host);
    // the capability really is gone: chown needs CAP_CHOWN
    const chown = await root.skiff([
      "run",
      "--rm",
      "--cap-drop",
      "CHOWN",
      "busybox",
      "chown",
      "1000",
      "/tmp",
    ]);
    assertEquals(chown.code, 1);
    await root.ok(["run", "--rm", "busybox", "chown", "1000", "/tmp"]);
  });
});

Deno.test("run: masked paths are empty, read-only paths refuse writes, not with --privileged", async () => {
  await withBusybox(async (root) => {
    const script = [
      "wc -c < /proc/timer_list",
      "ls /sys/firmware | wc -l",
      "echo x > /proc/sys/kernel/domainname && echo WROTE-SYS",
      "test -e /proc/sysrq-trigger && (echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ)",
      "if test -e /proc/kcore; then wc -c < /proc/kcore; else echo no-kcore; fi",
      "if test -L /dev/core; then echo dev-core; else echo no-dev-core; fi",
      "true",
    ].join("; ");
    const r = await root.skiff(["run", "--rm", "busybox", "sh", "-c", script]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assertEquals(lines[0].trim(), "0"); // /proc/timer_list is /dev/null
    assertEquals(lines[1].trim(), "0"); // /sys/firmware is an empty tmpfs
    assert(!r.stdout.includes("WROTE"), r.stdout);
    assertMatch(r.stderr, /Read-only file system/);
    // /proc/kcore is masked (empty) where the kernel has one, and runc's /dev/core link exists only then
    const hostHasKcore = (() => {
      try {
        return Deno.statSync("/proc/kcore").isFile;
      } catch {
        return false;
      }
    })();
    assertEquals(
      lines.slice(2).map((l) => l.trim()),
      hostHasKcore ? ["0", "dev-core"] : ["no-kcore", "no-dev-core"],
    );

    const privileged = await root.ok([
      "run",
      "--rm",
      "--privileged",
      "busybox",
      "sh",
      "-c",
      "wc -c < /proc/timer_list",
    ]);
    assert(Number(privileged.trim()) > 0, privileged);
  });
});

Deno.test("run: /dev holds docker's minimal set; --privileged adds the host's devices", async () => {
  await withBusybox(async (root) => {
    const plain = (await root.ok(["run", "--rm", "busybox", "ls", "/dev"])).trim().split("\n");
    for (const node of ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"]) {
      assert(plain.includes(node), `missing /dev/${node}: ${plain}`);
    }
    assert(!plain.includes("console"), "a container without -t has no /dev/console");
    const hostNodes = [...Deno.readDirSync("/dev")].filter((e) => {
      try {
        const info = Deno.statSync(`/dev/${e.name}`);
        return !e.isSymlink && (info.isCharDevice || info.isBlockDevice) && e.name !== "console";
      } catch {
        return false;
      }
    }).map((e) => e.name);
    const privileged = (await root.ok(["run", "--rm", "--privileged", "busybox", "ls", "/dev"])).trim().split(
      "\n",
    );
    for (const node of hostNodes) assert(privileged.includes(node), `--privileged lacks /dev/${node}`);
    assert(hostNodes.some((n) => !plain.includes(n)), "the host has no device beyond the minimal set");
  });
});

Deno.test("run: --read-only makes / read-only, /dev/shm stays writable", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["run", "--rm", "--read-only", "busybox", "touch", "/file"]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /Read-only file system/);
    await root.ok(["run", "--rm", "--read-only", "busybox", "touch", "/dev/shm/file"]);
    // the usual pairing: a read-only root with a writable --tmpfs
    await root.ok(["run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "touch", "/scratch/file"]);
    await root.ok(["run", "--rm", "busybox", "touch", "/file"]);
  });
});

/** Runs skiff through bash so the caller can hold an extra fd and ignore signals first. */
async function viaBash(root: TestRoot, prelude: string, args: string[]): Promise<string> {
  const quoted = ["deno", "run", "-A", MAIN, "--root", root.path, ...args].map((a) => `'${a}'`).join(" ");
  const out = await new Deno.Command("bash", { args: ["-c", `${prelude}; exec ${quoted}`], stdin: "null" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return text;
}

Deno.test("run: the caller's extra fds do not leak into the container", async () => {
  await withBusybox(async (root) => {
    const out = await viaBash(root, "exec 7</etc/hostname 9>/dev/null", [
      "run",
      "--rm",
      "busybox",
      "ls",
      "/proc/self/fd",
    ]);
    // 0 1 2 and the directory ls itself has open
    assertEquals(out.trim().split("\n").filter((fd) => Number(fd) > 3), []);
  });
});

Deno.test("run: ignored signals of the caller are reset: PID 1 ignores nothing", async () => {
  await withBusybox(async (root) => {
    const out = await viaBash(root, "trap '' INT QUIT USR1 HUP PIPE", [
      "run",
      "--rm",
      "busybox",
      "grep",
      "-E",
      "^Sig(Ign|Blk)",
      "/proc/1/status",
    ]);
    assertMatch(out, /^SigIgn:\s+0000000000000000$/m);
    assertMatch(out, /^SigBlk:\s+0000000000000000$/m);
  });
});
