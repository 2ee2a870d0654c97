// Finding 6 of issue 9: a container had no seccomp filter (`Seccomp: 0`): it read the host root's
// keyring (keyctl) and unshared a user namespace, which enabled the exec escape. Here a syscall
// corpus (a static C program) runs inside containers and compares each errno with what docker's
// default profile defines: EPERM (its defaultErrnoRet) for what it refuses, ENOSYS for clone3, the
// kernel's own answer for what it allows. On the code before the fix (3dc6bf0), 15 of the 23
// probes got the kernel's answer instead of the profile's, every run (unshare, keyctl and
// clone(CLONE_NEWUSER) succeeded; umount2, setns, add_key, request_key, bpf, perf_event_open,
// clone3, personality(READ_IMPLIES_EXEC), kexec_load, open_by_handle_at, init_module and
// socket(AF_VSOCK) reached the kernel).

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { basename, dirname } from "node:path";
import { compileStatic } from "./cprog.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";

const CORPUS = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* One probe per child, so that what a probe changes (a namespace, the persona) goes with it:
   the child exits with the errno (0 = the call succeeded). */
static int probe(const char *name) {
  long r = -1;
  errno = 0;
  if (!strcmp(name, "mount")) { mkdir("/tmp/skiff-mnt", 0755); r = mount("none", "/tmp/skiff-mnt", "tmpfs", 0, 0); }
  else if (!strcmp(name, "umount2")) r = umount2("/tmp/skiff-nothing-here", 0);
  else if (!strcmp(name, "unshare")) r = unshare(CLONE_NEWUSER);
  else if (!strcmp(name, "setns")) r = setns(0, CLONE_NEWNET);
  else if (!strcmp(name, "keyctl")) r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0);
  else if (!strcmp(name, "add_key")) r = syscall(SYS_add_key, "skiff_no_such_type", "d", 0, 0, -3);
  else if (!strcmp(name, "request_key")) r = syscall(SYS_request_key, "user", "skiff-no-key", 0, 0);
  else if (!strcmp(name, "bpf")) r = syscall(SYS_bpf, 1000, 0, 0);
  else if (!strcmp(name, "perf_event_open")) r = syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
  else if (!strcmp(name, "clone_newuser")) {
    r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) { waitpid(r, 0, 0); r = 0; }
  }
  else if (!strcmp(name, "clone3")) r = syscall(SYS_clone3, 0, 0);
  else if (!strcmp(name, "personality_query")) r = personality(0xffffffff);
  else if (!strcmp(name, "personality_linux32")) r = personality(PER_LINUX32);
  else if (!strcmp(name, "personality_other")) r = personality(READ_IMPLIES_EXEC);
  else if (!strcmp(name, "acct")) r = acct(0);
  else if (!strcmp(name, "swapon")) r = syscall(SYS_swapon, "/skiff-no-swap", 0);
  else if (!strcmp(name, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
  else if (!strcmp(name, "open_by_handle_at")) r = syscall(SYS_open_by_handle_at, AT_FDCWD, 0, 0);
  else if (!strcmp(name, "ptrace")) r = syscall(SYS_ptrace, 2 /* PEEKDATA */, 999999, 0, 0);
  else if (!strcmp(name, "reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);
  else if (!strcmp(name, "init_module")) r = syscall(SYS_init_module, 0, 0, "");
  else if (!strcmp(name, "socket_inet")) r = socket(AF_INET, SOCK_DGRAM, 0);
  else if (!strcmp(name, "socket_vsock")) r = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
  else if (!strcmp(name, "mkdir")) r = mkdir("/tmp/skiff-probe-dir", 0755);
  else return 255;
  return r == -1 ? errno : 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(probe(argv[i]));
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) printf("%s %d\n", argv[i], WEXITSTATUS(status));
    else printf("%s signal%d\n", argv[i], WTERMSIG(status));
  }
  return 0;
}
`;

const EPERM = "1", ENOSYS = "38", ESRCH = "3", EACCES = "13";

/** What docker's default profile answers, with docker's default capabilities. */
const DOCKER_DEFAULT: Record<string, string> = {
  mount: EPERM,
  umount2: EPERM,
  unshare: EPERM,
  setns: EPERM,
  keyctl: EPERM,
  add_key: EPERM,
  request_key: EPERM,
  bpf: EPERM,
  perf_event_open: EPERM,
  clone_newuser: EPERM,
  clone3: ENOSYS, // errnoRet 38: glibc falls back to clone
  personality_query: "0", // allowed values: 0, 8, 0x20000, 0x20008, 0xffffffff
  personality_linux32: "0",
  personality_other: EPERM,
  acct: EPERM,
  swapon: EPERM,
  kexec_load: EPERM,
  open_by_handle_at: EPERM,
  ptrace: ESRCH, // allowed on kernels >= 4.8: the kernel answers (no such process)
  reboot: EPERM,
  init_module: EPERM,
  socket_inet: "0",
  socket_vsock: EPERM, // socket is allowed for every family but AF_VSOCK (40) and 38
};
const PROBES = Object.keys(DOCKER_DEFAULT);

/** The corpus binary's directory (bound at /probe) and file name. */
async function corpus(): Promise<{ dir: string; name: string }> {
  const path = await compileStatic("seccomp-corpus", CORPUS);
  return { dir: dirname(path), name: basename(path) };
}

function parse(out: string): Record<string, string> {
  return Object.fromEntries(out.trim().split("\n").map((l) => l.split(" ")));
}

async function runCorpus(root: TestRoot, flags: string[], probes = PROBES): Promise<Record<string, string>> {
  const { dir, name } = await corpus();
  return parse(
    await root.ok([
      "run",
      "--rm",
      "-v",
      `${dir}:/probe:ro`,
      ...flags,
      "busybox",
      `/probe/${name}`,
      ...probes,
    ]),
  );
}

Deno.test("seccomp: run applies docker's default profile (corpus errnos, Seccomp: 2)", async () => {
  await withBusybox(async (root) => {
    assertEquals(await runCorpus(root, []), DOCKER_DEFAULT);
    const status = await root.ok(["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    assertMatch(status, /^Seccomp:\s+2$/m);
    assertMatch(status, /^NoNewPrivs:\s+0$/m);
    // docker: busybox mount says "permission denied" and exits 1
    const mount = await root.skiff([
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      "mkdir -p /mnt && mount -t tmpfs t /mnt",
    ]);
    assertEquals(mount.code, 1, mount.stderr);
    assertMatch(mount.stderr, /permission denied/);
  });
});

Deno.test("seccomp: seccomp=unconfined and --privileged run without a filter", async () => {
  await withBusybox(async (root) => {
    const unconfined = await runCorpus(root, ["--security-opt", "seccomp=unconfined"]);
    // the kernel answers what the filter refused before: the corpus is not a filter-independent constant
    assertEquals(unconfined.keyctl, "0");
    assertEquals(unconfined.unshare, "0");
    assertEquals(unconfined.clone_newuser, "0");
    assertEquals(unconfined.personality_other, "0");
    assert(unconfined.clone3 !== ENOSYS, `clone3: ${unconfined.clone3}`);
    assert(unconfined.socket_vsock !== EPERM, `socket(AF_VSOCK): ${unconfined.socket_vsock}`);
    assertEquals(unconfined.ptrace, ESRCH);
    for (const flags of [["--security-opt", "seccomp=unconfined"], ["--privileged"]]) {
      const status = await root.ok(["run", "--rm", ...flags, "busybox", "cat", "/proc/self/status"]);
      assertMatch(status, /^Seccomp:\s+0$/m, flags.join(" "));
    }
    assertEquals(
      (await root.ok([
        "run",
        "-d",
        "--name",
        "uc",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "true",
      ]))
        .length,
      65,
    );
    assertEquals(
      (await root.ok(["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "uc"])).trim(),
      '["seccomp=unconfined"]',
    );
  });
});

Deno.test("seccomp: --cap-add SYS_ADMIN turns on the profile's capability-conditional rules", async () => {
  await withBusybox(async (root) => {
    const probes = await runCorpus(root, ["--cap-add", "SYS_ADMIN"], [
      "mount",
      "clone3",
      "keyctl",
      "unshare",
    ]);
    assertEquals(probes.mount, "0"); // allowed by the profile and the capability
    assertEquals(probes.unshare, "0");
    assert(probes.clone3 !== ENOSYS, `clone3: ${probes.clone3}`);
    assertEquals(probes.keyctl, EPERM); // never allowed
    const out = await root.skiff([
      "run",
      "--rm",
      "--cap-add",
      "SYS_ADMIN",
      "busybox",
      "sh",
      "-c",
      "mkdir -p /mnt && mount -t tmpfs t /mnt && echo mounted",
    ]);
    assertEquals(out.stdout.trim(), "mounted", out.stderr);
  });
});

Deno.test("seccomp: a custom profile (docker's JSON format) is honoured; bad ones refused as docker does", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-seccomp-" });
    try {
      const profile = `${dir}/nomkdir.json`;
      Deno.writeTextFileSync(
        profile,
        JSON.stringify(
          {
            defaultAction: "SCMP_ACT_ALLOW",
            syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
          },
          null,
          2,
        ),
      );
      const probes = await runCorpus(root, ["--security-opt", `seccomp=${profile}`], [
        "mkdir",
        "keyctl",
        "socket_vsock",
      ]);
      assertEquals(probes.mkdir, EACCES);
      assertEquals(probes.keyctl, "0"); // this profile allows everything else
      const shell = await root.skiff([
        "run",
        "--rm",
        "--security-opt",
        `seccomp=${profile}`,
        "busybox",
        "mkdir",
        "/x",
      ]);
      assertEquals(shell.code, 1);
      assertMatch(shell.stderr, /Permission denied/);
      // inspect shows the profile's compacted JSON, as docker does
      await root.ok(["run", "-d", "--name", "cp", "--security-opt", `seccomp=${profile}`, "busybox", "true"]);
      assertEquals(
        JSON.parse(await root.ok(["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "cp"])),
        [`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`],
      );

      const before = root.containerIds().length;
      const missing = await root.skiff([
        "run",
        "--rm",
        "--security-opt",
        `seccomp=${dir}/nope.json`,
        "busybox",
        "true",
      ]);
      assertEquals(missing.code, 125);
      assertEquals(
        missing.stderr.trim(),
        `skiff: opening seccomp profile (${dir}/nope.json) failed: open ${dir}/nope.json: no such file or directory`,
      );
      Deno.writeTextFileSync(`${dir}/bad.json`, '{"defaultAction": "SCMP_ACT_SOMETIMES"}');
      const bad = await root.skiff([
        "run",
        "--rm",
        "--security-opt",
        `seccomp=${dir}/bad.json`,
        "busybox",
        "true",
      ]);
      assertEquals(bad.code, 125);
      assertMatch(bad.stderr, /^skiff: Decoding seccomp profile failed: /);
      Deno.writeTextFileSync(`${dir}/broken.json`, '{"defaultAction": ');
      const broken = await root.skiff([
        "run",
        "--rm",
        "--security-opt",
        `seccomp=${dir}/broken.json`,
        "busybox",
        "true",
      ]);
      assertEquals(broken.code, 125);
      assertMatch(broken.stderr, /^skiff: compacting json for seccomp profile \(.*broken.json\) failed: /);
      for (
        const [opt, line] of [["foo", 'invalid --security-opt: "foo"'], [
          "foo=bar",
          'invalid --security-opt 2: "foo=bar"',
        ]]
      ) {
        const r = await root.skiff(["run", "--rm", "--security-opt", opt, "busybox", "true"]);
        assertEquals([r.code, r.stderr.trim()], [125, `skiff: ${line}`]);
      }
      assertEquals(root.containerIds().length, before, "a refused run creates nothing");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("seccomp: no-new-privileges sets NoNewPrivs; =false does not", async () => {
  await withBusybox(async (root) => {
    for (
      const [opt, want] of [["no-new-privileges", "1"], ["no-new-privileges=true", "1"], [
        "no-new-privileges=false",
        "0",
      ]]
    ) {
      const status = await root.ok([
        "run",
        "--rm",
        "-u",
        "1000",
        "--security-opt",
        opt,
        "busybox",
        "cat",
        "/proc/self/status",
      ]);
      assertMatch(status, new RegExp(`^NoNewPrivs:\\s+${want}$`, "m"), opt);
      assertMatch(status, /^Seccomp:\s+2$/m, opt);
    }
  });
});

Deno.test("seccomp: exec (plain, -t, --privileged) gets the container's filter", async () => {
  await withBusybox(async (root) => {
    const { dir, name } = await corpus();
    await root.ok(["run", "-d", "--name", "cc", "-v", `${dir}:/probe:ro`, "busybox", "sleep", "600"]);
    assertEquals(parse(await root.ok(["exec", "cc", `/probe/${name}`, ...PROBES])), DOCKER_DEFAULT);
    assertMatch(await root.ok(["exec", "cc", "cat", "/proc/self/status"]), /^Seccomp:\s+2$/m);
    // docker: exec --privileged gets every capability but keeps the container's seccomp profile
    const privileged = parse(
      await root.ok(["exec", "--privileged", "cc", `/probe/${name}`, "keyctl", "mount"]),
    );
    assertEquals(privileged, { keyctl: EPERM, mount: EPERM });
    const tty = await new Deno.Command("script", {
      args: [
        "-qec",
        `${Deno.execPath()} run -A ${
          new URL("../main.ts", import.meta.url).pathname
        } --root ${root.path} exec -t cc cat /proc/self/status`,
        "/dev/null",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertMatch(new TextDecoder().decode(tty.stdout), /^Seccomp:\s+2\r?$/m);
    // exec -d: confined too, its output discarded; a command that cannot start still says so
    const detached = await root.skiff([
      "exec",
      "-d",
      "cc",
      "sh",
      "-c",
      "echo out; echo err >&2; grep Seccomp: /proc/self/status >/tmp/d",
    ]);
    assertEquals([detached.code, detached.stdout, detached.stderr], [0, "", ""]);
    let written = "";
    for (let i = 0; i < 50 && !written.includes("Seccomp"); i++) {
      written = (await root.skiff(["exec", "cc", "cat", "/tmp/d"])).stdout;
    }
    assertMatch(written, /^Seccomp:\s+2$/m);
    const missing = await root.skiff(["exec", "-d", "cc", "no-such-command"]);
    assertEquals(missing.code, 127);
    assertMatch(missing.stderr, /exec: "no-such-command": executable file not found in \$PATH/);

    await root.ok([
      "run",
      "-d",
      "--name",
      "nn",
      "--security-opt",
      "no-new-privileges",
      "--security-opt",
      "seccomp=unconfined",
      "busybox",
      "sleep",
      "600",
    ]);
    const status = await root.ok(["exec", "nn", "cat", "/proc/self/status"]);
    assertMatch(status, /^Seccomp:\s+0$/m);
    assertMatch(status, /^NoNewPrivs:\s+1$/m);
  });
});

/**
 * An i386 program without libc (gcc -m32 needs no 32-bit libc for it): `int $0x80` calls, one line
 * per probe, "0" when the call succeeded, else minus the errno.
 */
const I386_PROBES_C = `
static long sys(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}
static void out(const char *s) { long n = 0; while (s[n]) n++; sys(4, 1, (long)s, n); }
static void line(const char *name, long r) {
  char b[16]; int i = 15; b[i] = 0; b[--i] = '\\n';
  long v = r < 0 ? -r : 0;
  do { b[--i] = '0' + v % 10; v /= 10; } while (v);
  if (r < 0) b[--i] = '-';
  out(name); out(" "); out(b + i);
}
void _start(void) {
  line("getpid", sys(20, 0, 0, 0) > 0 ? 0 : -1);
  line("unshare", sys(310, 0x20000, 0, 0));                 /* CLONE_NEWNS */
  line("mount", sys(21, (long)"t", (long)"/mnt", (long)"tmpfs"));
  line("keyctl", sys(288, 0, 0, 0));
  line("personality", sys(136, 0xffffffff, 0, 0) >= 0 ? 0 : -1);
  sys(1, 0, 0, 0);
}
`;

Deno.test("seccomp: 32-bit (i386) programs get docker's profile by their own numbers, not SIGSYS", async () => {
  if (Deno.build.arch !== "x86_64") return; // the i386 ABI exists on x86-64 hosts only
  const bin = await compileStatic("i386-probes", I386_PROBES_C, [
    "-m32",
    "-nostdlib",
    "-ffreestanding",
    "-fno-pic",
    "-fno-stack-protector",
  ]);
  // a kernel without IA32 emulation runs no i386 program at all, in a container or not (docker alike)
  let hostRuns = true;
  try {
    await new Deno.Command(bin, { stdout: "null", stderr: "null" }).output();
  } catch {
    hostRuns = false;
  }
  await withBusybox(async (root) => {
    const r = await root.skiff([
      "run",
      "--rm",
      "-v",
      `${dirname(bin)}:/probe:ro`,
      "busybox",
      `/probe/${basename(bin)}`,
    ]);
    if (!hostRuns) {
      assert(r.code !== 0, "an i386 program ran in a container on a host that cannot run it");
      return;
    }
    assertEquals(r.code, 0, r.stderr);
    // docker (amd64, default profile: archMap gives x86 and x32): the same errnos as a 64-bit program
    assertEquals(parse(r.stdout), {
      getpid: "0",
      unshare: "-1",
      mount: "-1",
      keyctl: "-1",
      personality: "0",
    });
    // unconfined, the calls reach the kernel: keyctl answers with its own errno, not the filter's EPERM
    const bare = await root.skiff([
      "run",
      "--rm",
      "--security-opt",
      "seccomp=unconfined",
      "-v",
      `${dirname(bin)}:/probe:ro`,
      "busybox",
      `/probe/${basename(bin)}`,
    ]);
    assertEquals(bare.code, 0, bare.stderr);
    assert(parse(bare.stdout).keyctl !== "-1", `keyctl reached the kernel: ${bare.stdout}`);
  });
});
