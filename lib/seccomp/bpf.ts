// Compiles a resolved filter (resolve.ts) to a classic BPF program for seccomp(SECCOMP_SET_MODE_FILTER),
// laid out as libseccomp lays out its filters where it matters:
//
//   ld arch; one section per architecture the profile covers (the host's, and the compat ABIs of
//   docker's archMap: i386 and x32 on x86-64, arm on arm64), another architecture → KILL
//   (libseccomp's bad-arch action); in a section: nr -1 → the default action; x86-64: a call with
//   the x32 bit (nr ≥ 0x40000000) goes to the x32 section, or is killed without one;
//   then a binary search over ranges of syscall numbers that share one outcome (a return, or the
//   argument tests of one syscall), so that a call costs ~log2(ranges) comparisons, not one per rule.
//
// Arguments of a 64-bit ABI are 64 bits and BPF words 32: each comparison tests the high word, then
// the low one (every architecture here is little-endian: the low word is at the lower offset); a
// 32-bit ABI's arguments are its low words alone, as libseccomp compares them. Above the highest
// syscall the profile names, the answer is ENOSYS, as runc patches its filters to do (new syscalls
// then fail the way an old kernel would, and libc falls back), unless the default action allows.

import {
  ENOSYS,
  type ResolvedFilter,
  type ResolvedRule,
  type ResolvedSection,
  RET,
  type SeccompArch,
} from "./resolve.ts";
import type { SeccompArg } from "./profile_types.ts";

/** AUDIT_ARCH_*: x32 calls carry x86-64's and differ by the x32 bit of their number. */
export const AUDIT_ARCH: Record<SeccompArch, number> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
  x86: 0x40000003,
  x32: 0xc000003e,
  arm: 0x40000028,
};
/** The ABIs whose arguments are 32 bits wide. */
const NARROW: ReadonlySet<SeccompArch> = new Set(["x86", "arm"]);
const X32_SYSCALL_BIT = 0x40000000;
/** The kernel's limit on one filter (BPF_MAXINSNS). */
const MAX_INSNS = 4096;

const OP = {
  LD_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS
  AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  JA: 0x05, // BPF_JMP | BPF_JA
  JEQ: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
  JGT: 0x25,
  JGE: 0x35,
  RET: 0x06, // BPF_RET | BPF_K
} as const;

/** seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. */
const NR = 0, ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;
const argHigh = (i: number) => 16 + 8 * i + 4;

type Target = number | { label: number };
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number | { label: number };
}

/** A tiny assembler: forward labels, checked jump ranges. */
class Program {
  readonly insns: Insn[] = [];
  private labels: number[] = [];
  newLabel(): { label: number } {
    this.labels.push(-1);
    return { label: this.labels.length - 1 };
  }
  place(l: { label: number }): void {
    this.labels[l.label] = this.insns.length;
  }
  stmt(code: number, k: number): void {
    this.insns.push({ code, jt: 0, jf: 0, k });
  }
  jump(code: number, k: number, jt: Target, jf: Target): void {
    this.insns.push({ code, jt, jf, k });
  }
  ja(to: { label: number }): void {
    this.insns.push({ code: OP.JA, jt: 0, jf: 0, k: to });
  }
  ret(value: number): void {
    this.stmt(OP.RET, value);
  }

  assemble(): Uint8Array<ArrayBuffer> {
    if (this.insns.length > MAX_INSNS) {
      throw new Error(
        `seccomp filter too large: ${this.insns.length} instructions (the kernel takes ${MAX_INSNS})`,
      );
    }
    const out = new Uint8Array(this.insns.length * 8);
    const view = new DataView(out.buffer);
    const offset = (at: number, t: Target | Insn["k"], limit: number) => {
      if (typeof t === "number") return t;
      const dest = this.labels[t.label];
      const skip = dest - at - 1;
      if (dest < 0 || skip < 0 || skip > limit) {
        throw new Error(`seccomp filter: jump out of range (${skip})`);
      }
      return skip;
    };
    this.insns.forEach((insn, i) => {
      view.setUint16(i * 8, insn.code, true);
      view.setUint8(i * 8 + 2, offset(i, insn.jt, 255));
      view.setUint8(i * 8 + 3, offset(i, insn.jf, 255));
      view.setUint32(i * 8 + 4, offset(i, insn.k, 0xffffffff) >>> 0, true);
    });
    return out;
  }
}

