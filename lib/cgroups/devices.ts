// The devices allow-list: docker's/runc's default rules, their cgroup v1 form ("c 1:3 rwm") and,
// for cgroup v2 (which has no devices files), an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program that
// allows exactly the same accesses.

import { ClientCheckError, SkiffError } from "../errors.ts";
import { normalize } from "../path.ts";

export interface DeviceRule {
  type: "a" | "c" | "b";
  /** null: any ("*") */
  major: number | null;
  minor: number | null;
  /** a subset of "rwm" */
  access: string;
}

/**
 * runc's DefaultAllowedDevices, which docker applies to every unprivileged container after denying
 * everything: mknod of any node, and read/write/mknod of the harmless character devices.
 */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceRule[] = [
  { type: "c", major: null, minor: null, access: "m" },
  { type: "b", major: null, minor: null, access: "m" },
  { type: "c", major: 1, minor: 3, access: "rwm" }, // /dev/null
  { type: "c", major: 1, minor: 5, access: "rwm" }, // /dev/zero
  { type: "c", major: 1, minor: 7, access: "rwm" }, // /dev/full
  { type: "c", major: 1, minor: 8, access: "rwm" }, // /dev/random
  { type: "c", major: 1, minor: 9, access: "rwm" }, // /dev/urandom
  { type: "c", major: 5, minor: 0, access: "rwm" }, // /dev/tty
  { type: "c", major: 5, minor: 1, access: "rwm" }, // /dev/console
  { type: "c", major: 5, minor: 2, access: "rwm" }, // /dev/ptmx
  { type: "c", major: 136, minor: null, access: "rwm" }, // /dev/pts/*
  { type: "c", major: 10, minor: 200, access: "rwm" }, // /dev/net/tun
];

/**
 * Parses a --device-cgroup-rule value ("c 1:3 rwm", "b 8:* r", "a *:* rwm") with docker's check and
 * wording.
 */
export function parseDeviceCgroupRule(text: string): DeviceRule {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(text);
  if (!m) throw new ClientCheckError(`invalid device cgroup format '${text}'`);
  const num = (s: string) => (s === "*" ? null : Number(s));
  return { type: m[1] as DeviceRule["type"], major: num(m[2]), minor: num(m[3]), access: m[4] };
}

/**
 * The v1 devices.allow lines of a rule. The kernel reads any "a ..." line as "everything", so an
 * "a" rule narrower than "a *:* rwm" becomes its "c" and "b" halves.
 */
export function v1RuleLines(rule: DeviceRule): string[] {
  const num = (n: number | null) => (n === null ? "*" : String(n));
  if (rule.type === "a") {
    if (rule.major === null && rule.minor === null && accessBits(rule.access) === 7) return ["a"];
    return (["c", "b"] as const).flatMap((type) => v1RuleLines({ ...rule, type }));
  }
  return [`${rule.type} ${num(rule.major)}:${num(rule.minor)} ${rule.access}`];
}

// ---- eBPF (cgroup v2) ----
// struct bpf_cgroup_dev_ctx { u32 access_type /* (access << 16) | type */; u32 major; u32 minor; }
const DEV_BLOCK = 1, DEV_CHAR = 2;
const ACC_MKNOD = 1, ACC_READ = 2, ACC_WRITE = 4;

// opcodes (linux/bpf_common.h, linux/bpf.h)
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K = 0x57, ALU64_RSH_K = 0x77, ALU64_MOV_K = 0xb7, ALU32_MOV_X = 0xbc;
const JMP_JNE_K = 0x55, JMP_JSET_K = 0x45, JMP_EXIT = 0x95;

interface Insn {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}
const insn = (op: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ op, dst, src, off, imm });

function accessBits(access: string): number {
  return (access.includes("m") ? ACC_MKNOD : 0) | (access.includes("r") ? ACC_READ : 0) |
    (access.includes("w") ? ACC_WRITE : 0);
}

/**
 * Assembles the device filter: allowed when any rule matches, denied otherwise (the rules here are
 * all "allow" after docker's initial "deny all"). Returns the raw instructions (8 bytes each).
 */
export function assembleDeviceFilter(rules: readonly DeviceRule[]): Uint8Array<ArrayBuffer> {
  const prog: Insn[] = [
    insn(LDX_MEM_W, 2, 1, 0), // r2 = access_type
    insn(ALU32_MOV_X, 3, 2), // r3 = r2
    insn(ALU64_AND_K, 2, 0, 0, 0xffff), // r2 = device type
    insn(ALU64_RSH_K, 3, 0, 0, 16), // r3 = requested access
    insn(LDX_MEM_W, 4, 1, 4), // r4 = major
    insn(LDX_MEM_W, 5, 1, 8), // r5 = minor
  ];
  for (const rule of rules) {
    const checks: Insn[] = [];
    if (rule.type !== "a") checks.push(insn(JMP_JNE_K, 2, 0, 0, rule.type === "c" ? DEV_CHAR : DEV_BLOCK));
    const denied = ~accessBits(rule.access) & 7;
    if (denied) checks.push(insn(JMP_JSET_K, 3, 0, 0, denied)); // asks for an access the rule lacks
    if (rule.major !== null) checks.push(insn(JMP_JNE_K, 4, 0, 0, rule.major));
    if (rule.minor !== null) checks.push(insn(JMP_JNE_K, 5, 0, 0, rule.minor));
    // each failed check jumps past the rest of the block and its "allow" (2 instructions)
    checks.forEach((c, i) => (c.off = checks.length - 1 - i + 2));
    prog.push(...checks, insn(ALU64_MOV_K, 0, 0, 0, 1), insn(JMP_EXIT));
  }
  prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT));

  const bytes = new Uint8Array(prog.length * 8);
  const view = new DataView(bytes.buffer);
  prog.forEach((ins, i) => {
    view.setUint8(i * 8, ins.op);
    view.setUint8(i * 8 + 1, (ins.src << 4) | ins.dst);
    view.setInt16(i * 8 + 2, ins.off, true);
    view.setInt32(i * 8 + 4, ins.imm, true);
  });
  return bytes;
}

