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
    | "CpuPeriod"
    | "CpuQuota"
    | "MemoryReservation"
    | "RestartPolicy"
  >
>;

/**
 * What docker's daemon refuses to change on a container as it is (container.UpdateContainer): CPU
 * period or quota against --cpus and back, a restart policy on an --rm container.
 */
function updateConflict(before: HostConfig, changes: ResourceChanges): string | undefined {
  const set = (n: number | undefined) => (n ?? 0) > 0;
  if (set(changes.NanoCpus) && set(before.CpuPeriod)) {
    return "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set";
  }
  if (set(changes.NanoCpus) && set(before.CpuQuota)) {
    return "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set";
  }
  if (set(changes.CpuPeriod) && set(before.NanoCpus)) {
    return "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set";
  }
  if (set(changes.CpuQuota) && set(before.NanoCpus)) {
    return "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set";
  }
  if (changes.RestartPolicy && before.AutoRemove) {
    return "Restart policy cannot be updated because AutoRemove is enabled for the container";
  }
}

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
  // docker's update changes only what is given non-zero (container.UpdateContainer): 0 and "" leave
  // the value as it is, in the record as in the cgroup (so does a value discarded above);
  // --pids-limit is the one whose 0 means something (no limit)
  for (const key of Object.keys(changes) as (keyof ResourceChanges)[]) {
    if (key !== "PidsLimit" && (changes[key] === 0 || changes[key] === "")) delete changes[key];
  }
  const saved = transition(root, found.Id, "update", (record) => {
    const before = record.HostConfig;
    const conflict = updateConflict(before, changes);
    if (conflict) throw new SkiffError(`Cannot update container ${record.Id}: ${conflict}`, 1);
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
        cpuPeriod: changes.CpuPeriod,
        cpuQuota: changes.CpuQuota,
        memoryReservation: changes.MemoryReservation,
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