/** A run of syscall numbers [start, next range's start) with one outcome. */
interface Range {
  start: number;
  /** A plain return, or the rules of one syscall. */
  ret?: number;
  rules?: ResolvedRule[];
  fallback?: number;
}

function ranges(filter: ResolvedFilter, section: ResolvedSection, top: number): Range[] {
  const bySyscall = new Map<number, ResolvedRule[]>();
  for (const rule of section.rules) {
    const list = bySyscall.get(rule.nr) ?? [];
    list.push(rule);
    bySyscall.set(rule.nr, list);
  }
  const answersEnosys = filter.defaultAction !== RET.ALLOW && filter.defaultAction !== RET.LOG;
  const beyond = answersEnosys ? RET.ERRNO | ENOSYS : filter.defaultAction;
  const out: Range[] = [];
  const add = (r: Range) => {
    if (r.ret !== undefined && out.at(-1)?.ret === r.ret) return; // the same outcome: one range
    out.push(r);
  };
  let next = 0;
  for (const nr of [...bySyscall.keys()].sort((a, b) => a - b)) {
    if (nr > next) add({ start: next, ret: filter.defaultAction });
    const rules = bySyscall.get(nr)!;
    const conditional = rules.filter((r) => r.args.length > 0);
    const fallback = rules.find((r) => r.args.length === 0)?.action ?? filter.defaultAction;
    add(conditional.length ? { start: nr, rules: conditional, fallback } : { start: nr, ret: fallback });
    next = nr + 1;
  }
  if (next <= top) add({ start: next, ret: bySyscall.size ? beyond : filter.defaultAction });
  return out;
}

/**
 * Tests one 32-bit argument (its low word): falls through when it holds, jumps to `fail` when not.
 * A value with high bits set is one no 32-bit argument can equal, exceed or fall below.
 */
function emitNarrowArgTest(p: Program, arg: SeccompArg, fail: { label: number }): void {
  const value = BigInt(arg.value), datum = BigInt(arg.valueTwo ?? 0);
  const fits = value >> 32n === 0n, lo = Number(value & 0xffffffffn);
  const pass = p.newLabel();
  switch (arg.op) {
    case "SCMP_CMP_EQ":
    case "SCMP_CMP_NE": {
      const [eq, ne] = arg.op === "SCMP_CMP_EQ" ? [pass, fail] : [fail, pass];
      if (!fits) return arg.op === "SCMP_CMP_EQ" ? p.ja(fail) : undefined;
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(OP.JEQ, lo, eq, ne);
      break;
    }
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      if (!fits) return p.ja(fail);
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(arg.op === "SCMP_CMP_GT" ? OP.JGT : OP.JGE, lo, pass, fail);
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      if (!fits) return;
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(arg.op === "SCMP_CMP_LT" ? OP.JGE : OP.JGT, lo, fail, pass);
      break;
    case "SCMP_CMP_MASKED_EQ":
      if (datum >> 32n !== 0n) return p.ja(fail); // a 32-bit argument's high word is 0
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.stmt(OP.AND_K, lo);
      p.jump(OP.JEQ, Number(datum & 0xffffffffn), pass, fail);
      break;
  }
  p.place(pass);
}

