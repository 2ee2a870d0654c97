// Small container operations that change a record: pause/unpause (cgroup freezer) and rename.
// Each change to a record happens under the container's lock (the same lock the monitor takes to
// record an exit), so a state written here never overwrites a newer one.

import { openCgroup } from "../cgroups/mod.ts";
import { type ErrorKind, NoSuchContainerError, SkiffError } from "../errors.ts";
import { findContainer, listContainers, transition, validateName } from "../state/containers.ts";
import { withLock } from "../state/fsutil.ts";
import { isRunning, lookupContainer } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";

/** A failure docker's CLI reports per container with exit code 1. */
export class ContainerOpError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "conflict";
  constructor(message: string) {
    super(message, 1);
  }
}

const shortName = (r: ContainerRecord) => r.Id;

/** `pause`: freezes every process of the container and records Status "paused". */
export function pauseContainer(root: StateRoot, ref: string): ContainerRecord {
  const found = lookupContainer(root, ref);
  let result: ContainerRecord | undefined;
  transition(root, found.Id, "pause", (record) => {
    if (!isRunning(record)) throw new ContainerOpError(`Container ${shortName(record)} is not running`);
    if (record.State.Paused) throw new ContainerOpError(`Container ${shortName(record)} is already paused`);
    openCgroup(root, record.Id, record.HostConfig).freeze();
    record.State.Paused = true;
    record.State.Status = "paused";
    // docker 20.10 closes a paused container's health monitor, which marks it unhealthy
    if (record.State.Health) record.State.Health.Status = "unhealthy";
    result = record;
  });
  if (!result) throw new NoSuchContainerError(ref, 1);
  return result;
}

/** `unpause`: thaws the container and records Status "running". */
export function unpauseContainer(root: StateRoot, ref: string): ContainerRecord {
  const found = lookupContainer(root, ref);
  let result: ContainerRecord | undefined;
  transition(root, found.Id, "unpause", (record) => {
    if (!record.State.Paused || !isRunning(record)) {
      throw new ContainerOpError(`Container ${shortName(record)} is not paused`);
    }
    openCgroup(root, record.Id, record.HostConfig).thaw();
    record.State.Paused = false;
    record.State.Status = "running";
    result = record;
  });
  if (!result) throw new NoSuchContainerError(ref, 1);
  return result;
}

/** Freezes a running, unpaused container for the duration of `fn` (commit -p). */
export async function whilePaused<T>(
  root: StateRoot,
  record: ContainerRecord,
  fn: () => Promise<T>,
): Promise<T> {
  if (!isRunning(record) || record.State.Paused) return await fn();
  const cgroup = openCgroup(root, record.Id, record.HostConfig);
  cgroup.freeze();
  try {
    return await fn();
  } finally {
    cgroup.thaw();
  }
}

/**
 * `rename OLD NEW`: under the containers lock (where names are handed out) and the container's own
 * lock, with docker's checks and wording.
 */
export async function renameContainer(root: StateRoot, ref: string, newName: string): Promise<void> {
  if (!ref || !newName) throw new SkiffError("Neither old nor new names may be empty");
  const name = newName.startsWith("/") ? newName.slice(1) : newName;
  await withLock(root.lock("containers"), () => {
    // docker's daemon's order: the container, the same name, then the new name's reservation
    const record = findContainer(root, ref);
    if (record.Name === `/${name}`) {
      throw new SkiffError("Renaming a container with the same name as its current name");
    }
    const allocating = (why: string) => new SkiffError(`Error when allocating new name: ${why}`);
    try {
      validateName(`/${name}`);
    } catch (e) {
      throw allocating((e as Error).message);
    }
    const other = listContainers(root).find((c) => c.Name === `/${name}`);
    if (other) {
      throw allocating(
        `Conflict. The container name "/${name}" is already in use by container "${other.Id}". ` +
          `You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    const saved = transition(root, record.Id, "rename", (r) => {
      r.Name = `/${name}`;
    }, () => ({ oldName: record.Name }));
    if (!saved) throw new NoSuchContainerError(ref);
  });
}
