// From a profile in docker's format to the rules of one container on this machine, as moby's
// setupSeccomp does: the native architecture's part, the rules whose includes/excludes (caps,
// arches, minKernel) hold for this container, syscall names turned into numbers, actions into
// seccomp return values. Pure: the compiler (bpf.ts) takes it from here.

import { SkiffError } from "../errors.ts";
import type { ScmpAction, SeccompArg, SeccompCondition, SeccompProfile } from "./profile_types.ts";
import {
  AARCH64_SYSCALLS,
  ARM_SYSCALLS,
  I386_SYSCALLS,
  X32_SYSCALLS,
  X86_64_SYSCALLS,
} from "./syscall_tables.ts";

/** The host architectures skiff runs on. */
export type NativeArch = "x86_64" | "aarch64";
/** A filter's architectures: the host's own and the compat ABIs its kernel may run (i386 and x32 on x86-64, arm on arm64). */
export type SeccompArch = NativeArch | "x86" | "x32" | "arm";

/** What a rule may depend on. */
export interface SeccompTarget {
  arch: NativeArch;
  /** The container's bounding set, "CAP_*" names. */
  capabilities: readonly string[];
  /** The running kernel: [version, major], e.g. [6, 18]. */
  kernel: readonly [number, number];
}

/** One rule of one syscall: every arg condition must hold (AND). */
export interface ResolvedRule {
  nr: number;
  /** A seccomp return value (SECCOMP_RET_*, with its data). */
  action: number;
  args: SeccompArg[];
}

/** The rules of one architecture of a filter, with that architecture's syscall numbers. */
export interface ResolvedSection {
  arch: SeccompArch;
  /** In the profile's order. */
  rules: ResolvedRule[];
}

export interface ResolvedFilter {
  /** The host's architecture: the first section, and the one the profile's `arches` conditions name. */
  arch: NativeArch;
  defaultAction: number;
  /** The host's architecture first, then the compat ABIs the profile covers. */
  sections: ResolvedSection[];
  /** SECCOMP_FILTER_FLAG_* bits for seccomp(2). */
  flags: number;
}

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const EPERM = 1;
export const ENOSYS = 38;

/** libseccomp's names of the host architectures (what a rule's `arches` condition names). */
const LIBSECCOMP_ARCH: Record<NativeArch, string> = { x86_64: "amd64", aarch64: "arm64" };

export const SYSCALL_TABLES: Record<SeccompArch, Readonly<Record<string, number>>> = {
  x86_64: X86_64_SYSCALLS,
  aarch64: AARCH64_SYSCALLS,
  x86: I386_SYSCALLS,
  x32: X32_SYSCALLS,
  arm: ARM_SYSCALLS,
};

/** A profile's SCMP_ARCH_* names of the architectures a host of each kind can meet. */
const PROFILE_ARCH: Record<NativeArch, Record<string, SeccompArch>> = {
  x86_64: { SCMP_ARCH_X86_64: "x86_64", SCMP_ARCH_X86: "x86", SCMP_ARCH_X32: "x32" },
  aarch64: { SCMP_ARCH_AARCH64: "aarch64", SCMP_ARCH_ARM: "arm" },
};

/**
 * The architectures a profile's filter covers on this host, the host's first: with `archMap`, the
 * entry of the host's architecture and its subArchitectures (moby); with `architectures`, those
 * listed (runc adds each to the filter); with neither, the host's alone (libseccomp's default). A
 * call of any other architecture is killed. Architectures this host cannot run are left out: no call
 * of theirs can reach the filter.
 */
export function filterArches(profile: SeccompProfile, native: NativeArch): SeccompArch[] {
  const own = PROFILE_ARCH[native];
  let names: string[] = [];
  if (profile.archMap?.length) {
    const entry = profile.archMap.find((a) => own[a.architecture] === native);
    names = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [];
  } else if (profile.architectures?.length) {
    names = profile.architectures;
  }
  const arches: SeccompArch[] = [native];
  for (const name of names) {
    const arch = own[name];
    if (arch && !arches.includes(arch)) arches.push(arch);
  }
  return arches;
}

