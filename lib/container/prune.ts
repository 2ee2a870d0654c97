// `container prune`: removes every container that is not running (created, exited, dead), subject
// to docker's until= and label= filters.

import { containerRwSize } from "../inspect/ps.ts";
import { SkiffError } from "../errors.ts";
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
  const checks: ((c: ContainerRecord) => boolean)[] = [];
  for (const f of filters) {
    const m = /^([a-z]+)(!?=)(.*)$/.exec(f);
    if (!m) throw new SkiffError(`bad format of filter (expected name=value)`);
    const [, key, op, value] = m;
    if (key === "until" && op === "=") {
      const cutoff = untilTime(value, now);
      checks.push((c) => Date.parse(c.Created) < cutoff);
    } else if (key === "label") {
      const eq = value.indexOf("=");
      const has = (c: ContainerRecord) => {
        const labels = c.Config.Labels ?? {};
        return eq === -1 ? value in labels : labels[value.slice(0, eq)] === value.slice(eq + 1);
      };
      checks.push(op === "=" ? has : (c) => !has(c));
    } else {
      throw new SkiffError(`invalid filter '${key}'`);
    }
  }
  return (c) => checks.every((check) => check(c));
}

/** until=: a Unix timestamp, an RFC 3339 date, or a Go duration before now (10m, 2h30m). */
function untilTime(value: string, now: number): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length && parts.map((p) => p[0]).join("") === value) {
    return now - parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
  }
  const date = Date.parse(value);
  if (!Number.isNaN(date)) return date;
  throw new SkiffError(`failed to parse value as time or duration: "${value}"`);
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
