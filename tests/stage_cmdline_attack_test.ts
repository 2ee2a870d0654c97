// Attack on run's init stage from a container that another container joins (--pid container:X).
//
// The joiner's PID 1 is forked from skiff straight into X's PID namespace, and /proc/N/cmdline is
// readable there without any ptrace right. Until the fork's first step has unmapped skiff's memory
// it showed skiff's whole command line, the values of -e with it (a password docker hands over only
// through its API): the child is runnable but waits for a CPU while skiff's main thread goes on
// with the rootfs, the longer the busier the host (X's own spinning reader makes it so). Before the
// fix a process of X with docker's default capabilities read it in 5 of 5 runs of this test, at the
// first joiner already, 147 to 267 times each; moving a PR_SET_MM_MAP to the fork's first step
// still hit 5 of 5 (the window is the wait for a CPU, before any step). Since the fork's copy of
// skiff's argv is blanked at the fork (ffi/exec_program.ts forkProgram): 0 of 5 runs (25 joiners).

import assert from "node:assert/strict";
import { join } from "node:path";
import { withDetached } from "./detach_helpers.ts";
import { compileStatic } from "./cprog.ts";

const SPY_C = `
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
// SPY NEEDLE-FILE OUT: reads /proc/N/cmdline of every process of its PID namespace but its own,
// forever; appends "cmdline" to OUT when one holds the text of NEEDLE-FILE.
int main(int argc, char **argv) {
  char needle[128] = "", buf[65536];
  int f = open(argv[1], O_RDONLY), n = f >= 0 ? read(f, needle, sizeof needle - 1) : -1;
  if (n <= 0) return 2;
  needle[n] = 0;
  int out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644), self = getpid();
  dprintf(out, "ready\\n");
  for (;;) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 1 || pid == self) continue;
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
      int c = open(path, O_RDONLY);
      if (c < 0) continue;
      n = read(c, buf, sizeof buf - 1);
      close(c);
      for (int i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
      if (n > 0 && (buf[n] = 0, strstr(buf, needle))) dprintf(out, "cmdline %d\\n", pid);
    }
    if (d) closedir(d);
  }
}
`;

Deno.test("attack: a container reads the command line of skiff in a --pid container: joiner's init stage", async () => {
  const spy = await compileStatic("stage_cmdline_spy", SPY_C);
  const shared = await Deno.makeTempDir({ prefix: "skiff-cmdline-" });
  try {
    const secret = `hunter2-${crypto.randomUUID()}`;
    Deno.writeTextFileSync(join(shared, "needle"), secret);
    Deno.copyFileSync(spy, join(shared, "spy"));
    Deno.chmodSync(join(shared, "spy"), 0o755);
    const out = join(shared, "out");
    const reads = () => Deno.readTextFileSync(out).split("\n").filter((l) => l.startsWith("cmdline"));
    await withDetached(async (root) => {
      await root.ok([
        "run",
        "-d",
        "--name",
        "xx",
        "-v",
        `${shared}:/s`,
        "busybox",
        "/s/spy",
        "/s/needle",
        "/s/out",
      ]);
      for (let i = 0; i < 100 && !exists(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(exists(out), "the spy never started");
      for (let run = 1; run <= 5; run++) {
        const r = await root.skiff([
          "run",
          "--rm",
          "--pid",
          "container:xx",
          "-e",
          `PASSWORD=${secret}`,
          "busybox",
          "true",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          reads(),
          [],
          `run ${run}: X read PASSWORD from skiff's command line ${reads().length} times`,
        );
      }
    });
  } finally {
    Deno.removeSync(shared, { recursive: true });
  }
});

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}
