// Linux capabilities by name, docker's default set, and --cap-add/--cap-drop arithmetic.

import { SkiffError } from "../errors.ts";

/** Capability names in kernel bit order (include/uapi/linux/capability.h). */
export const CAPABILITY_NAMES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
  "PERFMON",
  "BPF",
  "CHECKPOINT_RESTORE",
] as const;

/** docker's default capability set (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "MKNOD",
  "NET_RAW",
  "SETGID",
  "SETUID",
  "SETFCAP",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "SYS_CHROOT",
  "KILL",
  "AUDIT_WRITE",
];

/** "cap_net_admin", "NET_ADMIN", "CAP_NET_ADMIN" → "NET_ADMIN"; "all" → "ALL". */
function normalize(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper.startsWith("CAP_") ? upper.slice(4) : upper;
}

function bit(name: string): bigint {
  const i = (CAPABILITY_NAMES as readonly string[]).indexOf(name);
  return 1n << BigInt(i);
}

function validated(names: string[], flag: "CapAdd" | "CapDrop"): { caps: string[]; all: boolean } {
  const caps: string[] = [];
  let all = false;
  for (const raw of names) {
    const name = normalize(raw);
    if (name === "ALL") all = true;
    else if ((CAPABILITY_NAMES as readonly string[]).includes(name)) caps.push(name);
    else throw new SkiffError(`invalid ${flag}: unknown capability: "CAP_${name}"`);
  }
  return { caps, all };
}

/** Checks --cap-add/--cap-drop values; throws docker's message for an unknown name. */
export function validateCapabilityFlags(add: string[], drop: string[]): void {
  validated(add, "CapAdd");
  validated(drop, "CapDrop");
}

/** The capability mask a container gets, following moby's TweakCapabilities. */
export function capabilityMask(add: string[], drop: string[], privileged: boolean): bigint {
  const everything = CAPABILITY_NAMES.reduce((m, n) => m | bit(n), 0n);
  if (privileged) return everything;
  const adds = validated(add, "CapAdd");
  const drops = validated(drop, "CapDrop");
  // ALL added: every capability but the ones dropped (moby: "Add all capabilities except ones on
  // capDrop"); a drop must never be lost to ALL
  if (adds.all) return drops.caps.reduce((m, n) => m & ~bit(n), everything);
  if (drops.all) return adds.caps.reduce((m, n) => m | bit(n), 0n);
  let mask = 0n;
  for (const name of DEFAULT_CAPABILITIES) if (!drops.caps.includes(name)) mask |= bit(name);
  for (const name of adds.caps) mask |= bit(name);
  return mask;
}

/** docker's `inspect` form of a flag list: "CAP_" + upper-case name, "ALL" kept. */
export function canonicalCapabilityList(names: string[]): string[] | null {
  if (names.length === 0) return null;
  return names.map((n) => normalize(n) === "ALL" ? "ALL" : `CAP_${normalize(n)}`);
}
