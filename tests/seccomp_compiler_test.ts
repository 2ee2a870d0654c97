// The seccomp compiler (lib/seccomp) without root: its BPF run through a small classic-BPF
// interpreter on seccomp_data inputs. The real-kernel tests are tests/seccomp_test.ts; this checks
// the corners the kernel tests cannot reach cheaply (64-bit comparisons, x32, other arches).

import { DEFAULT_CAPABILITIES } from "../lib/runtime/caps.ts";
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { AUDIT_ARCH, compileFilter } from "../lib/seccomp/bpf.ts";
import { runBpf } from "./bpf_interp.ts";
import { DEFAULT_PROFILE } from "../lib/seccomp/default_profile.ts";
import { parseProfileJson } from "../lib/seccomp/profile.ts";
import type { SeccompProfile } from "../lib/seccomp/profile_types.ts";
import {
  filterArches,
  type NativeArch,
  resolveProfile,
  RET,
  type SeccompArch,
  SYSCALL_TABLES,
} from "../lib/seccomp/resolve.ts";
import { COMPILER_REVISION, containerConfinement } from "../lib/seccomp/mod.ts";

const EPERM = RET.ERRNO | 1, ENOSYS = RET.ERRNO | 38;
const DEFAULT_CAPS = DEFAULT_CAPABILITIES.map((c) => `CAP_${c}`);

function compile(profile: SeccompProfile, arch: NativeArch = "x86_64", caps = DEFAULT_CAPS) {
  const prog = compileFilter(resolveProfile(profile, { arch, capabilities: caps, kernel: [6, 18] }));
  /** A call of `abi` (the host's own by default) by name. */
  const callOf = (abi: SeccompArch) => (name: string, ...args: bigint[]) => {
    const nr = SYSCALL_TABLES[abi][name];
    if (nr === undefined) throw new Error(`${abi} has no ${name}`);
    return runBpf(prog, AUDIT_ARCH[abi], nr, args);
  };
  return { prog, call: callOf(arch), callOf };
}

const CLONE_NEWUSER = 0x10000000n, CLONE_NEWNS = 0x00020000n, SIGCHLD = 17n;

for (const arch of ["x86_64", "aarch64"] as const) {
  Deno.test(`seccomp compiler: docker's default profile on ${arch}`, () => {
    const { prog, call } = compile(DEFAULT_PROFILE, arch);
    assert(prog.length / 8 < 4096);
    for (const name of ["read", "write", "openat", "execve", "futex", "capset", "setresuid", "close_range"]) {
      assertEquals(call(name), RET.ALLOW, name);
    }
    for (
      const name of [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "acct",
        "swapon",
        "kexec_load",
        "open_by_handle_at",
        "reboot",
        "init_module",
      ]
    ) assertEquals(call(name), EPERM, name);
    assertEquals(call("ptrace"), RET.ALLOW, "ptrace (kernel >= 4.8)");
    assertEquals(call("clone3"), ENOSYS);
    assertEquals(call("clone", SIGCHLD), RET.ALLOW);
    assertEquals(call("clone", CLONE_NEWUSER | SIGCHLD), EPERM);
    assertEquals(call("clone", CLONE_NEWNS), EPERM);
    for (const p of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) {
      assertEquals(call("personality", p), RET.ALLOW);
    }
    for (const p of [0x400000n, 1n, 0x1_00000000n]) assertEquals(call("personality", p), EPERM);
    for (const domain of [1n, 2n, 10n, 16n, 37n, 39n, 41n, 45n]) {
      assertEquals(call("socket", domain), RET.ALLOW);
    }
    for (const domain of [38n, 40n]) assertEquals(call("socket", domain), EPERM);
    // above every syscall the profile names: ENOSYS, as runc answers
    assertEquals(runBpf(prog, AUDIT_ARCH[arch], 1000), ENOSYS);
    // an architecture the profile's archMap does not give this host: killed (libseccomp's bad-arch
    // action); arm64's arm and x86-64's i386 are given
    assertEquals(runBpf(prog, arch === "x86_64" ? AUDIT_ARCH.arm : AUDIT_ARCH.x86, 1), RET.KILL_THREAD);
    assertEquals(runBpf(prog, AUDIT_ARCH.aarch64 ^ (arch === "x86_64" ? 0 : 0xffff), 1), RET.KILL_THREAD);
    if (arch === "x86_64") {
      assertEquals(call("arch_prctl"), RET.ALLOW);
    } else {
      assertEquals(call("arch_prctl" in SYSCALL_TABLES.aarch64 ? "arch_prctl" : "read"), RET.ALLOW);
    }
  });
}

