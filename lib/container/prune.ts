// `container prune`: removes every container that is not running (created, exited, dead), subject
// to docker's until= and label= filters.

import { containerRwSize } from "../inspect/ps.ts";
import { pruneFilter as pruneFilterOf } from "../format/filters.ts";
import { listReconciled, removeContainer } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { isRunning } from "./ops.ts";

export interface ContainerPruneResult {
  deleted: string[];
  reclaimed: number;
}

/** Parses --filter values into one predicate (docker's wording for bad filters). */
export function pruneFilter(filters: string[], now = Date.now()): (c: ContainerRecord) => boolean {
  return pruneFilterOf<ContainerRecord>(filters, {
    created: (c) => Date.parse(c.Created),
    labels: (c) => c.Config.Labels,
  }, now);
}

export async function pruneContainers(
  root: StateRoot,
  keep: (c: ContainerRecord) => boolean,
): Promise<ContainerPruneResult> {
  const result: ContainerPruneResult = { deleted: [], reclaimed: 0 };
  for (const c of listReconciled(root)) {
    if (isRunning(c) || c.State.Status === "running" || c.State.Status === "paused" || !keep(c)) continue;
    const size = containerRwSize(root, c);
    try {
      await removeContainer(root, c, { force: false });
    } catch {
      continue; // started or removed meanwhile
    }
    result.deleted.push(c.Id);
    result.reclaimed += size;
  }
  return result;
}
