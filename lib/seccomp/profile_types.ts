// docker's seccomp profile format (moby profiles/seccomp: Seccomp, Syscall, Filter; runtime-spec
// LinuxSeccomp), as plain types: the default profile and the compiler need no validator.

export const ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
] as const;
export type ScmpAction = typeof ACTIONS[number];

export const OPERATORS = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
] as const;
export type ScmpOperator = typeof OPERATORS[number];

export interface SeccompArg {
  index: number;
  value: number;
  /** MASKED_EQ: the arg masked with `value` must equal this. */
  valueTwo?: number;
  op: ScmpOperator;
}

/** includes/excludes: a rule applies only when the container has (or lacks) these. */
export interface SeccompCondition {
  /** "CAP_SYS_ADMIN": all of them in the container's bounding set. */
  caps?: string[];
  /** libseccomp's names: "amd64", "arm64", "x86", "x32", "arm", ... */
  arches?: string[];
  /** "<kernel>.<major>" */
  minKernel?: string;
}

export interface SeccompSyscall {
  name?: string;
  names?: string[];
  action: ScmpAction;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

export interface SeccompProfile {
  defaultAction: ScmpAction;
  defaultErrnoRet?: number;
  architectures?: string[] | null;
  archMap?: { architecture: string; subArchitectures: string[] | null }[] | null;
  flags?: string[] | null;
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompSyscall[] | null;
}
