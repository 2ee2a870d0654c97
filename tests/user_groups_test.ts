// Supplementary groups as docker sets them: -u, the user's groups in the image's /etc/group,
// --group-add, for run and exec. Every expected `id` line below was taken from docker 20.10.24
// (runc 1.1.5, this machine's peer: `docker run --rm ARGS IMG id`) on an image with the same
// /etc/passwd and /etc/group; the busybox binary is the same static one.

import assert from "node:assert/strict";
import { join } from "node:path";
import { execUserOf, MAX_PASSWD_LINE, MAX_USER_FILE } from "../lib/runtime/user.ts";
import { busyboxTar, type TestRoot, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

const PASSWD = `root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:50::/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
dupuid:x:1000:77::/x:/bin/sh
`;
const GROUP = `root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
wheel:x:10:root,alice
staff:x:50:alice,bob
nogroup:x:65534:
alice:x:1000:
dup:x:50:alice
`;

/** Makes image `name` from the test busybox with /etc entries replaced (a string: a file, {link}: a symlink, null: none). */
async function imageWith(
  root: TestRoot,
  name: string,
  etc: Record<string, string | { link: string } | { fifo: true } | null>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-groups-" });
  try {
    const rootfs = join(dir, "rootfs");
    await Deno.mkdir(rootfs);
    const x = await new Deno.Command("tar", { args: ["-xf", await busyboxTar(), "-C", rootfs] }).output();
    assert.ok(x.success);
    for (const [file, content] of Object.entries(etc)) {
      const path = join(rootfs, "etc", file);
      await Deno.remove(path).catch(() => {});
      if (content === null) continue;
      if (typeof content === "string") await Deno.writeTextFile(path, content);
      else if ("link" in content) await Deno.symlink(content.link, path);
      else assert.ok((await new Deno.Command("mkfifo", { args: [path] }).output()).success);
    }
    const tar = join(dir, "image.tar");
    assert.ok((await new Deno.Command("tar", { args: ["-C", rootfs, "-cf", tar, "."] }).output()).success);
    await root.ok(["import", tar, name]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// [flags, docker's stdout or its error (exit 125)]
const RUN_CASES: [string[], string][] = [
  [[], "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel)"],
  [["-u", "root"], "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel)"],
  [["-u", "0"], "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel)"],
  [["-u", "alice"], "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice)"],
  [["-u", "1000"], "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice)"],
  [["-u", "bob"], "uid=1001(bob) gid=50(staff) groups=50(staff)"],
  [["-u", "bob:"], "uid=1001(bob) gid=50(staff) groups=50(staff)"],
  [["-u", "alice:staff"], "uid=1000(alice) gid=50(staff) groups=50(staff)"],
  [["-u", "alice:50"], "uid=1000(alice) gid=50(staff) groups=50(staff)"],
  [["-u", "alice:010"], "uid=1000(alice) gid=10(wheel) groups=10(wheel)"],
  [["-u", "alice:staff:x"], "uid=1000(alice) gid=50(staff) groups=50(staff)"],
  [["-u", "1000:1000"], "uid=1000(alice) gid=1000(alice) groups=1000(alice)"],
  [["-u", "dupuid"], "uid=1000(alice) gid=77 groups=77"],
  [["-u", "4242"], "uid=4242 gid=0(root) groups=0(root)"],
  [["-u", "4242:wheel"], "uid=4242 gid=10(wheel) groups=10(wheel)"],
  [["-u", ":10"], "uid=0(root) gid=10(wheel) groups=10(wheel)"],
  [["-u", "+5"], "uid=5 gid=0(root) groups=0(root)"],
  [["-u", "1234:5678"], "uid=1234 gid=5678 groups=5678"],
  [
    ["--group-add", "wheel", "--group-add", "4242"],
    "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel),4242",
  ],
  [
    ["-u", "alice", "--group-add", "staff", "--group-add", "10"],
    "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice)",
  ],
  [
    ["-u", "nobody", "--group-add", "1000"],
    "uid=65534(nobody) gid=65534(nogroup) groups=1000(alice),65534(nogroup)",
  ],
  [["--group-add", "50"], "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel),50(staff)"],
  [["--group-add", "+10"], "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel)"],
  [["--group-add", "nosuch"], "Unable to find group nosuch: no matching entries in group file"],
  [["-u", "alice:nosuch"], "unable to find group nosuch: no matching entries in group file"],
  [["-u", "daemon"], "unable to find user daemon: no matching entries in passwd file"],
  [["-u", "2147483648"], "uids and gids must be in range 0-2147483647"],
  [["-u", "alice:99999999999"], "uids and gids must be in range 0-2147483647"],
  [["--group-add", "-1"], "uids and gids must be in range 0-2147483647"],
];

Deno.test("groups: run -u and --group-add give docker's ids and supplementary groups", async () => {
  await withBusybox(async (root) => {
    await imageWith(root, "grp", { passwd: PASSWD, group: GROUP });
    for (const [flags, docker] of RUN_CASES) {
      const r = await root.skiff(["run", "--rm", ...flags, "grp", "id"]);
      if (docker.startsWith("uid=")) {
        assert.equal(r.stdout, `${docker}\n`, `${flags.join(" ")}: ${r.stderr}`);
      } else {
        assert.equal(r.code, 125, `${flags.join(" ")}: ${r.stdout}`);
        assert.ok(r.stderr.trimEnd().endsWith(docker), `${flags.join(" ")}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      }
    }
    // HOME: docker's runtime looks the final uid up again (dupuid has uid 1000: alice's home)
    for (
      const [flags, home] of [[["-u", "dupuid"], "/home/alice"], [["-u", "alice:staff"], "/home/alice"], [
        ["-u", "bob"],
        "/home/bob",
      ], [["-u", "4242"], "/"]] as const
    ) {
      assert.equal(await root.ok(["run", "--rm", ...flags, "grp", "sh", "-c", "echo $HOME"]), `${home}\n`);
    }
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("groups: the test busybox and an image without /etc/passwd and /etc/group", async () => {
  await withBusybox(async (root) => {
    // docker on its busybox (root:x:0: and nogroup:x:65534: only) printed these two
    assert.equal(
      await root.ok(["run", "--rm", "-u", "nobody", "busybox", "id"]),
      "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n",
    );
    assert.equal(
      await root.ok(["run", "--rm", "-u", "1234:5678", "busybox", "id"]),
      "uid=1234 gid=5678 groups=5678\n",
    );
    await imageWith(root, "bare", { passwd: null, group: null });
    const cases: [string[], string][] = [
      [[], "uid=0 gid=0 groups=0"],
      [["-u", "1000"], "uid=1000 gid=0 groups=0"],
      [["-u", "5:6", "--group-add", "9"], "uid=5 gid=6 groups=6,9"],
      [["-u", "alice"], "unable to find user alice: no matching entries in passwd file"],
      [["-u", "1234:x"], "unable to find group x: no matching entries in group file"],
      [["--group-add", "x"], "Unable to find group x: no matching entries in group file"],
    ];
    for (const [flags, docker] of cases) {
      const r = await root.skiff(["run", "--rm", ...flags, "bare", "id"]);
      if (docker.startsWith("uid=")) assert.equal(r.stdout, `${docker}\n`, r.stderr);
      else assert.ok(r.code === 125 && r.stderr.trimEnd().endsWith(docker), r.stderr);
    }
    assert.equal(await root.ok(["run", "--rm", "-u", "1234", "bare", "sh", "-c", "echo $HOME"]), "/\n");
  });
});

Deno.test("groups: exec -u resolves in the running container, with the container's --group-add", async () => {
  await withBusybox(async (root) => {
    await imageWith(root, "grp", { passwd: PASSWD, group: GROUP });
    await root.ok(["tag", "grp", "busybox"]); // withBackground runs "busybox"
    await withBackground(
      root,
      "ex",
      async (c) => {
        // docker 20.10.24: `docker run -d -u alice --group-add 4242 IMG sleep`, then `docker exec -u U CTR id`
        const cases: [string, string][] = [
          ["", "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice),4242"],
          ["nobody", "uid=65534(nobody) gid=65534(nogroup) groups=4242,65534(nogroup)"],
          ["alice", "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice),4242"],
          ["root", "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel),4242"],
          ["0", "uid=0(root) gid=0(root) groups=0(root),1(bin),2(daemon),10(wheel),4242"],
          ["1234:5678", "uid=1234 gid=5678 groups=4242,5678"],
          ["alice:staff", "uid=1000(alice) gid=50(staff) groups=50(staff),4242"],
        ];
        for (const [user, docker] of cases) {
          assert.equal(
            await root.ok(["exec", ...(user ? ["-u", user] : []), c.name, "id"]),
            `${docker}\n`,
            user,
          );
        }
        // docker prints dockerd's message alone, exit 126
        for (
          const [user, docker] of [
            ["nosuch", "unable to find user nosuch: no matching entries in passwd file"],
            ["alice:nosuch", "unable to find group nosuch: no matching entries in group file"],
          ]
        ) {
          const r = await root.skiff(["exec", "-u", user, c.name, "id"]);
          assert.equal(r.code, 126);
          assert.equal(r.stderr, `skiff: ${docker}\n`);
        }
        // as in docker, exec reads the files again: an edit shows (docker printed the same line)
        await root.ok(["exec", "-u", "0", c.name, "sh", "-c", "echo ext:x:77:alice >> /etc/group"]);
        assert.equal(
          await root.ok(["exec", c.name, "id"]),
          "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),77(ext),1000(alice),4242\n",
        );
      },
      ["sleep", "100"],
      ["-u", "alice", "--group-add", "4242"],
    );
  });
});

const bytes = (s: string) => new TextEncoder().encode(s);
const user = (spec: string, groupAdd: string[], passwd: string | null, group: string | null) =>
  execUserOf(spec, groupAdd, {
    passwd: passwd === null ? null : bytes(passwd),
    group: group === null ? null : bytes(group),
  });

Deno.test("groups: runc's file parsing (comments, blanks, short lines), checked against docker", () => {
  // docker 20.10.24 on an image with these files:
  const passwd = "# comment:x:0:0\n  alice:x:1000:1000::/h:/bin/sh\nshort:x:1234\n";
  const group =
    "#wheel:x:10:alice\n sp:x:11:alice\ntr:x:12:alice \nboth:x:13: alice,short\ng14:x:14:short\nx\n";
  // uid=1000(alice) gid=1000 groups=11(sp),12(tr),1000 (passwd lines trimmed, group "#" lines skipped)
  assert.deepEqual(user("alice", [], passwd, group), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 11, 12],
    home: "/h",
  });
  // uid=1234 gid=0 groups=0,13(both),14(g14) (a short line is an entry; " alice" is not alice)
  assert.deepEqual(user("short", [], passwd, group).additionalGids, [0, 13, 14]);
  // default user: passwd's "#" line is an entry with uid 0 (docker's HOME was empty)
  assert.deepEqual(user("", [], passwd, group), { uid: 0, gid: 0, additionalGids: [0], home: "" });
  // group "x" alone: gid 0; uid=1234 gid=0 groups=0 and uid=0 gid=0 groups=0
  assert.deepEqual(user("1234:x", [], passwd, group).gid, 0);
  assert.deepEqual(user("", ["x"], passwd, group).additionalGids, [0]);
  assert.deepEqual(user("", ["g14"], passwd, group).additionalGids, [0, 14]);
  // a group named twice: runc 1.1.5 refused it (docker 20.10.24), moby/sys/user and skiff take it
  assert.deepEqual(user("", ["nogroup", "nogroup"], null, "nogroup:x:65534:\n").additionalGids, [0, 65534]);
});

Deno.test("groups: line limits as docker's (passwd 64 KiB, group none) and the file cap", () => {
  const longPasswdLine = `alice:x:1000:1000:${"a".repeat(70_000)}:/h:/bin/sh\n`;
  // docker: "unable to find user 0: bufio.Scanner: token too long" (for root too: the whole file is scanned)
  assert.throws(
    () => user("", [], `root:x:0:0:root:/root:/bin/sh\n${longPasswdLine}`, "root:x:0:\n"),
    /^Error: unable to find user 0: bufio.Scanner: token too long$/,
  );
  assert.throws(
    () => user("1000:1000", [], longPasswdLine, null),
    /unable to find user 1000: bufio.Scanner: token too long/,
  );
  // the longest line the scanner takes
  const edge = `alice:x:1000:1000::/h:${"s".repeat(MAX_PASSWD_LINE - 22)}`;
  assert.equal(bytes(edge).length, MAX_PASSWD_LINE);
  assert.equal(user("alice", [], `${edge}\n`, null).uid, 1000);
  assert.throws(() => user("alice", [], `${edge}s\n`, null), /token too long/);
  // a 1.5 MB member list: docker 20.10.24 ran it (uid=1000(alice) gid=1000 groups=7(big),8(small),1000)
  const members = Array.from({ length: 200_000 }, (_, i) => `u${i}`).join(",");
  assert.deepEqual(
    user(
      "alice",
      [],
      "alice:x:1000:1000::/h:/bin/sh\n",
      `root:x:0:\nbig:x:7:${members},alice\nsmall:x:8:alice\n`,
    )
      .additionalGids,
    [1000, 7, 8],
  );
  assert.equal(MAX_USER_FILE, 16 << 20);
});

Deno.test("groups: ids out of runc's range in the files are refused, never wrapped", () => {
  // dockerd would take uint32(4294967296) = 0: root
  assert.throws(
    () => user("eve", [], "eve:x:4294967296:0::/:/bin/sh\n", null),
    /uids and gids must be in range/,
  );
  assert.throws(() => user("eve", [], "eve:x:-1:0::/:/bin/sh\n", null), /uids and gids must be in range/);
  assert.throws(() => user("", ["big"], null, "big:x:4294967296:\n"), /uids and gids must be in range/);
  assert.throws(() => user("", ["99999999999"], null, null), /uids and gids must be in range 0-2147483647/);
  assert.deepEqual(
    user("0", ["2147483647"], "root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n").additionalGids,
    [
      0,
      2147483647,
    ],
  );
});

// A hostile image points its /etc files at what skiff, not the container, would see. The files are
// read by root with every capability (the init stage before it drops them, or skiff exec on the host
// side), so a file of /proc there is skiff's own: its environment (the caller's, secrets included),
// its fds, mountinfo. runc's parser takes any line (a field that is not a number reads as 0, so the
// default user matches the first line of anything), and HOME comes from the matched entry: without
// the procfs check, /etc/passwd -> /proc/self/environ put a piece of skiff's environment into the
// container's HOME in 3 of 3 runs (measured with the check removed); the code before this change
// (which wanted 6 fields and a numeric uid) did not match it.
Deno.test("groups attack: /etc/passwd and /etc/group that lead to skiff's /proc, a host path, a FIFO, a device", async () => {
  await withBusybox(async (root) => {
    const hostDir = await Deno.makeTempDir({ prefix: "skiff-hostpasswd-" });
    try {
      await Deno.writeTextFile(join(hostDir, "passwd"), "root:x:0:0:root:/LEAKED-HOST-FILE:/bin/sh\n");
      await Deno.writeTextFile(join(hostDir, "group"), "root:x:0:\nhostgrp:x:4321:root\n");
      const secret = "SKIFF_TEST_SECRET=a:b:c:d:e:LEAKED-ENV:g";
      const links = [
        "/proc/self/environ",
        "/proc/1/environ",
        "/proc/self/fd/0",
        "../../proc/self/cmdline",
        "/proc/self/mountinfo",
        "/sys/kernel/uevent_helper",
        join(hostDir, "passwd"),
      ];
      for (const [i, link] of links.entries()) {
        await imageWith(root, `evil${i}`, {
          passwd: { link },
          group: { link: link.replace("passwd", "group") },
        });
        const r = await root.skiff([
          "run",
          "--rm",
          `evil${i}`,
          "sh",
          "-c",
          'echo "$HOME"; grep Groups /proc/self/status',
        ], {
          env: { SKIFF_TEST_SECRET: secret.slice("SKIFF_TEST_SECRET=".length) },
        });
        // as with no /etc/passwd: HOME=/, root's primary group only
        assert.equal(r.stdout, "/\nGroups:\t0 \n", `${link}: ${r.stderr}`);
      }
      // a FIFO would block the reader, /dev/zero never ends: both are not files, so "absent"
      await imageWith(root, "fifo", { passwd: PASSWD, group: { fifo: true } });
      await imageWith(root, "zero", { passwd: PASSWD, group: { link: "/dev/zero" } });
      for (const image of ["fifo", "zero"]) {
        const started = Date.now();
        const r = await root.skiff([
          "run",
          "--rm",
          "-u",
          "alice",
          image,
          "grep",
          "Groups",
          "/proc/self/status",
        ], {
          timeoutMs: 20_000,
        });
        assert.equal(r.stdout, "Groups:\t1000 \n", `${image}: ${r.stderr}`);
        assert.ok(Date.now() - started < 10_000);
      }
    } finally {
      await Deno.remove(hostDir, { recursive: true });
    }
  });
});

// A running container rewrites its own files for the next exec -u: a file of newlines beyond the cap
// and a sparse 1 GiB file (read at disk speed, it would keep skiff busy for seconds; docker's daemon
// reads it all) end in one line, exit 126, at once.
Deno.test("groups attack: exec -u with /etc/group or /etc/passwd made huge by the container", async () => {
  await withBusybox(async (root) => {
    const cases = [
      [
        "head -c 17000000 /dev/zero | tr '\\0' '\\n' > /etc/group",
        "unable to find groups for spec user: /etc/group",
      ],
      ["truncate -s 1G /etc/passwd", "unable to find user user: /etc/passwd"],
    ];
    for (const [i, [fill, message]] of cases.entries()) {
      await withBackground(root, `huge${i}`, async (c) => {
        await root.ok(["exec", c.name, "sh", "-c", fill]);
        const started = Date.now();
        const r = await root.skiff(["exec", "-u", "user", c.name, "true"], { timeoutMs: 20_000 });
        assert.equal(r.code, 126, r.stderr);
        assert.equal(r.stderr, `skiff: ${message} is larger than 16 MiB\n`);
        assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
      });
    }
  });
});
