// What killed skiff processes left on the network: leases whose holder is gone, and published
// ports (rules, allocations) of containers that no longer run. The listings (ps, stats) and the next
// allocation sweep them; state/reconcile.ts (below lib/network) marks the lost container only.

import { isRunning } from "../state/reconcile.ts";
import { loadContainer } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import { sweepDeadEndpoints } from "./bridge.ts";
import { peekPorts, staleHolders } from "./ports_book.ts";

/**
 * Removes the published ports (rules, allocations) of containers that no longer run and whose
 * publishing skiff is gone (killed before or after the record said "running", or a lost run that
 * reconcile found): the listings (ps, stats) do it. The record of ports is peeked first, and the
 * rules' executor (network/nat.ts) is loaded only when something was left: a listing pays one small
 * read.
 */
export async function sweepLostPorts(root: StateRoot): Promise<void> {
  const running = (id: string) => {
    try {
      return isRunning(loadContainer(root, id));
    } catch {
      return false; // gone or unreadable: nothing runs that the rules could lead to
    }
  };
  if (!staleHolders(peekPorts(root), running).length) return;
  try {
    (await import("./nat.ts")).sweepPorts(root, running);
  } catch { /* best effort: the next listing sweeps again */ }
}

/**
 * Releases the bridge endpoints whose holder is gone: skiff processes killed before or after their
 * container's record said "running" (reconcile marks a lost one exited, and leaves its lease here):
 * every listing does it (ps, stats), and every allocation.
 */
export function sweepLostEndpoints(root: StateRoot): void {
  try {
    sweepDeadEndpoints(root);
  } catch { /* best effort: the next allocation sweeps too */ }
}
