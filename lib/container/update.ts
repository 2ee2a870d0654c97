// `update`: new resource limits for a container. Validated like `run` (docker's wording), written to
// the live cgroup when the container runs, and stored in HostConfig either way (a stopped container
// gets them at its next start).

import { cgroupLimitsOf, type CgroupUpdate, openCgroup, validateLimits } from "../cgroups/mod.ts";
import { discardUnsupported, hostSupport, unsupportedError } from "../cgroups/support.ts";
import { NoSuchContainerError, SkiffError } from "../errors.ts";
import { transition } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord, HostConfig } from "../state/types.ts";
import { isRunning, lookupContainer } from "../state/reconcile.ts";

/** The HostConfig fields `update` can change; absent = unchanged. */
export type ResourceChanges = Partial<
  Pick<
    HostConfig,
    | "Memory"
    | "MemorySwap"
    | "NanoCpus"
    | "CpuShares"
    | "CpusetCpus"
    | "CpusetMems"
    | "PidsLimit"
    | "BlkioWeight"
  >
>;

/**
 * Applies the changes to one container; returns the saved record and docker's warnings for the
 * changes this host cannot apply (those are discarded, as docker does).
 */
export function updateContainer(
  root: StateRoot,
  ref: string,
  requested: ResourceChanges,
): { record: ContainerRecord; warnings: string[] } {
  const found = lookupContainer(root, ref);
  const changes = { ...requested };
  const refusal = unsupportedError(changes, hostSupport());
  if (refusal) throw new SkiffError(refusal, 1);
  const warnings = discardUnsupported(changes, hostSupport());
  // a discarded value changes nothing (docker's update skips zero values)
  for (const key of Object.keys(changes) as (keyof ResourceChanges)[]) {
    if (changes[key] !== requested[key] && (changes[key] === 0 || changes[key] === "")) delete changes[key];
  }
  const saved = transition(root, found.Id, "update", (record) => {
    const before = record.HostConfig;
    const after: HostConfig = { ...before, ...changes };
    if (changes.PidsLimit !== undefined && (changes.PidsLimit ?? 0) <= 0) after.PidsLimit = null;
    // docker: a new memory limit above an explicitly set memory+swap needs a new memory-swap too
    if (
      changes.Memory !== undefined && changes.MemorySwap === undefined && before.MemorySwap > 0 &&
      changes.Memory > before.MemorySwap
    ) {
      throw new SkiffError(
        "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
        1,
      );
    }
    try {
      validateLimits(cgroupLimitsOf(after));
    } catch (e) {
      throw new SkiffError((e as Error).message, 1);
    }
    if (isRunning(record)) {
      const values: CgroupUpdate = {
        cpusetCpus: changes.CpusetCpus,
        cpusetMems: changes.CpusetMems,
        nanoCpus: changes.NanoCpus,
        cpuShares: changes.CpuShares,
        blkioWeight: changes.BlkioWeight,
        pidsLimit: changes.PidsLimit === undefined ? undefined : changes.PidsLimit ?? 0,
      };
      if (changes.Memory !== undefined || changes.MemorySwap !== undefined) {
        values.memory = after.Memory;
        // 0 keeps docker's default of twice the memory; no memory limit leaves swap unlimited
        values.memorySwap = after.MemorySwap === -1 || after.Memory === 0
          ? -1
          : after.MemorySwap > 0
          ? after.MemorySwap
          : 2 * after.Memory;
      }
      openCgroup(root, record.Id, record.HostConfig).update(values);
    }
    record.HostConfig = after;
  });
  if (!saved) throw new NoSuchContainerError(ref, 1);
  return { record: saved, warnings };
}
