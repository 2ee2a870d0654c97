// A container's seccomp filter and no-new-privileges, from its HostConfig (never from anything the
// container can change): `--security-opt` as moby's parseSecurityOpt reads it, docker's default
// profile unless `seccomp=unconfined` or a custom profile, none with --privileged (as docker, unless
// a custom profile is given), compiled to BPF here in the parent; the init and exec stages only
// install the bytes (lib/runtime/confine.ts).

import { SkiffError } from "../errors.ts";
import { CAPABILITY_NAMES, capabilityMask } from "../runtime/caps.ts";
import { compileFilter } from "./bpf.ts";
import { DEFAULT_PROFILE } from "./default_profile.ts";
import type { SeccompProfile } from "./profile_types.ts";
import { nativeArch, resolveProfile, type SeccompTarget } from "./resolve.ts";

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

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return undefined;
}

function kernelVersion(): [number, number] {
  const [v, m] = Deno.osRelease().split(/[.-]/).map(Number);
  return [v || 0, m || 0];
}

/** The profile to compile for a container, or undefined for none. */
function profileFor(
  host: HostSecurity,
  settings: SecuritySettings,
): SeccompProfile | undefined {
  if (settings.seccomp === "unconfined") return undefined;
  if (settings.seccomp === "default") return host.Privileged ? undefined : DEFAULT_PROFILE;
  // validated with zod when the container was created (lib/cli/security_opt.ts); the supervisor,
  // which launches detached containers, runs without the import map that names zod
  return JSON.parse(settings.seccomp.json) as SeccompProfile;
}

/** The HostConfig fields the confinement depends on. */
export interface HostSecurity {
  SecurityOpt?: string[] | null;
  Privileged: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
}

/** Compiles a profile for a container with these capabilities, on this machine. */
export function compileProfile(profile: SeccompProfile, capabilities: bigint): Confinement {
  const arch = nativeArch();
  if (!arch) throw new SkiffError(`seccomp: no syscall table for ${Deno.build.arch}`);
  const target: SeccompTarget = {
    arch,
    capabilities: CAPABILITY_NAMES.filter((_, i) => capabilities & (1n << BigInt(i))).map((n) => `CAP_${n}`),
    kernel: kernelVersion(),
  };
  const resolved = resolveProfile(profile, target);
  const bytes = compileFilter(resolved);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return { seccompFilter: btoa(binary), seccompFlags: resolved.flags || undefined };
}

/** The container's filter and no-new-privileges, from its HostConfig. */
export function containerConfinement(host: HostSecurity): Confinement {
  const settings = securitySettings(host.SecurityOpt);
  const profile = profileFor(host, settings);
  const caps = capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], host.Privileged);
  return {
    ...(profile ? compileProfile(profile, caps) : {}),
    ...(settings.noNewPrivileges ? { noNewPrivileges: true } : {}),
  };
}