const FILTER_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** A docker action name and its errnoRet as a seccomp return value. */
export function actionValue(action: ScmpAction, errnoRet: number | undefined): number {
  const data = (errnoRet ?? EPERM) & 0xffff;
  switch (action) {
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return RET.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return RET.KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return RET.TRAP;
    case "SCMP_ACT_ERRNO":
      return RET.ERRNO | data;
    case "SCMP_ACT_TRACE":
      return RET.TRACE | data;
    case "SCMP_ACT_LOG":
      return RET.LOG;
    case "SCMP_ACT_ALLOW":
      return RET.ALLOW;
    case "SCMP_ACT_NOTIFY":
      throw new SkiffError("seccomp: SCMP_ACT_NOTIFY is not supported");
  }
}

function kernelAtLeast(kernel: readonly [number, number], min: string): boolean {
  const [v, m] = min.split(".").map(Number);
  return kernel[0] > v || (kernel[0] === v && kernel[1] >= m);
}

function includesHold(cond: SeccompCondition | undefined, target: SeccompTarget): boolean {
  if (!cond) return true;
  if (cond.arches?.length && !cond.arches.includes(LIBSECCOMP_ARCH[target.arch])) return false;
  if (cond.caps?.length && !cond.caps.every((c) => target.capabilities.includes(c))) return false;
  if (cond.minKernel && !kernelAtLeast(target.kernel, cond.minKernel)) return false;
  return true;
}

function excludesHit(cond: SeccompCondition | undefined, target: SeccompTarget): boolean {
  if (!cond) return false;
  if (cond.arches?.length && cond.arches.includes(LIBSECCOMP_ARCH[target.arch])) return true;
  if (cond.caps?.length && cond.caps.some((c) => target.capabilities.includes(c))) return true;
  if (cond.minKernel && kernelAtLeast(target.kernel, cond.minKernel)) return true;
  return false;
}

/**
 * The filter of one container: moby's setupSeccomp (includes/excludes) and runc's rule building
 * (unknown names skipped; a rule that tests one argument twice becomes one rule per condition, as
 * runc does, since libseccomp cannot AND two conditions on one argument).
 */
export function resolveProfile(profile: SeccompProfile, target: SeccompTarget): ResolvedFilter {
  if (profile.architectures?.length && profile.archMap?.length) {
    throw new SkiffError(
      "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
    );
  }
  const sections = filterArches(profile, target.arch).map((arch) => ({ arch, rules: [] as ResolvedRule[] }));
  for (const call of profile.syscalls ?? []) {
    if (call.name && call.names?.length) {
      throw new SkiffError(
        "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'",
      );
    }
    if (excludesHit(call.excludes, target) || !includesHold(call.includes, target)) continue;
    const action = actionValue(call.action, call.errnoRet);
    const args = call.args ?? [];
    const indexes = args.map((a) => a.index);
    const groups = new Set(indexes).size < indexes.length ? args.map((a) => [a]) : [args];
    for (const name of call.name ? [call.name] : call.names ?? []) {
      for (const section of sections) {
        const nr = SYSCALL_TABLES[section.arch][name];
        if (nr === undefined) continue; // not a syscall of this architecture (libseccomp skips it too)
        for (const group of groups) section.rules.push({ nr, action, args: group });
      }
    }
  }
  let flags = 0;
  for (const flag of profile.flags ?? []) {
    if (!(flag in FILTER_FLAGS)) {
      throw new SkiffError(`seccomp flag ${JSON.stringify(flag)} is not supported`);
    }
    flags |= FILTER_FLAGS[flag];
  }
  return {
    arch: target.arch,
    defaultAction: actionValue(profile.defaultAction, profile.defaultErrnoRet),
    sections,
    flags,
  };
}

/** This machine's architecture for seccomp, or undefined where skiff has no syscall table. */
export function nativeArch(): NativeArch | undefined {
  const arch = Deno.build.arch as string;
  return arch === "x86_64" || arch === "aarch64" ? arch : undefined;
}
