// --init: skiff's init (lib/runtime/init_program/init.c) as PID 1, the command its child. Expected
// outputs and exit codes were taken from docker 20.10.24 with its docker-init (tini 0.19) on this
// machine: `docker run --init ...`, `docker stop`, `docker kill -s USR1`, `docker inspect`.

import assert from "node:assert/strict";
import { join } from "node:path";
import { INIT_PROGRAM, INIT_PROGRAM_COMPILERS } from "../lib/runtime/init_program/binary.ts";
import { compileStatic } from "./cprog.ts";
import { withBackground } from "./background.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const decode = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

async function has(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output()).success;
  } catch {
    return false;
  }
}

/** Runs the init binary of `arch` outside any container: [exit code, stdout, stderr]. */
async function runInit(arch: "x86_64" | "aarch64", args: string[]): Promise<[number, string, string]> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-init-" });
  try {
    const path = join(dir, "docker-init");
    await Deno.writeFile(path, decode(INIT_PROGRAM[arch]), { mode: 0o755 });
    const [cmd, ...rest] = arch === "x86_64" ? [path, ...args] : ["qemu-aarch64-static", path, ...args];
    const out = await new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return [out.code, text(out.stdout), text(out.stderr)];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("init program: static ELF executables for x86-64 and arm64, no interpreter, no dynamic section", () => {
  for (const [arch, machine] of [["x86_64", 62], ["aarch64", 183]] as const) {
    const elf = decode(INIT_PROGRAM[arch]);
    const view = new DataView(elf.buffer);
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], arch); // \x7fELF
    assert.equal(elf[4], 2, `${arch}: 64-bit`);
    assert.equal(view.getUint16(16, true), 2, `${arch}: ET_EXEC (no relocation at load)`);
    assert.equal(view.getUint16(18, true), machine, arch);
    const phoff = Number(view.getBigUint64(32, true)), phentsize = view.getUint16(54, true);
    const types = Array.from(
      { length: view.getUint16(56, true) },
      (_, i) => view.getUint32(phoff + i * phentsize, true),
    );
    assert.ok(!types.includes(3) && !types.includes(2), `${arch}: PT_INTERP or PT_DYNAMIC in ${types}`);
    assert.ok(elf.length < 16 * 1024, `${arch}: ${elf.length} bytes`);
  }
});

// The same behaviour natively and (arm64) under qemu-user: exit codes, 128 + signal, exec failures
// in tini's words with its codes (docker: "[FATAL tini (6)] exec nosuch failed: No such file or
// directory", 127; a file that is not executable 126), forwarding of what the init itself receives.
for (const arch of ["x86_64", "aarch64"] as const) {
  Deno.test(`init program (${arch}${arch === "aarch64" ? ", qemu-aarch64-static" : ""}): exit codes, signals, exec failures`, async () => {
    if (Deno.build.arch !== arch && !(await has("qemu-aarch64-static"))) {
      console.log("SKIPPED: needs qemu-aarch64-static (apt-get install qemu-user-static)");
      return;
    }
    assert.deepEqual(await runInit(arch, ["--", "/bin/sh", "-c", "exit 7"]), [7, "", ""]);
    assert.deepEqual(await runInit(arch, ["--", "sh", "-c", "echo out; kill -USR1 $$"]), [138, "out\n", ""]);
    const [code, , err] = await runInit(arch, ["--", "nosuch-command"]);
    assert.equal(code, 127);
    assert.match(err, /^\[FATAL tini \(\d+\)\] exec nosuch-command failed: No such file or directory\n$/);
    assert.equal((await runInit(arch, ["--", "/etc/passwd"]))[0], 126);
    assert.deepEqual(await runInit(arch, []), [1, "", "usage: docker-init -- COMMAND [ARG...]\n"]);
    // a name longer than the init's path buffer: skipped, not overflowed
    const [longCode, , longErr] = await runInit(arch, ["--", "x".repeat(4094)]);
    assert.ok(longCode === 127 || longCode === 126, `${longCode} ${longErr.slice(0, 80)}`);
    // a signal sent to the init reaches the command: the child traps TERM and exits 3
    assert.deepEqual(
      await runInit(arch, [
        "--",
        "sh",
        "-c",
        'trap "exit 3" TERM; kill -TERM $PPID; while :; do sleep 0.05; done',
      ]),
      [3, "", ""],
    );
  });
}