Deno.test("seccomp compiler: the compat ABIs of docker's archMap (i386 and x32 on x86-64, arm on arm64)", () => {
  assertEquals(filterArches(DEFAULT_PROFILE, "x86_64"), ["x86_64", "x86", "x32"]);
  assertEquals(filterArches(DEFAULT_PROFILE, "aarch64"), ["aarch64", "arm"]);
  for (const [native, abis] of [["x86_64", ["x86", "x32"]], ["aarch64", ["arm"]]] as const) {
    const { callOf } = compile(DEFAULT_PROFILE, native);
    for (const abi of abis) {
      const call = callOf(abi);
      // the same names as the host's own calls, by the ABI's own numbers
      for (const name of ["read", "write", "openat", "execve", "exit_group", "futex", "capset"]) {
        assertEquals(call(name), RET.ALLOW, `${abi} ${name}`);
      }
      for (const name of ["mount", "umount2", "unshare", "setns", "keyctl", "bpf", "kexec_load", "reboot"]) {
        assertEquals(call(name), EPERM, `${abi} ${name}`);
      }
      // argument rules too: clone may not make namespaces; personality only the listed values
      assertEquals(call("clone", SIGCHLD), RET.ALLOW, `${abi} clone`);
      assertEquals(call("clone", CLONE_NEWUSER | SIGCHLD), EPERM, `${abi} clone NEWUSER`);
      assertEquals(call("personality", 8n), RET.ALLOW, `${abi} personality`);
      assertEquals(call("personality", 0x400000n), EPERM, `${abi} personality`);
    }
  }
  // i386 only: its own calls (socketcall, the 32-bit ids), and the time64 calls; arm: its private calls
  const x86 = compile(DEFAULT_PROFILE, "x86_64");
  for (const name of ["socketcall", "setuid32", "clock_gettime64", "set_thread_area", "mmap2"]) {
    assertEquals(x86.callOf("x86")(name), RET.ALLOW, `i386 ${name}`);
  }
  assertEquals(x86.callOf("x32")("rt_sigaction"), RET.ALLOW, "x32 rt_sigaction (512 + the x32 bit)");
  const arm = compile(DEFAULT_PROFILE, "aarch64");
  for (const name of ["set_tls", "cacheflush", "breakpoint", "clock_gettime64"]) {
    assertEquals(arm.callOf("arm")(name), RET.ALLOW, `arm ${name}`);
  }
  // a profile without archMap or architectures covers the host's ABI alone (libseccomp's default)
  const bare = compile({
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
  });
  assertEquals(bare.call("read"), RET.ALLOW);
  assertEquals(bare.callOf("x86")("read"), RET.KILL_THREAD, "i386 refused");
  assertEquals(bare.callOf("x32")("read"), RET.KILL_THREAD, "x32 refused");
  // `architectures` names them one by one
  const listed = compile({
    defaultAction: "SCMP_ACT_ERRNO",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
  });
  assertEquals(listed.callOf("x86")("read"), RET.ALLOW);
  assertEquals(listed.callOf("x86")("exit"), EPERM); // below the highest listed: the default action
  assertEquals(listed.callOf("x32")("read"), RET.KILL_THREAD);
});

Deno.test("seccomp compiler: 32-bit ABIs compare arguments by their low word", () => {
  const rule = (op: string, value: number | bigint, valueTwo?: number) =>
    compile({
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      syscalls: [{
        names: ["ioctl"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 1, value, valueTwo, op } as never],
      }],
    }).callOf("x86");
  const cases: [string, number, bigint, boolean, number?][] = [
    ["SCMP_CMP_EQ", 5, 5n, true],
    ["SCMP_CMP_EQ", 5, 6n, false],
    ["SCMP_CMP_EQ", 0x1_0000_0005, 5n, false], // no 32-bit value has a high word
    ["SCMP_CMP_NE", 0x1_0000_0005, 5n, true],
    ["SCMP_CMP_GT", 5, 6n, true],
    ["SCMP_CMP_GT", 0x1_0000_0000, 0xffff_ffffn, false],
    ["SCMP_CMP_LT", 0x1_0000_0000, 0xffff_ffffn, true],
    ["SCMP_CMP_LE", 5, 5n, true],
    ["SCMP_CMP_GE", 5, 4n, false],
    ["SCMP_CMP_MASKED_EQ", 0xff, 0x1234n, true, 0x34],
    ["SCMP_CMP_MASKED_EQ", 0xff, 0x1235n, false, 0x34],
  ];
  for (const [op, value, arg, allowed, two] of cases) {
    assertEquals(
      rule(op, value, two)("ioctl", 0n, arg),
      allowed ? RET.ALLOW : EPERM,
      `${op} ${value} on ${arg}`,
    );
  }
});

