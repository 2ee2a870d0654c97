// The container store: one directory per container holding container.json (a ContainerRecord).
// Creation takes the containers lock so names stay unique when many skiff processes run at once.

import { join } from "./path.ts";
import { NotFoundError, SkiffError } from "../errors.ts";
import {
  readJson,
  removeIfExists,
  spreadSubdirs,
  withLock,
  withLockSync,
  writeJsonAtomic,
} from "./fsutil.ts";
import type { StateRoot } from "./root.ts";
import type { ContainerRecord } from "./types.ts";

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function newContainerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "fervent",
  "gallant",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "nifty",
];
const NAMES = [
  "turing",
  "hopper",
  "lovelace",
  "ritchie",
  "thompson",
  "knuth",
  "dijkstra",
  "shannon",
  "noether",
];
function randomName(): string {
  const pick = <T>(a: T[]) => a[crypto.getRandomValues(new Uint32Array(1))[0] % a.length];
  return `${pick(ADJECTIVES)}_${pick(NAMES)}_${crypto.getRandomValues(new Uint16Array(1))[0] % 1000}`;
}

export function validateName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new SkiffError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

const recordPath = (root: StateRoot, id: string) => join(root.container(id), "container.json");

export function loadContainer(root: StateRoot, id: string): ContainerRecord {
  return readJson<ContainerRecord>(recordPath(root, id));
}

export function saveContainer(root: StateRoot, record: ContainerRecord): void {
  writeJsonAtomic(recordPath(root, record.Id), record, 0o600);
}

/** Every container whose record is complete; a directory without container.json is mid-creation. */
export function listContainers(root: StateRoot): ContainerRecord[] {
  const out: ContainerRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root.containers)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    try {
      out.push(loadContainer(root, e.name));
    } catch { /* removed or being created by another process */ }
  }
  return out;
}

/**
 * Creates the container's directory and record under the containers lock. `build` fills in the
 * record given the final id and name; the directory is removed again if it throws.
 */
export async function createContainer(
  root: StateRoot,
  requestedName: string | undefined,
  build: (id: string, name: string, dir: string) => ContainerRecord | Promise<ContainerRecord>,
  /** run picks it up front to create the container's cgroups while the record is still being made */
  id: string = newContainerId(),
): Promise<ContainerRecord> {
  if (requestedName !== undefined) validateName(requestedName);
  const dir = root.container(id);
  return await withLock(root.lock("containers"), async () => {
    const taken = new Set(listContainers(root).map((c) => c.Name.slice(1)));
    let name = requestedName;
    if (name !== undefined && taken.has(name)) {
      const other = listContainers(root).find((c) => c.Name === `/${name}`)!;
      throw new SkiffError(
        `Conflict. The container name "/${name}" is already in use by container "${other.Id}". ` +
          `You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    while (name === undefined || taken.has(name)) name = randomName();
    spreadSubdirs(root.containers);
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      const record = await build(id, name, dir);
      saveContainer(root, record);
      return record;
    } catch (e) {
      removeIfExists(dir);
      throw e;
    }
  });
}

/** Finds a container by full id, unique id prefix, or name (with or without the leading /). */
export function findContainer(root: StateRoot, ref: string): ContainerRecord {
  const all = listContainers(root);
  const name = ref.startsWith("/") ? ref : `/${ref}`;
  const exact = all.find((c) => c.Id === ref) ?? all.find((c) => c.Name === name);
  if (exact) return exact;
  const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((c) => c.Id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw new SkiffError(`multiple IDs found with provided prefix: ${ref}`);
  throw new NotFoundError(`No such container: ${ref}`);
}

export function removeContainerDir(root: StateRoot, id: string): void {
  removeIfExists(root.container(id));
}

/** Start time of a process in clock ticks since boot, or undefined when it does not exist. */
export function processStartTime(pid: number): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // the command name may contain spaces and parentheses: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // a zombie is not running
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True when the record's process is still the one skiff started (not exited, pid not reused). */
export function isProcessAlive(pid: number, startTime: number | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

/**
 * The flock that serialises changes to one container's record: the `skiff run` monitor recording
 * the exit, `rm` removing the directory, and reconcile marking a dead container exited. It lives in
 * <root>/locks, not in the container's directory, so removing the directory never races with it.
 */
export function containerLockPath(root: StateRoot, id: string): string {
  return root.lock(`ctr-${id}`);
}

/**
 * Loads, changes and saves one container's record under its lock. Returns the saved record, or
 * undefined (and writes nothing) when the container was removed meanwhile: a monitor that finishes
 * after `rm -f` must not bring the directory back. `change` may return false to skip the save.
 * Synchronous so the runtime can call it after setns.
 */
export function updateContainerSync(
  root: StateRoot,
  id: string,
  change: (record: ContainerRecord) => boolean | void,
): ContainerRecord | undefined {
  return withLockSync(containerLockPath(root, id), () => {
    let record: ContainerRecord;
    try {
      record = loadContainer(root, id);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    if (change(record) === false) return record;
    saveContainer(root, record);
    return record;
  });
}
