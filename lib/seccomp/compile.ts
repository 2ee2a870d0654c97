// The compiler's entry for a container: docker's profile (or a custom one) resolved for its
// capabilities on this machine and compiled to BPF. Loaded only when the filter is not in the
// state root's cache (mod.ts): its modules and a cold compile cost ~5 ms of CPU.

import { SkiffError } from "../errors.ts";
import { CAPABILITY_NAMES } from "../runtime/caps.ts";
import { compileFilter } from "./bpf.ts";
import { DEFAULT_PROFILE } from "./default_profile.ts";
import type { SeccompProfile } from "./profile_types.ts";
import { nativeArch, resolveProfile } from "./resolve.ts";

export interface CompiledFilter {
  /** struct sock_filter[] bytes, base64. */
  program: string;
  /** SECCOMP_FILTER_FLAG_* */
  flags: number;
}

/** Compiles a profile (undefined: docker's default) for a container with these capabilities. */
export function compileForContainer(
  profile: SeccompProfile | undefined,
  capabilities: bigint,
  kernel: [number, number],
): CompiledFilter {
  const arch = nativeArch();
  if (!arch) throw new SkiffError(`seccomp: no syscall table for ${Deno.build.arch}`);
  const resolved = resolveProfile(profile ?? DEFAULT_PROFILE, {
    arch,
    capabilities: CAPABILITY_NAMES.filter((_, i) => capabilities & (1n << BigInt(i))).map((n) => `CAP_${n}`),
    kernel,
  });
  let binary = "";
  for (const b of compileFilter(resolved)) binary += String.fromCharCode(b);
  return { program: btoa(binary), flags: resolved.flags };
}