Deno.test("seccomp compiler: capability-conditional rules follow the container's capabilities", () => {
  const { call } = compile(DEFAULT_PROFILE, "x86_64", [...DEFAULT_CAPS, "CAP_SYS_ADMIN"]);
  for (const name of ["mount", "umount2", "unshare", "setns", "bpf", "perf_event_open"]) {
    assertEquals(call(name), RET.ALLOW, name);
  }
  assertEquals(call("clone3"), RET.ALLOW);
  assertEquals(call("clone", CLONE_NEWUSER), RET.ALLOW);
  assertEquals(call("keyctl"), EPERM);
  const ptrace = compile(DEFAULT_PROFILE, "x86_64", [
    ...DEFAULT_CAPS,
    "CAP_SYS_PTRACE",
    "CAP_DAC_READ_SEARCH",
  ]);
  assertEquals(ptrace.call("kcmp"), RET.ALLOW);
  assertEquals(ptrace.call("open_by_handle_at"), RET.ALLOW);
  assertEquals(ptrace.call("mount"), EPERM);
});

Deno.test("seccomp compiler: 64-bit argument comparisons", () => {
  const rule = (op: string, value: number, valueTwo?: number) =>
    compile({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{
        names: ["ioctl"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 1, value, valueTwo, op } as never],
      }],
    }).call;
  const big = 0x1_0000_0005; // high word 1, low word 5
  const cases: [string, number, bigint, boolean][] = [
    ["SCMP_CMP_EQ", big, 0x1_0000_0005n, true],
    ["SCMP_CMP_EQ", big, 5n, false],
    ["SCMP_CMP_NE", big, 5n, true],
    ["SCMP_CMP_NE", big, 0x1_0000_0005n, false],
    ["SCMP_CMP_GT", big, 0x1_0000_0006n, true],
    ["SCMP_CMP_GT", big, 0x1_0000_0005n, false],
    ["SCMP_CMP_GT", big, 0x2_0000_0000n, true],
    ["SCMP_CMP_GT", big, 0xffff_ffffn, false],
    ["SCMP_CMP_GE", big, 0x1_0000_0005n, true],
    ["SCMP_CMP_GE", big, 0x1_0000_0004n, false],
    ["SCMP_CMP_LT", big, 0x1_0000_0004n, true],
    ["SCMP_CMP_LT", big, 0xffff_ffffn, true],
    ["SCMP_CMP_LT", big, 0x1_0000_0005n, false],
    ["SCMP_CMP_LT", big, 0x2_0000_0000n, false],
    ["SCMP_CMP_LE", big, 0x1_0000_0005n, true],
    ["SCMP_CMP_LE", big, 0x1_0000_0006n, false],
  ];
  for (const [op, value, arg, allowed] of cases) {
    assertEquals(rule(op, value)("ioctl", 0n, arg), allowed ? RET.ALLOW : EPERM, `${op} ${value} on ${arg}`);
  }
  const masked = rule("SCMP_CMP_MASKED_EQ", 0xff00_0000_00ff, 0x1200_0000_0034);
  assertEquals(masked("ioctl", 0n, 0x12ab_cdef_0034n), RET.ALLOW);
  assertEquals(masked("ioctl", 0n, 0x13ab_cdef_0034n), EPERM);
  assertEquals(masked("ioctl", 0n, 0x12ab_cdef_0035n), EPERM);
});

