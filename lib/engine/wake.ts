// Wakes a supervisor for orphans: reconcile (lib/state) finds a detached container that claims to
// be up while its supervisor is gone, and the command that looked at it starts a new supervisor,
// which adopts it (adopt.ts). main.ts loads this module for every command; it is kept light (no
// libc): a supervisor started while another runs loses the root's flock and exits at once.

import { setOrphanWaker } from "../state/orphans.ts";
import type { StateRoot } from "../state/root.ts";
import { spawnSupervisor } from "./detach.ts";

const woken = new Set<string>();

/** Starts a supervisor for the root, once per command. */
export function wakeSupervisor(root: StateRoot): void {
  if (woken.has(root.path)) return;
  woken.add(root.path);
  try {
    spawnSupervisor(root);
  } catch { /* the next command tries again */ }
}

setOrphanWaker(wakeSupervisor);
