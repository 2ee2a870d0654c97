// The state root's record of published host ports (<root>/network/ports.json): which container
// holds which host ports, and which skiff process published them. Light on purpose: listings (ps,
// stats) read it to learn whether a lost run left ports behind, and load the rules' executor
// (nat.ts) only when one did.

import { join } from "../path.ts";
import { isProcessAlive, readJsonOr } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";

/** One container's allocation. */
export interface Allocation {
  proto: string;
  hostIp: string;
  hostPort: number;
}

/** The skiff process that published (its pid and start time): while it lives, the start is its own. */
export interface Holder {
  pid: number;
  start?: number;
}

export interface PortsFile {
  containers: Record<string, Allocation[]>;
  holders?: Record<string, Holder>;
  /** Where the next ephemeral search starts, per protocol (docker's allocator goes round the range). */
  next: Record<string, number>;
}

export const portsFile = (root: StateRoot) => join(root.path, "network", "ports.json");

/** The record, read without the lock (a peek); undefined when there is none or it is unreadable. */
export function peekPorts(root: StateRoot): PortsFile | undefined {
  try {
    return readJsonOr<PortsFile | undefined>(portsFile(root), undefined);
  } catch {
    return undefined; // unreadable: the next locked pass rewrites it
  }
}

/**
 * Containers whose ports are left over: not running (`alive` false) and their publisher gone (a
 * start in progress is its publisher's). `everything`: all of them.
 */
export function staleHolders(
  file: PortsFile | undefined,
  alive: (id: string) => boolean,
  everything = false,
): string[] {
  const publisherAlive = (id: string) => {
    const h = file?.holders?.[id];
    return h !== undefined && isProcessAlive(h.pid, h.start);
  };
  return Object.keys(file?.containers ?? {}).filter((id) =>
    everything || (!alive(id) && !publisherAlive(id))
  );
}