/** Tests one 64-bit argument; falls through when it holds, jumps to `fail` when not. */
function emitArgTest(p: Program, arg: SeccompArg, fail: { label: number }): void {
  const value = BigInt(arg.value);
  const hi = Number((value >> 32n) & 0xffffffffn), lo = Number(value & 0xffffffffn);
  const pass = p.newLabel();
  switch (arg.op) {
    case "SCMP_CMP_EQ":
      p.stmt(OP.LD_ABS, argHigh(arg.index));
      p.jump(OP.JEQ, hi, 0, fail);
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(OP.JEQ, lo, pass, fail);
      break;
    case "SCMP_CMP_NE":
      p.stmt(OP.LD_ABS, argHigh(arg.index));
      p.jump(OP.JEQ, hi, 0, pass);
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(OP.JEQ, lo, fail, pass);
      break;
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      p.stmt(OP.LD_ABS, argHigh(arg.index));
      p.jump(OP.JGT, hi, pass, 0);
      p.jump(OP.JEQ, hi, 0, fail);
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(arg.op === "SCMP_CMP_GT" ? OP.JGT : OP.JGE, lo, pass, fail);
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      p.stmt(OP.LD_ABS, argHigh(arg.index));
      p.jump(OP.JGE, hi, 0, pass); // high word below: less
      p.jump(OP.JGT, hi, fail, 0); // high word above: not
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.jump(arg.op === "SCMP_CMP_LT" ? OP.JGE : OP.JGT, lo, fail, pass);
      break;
    case "SCMP_CMP_MASKED_EQ": {
      const datum = BigInt(arg.valueTwo ?? 0);
      p.stmt(OP.LD_ABS, argHigh(arg.index));
      p.stmt(OP.AND_K, hi);
      p.jump(OP.JEQ, Number((datum >> 32n) & 0xffffffffn), 0, fail);
      p.stmt(OP.LD_ABS, argLow(arg.index));
      p.stmt(OP.AND_K, lo);
      p.jump(OP.JEQ, Number(datum & 0xffffffffn), pass, fail);
      break;
    }
  }
  p.place(pass);
}

function emitRange(p: Program, range: Range, narrow: boolean): void {
  if (range.ret !== undefined) return p.ret(range.ret);
  for (const rule of range.rules!) {
    const next = p.newLabel();
    for (const arg of rule.args) (narrow ? emitNarrowArgTest : emitArgTest)(p, arg, next);
    p.ret(rule.action);
    p.place(next);
  }
  p.ret(range.fallback!);
}

/** Binary search on the syscall number (in A) over sorted ranges. */
function emitSearch(p: Program, list: Range[], narrow: boolean): void {
  if (list.length === 1) return emitRange(p, list[0], narrow);
  const mid = list.length >> 1;
  const right = p.newLabel();
  p.jump(OP.JGE, list[mid].start, 0, 1);
  p.ja(right);
  emitSearch(p, list.slice(0, mid), narrow);
  p.place(right);
  emitSearch(p, list.slice(mid), narrow);
}

/** The filter as struct sock_filter[] bytes, ready for seccomp(2). */
export function compileFilter(filter: ResolvedFilter): Uint8Array<ArrayBuffer> {
  const p = new Program();
  const badArch = RET.KILL_THREAD; // libseccomp's default SCMP_FLTATR_ACT_BADARCH
  const byArch = new Map(filter.sections.map((s) => [s.arch, s]));
  const dispatched = filter.sections.filter((s) => s.arch !== "x32"); // x32 shares x86-64's audit arch
  const starts = dispatched.map(() => p.newLabel());
  p.stmt(OP.LD_ABS, ARCH);
  dispatched.forEach((section, i) => {
    p.jump(OP.JEQ, AUDIT_ARCH[section.arch], 0, 1);
    p.ja(starts[i]);
  });
  p.ret(badArch);
  const emitSection = (section: ResolvedSection) =>
    emitSearch(p, ranges(filter, section, 0xffffffff), NARROW.has(section.arch));
  dispatched.forEach((section, i) => {
    p.place(starts[i]);
    p.stmt(OP.LD_ABS, NR);
    // -1 (a call a tracer skipped) gets the default action, as in libseccomp's filters
    p.jump(OP.JEQ, 0xffffffff, 0, 1);
    p.ret(filter.defaultAction);
    if (section.arch === "x86_64") {
      const x32 = byArch.get("x32");
      const native = p.newLabel();
      p.jump(OP.JGE, X32_SYSCALL_BIT, 1, 0);
      p.ja(native);
      if (x32) emitSection(x32);
      else p.ret(badArch);
      p.place(native);
    }
    emitSection(section);
  });
  return p.assemble();
}
