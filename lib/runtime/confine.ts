// Installs a container's seccomp filter and no-new-privileges in the init stage, with the
// order runc uses: without no_new_privs, installing a filter needs CAP_SYS_ADMIN, so it goes on
// before the process drops to the container's capabilities (the profile must then allow the few
// calls that follow: capset, setresuid, prctl, close_range, execve...); with no_new_privs it goes
// on last, right before execve. The BPF was compiled by the parent (lib/seccomp); no npm here.

import { PR, prctl, seccompSetFilter } from "../../ffi/libc.ts";

/** lib/seccomp's Confinement, as the stages receive it in their spec. */
export interface StageConfinement {
  seccompFilter?: string;
  seccompFlags?: number;
  noNewPrivileges?: boolean;
}

function install(c: StageConfinement): void {
  // V8's own decoder: Uint8Array.from(atob(...), fn) took ~1 ms over docker's 2 KB program (a
  // callback per byte, not yet compiled), on the init stage's critical path
  const bytes = Uint8Array.fromBase64(c.seccompFilter!);
  seccompSetFilter(bytes, c.seccompFlags ?? 0);
}

/** Call before dropping to the container's user and capabilities. */
export function confineBeforeCredentials(c: StageConfinement): void {
  if (c.seccompFilter && !c.noNewPrivileges) install(c);
}

/** Call after the credentials change, right before execve. */
export function confineLast(c: StageConfinement): void {
  if (c.noNewPrivileges) prctl(PR.SET_NO_NEW_PRIVS, 1n);
  if (c.seccompFilter && c.noNewPrivileges) install(c);
}
