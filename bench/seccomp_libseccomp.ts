// Measures the alternative to skiff's own seccomp compiler (lib/seccomp): libseccomp.so.2 loaded
// through FFI, given the same resolved rules (docker's default profile for a container), its BPF
// exported and compared with skiff's on a syscall corpus through tests/bpf_interp.ts.
//
//   deno run -A bench/seccomp_libseccomp.ts            agreement report (both compilers)
//   deno run -A bench/seccomp_libseccomp.ts --only skiff|libseccomp   one cold compile (for timing)
//
// A measurement harness: skiff itself never loads libseccomp (README, Dependencies).

import { DEFAULT_CAPABILITIES } from "../lib/runtime/caps.ts";
import { close, O, open as openFd } from "../ffi/libc.ts";
import { AUDIT_ARCH, compileFilter } from "../lib/seccomp/bpf.ts";
import { DEFAULT_PROFILE } from "../lib/seccomp/default_profile.ts";
import {
  nativeArch,
  type ResolvedFilter,
  resolveProfile,
  RET,
  SYSCALL_TABLES,
} from "../lib/seccomp/resolve.ts";
import { runBpf } from "../tests/bpf_interp.ts";

const LIBSECCOMP = "/usr/lib/x86_64-linux-gnu/libseccomp.so.2";
const OPS: Record<string, number> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

/** The same rules through libseccomp, as runc adds them; the exported BPF. */
function libseccompCompile(filter: ResolvedFilter): { program: Uint8Array; unknown: string[] } {
  const lib = Deno.dlopen(LIBSECCOMP, {
    seccomp_init: { parameters: ["u32"], result: "pointer" },
    seccomp_rule_add_array: { parameters: ["pointer", "u32", "i32", "u32", "buffer"], result: "i32" },
    seccomp_export_bpf: { parameters: ["pointer", "i32"], result: "i32" },
    seccomp_release: { parameters: ["pointer"], result: "void" },
  });
  const ctx = lib.symbols.seccomp_init(filter.defaultAction);
  for (const rule of filter.sections[0].rules) { // the host's ABI: libseccomp's native arch
    if (rule.action === filter.defaultAction) continue; // runc skips these (libseccomp refuses them)
    const args = new DataView(new ArrayBuffer(Math.max(1, rule.args.length) * 24));
    rule.args.forEach((a, i) => {
      args.setUint32(i * 24, a.index, true);
      args.setUint32(i * 24 + 4, OPS[a.op], true);
      args.setBigUint64(i * 24 + 8, BigInt(a.value), true);
      args.setBigUint64(i * 24 + 16, BigInt(a.valueTwo ?? 0), true);
    });
    const rc = lib.symbols.seccomp_rule_add_array(
      ctx,
      rule.action,
      rule.nr,
      rule.args.length,
      new Uint8Array(args.buffer),
    );
    if (rc !== 0) throw new Error(`seccomp_rule_add_array(${rule.nr}) = ${rc}`);
  }
  const path = Deno.makeTempFileSync();
  const fd = openFd(path, O.WRONLY | O.TRUNC);
  const rc = lib.symbols.seccomp_export_bpf(ctx, fd);
  close(fd);
  lib.symbols.seccomp_release(ctx);
  lib.close();
  const program = Deno.readFileSync(path);
  Deno.removeSync(path);
  if (rc !== 0) throw new Error(`seccomp_export_bpf = ${rc}`);
  return { program, unknown: [] };
}

const DEFAULT_CAPS = DEFAULT_CAPABILITIES.map((c) => `CAP_${c}`);

function resolved(caps: string[]): ResolvedFilter {
  return resolveProfile(DEFAULT_PROFILE, { arch: nativeArch()!, capabilities: caps, kernel: [6, 18] });
}

const only = Deno.args.includes("--only") ? Deno.args[Deno.args.indexOf("--only") + 1] : undefined;
if (only === "skiff") {
  compileFilter(resolved(DEFAULT_CAPS));
  Deno.exit(0);
}
if (only === "libseccomp") {
  libseccompCompile(resolved(DEFAULT_CAPS));
  Deno.exit(0);
}

const arch = nativeArch()!;
const table = SYSCALL_TABLES[arch];
const names = Object.fromEntries(Object.entries(table).map(([n, nr]) => [nr, n]));
/** Arguments that exercise the profile's argument rules: clone flags, personality values, socket families. */
const ARG_CASES: bigint[][] = [
  [],
  [0n],
  [8n],
  [0x20000n],
  [0xffffffffn],
  [0x400000n],
  [0x1_00000000n],
  [0x10000000n | 17n],
  [0x00020000n],
  [2n],
  [38n],
  [39n],
  [40n],
  [41n],
];
for (
  const [label, caps] of [["docker's default caps", DEFAULT_CAPS], ["+ SYS_ADMIN, SYS_PTRACE", [
    ...DEFAULT_CAPS,
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
  ]]] as const
) {
  const filter = resolved([...caps]);
  const mine = compileFilter(filter);
  const theirs = libseccompCompile(filter).program;
  let cases = 0, same = 0, enosysStub = 0;
  const differ: string[] = [];
  const highestNr = Math.max(...filter.sections[0].rules.map((r) => r.nr));
  for (let nr = 0; nr <= highestNr + 20; nr++) {
    for (const args of ARG_CASES) {
      cases++;
      const a = runBpf(mine, AUDIT_ARCH[arch], nr, args), b = runBpf(theirs, AUDIT_ARCH[arch], nr, args);
      if (a === b) same++;
      else if (nr > highestNr && a === (RET.ERRNO | 38) && b === filter.defaultAction) enosysStub++;
      else {differ.push(
          `${names[nr] ?? nr}(${args.join(",")}): skiff ${a.toString(16)} libseccomp ${b.toString(16)}`,
        );}
    }
  }
  for (const nr of [0x40000001, 0xffffffff]) {
    cases++;
    if (runBpf(mine, AUDIT_ARCH[arch], nr) === runBpf(theirs, AUDIT_ARCH[arch], nr)) same++;
    else {differ.push(
        `nr ${nr.toString(16)}: skiff ${runBpf(mine, AUDIT_ARCH[arch], nr).toString(16)} libseccomp ${
          runBpf(theirs, AUDIT_ARCH[arch], nr).toString(16)
        }`,
      );}
  }
  console.log(
    `${label}: ${cases} cases, ${same} identical, ${enosysStub} ENOSYS above the profile's last syscall (runc's stub, not libseccomp's), ${differ.length} different; ` +
      `instructions: skiff ${mine.length / 8}, libseccomp ${theirs.length / 8}`,
  );
  for (const d of differ.slice(0, 20)) console.log(`  ${d}`);
}
