// `container prune`: removes every container that is not running (created, exited, dead), subject
// to docker's until= and label= filters.

import { containerRwSize } from "../inspect/ps.ts";
import { pruneFilter as pruneFilterOf } from "../format/filters.ts";
import {
  cgroupBusy,
  incompleteContainers,
  removeBrokenContainer,
  removeContainer,
} from "../engine/remove.ts";
import { isRunning, reconcile } from "../state/reconcile.ts";
import { deadPlaceholder, scanContainers } from "../state/containers.ts";
import { sweepTmp } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";

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
  sweepTmp(root); // tombstones of an rm killed half-way
  await incompleteContainers(root, true); // directories whose creator died before the record
  const { records, broken } = scanContainers(root);
  // containers whose record is unreadable are dead, as docker would call them: removed unless
  // something still runs in their cgroup (then they may be running; rm -f removes them)
  for (const b of broken) {
    const dead = deadPlaceholder(b);
    if (!keep(dead) || cgroupBusy(root, b.id)) continue;
    const size = containerRwSize(root, dead);
    try {
      await removeBrokenContainer(root, b.id, { force: false });
    } catch {
      continue;
    }
    result.deleted.push(b.id);
    result.reclaimed += size;
  }
  for (const c of records.map((r) => reconcile(root, r))) {
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