// ---- --device ----

/** HostConfig.Devices' entry. */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

/** A device node the init stage makes in the container (its host facts gathered at start). */
export interface DeviceNode {
  /** Absolute path in the container. */
  path: string;
  type: "c" | "b";
  major: number;
  minor: number;
  /** The host node's permission bits, owner and group (runc copies them). */
  perm: number;
  uid: number;
  gid: number;
}

/** docker's validDeviceMode: each of r, w, m at most once, nothing else. */
function isDeviceMode(mode: string): boolean {
  return mode !== "" && /^[rwm]+$/.test(mode) && new Set(mode).size === mode.length;
}

/** Go's path.Clean: node's normalize() without the trailing slash it keeps. */
function cleanPath(path: string): string {
  const normal = normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/**
 * docker's CLI check and parse of --device HOST[:CONTAINER][:PERMISSIONS] (opts validateLinuxPath
 * and parseLinuxDevice); throws docker's reason.
 */
export function parseDeviceFlag(text: string): DeviceMapping {
  const split = text.split(":");
  if (split.length > 3 || split[0] === "") throw new SkiffError(`bad format for path: ${text}`);
  let host = split[0], container = split[0], mode = "rwm";
  if (split.length === 1) host = container = cleanPath(split[0]);
  else if (split.length === 2) {
    if (isDeviceMode(split[1])) {
      host = container = cleanPath(split[0]);
      mode = split[1];
    } else container = cleanPath(split[1]);
  } else {
    container = split[1];
    mode = split[2];
    if (!isDeviceMode(mode)) throw new SkiffError(`bad mode specified: ${mode}`);
  }
  if (!container.startsWith("/")) throw new SkiffError(`${container} is not an absolute path`);
  return { PathOnHost: host, PathInContainer: container, CgroupPermissions: mode };
}

/** glibc's major()/minor() of a dev_t that fits a double. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  return {
    major: ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
    minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff),
  };
}

/** A host path's device node, without following a final symlink (runc's DeviceFromPath). */
function deviceAt(hostPath: string): DeviceNode | "not a device node" {
  const info = Deno.lstatSync(hostPath);
  if (!(info.isCharDevice || info.isBlockDevice) || info.rdev === null) return "not a device node";
  return {
    path: "",
    type: info.isCharDevice ? "c" : "b",
    ...deviceNumbers(info.rdev),
    perm: (info.mode ?? 0) & 0o7777,
    uid: info.uid ?? 0,
    gid: info.gid ?? 0,
  };
}

/**
 * The nodes one --device stands for, read from the host as docker's daemon does at start: the node
 * itself (a symlink is resolved first), or every node below a directory (symlinks inside are
 * skipped). Its error is docker's; exit 127 for a missing path, as docker's CLI gives it.
 */
export function hostDevices(mapping: DeviceMapping): DeviceNode[] {
  const failed = (why: string, code = 125) =>
    new SkiffError(
      `error gathering device information while adding custom device "${mapping.PathOnHost}": ${why}`,
      code,
    );
  let resolved = mapping.PathOnHost;
  try {
    if (Deno.lstatSync(resolved).isSymlink) resolved = Deno.realPathSync(resolved);
  } catch { /* reported below */ }
  let found: DeviceNode | "not a device node";
  try {
    found = deviceAt(resolved);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw failed("no such file or directory", 127);
    throw failed((e as Error).message);
  }
  if (found !== "not a device node") return [{ ...found, path: mapping.PathInContainer }];
  const nodes: DeviceNode[] = [];
  let isDir = false;
  try {
    isDir = Deno.statSync(resolved).isDirectory;
  } catch { /* not a directory */ }
  const base = resolved.replace(/\/+$/, "");
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)].sort((a, b) => (a.name < b.name ? -1 : 1)); // Go's Walk: lexical
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = `${dir === "/" ? "" : dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (!entry.isSymlink) {
        try {
          const node = deviceAt(path);
          if (node !== "not a device node") {
            nodes.push({ ...node, path: mapping.PathInContainer + path.slice(base.length) });
          }
        } catch { /* gone meanwhile: skipped, as docker does */ }
      }
    }
  };
  if (isDir) walk(base || "/");
  if (nodes.length === 0) throw failed("not a device node");
  return nodes;
}

/** The cgroup rule that lets the container use a node with the mapping's permissions. */
export function deviceNodeRule(node: DeviceNode, access: string): DeviceRule {
  return { type: node.type, major: node.major, minor: node.minor, access };
}