Deno.test("seccomp compiler: actions, errnoRet, and one argument tested twice is an OR (runc)", () => {
  const { call } = compile({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [
      { names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      { names: ["rmdir"], action: "SCMP_ACT_KILL_PROCESS" },
      { names: ["unlink"], action: "SCMP_ACT_TRAP" },
      { names: ["rename"], action: "SCMP_ACT_TRACE", errnoRet: 7 },
      { names: ["chmod"], action: "SCMP_ACT_LOG" },
      { names: ["chown"], action: "SCMP_ACT_KILL" },
      {
        names: ["kill"],
        action: "SCMP_ACT_ERRNO",
        args: [{ index: 1, value: 9, op: "SCMP_CMP_EQ" }, { index: 1, value: 15, op: "SCMP_CMP_EQ" }],
      },
    ],
  });
  assertEquals(call("mkdir"), RET.ERRNO | 13);
  assertEquals(call("mkdirat"), RET.ERRNO | 13);
  assertEquals(call("rmdir"), RET.KILL_PROCESS);
  assertEquals(call("unlink"), RET.TRAP);
  assertEquals(call("rename"), RET.TRACE | 7);
  assertEquals(call("chmod"), RET.LOG);
  assertEquals(call("chown"), RET.KILL_THREAD);
  assertEquals(call("kill", 1n, 9n), EPERM);
  assertEquals(call("kill", 1n, 15n), EPERM);
  assertEquals(call("kill", 1n, 2n), RET.ALLOW);
  assertEquals(call("read"), RET.ALLOW);
  assertEquals(runBpf(compile({ defaultAction: "SCMP_ACT_ALLOW" }).prog, AUDIT_ARCH.x86_64, 1000), RET.ALLOW);
});

Deno.test("seccomp profile loading: docker's JSON format, validated", () => {
  const p = parseProfileJson(JSON.stringify(DEFAULT_PROFILE));
  assertEquals(p.syscalls?.length, DEFAULT_PROFILE.syscalls?.length);
  assertThrows(() => parseProfileJson("{"), /Decoding seccomp profile failed/);
  assertThrows(
    () => parseProfileJson('{"defaultAction":"SCMP_ACT_NOPE"}'),
    /Decoding seccomp profile failed/,
  );
  assertThrows(
    () =>
      parseProfileJson(
        '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}',
      ),
    /Decoding seccomp profile failed/,
  );
  assertThrows(
    () =>
      resolveProfile(
        {
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [{ name: "a", names: ["b"], action: "SCMP_ACT_ALLOW" }],
        },
        { arch: "x86_64", capabilities: [], kernel: [6, 1] },
      ),
    /both 'name' and 'names'/,
  );
});

Deno.test("seccomp: COMPILER_REVISION matches the compiler's sources (the cache key)", async () => {
  const files = [
    "bpf.ts",
    "compile.ts",
    "default_profile.ts",
    "profile_types.ts",
    "resolve.ts",
    "syscall_tables.ts",
  ];
  const text = files.map((f) => Deno.readTextFileSync(new URL(`../lib/seccomp/${f}`, import.meta.url))).join(
    "\n--\n",
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 16);
  assertEquals(COMPILER_REVISION, hex, `update COMPILER_REVISION in lib/seccomp/mod.ts to "${hex}"`);
});

Deno.test("seccomp: a cached program is the one the compiler makes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-seccomp-cache-" });
  try {
    Deno.mkdirSync(`${dir}/tmp`);
    const host = { Privileged: false, CapAdd: ["CAP_SYS_ADMIN"], CapDrop: null };
    const fresh = await containerConfinement(host);
    const first = await containerConfinement(host, dir);
    const second = await containerConfinement(host, dir);
    assertEquals(first, fresh);
    assertEquals(second, fresh);
    assertEquals([...Deno.readDirSync(`${dir}/seccomp`)].length, 1);
    assertEquals([...Deno.readDirSync(`${dir}/tmp`)].length, 0);
    // a damaged cache file (cut short, or a program that is not the one written) is compiled again,
    // never loaded as a weaker filter
    const [file] = [...Deno.readDirSync(`${dir}/seccomp`)].map((e) => `${dir}/seccomp/${e.name}`);
    const whole = Deno.readTextFileSync(file);
    const [flags, program, check] = whole.trimEnd().split(" ");
    for (
      const damaged of [
        `${flags} ${program.slice(0, program.length - 16)}`,
        `${flags} ${program.slice(0, program.length - 16)} ${check}\n`,
        `${flags} ${program.slice(16)} ${check}\n`,
        "",
      ]
    ) {
      Deno.writeTextFileSync(file, damaged);
      assertEquals(await containerConfinement(host, dir), fresh);
      assertEquals(Deno.readTextFileSync(file), whole);
    }
    // another capability set is another program
    const other = await containerConfinement({ ...host, CapAdd: null }, dir);
    assert(other.seccompFilter !== fresh.seccompFilter);
    assertEquals(await containerConfinement({ ...host, Privileged: true }, dir), {});
    assertEquals(
      await containerConfinement({ ...host, SecurityOpt: ["seccomp=unconfined", "no-new-privileges"] }, dir),
      { noNewPrivileges: true },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
