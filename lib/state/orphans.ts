// Who wakes a supervisor for orphans (detached containers whose supervisor died, see reconcile.ts):
// lib/engine/wake.ts registers itself here. A leaf module, so that registering it costs a command
// nothing of what reconcile loads.

import type { StateRoot } from "./root.ts";

let waker: ((root: StateRoot) => void) | undefined;

export function setOrphanWaker(wake: (root: StateRoot) => void): void {
  waker = wake;
}

/** Asks for a supervisor that adopts the root's orphans (no-op when nobody registered). */
export function wakeSupervisorFor(root: StateRoot): void {
  waker?.(root);
}
