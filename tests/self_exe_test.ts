// skiff started the way a compiled binary starts it: one executable that takes skiff's arguments, so
// every re-execution goes through main.ts's own dispatch (`EXE --root R __supervisor`, `EXE --root R
// __cp ...`, `EXE __netgc ...`) instead of the source checkout's `deno run ... main.ts`; a run
// re-executes nothing (its container's PID 1 is a fork). `deno compile` cannot be run here (its denort base is downloaded, and
// the full deno binary ignores a compiled payload), so SKIFF_EXE names a static launcher that logs its
// arguments and execs `deno run -A main.ts ARGS`: lib/runtime/self.ts treats it exactly as it treats
// Deno.execPath() of a compiled binary. The log proves each stage really went through it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { close, flock, LOCK, O, open } from "../ffi/libc.ts";
import { compileStatic } from "./cprog.ts";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";

const LAUNCHER_C = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  const char *log = getenv("SKIFF_SELF_EXE_TEST_LOG");
  FILE *f = log ? fopen(log, "a") : NULL;
  if (f) {
    for (int i = 1; i < argc; i++) fprintf(f, "%s%s", i > 1 ? " " : "", argv[i]);
    fputc('\\n', f);
    fclose(f);
  }
  char *args[argc + 4];
  int n = 0;
  args[n++] = DENO;
  args[n++] = "run";
  args[n++] = "-A";
  args[n++] = MAIN;
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  args[n] = NULL;
  execv(DENO, args);
  perror("execv");
  return 127;
}
`;

interface Exe {
  path: string;
  log: string;
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  ok(args: string[]): Promise<string>;
  lines(): string[];
}

async function selfExe(root: TestRoot, dir: string): Promise<Exe> {
  const path = await compileStatic("self-exe", LAUNCHER_C, [
    `-DDENO="${Deno.execPath()}"`,
    `-DMAIN="${MAIN}"`,
  ]);
  const log = join(dir, "launcher.log");
  const env = { SKIFF_EXE: path, SKIFF_SELF_EXE_TEST_LOG: log };
  const run = async (args: string[]) => {
    const out = await new Deno.Command(path, {
      args: ["--root", root.path, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  return {
    path,
    log,
    run,
    async ok(args) {
      const r = await run(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    },
    lines: () => {
      try {
        return Deno.readTextFileSync(log).split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

/**
 * Waits until no bridge collector is pending on this host (gc.ts's lock is free), so that the next
 * bridged run's release starts one itself (a pending one, e.g. of a test before, would be reused).
 */
async function noCollectorPending(): Promise<void> {
  const path = "/run/skiff/netgc.lock";
  for (let waited = 0; waited < 15_000; waited += 100) {
    let fd: number;
    try {
      fd = open(path, O.RDWR | O.CLOEXEC);
    } catch {
      return; // never made: no collector ever ran here
    }
    try {
      if (flock(fd, LOCK.EX | LOCK.NB, path)) return;
    } finally {
      close(fd);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The stages the launcher started, by their verb (`__supervisor`, `__cp`, ...). */
function stagesIn(lines: string[]): Set<string> {
  return new Set(lines.flatMap((l) => l.split(" ").filter((w) => w.startsWith("__"))));
}

Deno.test("compiled-style start: run, supervisor, exec, logs, cp helpers and the bridge collector all go through the one executable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-selfexe-" });
  try {
    await withBusybox(async (root) => {
      const exe = await selfExe(root, dir);

      // a run starts no other skiff for its container (its PID 1 is a fork of this one); once it is
      // done, it leaves a supervisor for the runs to come (engine/foreground.ts), through the
      // same executable
      assert.equal(await exe.ok(["run", "--rm", "--network", "none", "busybox", "echo", "hello"]), "hello\n");
      assert.deepEqual(stagesIn(exe.lines()), new Set(["__supervisor"]), exe.lines().join("\n"));
      assert.match(exe.lines().at(-1)!, /__supervisor --warm$/);
      // the next run is the supervisor's; a failure before the user's command still comes back with
      // docker's code and wording
      const missing = await exe.run(["run", "--rm", "--network", "none", "busybox", "/no/such/program"]);
      assert.equal(missing.code, 127, missing.stderr);
      assert.match(missing.stderr, /exec: "\/no\/such\/program": .*no such file or directory/);

      // the supervisor of detached containers, its init stage, logs and exec
      await exe.ok([
        "run",
        "-d",
        "--name",
        "dd",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 300",
      ]);
      for (let i = 0; i < 100 && !(await exe.ok(["logs", "dd"])).includes("started"); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await exe.ok(["logs", "dd"]), "started\n");
      assert.equal(
        await exe.ok(["exec", "dd", "cat", "/etc/hostname"]),
        await exe.ok(["inspect", "-f", "{{.Config.Hostname}}", "dd"]),
      );
      // the supervisor the runs above left (--warm), or one run -d started
      assert.ok(
        exe.lines().some((l) => l.startsWith(`--root ${root.path} __supervisor`)),
        exe.lines().join("\n"),
      );

      // cp: the helper in a running container's namespaces, and the one for a stopped container
      Deno.writeTextFileSync(join(dir, "in.txt"), "copied in\n");
      await exe.ok(["cp", join(dir, "in.txt"), "dd:/tmp/in.txt"]);
      await exe.ok(["cp", "dd:/tmp/in.txt", join(dir, "back.txt")]);
      assert.equal(Deno.readTextFileSync(join(dir, "back.txt")), "copied in\n");
      await exe.ok(["create", "--name", "ss", "--network", "none", "busybox", "true"]);
      await exe.ok(["cp", "ss:/etc/group", join(dir, "group")]);
      assert.match(Deno.readTextFileSync(join(dir, "group")), /^root:x:0:/);
      await exe.ok(["rm", "-f", "dd", "ss"]);

      // a run on the default bridge: its release starts the bridge collector, `EXE __netgc BRIDGE SUBNET`
      // (a collector already pending, e.g. for another root on this host, is reused instead: tried again)
      let noBridge = false;
      for (let attempt = 0; attempt < 5 && !stagesIn(exe.lines()).has("__netgc"); attempt++) {
        await noCollectorPending();
        const bridged = await exe.run(["run", "--rm", "busybox", "true"]);
        if (bridged.code !== 0) {
          // no nft and no iptables: the bridge cannot be made, one line says so
          assert.match(bridged.stderr, /nft|iptables/);
          noBridge = true;
          break;
        }
        for (let i = 0; i < 40 && !stagesIn(exe.lines()).has("__netgc"); i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
      }

      const stages = stagesIn(exe.lines());
      for (const s of ["__supervisor", "__cp", "__cp-stopped", ...(noBridge ? [] : ["__netgc"])]) {
        assert.ok(stages.has(s), `${s} not started`);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