Deno.test("init program: the committed bytes are init.c's (rebuilt where gcc and the arm64 cross gcc are)", async () => {
  if (!(await has("gcc")) || !(await has("aarch64-linux-gnu-gcc"))) {
    console.log("SKIPPED: needs gcc and gcc-aarch64-linux-gnu");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "skiff-initbuild-" });
  try {
    const script = new URL("../scripts/build-init-program.sh", import.meta.url).pathname;
    const out = await new Deno.Command("bash", { args: [script, join(dir, "binary.ts")], stdout: "null" })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const rebuilt = await import(`file://${dir}/binary.ts`);
    if (rebuilt.INIT_PROGRAM_COMPILERS !== INIT_PROGRAM_COMPILERS) {
      console.log(`SKIPPED: other compilers (${rebuilt.INIT_PROGRAM_COMPILERS}) make other bytes`);
      return;
    }
    assert.deepEqual(rebuilt.INIT_PROGRAM, INIT_PROGRAM);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Zombie states of the container's processes ("Z" lines of /proc/N/stat). */
const ZOMBIES = "for f in /proc/[0-9]*/stat; do cut -d' ' -f1-3 $f; done | grep ' Z$' || true";

Deno.test("--init: PID 1 is docker-init with the command as its child; exit codes; inspect", async () => {
  await withBusybox(async (root) => {
    // docker: "    1 root     /sbin/docker-init -- ps" then the command (PID 7 there)
    const ps = await root.ok(["run", "--rm", "--init", "busybox", "ps"]);
    const lines = ps.trimEnd().split("\n");
    assert.equal(lines[0], "PID   USER     COMMAND");
    assert.equal(lines[1], "    1 root     /sbin/docker-init -- ps");
    assert.match(lines[2], /^ +\d+ root {5}ps$/);
    assert.equal(lines.length, 3);
    assert.equal((await root.skiff(["run", "--rm", "--init", "busybox", "sh", "-c", "exit 5"])).code, 5);
    assert.equal(
      (await root.skiff(["run", "--rm", "--init", "busybox", "sh", "-c", "kill -USR1 $$"])).code,
      138,
    );
    const missing = await root.skiff(["run", "--rm", "--init", "busybox", "nosuch"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /^\[FATAL tini \(\d+\)\] exec nosuch failed: No such file or directory\n$/);
    // tini's process shape: the command leads a process group of its own (docker: "6 1 0 -1" for
    // pgrp, session, tty, tpgid); TTIN and TTOU ignored in PID 1 (SigIgn 0000000000300000)
    const shape = await root.ok([
      "run",
      "--rm",
      "--init",
      "busybox",
      "sh",
      "-c",
      'cut -d" " -f1,5,6,7,8 /proc/$$/stat; grep SigIgn /proc/1/status; cat /proc/1/comm',
    ]);
    const [pid, pgrp, session, ttyNr, tpgid] = shape.split("\n")[0].split(" ");
    assert.deepEqual([pgrp, session, ttyNr, tpgid], [pid, "1", "0", "-1"], shape);
    assert.equal(shape.split("\n").slice(1).join("\n"), "SigIgn:\t0000000000300000\ndocker-init\n");
    // docker inspect: HostConfig.Init true with --init, false with --init=false, absent (<nil>) without
    for (const [flags, init] of [[["--init"], "true"], [["--init=false"], "false"], [[], "<nil>"]] as const) {
      const id = (await root.ok(["create", ...flags, "busybox", "true"])).trim();
      assert.equal(
        await root.ok(["inspect", "-f", "{{.HostConfig.Init}} {{.Path}} {{json .Args}}", id]),
        `${init} true []\n`,
      );
      assert.equal((await root.ok(["inspect", id])).includes('"Init"'), init !== "<nil>");
      await root.ok(["rm", id]);
    }
    // --init=false runs the command as PID 1
    assert.equal(await root.ok(["run", "--rm", "--init=false", "busybox", "cat", "/proc/1/comm"]), "cat\n");
  });
});

Deno.test("--init: orphans are reaped (without it a PID 1 that never waits keeps them as zombies)", async () => {
  await withBusybox(async (root) => {
    for (const init of [true, false]) {
      await withBackground(
        root,
        `reap${init}`,
        async (c) => {
          // three orphans: their parent exits at once, they are reparented to PID 1 and exit
          await root.ok(["exec", c.name, "sh", "-c", "for i in 1 2 3; do (sleep 0.1 &); done"]);
          await sleep(800);
          const zombies = await root.ok(["exec", c.name, "sh", "-c", ZOMBIES]);
          if (init) assert.equal(zombies, "", zombies);
          else assert.equal(zombies.trim().split("\n").length, 3, zombies); // PID 1 is sleep
        },
        ["sleep", "100"],
        init ? ["--init"] : [],
      );
    }
  });
});

Deno.test("--init: stop and kill -s reach the command; without it PID 1 ignores SIGTERM", async () => {
  await withBusybox(async (root) => {
    const trap = [
      "sh",
      "-c",
      'trap "exit 3" TERM; trap "echo got usr1; exit 4" USR1; while :; do sleep 0.1; done',
    ];
    // docker: stop of this container took 0.2 s, exit code 3
    await withBackground(
      root,
      "trap",
      async (c) => {
        const started = Date.now();
        await root.ok(["stop", c.name]);
        assert.ok(Date.now() - started < 5_000, `stop took ${Date.now() - started} ms`);
        assert.equal(await root.ok(["inspect", "-f", "{{.State.ExitCode}}", c.name]), "3\n");
      },
      trap,
      ["--init"],
    );
    // docker: kill -s USR1 gives 4 and the trap's line
    await withBackground(
      root,
      "usr1",
      async (c) => {
        await root.ok(["kill", "-s", "USR1", c.name]);
        assert.equal(await root.ok(["wait", c.name]), "4\n");
      },
      trap,
      ["--init"],
    );
    // a command without handlers: killed by the forwarded signal (docker: 138 for USR1, 143 for TERM)
    for (const [init, expected] of [[true, "143\n"], [false, "137\n"]] as const) {
      await withBackground(
        root,
        `plain${init}`,
        async (c) => {
          const started = Date.now();
          await root.ok(["stop", "-t", "2", c.name]);
          const took = Date.now() - started;
          assert.equal(await root.ok(["inspect", "-f", "{{.State.ExitCode}}", c.name]), expected);
          // without --init, sleep as PID 1 ignores SIGTERM: the stop waits its 2 s and kills
          assert.ok(init ? took < 1_500 : took >= 1_900, `took ${took} ms`);
        },
        ["sleep", "100"],
        init ? ["--init"] : [],
      );
    }
  });
});

Deno.test("--init with -t, -d and exec", async () => {
  await withBusybox(async (root) => {
    // -t: the command is the terminal's foreground process group (pgrp = tpgid), so ^C reaches it
    const tty = await root.ok([
      "run",
      "--rm",
      "-t",
      "--init",
      "busybox",
      "sh",
      "-c",
      'cut -d" " -f5,8 /proc/self/stat',
    ]);
    const [pgrp, tpgid] = tty.trim().split(" ");
    assert.equal(pgrp, tpgid, tty);
    const id = (await root.ok(["run", "-d", "--init", "busybox", "sh", "-c", "echo started; sleep 100"]))
      .trim();
    try {
      let logs = "";
      for (let i = 0; i < 50 && !logs.includes("started"); i++) {
        await sleep(100);
        logs = await root.ok(["logs", id]);
      }
      assert.equal(logs, "started\n");
      // exec is not run through the init
      assert.equal(
        await root.ok(["exec", id, "cat", "/proc/1/cmdline"]),
        "/sbin/docker-init\0--\0sh\0-c\0echo started; sleep 100\0",
      );
      assert.equal((await root.skiff(["exec", id, "sh", "-c", "exit 9"])).code, 9);
      assert.match(await root.ok(["exec", id, "cat", "/proc/self/status"]), /^PPid:\s+0$/m);
    } finally {
      await root.ok(["rm", "-f", id]);
    }
  });
});

// docker bind-mounts the host's docker-init read-only at /sbin/docker-init: a privileged container
// can remount that bind read-write and change the file every later container (and the host) runs.
// skiff's init is a sealed memfd of each container's own: nothing to remount, and /proc/1/exe, the
// only way to it, cannot be written, truncated or unsealed, even by a privileged root.
const ATTACK = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static void report(const char *what, int ok) { printf("%s %s\\n", what, ok ? "WORKED" : "refused"); }
int main(void) {
  int rw = open("/proc/1/exe", O_RDWR);
  report("open-rw", rw >= 0);
  if (rw >= 0) {
    report("write", write(rw, "hacked", 6) == 6);
    report("truncate", ftruncate(rw, 0) == 0);
  }
  int ro = open("/proc/1/exe", O_RDONLY);
  if (ro < 0) { printf("open-ro failed %d\\n", errno); return 1; }
  int seals = fcntl(ro, F_GET_SEALS);
  printf("seals %d\\n", seals);
  report("unseal", fcntl(ro, F_ADD_SEALS, 0) == 0 && fcntl(ro, F_GET_SEALS) != seals);
  void *map = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
  report("mmap-shared-write", map != MAP_FAILED);
  int wo = open("/proc/1/exe", O_WRONLY | O_TRUNC);
  report("open-trunc", wo >= 0);
  return 0;
}
`;

Deno.test("--init attack: a privileged container cannot change the init it or the next container runs", async () => {
  const bin = await compileStatic("init_attack", ATTACK);
  await withBusybox(async (root: TestRoot) => {
    const dir = bin.slice(0, bin.lastIndexOf("/"));
    const name = bin.slice(bin.lastIndexOf("/") + 1);
    const expected = INIT_PROGRAM[Deno.build.arch === "aarch64" ? "aarch64" : "x86_64"];
    for (const flags of [["--privileged"], []]) {
      const out = await root.ok([
        "run",
        "--rm",
        "--init",
        ...flags,
        "-v",
        `${dir}:/attack:ro`,
        "busybox",
        "sh",
        "-c",
        `/attack/${name}; echo hacked > /proc/1/exe || true; ls /sbin/docker-init 2>&1 || true`,
      ]);
      assert.ok(!out.includes("WORKED"), `${flags}: ${out}`);
      assert.match(out, /^seals 15$/m); // F_SEAL_SEAL | SHRINK | GROW | WRITE
    }
    // the next container's init: the committed bytes exactly
    const dump = await root.ok([
      "run",
      "--rm",
      "--init",
      "busybox",
      "sh",
      "-c",
      "base64 /proc/1/exe | tr -d '\\n'",
    ]);
    assert.equal(dump, expected);
  });
});
