// A container's seccomp filter and no-new-privileges, from its HostConfig (never from anything the
// container can change): `--security-opt` as moby's parseSecurityOpt reads it, docker's default
// profile unless `seccomp=unconfined` or a custom profile, none with --privileged (as docker, unless
// a custom profile is given), compiled to BPF in the parent (compile.ts, cached in the state root);
// the init stage and exec's program only install the bytes (lib/runtime/exec_program.ts confineSteps).

import { SkiffError } from "../errors.ts";
import { parseGoBool } from "../format/gobool.ts";
import { capabilityMask } from "../runtime/caps.ts";
import type { SeccompProfile } from "./profile_types.ts";

export interface SecuritySettings {
  /** "default", "unconfined", or a custom profile's JSON text. */
  seccomp: "default" | "unconfined" | { json: string };
  noNewPrivileges: boolean;
}

/** What the init and exec stages apply just before execve (InitSpec and ExecStageSpec carry it). */
export interface Confinement {
  /** The BPF program (struct sock_filter[]), base64; absent: no filter. */
  seccompFilter?: string;
  /** SECCOMP_FILTER_FLAG_* for seccomp(2). */
  seccompFlags?: number;
  noNewPrivileges?: boolean;
}

/** HostConfig.SecurityOpt → settings, as moby's parseSecurityOpt; throws docker's errors. */
export function securitySettings(securityOpt: readonly string[] | null | undefined): SecuritySettings {
  const settings: SecuritySettings = { seccomp: "default", noNewPrivileges: false };
  for (const opt of securityOpt ?? []) {
    if (opt === "no-new-privileges") {
      settings.noNewPrivileges = true;
      continue;
    }
    const sep = opt.includes("=") ? "=" : opt.includes(":") ? ":" : "";
    if (!sep) throw new SkiffError(`invalid --security-opt 1: ${JSON.stringify(opt)}`);
    const key = opt.slice(0, opt.indexOf(sep)), value = opt.slice(opt.indexOf(sep) + 1);
    if (key === "seccomp") {
      // the CLI sent a file's content; "builtin" is docker's name of its default profile
      settings.seccomp = value === "unconfined"
        ? "unconfined"
        : value === "builtin"
        ? "default"
        : { json: value };
    } else if (key === "no-new-privileges") {
      const parsed = parseGoBool(value);
      if (parsed === undefined) throw new SkiffError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
      settings.noNewPrivileges = parsed;
    } else if (key !== "label" && key !== "apparmor") {
      throw new SkiffError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
    }
  }
  return settings;
}

function kernelVersion(): [number, number] {
  const [v, m] = Deno.osRelease().split(/[.-]/).map(Number);
  return [v || 0, m || 0];
}

/**
 * sha256 (first 16 hex digits) of the compiler's sources: bpf.ts, compile.ts, default_profile.ts,
 * profile_types.ts, resolve.ts, syscall_tables.ts. Part of every cache key, so that a changed
 * compiler or profile never meets a program compiled by the old one; tests/seccomp_compiler_test.ts
 * fails (and prints the new value) when it is out of date.
 */
export const COMPILER_REVISION = "f4ebc808ad0c769e";

/** The cache file's format (its check): part of the key, so files of another format are never read. */
const CACHE_FORMAT = "2";

/** The HostConfig fields the confinement depends on. */
export interface HostSecurity {
  SecurityOpt?: string[] | null;
  Privileged: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
}

/** FNV-1a, 64 bits: a cache key, not a defence (the cache lives in the root-only state root). */
function fnv(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h = ((h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16);
}

/**
 * The container's filter and no-new-privileges, from its HostConfig. Compiled programs are kept in
 * the state root's seccomp/ (`stateRoot`): a run then reads ~2 KB instead of loading the compiler.
 */
export async function containerConfinement(host: HostSecurity, stateRoot?: string): Promise<Confinement> {
  const settings = securitySettings(host.SecurityOpt);
  const nnp = settings.noNewPrivileges ? { noNewPrivileges: true } : {};
  // docker: --privileged runs unconfined unless a profile is named; seccomp=unconfined always
  if (settings.seccomp === "unconfined" || (settings.seccomp === "default" && host.Privileged)) return nnp;
  const caps = capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], host.Privileged);
  const kernel = kernelVersion();
  const profileText = typeof settings.seccomp === "object" ? settings.seccomp.json : "default";
  const key = fnv(
    [CACHE_FORMAT, COMPILER_REVISION, Deno.build.arch, kernel.join("."), caps.toString(16), profileText].join(
      "|",
    ),
  );
  const cached = stateRoot ? readCache(`${stateRoot}/seccomp/${key}`, key) : undefined;
  if (cached) return { ...cached, ...nnp };
  const { compileForContainer } = await import("./compile.ts");
  // a custom profile was validated with zod when the container was created (lib/cli/security_opt.ts);
  // the supervisor, which launches detached containers, runs without the import map that names zod
  const profile = typeof settings.seccomp === "object"
    ? JSON.parse(settings.seccomp.json) as SeccompProfile
    : undefined;
  const compiled = compileForContainer(profile, caps, kernel);
  const confinement = {
    seccompFilter: compiled.program,
    ...(compiled.flags ? { seccompFlags: compiled.flags } : {}),
  };
  if (stateRoot) writeCache(stateRoot, key, confinement);
  return { ...confinement, ...nnp };
}

/**
 * "<flags> <program> <check>": the check covers key, flags and program, so a damaged or truncated
 * file (the cache is not fsynced) is compiled again instead of loading a weaker filter.
 */
function readCache(path: string, key: string): Confinement | undefined {
  try {
    const [flags, program, check, extra] = Deno.readTextFileSync(path).trimEnd().split(" ");
    if (!program || extra !== undefined || check !== cacheCheck(key, flags, program)) return undefined;
    return { seccompFilter: program, ...(Number(flags) ? { seccompFlags: Number(flags) } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * FNV-1a, 32 bits, over the key, the flags and the program's decoded bytes taken 32 bits at a time
 * (a BPF instruction is 8 bytes): a loop over the base64 text's characters cost exec ~2 ms of cold
 * interpreted JavaScript for the default profile's ~14 KB. A program that does not decode fails.
 */
function cacheCheck(key: string, flags: string, program: string): string {
  const bytes = Uint8Array.fromBase64(program);
  if (bytes.length % 8 !== 0) return "";
  const head = `${key}|${flags}|`;
  let h = 0x811c9dc5;
  for (let i = 0; i < head.length; i++) h = Math.imul(h ^ head.charCodeAt(i), 0x01000193);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return (h >>> 0).toString(16);
}

function writeCache(stateRoot: string, key: string, c: Confinement): void {
  // in tmp/ under a name the store's sweeper knows (<kind>-<pid>-<start>-<hex>), then renamed
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  const tmp = `${stateRoot}/tmp/seccomp-${Deno.pid}-0-${rand}`;
  try {
    Deno.mkdirSync(`${stateRoot}/seccomp`, { recursive: true, mode: 0o700 });
    const flags = String(c.seccompFlags ?? 0);
    const check = cacheCheck(key, flags, c.seccompFilter ?? "");
    Deno.writeTextFileSync(tmp, `${flags} ${c.seccompFilter} ${check}\n`, { mode: 0o600 });
    Deno.renameSync(tmp, `${stateRoot}/seccomp/${key}`);
  } catch {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
  }
}
