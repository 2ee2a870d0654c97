// exec's syscall program (lib/runtime/exec_program.ts, ffi/exec_program/interpreter.c): the plan's
// order and encoding without root; the interpreter's machine code run natively and, for arm64, under
// qemu-aarch64-static; and the attack the program's first steps are for: a container with
// CAP_SYS_PTRACE reading the memory and maps of the exec'd process before its execve.

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXEC_PROGRAM_CODE } from "../ffi/exec_program/code.ts";
import { SYSCALL_NUMBERS } from "../ffi/libc.ts";
import { decodeRecord, encodeProgram, type ExecPlan, planExecProgram } from "../lib/runtime/exec_program.ts";
import { planHolderProgram } from "../lib/runtime/holder_program.ts";
import { compileStatic } from "./cprog.ts";
import { MAIN, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

const HARNESS = new URL("./fixtures/exec_program_harness.c", import.meta.url).pathname;

function plan(over: Partial<ExecPlan> = {}): ExecPlan {
  return {
    sys: SYSCALL_NUMBERS.x86_64,
    rseq: { offset: 2336n, size: 20, signature: 0x53053053 },
    exeFd: 10,
    cgroupFds: [11, 12],
    namespaces: [{ fd: 13, type: 0x02000000, name: "cgroup" }, { fd: 14, type: 0x00020000, name: "mnt" }],
    pidNamespaceFd: 15,
    workingDir: "/work",
    stdio: [16, 17, 18],
    errorFd: 19,
    tty: false,
    uid: 1000,
    gid: 1000,
    additionalGids: [10],
    capabilities: 0xa80425fbn,
    privileged: false,
    lastCap: 40,
    held: 0x1fffeffffffn,
    seccomp: { filter: new Uint8Array(16), flags: 0 },
    noNewPrivileges: false,
    path: "/bin/sh",
    argv: ["sh", "-c", "true"],
    env: ["PATH=/bin"],
    setupFailed: 125,
    notFound: 127,
    notExecutable: 126,
    ...over,
  };
}

const labels = (p: ExecPlan) => planExecProgram(p).steps.map((s) => s.label);

Deno.test("exec program: out of skiff's memory first, then cgroups, namespaces, credentials, clone, execve", () => {
  const l = labels(plan());
  const at = (label: string) => l.indexOf(label);
  assert.deepEqual(l.slice(0, 4), [
    "rseq unregister",
    "unmap",
    "prctl PR_SET_MM_MAP",
    "prctl PR_SET_DUMPABLE",
  ]);
  assert.ok(at("cgroup") < at("setns cgroup"), "cgroups before the cgroup namespace hides ours");
  assert.ok(at("setns mnt") < at("chdir") && at("chdir") < at("dup3"));
  assert.ok(at("close_range") < at("setns pid") && at("setns pid") < at("clone"));
  // without no-new-privileges the filter goes on while CAP_SYS_ADMIN is still held
  assert.ok(at("seccomp") < at("prctl PR_CAPBSET_DROP") && at("capset") < at("clone"));
  assert.ok(at("clone") < at("execve") && at("execve") < at("report pid"));
  const nnp = labels(plan({ noNewPrivileges: true }));
  assert.ok(nnp.indexOf("prctl PR_SET_NO_NEW_PRIVS") < nnp.indexOf("seccomp"));
  assert.ok(nnp.indexOf("capset") < nnp.indexOf("seccomp") && nnp.indexOf("seccomp") < nnp.indexOf("clone"));
  // -t: the command's own session takes the pty, after the clone (never the middle's)
  const tty = labels(plan({ tty: true }));
  assert.ok(tty.lastIndexOf("ioctl TIOCSCTTY") > tty.indexOf("clone"));
  assert.equal(labels(plan({ privileged: true })).includes("prctl PR_CAPBSET_DROP"), false);
});

Deno.test("exec program: every fd but the error pipe and the PID namespace's is closed", () => {
  const steps = planExecProgram(plan()).steps.filter((s) => s.label === "close_range");
  assert.deepEqual(steps.map((s) => s.args!.slice(0, 2)), [[3, 14], [16, 18], [20, 0xffffffff]]);
});

Deno.test("holder program: out of skiff's memory first; only the held fds and the pidfd stay; ppoll last", () => {
  const program = planHolderProgram({
    sys: SYSCALL_NUMBERS.x86_64,
    rseq: { offset: 2336n, size: 20, signature: 0x53053053 },
    exeFd: 5,
    held: [9, 4],
    pidfd: 7,
    errorFd: 12,
    setupFailed: 125,
  });
  const l = program.steps.map((s) => s.label);
  assert.deepEqual(l.slice(0, 6), [
    "rseq unregister",
    "unmap",
    "prctl PR_SET_MM_MAP",
    "prctl PR_SET_DUMPABLE",
    "signals",
    "setsid",
  ]);
  assert.deepEqual(l.slice(-3), ["close error pipe", "ppoll", "exit_group"]);
  const closed = program.steps.filter((s) => s.label.startsWith("close")).map((s) => s.args!.slice(0, 2));
  // 0-3, 5-6 (the exe memfd goes once it is the exe), 8, 10-11, 13 on; then the error pipe: its EOF
  assert.deepEqual(closed, [[0, 3], [5, 6], [8, 8], [10, 11], [13, 0xffffffff], [12, 12]]);
  const pollfd = program.steps.find((s) => s.label === "ppoll")!.args![0] as { bytes: Uint8Array };
  assert.deepEqual([...pollfd.bytes], [7, 0, 0, 0, 1, 0, 0, 0]);
});

Deno.test("exec program: the encoding points at its own data and result fields", () => {
  const program = planExecProgram(plan());
  const layout = {
    base: 0x7f0000000000n,
    size: 64 * 1024,
    codeSize: 4096,
    cloneNr: 56,
    clone3Nr: 435,
    stackSize: 16384,
  };
  const bytes = encodeProgram(program, layout);
  const v = new DataView(bytes.buffer);
  assert.equal(v.getBigUint64(0, true), 56n);
  assert.equal(v.getBigUint64(16, true), layout.base + 65536n); // the child's stack: the mapping's end
  assert.equal(v.getBigUint64(48, true), layout.base);
  assert.equal(v.getBigUint64(64, true), 19n);
  assert.equal(Number(v.getBigUint64(72, true)), program.steps.length);
  const entry = (i: number) => 80 + 80 * i;
  const clone = program.steps.findIndex((s) => s.label === "clone");
  const report = program.steps.findIndex((s) => s.label === "report pid");
  assert.equal(v.getUint32(entry(clone), true), 1); // OP_FORK
  assert.equal(v.getUint32(entry(clone) + 12, true), report);
  assert.equal(v.getBigUint64(entry(report) + 32, true), layout.base + 4096n + BigInt(entry(clone) + 72));
  const execve = program.steps.findIndex((s) => s.label === "execve");
  const pathAt = Number(v.getBigUint64(entry(execve) + 24, true) - layout.base - 4096n);
  assert.equal(new TextDecoder().decode(bytes.subarray(pathAt, pathAt + 7)), "/bin/sh");
  assert.equal(bytes[pathAt + 7], 0);
  const argvAt = Number(v.getBigUint64(entry(execve) + 32, true) - layout.base - 4096n);
  assert.equal(v.getBigUint64(argvAt + 24, true), 0n); // NULL after 3 pointers
  assert.deepEqual(decodeRecord(new Uint8Array([0, 0, 0, 0, 42, 0, 0, 0])), { pid: 42 });
  assert.deepEqual(decodeRecord(new Uint8Array([5, 0, 0, 0, 2, 0, 0, 0])), { failed: 4, errno: 2 });
});

async function has(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** Builds the harness with `cc`, runs it (under `emulator`) on the interpreter's bytes for `arch`. */
async function runHarness(arch: "x86_64" | "aarch64", cc: string, emulator: string[], mode: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-interp-" });
  try {
    const bin = join(dir, "harness"), code = join(dir, "code.bin");
    const built = await new Deno.Command(cc, {
      args: ["-static", "-O1", "-o", bin, HARNESS],
      stderr: "piped",
    })
      .output();
    assert.ok(built.success, new TextDecoder().decode(built.stderr));
    await Deno.writeFile(code, Uint8Array.from(atob(EXEC_PROGRAM_CODE[arch]), (c) => c.charCodeAt(0)));
    const [cmd, ...pre] = [...emulator, bin];
    const out = await new Deno.Command(cmd, {
      args: [...pre, code, ...mode],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function checkBasic(out: string) {
  assert.match(out, /^before-fork$/m);
  assert.match(out, /^child$/m);
  assert.match(out, /^exec-ok$/m);
  assert.match(out, /^middle exit 7$/m);
  const pid = out.match(/^grandchild (\d+)$/m)?.[1];
  assert.ok(pid, out);
  assert.match(out, new RegExp(`^${pid}$`, "m")); // the shell's $$: the pid the parent path reported
}

Deno.test("exec program interpreter (x86-64, native): fork, ignored and fatal failures, execve, unmap-all and exe swap", async () => {
  if (Deno.build.arch !== "x86_64") return console.log("not an x86-64 host: the native harness is skipped");
  checkBasic(await runHarness("x86_64", "gcc", [], []));
  const failing = await runHarness("x86_64", "gcc", [], ["basic", "fail"]);
  assert.match(failing, /^failed entry \d+ errno 9$/m); // EBADF from close(9999), index reported
  assert.doesNotMatch(failing, /^exec-ok$/m);
  // every page but the program's unmapped (with glibc's rseq undone first) and the exe swapped
  checkBasic(await runHarness("x86_64", "gcc", [], ["full"]));
  checkChain(await runHarness("x86_64", "gcc", [], ["chain"]));
});

/** "chain": the second program ran, wrote through the fd its first step got, and failed on EOF. */
function checkChain(out: string) {
  assert.match(out, /^child$/m);
  assert.match(out, /^chained$/m);
  assert.match(out, /^failed entry 3 errno 32$/m); // the read's index in the second program, EPIPE
  assert.doesNotMatch(out, /^exec-ok$/m);
}

Deno.test("exec program interpreter (arm64, under qemu-aarch64-static): fork, failures, execve", async () => {
  const cc = "aarch64-linux-gnu-gcc";
  if (!(await has(cc)) || !(await has("qemu-aarch64-static"))) {
    console.log(
      "SKIPPED: the arm64 interpreter needs aarch64-linux-gnu-gcc and qemu-aarch64-static " +
        "(apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)",
    );
    return;
  }
  // the x86-64 /bin/sh the emulated child execs runs natively; unmap-all and PR_SET_MM_MAP are not
  // tried: qemu-user's own code shares the guest's address space (unmapping it hangs the emulator)
  checkBasic(await runHarness("aarch64", cc, ["qemu-aarch64-static"], []));
  const failing = await runHarness("aarch64", cc, ["qemu-aarch64-static"], ["basic", "fail"]);
  assert.match(failing, /^failed entry \d+ errno 9$/m);
  checkChain(await runHarness("aarch64", cc, ["qemu-aarch64-static"], ["chain"]));
});

// Runs as PID 1 of a container with CAP_SYS_PTRACE: for every other process that appears, reads its
// /proc/N/maps and all of its memory through /proc/N/mem, looking for argv[1] and argv[2] (strings
// that only skiff's memory holds); hits go to /out/hits, with "maps N <ranges> <bytes> <exe>".
const MEM_SNOOP = `
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
static char buf[1 << 20];
int main(int argc, char **argv) {
  const char *markers[] = {argv[1], argv[2]};
  FILE *hits = fopen("/out/hits", "a");
  char self[16];
  snprintf(self, sizeof self, "%d", getpid());
  long last = 0, seen = 0;
  for (;;) {
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while ((e = readdir(proc))) {
      const char *pid = e->d_name;
      if (pid[0] < '0' || pid[0] > '9' || !strcmp(pid, self) || !strcmp(pid, "1")) continue;
      char path[64];
      // stopped first (SIGSTOP cannot be blocked): a process caught before its execve stays so
      // while all of its memory is read
      kill(atoi(pid), SIGSTOP);
      snprintf(path, sizeof path, "/proc/%s/mem", pid);
      int mem = open(path, O_RDONLY);
      snprintf(path, sizeof path, "/proc/%s/maps", pid);
      FILE *maps = fopen(path, "r");
      if (atol(pid) > last) {
        last = atol(pid);
        FILE *s = fopen("/out/seen", "w");
        if (s) { fprintf(s, "%ld\\n", ++seen); fclose(s); }
      }
      if (mem < 0 || !maps) {
        if (mem >= 0) close(mem);
        if (maps) fclose(maps);
        kill(atoi(pid), SIGCONT);
        continue;
      }
      unsigned long a, b;
      char line[512];
      int ranges = 0, found = 0;
      long bytes = 0;
      char exe[256] = "";
      snprintf(path, sizeof path, "/proc/%s/exe", pid);
      ssize_t n = readlink(path, exe, sizeof exe - 1);
      exe[n > 0 ? n : 0] = 0;
      while (fgets(line, sizeof line, maps) && sscanf(line, "%lx-%lx", &a, &b) == 2) {
        ranges++;
        for (unsigned long at = a; at < b; at += sizeof buf) {
          size_t want = b - at < sizeof buf ? b - at : sizeof buf;
          ssize_t got = pread(mem, buf, want, at);
          if (got <= 0) break;
          bytes += got;
          for (int m = 0; m < 2; m++) if (memmem(buf, got, markers[m], strlen(markers[m]))) found = 1;
        }
      }
      if (ranges && exe[0] && strncmp(exe, "/bin/", 5)) fprintf(hits, "maps %s %d %ld %s\\n", pid, ranges, bytes, exe);
      if (found) fprintf(hits, "marker %s %s\\n", pid, exe);
      fflush(hits);
      close(mem);
      fclose(maps);
      kill(atoi(pid), SIGCONT);
    }
    closedir(proc);
  }
}
`;

/** A string of skiff's source (lib/runtime/exec.ts), so in the V8 heap of any skiff process. */
const SKIFF_SOURCE_MARKER = "unable to start container process";

// One marker is in skiff exec's environment (so in its memory and in every fork's copy of it), the
// other in skiff's code; neither is in the command's. Before (125844e, the exec stage: a second Deno
// process whose forked child kept a copy of the stage's heap until its execve; this machine, 2 vCPU,
// load 5-7): the attacker stopped 26-29 of 40 exec'd processes before their execve and found skiff's
// memory in 26 of 40 execs. Now: caught 24 of 40 before the execve, each with only the program's
// pages and the memfd as exe, skiff's memory in none.
Deno.test("exec: a container with CAP_SYS_PTRACE reads nothing of skiff's memory in the exec'd process", async () => {
  const snoop = await compileStatic("mem_snoop", MEM_SNOOP);
  const marker = `skiff-heap-marker-${crypto.randomUUID()}`;
  await withBusybox(async (root) => {
    const out = await Deno.makeTempDir({ prefix: "skiff-out-" });
    try {
      await withBackground(
        root,
        "memsnoop",
        async (c) => {
          const rounds = 40;
          let seenAny = 0;
          for (let i = 0; i < rounds; i++) {
            const r = await new Deno.Command(Deno.execPath(), {
              args: ["run", "-A", MAIN, "--root", root.path, "exec", c.name, "sleep", "0.05"],
              env: { SKIFF_TEST_MARKER: marker },
              stdin: "null",
              stdout: "null",
              stderr: "piped",
            }).output();
            assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
          }
          const seen = Number((await Deno.readTextFile(join(out, "seen")).catch(() => "0")).trim() || 0);
          assert.ok(seen >= rounds * 0.8, `the attacker saw ${seen} of ${rounds} processes`);
          const hits = (await Deno.readTextFile(join(out, "hits")).catch(() => "")).trim().split("\n")
            .filter(Boolean);
          const markers = hits.filter((h) => h.startsWith("marker "));
          // caught before its execve: the exe is skiff's memfd and the maps are the program's few ranges
          const early = hits.filter((h) => h.startsWith("maps "));
          seenAny = new Set(early.map((h) => h.split(" ")[1])).size;
          const leaked = new Set(markers.map((h) => h.split(" ")[1])).size;
          console.log(`caught before execve: ${seenAny} of ${rounds}; skiff's memory found in ${leaked}`);
          assert.deepEqual(markers, []);
          for (const h of early) {
            const [, , ranges, , ...exe] = h.split(" ");
            assert.ok(Number(ranges) <= 4, `more than the program's pages: ${h}`);
            assert.match(exe.join(" "), /^\/memfd:skiff-exec/, h);
          }
        },
        ["/snoop", marker, SKIFF_SOURCE_MARKER],
        [
          "--security-opt",
          "seccomp=unconfined",
          "--cap-add",
          "SYS_PTRACE",
          "-v",
          `${snoop}:/snoop:ro`,
          "-v",
          `${out}:/out`,
        ],
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});

// Runs as PID 1 of a container with CAP_SYS_PTRACE: opens every fd of every new process for
// writing and keeps it, so the exec'd command's end of skiff's error pipe (close-on-exec: its EOF
// tells skiff the execve went through) stays open after the execve. Counts what it holds in /out/held.
const FD_HOLDER = `
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
  char self[16];
  snprintf(self, sizeof self, "%d", getpid());
  long last = 0, held = 0;
  for (;;) {
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while ((e = readdir(proc))) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9' || !strcmp(e->d_name, self) || atol(e->d_name) <= last) continue;
      last = atol(e->d_name);
      char path[64];
      for (int fd = 0; fd < 64; fd++) {
        snprintf(path, sizeof path, "/proc/%s/fd/%d", e->d_name, fd);
        if (open(path, O_WRONLY | O_NONBLOCK) >= 0) held++;
      }
      FILE *f = fopen("/out/held", "w");
      if (f) { fprintf(f, "%ld\\n", held); fclose(f); }
    }
    closedir(proc);
  }
}
`;

// Before (125844e, the exec stage read its error pipe until EOF): 3 of 15 execs hung until killed
// (8 s), 51 fds held; this machine, 2 vCPU, load ~8. Now skiff exec also ends the wait when the
// command exits: 0 of 15 over 5 s, 54 fds held.
Deno.test("exec: a container holding the command's end of skiff's error pipe does not keep skiff exec waiting", async () => {
  const holder = await compileStatic("fd_holder", FD_HOLDER);
  await withBusybox(async (root) => {
    const out = await Deno.makeTempDir({ prefix: "skiff-out-" });
    try {
      await withBackground(
        root,
        "holder",
        async (c) => {
          const rounds = 15;
          let slow = 0;
          for (let i = 0; i < rounds; i++) {
            const started = Date.now();
            const r = await new Deno.Command(Deno.execPath(), {
              args: ["run", "-A", MAIN, "--root", root.path, "exec", c.name, "sleep", "0.05"],
              stdin: "null",
              stdout: "null",
              stderr: "piped",
              signal: AbortSignal.timeout(20_000),
            }).output();
            assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
            if (Date.now() - started > 5000) slow++;
          }
          const held = Number((await Deno.readTextFile(join(out, "held")).catch(() => "0")).trim() || 0);
          console.log(`fds held by the container: ${held}; execs that took over 5 s: ${slow} of ${rounds}`);
          assert.ok(held > 0, "the holder never opened an fd: the test proves nothing");
          assert.equal(slow, 0);
        },
        ["/holder"],
        [
          "--security-opt",
          "seccomp=unconfined",
          "--cap-add",
          "SYS_PTRACE",
          "-v",
          `${holder}:/holder:ro`,
          "-v",
          `${out}:/out`,
        ],
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});
