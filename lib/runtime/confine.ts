// What a container's last program needs to confine its command (exec's and run's alike): lib/seccomp's
// filter and no-new-privileges, the host's last capability and what skiff holds. The programs install
// them in runc's order (exec_program.ts confineSteps); the BPF was compiled by lib/seccomp.

import { capget } from "../../ffi/libc.ts";
import type { ConfinePlan } from "./exec_program.ts";

/** lib/seccomp's Confinement, as the stages receive it in their spec. */
export interface StageConfinement {
  seccompFilter?: string;
  seccompFlags?: number;
  noNewPrivileges?: boolean;
}

/** The parts of a ConfinePlan that come from the host and from lib/seccomp. */
export function hostConfinement(
  c: StageConfinement,
): Pick<ConfinePlan, "lastCap" | "held" | "seccomp" | "noNewPrivileges"> {
  return {
    lastCap: Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim()),
    held: capget().permitted,
    // V8's own base64 decoder: a callback per byte took ~1 ms over docker's 2 KB program
    seccomp: c.seccompFilter
      ? { filter: Uint8Array.fromBase64(c.seccompFilter), flags: c.seccompFlags ?? 0 }
      : undefined,
    noNewPrivileges: c.noNewPrivileges ?? false,
  };
}
