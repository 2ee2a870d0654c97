// Wakes a supervisor for orphans: reconcile (lib/state) finds a detached container that claims to
// be up while its supervisor is gone, and any command that looked at it starts a new supervisor,
// which adopts it (adopt.ts). Registered with reconcile when main.ts loads this module.

import { close, flock, LOCK, O, open } from "../../ffi/libc.ts";
import { setOrphanWaker } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import { spawnSupervisor, supervisorLock } from "./detach.ts";

const woken = new Set<string>();

/** Starts the root's supervisor unless one runs (it holds the lock); once per root and process. */
export function wakeSupervisor(root: StateRoot): void {
  if (woken.has(root.path)) return;
  woken.add(root.path);
  try {
    const fd = open(supervisorLock(root), O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
    try {
      if (!flock(fd, LOCK.EX | LOCK.NB)) return; // a supervisor runs: it adopted its orphans at start
    } finally {
      close(fd); // and with it our lock
    }
    spawnSupervisor(root);
  } catch { /* the next command tries again */ }
}

setOrphanWaker(wakeSupervisor);
