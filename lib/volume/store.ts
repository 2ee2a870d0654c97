// Named volumes (docker's "local" driver): <root>/volumes/<name>/_data holds the files,
// <root>/volumes/<name>/volume.json the record. A volume is created in a temp dir and renamed into
// place, so a half-made volume is never listed. Changes run under the "volumes" lock; the in-use
// check reads the containers' Mounts.

import { volumeEvent } from "../state/events.ts";
import { join } from "../path.ts";
import { type ErrorKind, NotFoundError, SkiffError } from "../errors.ts";
import { listContainers, processStartTime, scanContainers } from "../state/containers.ts";
import { exists, removeIfExists, tmpPath, withLock, writeJsonAtomic } from "../state/fsutil.ts";
import { InvalidState, nullable, object, parseState, record, str } from "../state/validate.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { closeFd, openHostDir, treeSizeAt } from "../fs/at.ts";

/** docker sets this label on the volumes it makes for `VOLUME`/`-v /path` (anonymous volumes). */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** volume.json; inspect shows it as is (docker's field names). */
export interface VolumeRecord {
  CreatedAt: string;
  Driver: "local";
  Labels: Record<string, string>;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string>;
  Scope: "local";
}

export const volumesDir = (root: StateRoot) => join(root.path, "volumes");
const volumeDir = (root: StateRoot, name: string) => join(volumesDir(root), name);
const lockPath = (root: StateRoot) => root.lock("volumes");

/** docker's time format for volumes: RFC 3339 in seconds, with the zone. */
function createdAt(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function randomName(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

export function validateVolumeName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new SkiffError(
      `create ${name}: "${name}" includes invalid characters for a local volume name, only ` +
        `"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

export function isAnonymous(v: VolumeRecord): boolean {
  return ANONYMOUS_LABEL in (v.Labels ?? {});
}

/** The volume, or undefined. */
export function getVolume(root: StateRoot, name: string): VolumeRecord | undefined {
  if (!NAME_RE.test(name)) return undefined;
  try {
    return loadVolume(root, name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const volumeRecord = object<VolumeRecord>({
  CreatedAt: str,
  Driver: str,
  Labels: record(str),
  Mountpoint: str,
  Name: str,
  Options: nullable(record(str)),
  Scope: str,
});

/** A volume whose volume.json is unreadable: refused by name, reported by `system check`. */
export class BrokenVolumeError extends SkiffError {
  constructor(readonly volume: string, readonly detail: string) {
    super(`volume ${volume}: its record (volume.json) is unreadable (${detail})`);
  }
}

/** volume.json, checked (and its Name and Mountpoint must be this volume's). */
export function loadVolume(root: StateRoot, name: string): VolumeRecord {
  const dir = volumeDir(root, name);
  try {
    const v = parseState(Deno.readTextFileSync(join(dir, "volume.json")), volumeRecord);
    if (v.Name !== name || v.Mountpoint !== join(dir, "_data")) {
      throw new InvalidState(`it names another volume, ${v.Name} at ${v.Mountpoint}`);
    }
    return v;
  } catch (e) {
    if (e instanceof InvalidState) throw new BrokenVolumeError(name, e.message);
    throw e;
  }
}

/** The volume, or NotFoundError with docker's wording. */
export function requireVolume(root: StateRoot, name: string): VolumeRecord {
  const v = getVolume(root, name);
  if (!v) throw new NotFoundError(`get ${name}: no such volume`);
  return v;
}

/** Every complete volume, sorted by name; the unreadable ones go to `broken` when given. */
export function listVolumes(root: StateRoot, broken?: BrokenVolumeError[]): VolumeRecord[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(volumesDir(root))];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: VolumeRecord[] = [];
  for (const e of entries) {
    if (!e.isDirectory || e.name.startsWith(".")) continue;
    try {
      const v = getVolume(root, e.name);
      if (v) out.push(v);
    } catch (err) {
      if (!(err instanceof BrokenVolumeError)) throw err;
      broken?.push(err);
    }
  }
  return out.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

/** Creates the volume's directory tree and record; call under the lock, with a free name. */
function createLocked(root: StateRoot, name: string, labels: Record<string, string>): VolumeRecord {
  const dir = volumeDir(root, name);
  // made in tmp/ under this process's name: the sweeper removes it if we die before the rename
  Deno.mkdirSync(root.tmp, { recursive: true, mode: 0o700 });
  const tmp = tmpPath(root, "vol");
  Deno.mkdirSync(join(tmp, "_data"), { recursive: true, mode: 0o755 });
  Deno.chmodSync(tmp, 0o701);
  const record: VolumeRecord = {
    CreatedAt: createdAt(),
    Driver: "local",
    Labels: labels,
    Mountpoint: join(dir, "_data"),
    Name: name,
    Options: {},
    Scope: "local",
  };
  try {
    writeJsonAtomic(join(tmp, "volume.json"), record);
    Deno.renameSync(tmp, dir);
  } catch (e) {
    removeIfExists(tmp);
    throw e;
  }
  volumeEvent(root, "create", name);
  return record;
}

/**
 * `volume create [NAME]`: a new volume (a random 64-hex name when none is given). Creating an
 * existing name returns that volume unchanged, as docker does.
 */
export async function createVolume(
  root: StateRoot,
  name: string | undefined,
  labels: Record<string, string> = {},
): Promise<VolumeRecord> {
  if (name !== undefined) validateVolumeName(name);
  Deno.mkdirSync(volumesDir(root), { recursive: true, mode: 0o700 });
  return await withLock(lockPath(root), () => {
    const wanted = name ?? randomName();
    return getVolume(root, wanted) ?? createLocked(root, wanted, labels);
  });
}

export interface EnsuredVolume {
  name: string;
  /** The host directory to mount: <root>/volumes/<name>/_data. */
  mountpoint: string;
  /** True when this call made the volume (a new empty volume gets the image's content). */
  created: boolean;
}

/** For `run -v NAME:/path`: the named volume, created when missing. */
export async function ensureVolume(root: StateRoot, name: string): Promise<EnsuredVolume> {
  validateVolumeName(name);
  Deno.mkdirSync(volumesDir(root), { recursive: true, mode: 0o700 });
  return await withLock(lockPath(root), () => {
    const existing = getVolume(root, name);
    const v = existing ?? createLocked(root, name, {});
    return { name: v.Name, mountpoint: v.Mountpoint, created: !existing };
  });
}

/** For `run -v /path` and image VOLUMEs: a new anonymous volume (random name, docker's label). */
export async function anonymousVolume(root: StateRoot): Promise<EnsuredVolume> {
  const v = await createVolume(root, undefined, { [ANONYMOUS_LABEL]: "" });
  return { name: v.Name, mountpoint: v.Mountpoint, created: true };
}

/** Ids of the containers (any state) whose Mounts name the volume. */
export function volumeUsers(root: StateRoot, name: string, containers = listContainers(root)): string[] {
  return containers.filter((c) => (c.Mounts ?? []).some((m) => m.Type === "volume" && m.Name === name))
    .map((c) => c.Id);
}

/** A volume that cannot be removed: docker's CLI prints it and exits 1. */
export class VolumeInUseError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "conflict";
  constructor(name: string, ids: string[]) {
    super(`remove ${name}: volume is in use - [${ids.join(", ")}]`, 1);
  }
}

function removeLocked(root: StateRoot, name: string): void {
  // rename first: a half-removed volume must never look complete
  const dir = volumeDir(root, name);
  Deno.mkdirSync(root.tmp, { recursive: true, mode: 0o700 });
  const trash = tmpPath(root, "rm");
  Deno.renameSync(dir, trash);
  removeIfExists(trash);
  volumeEvent(root, "destroy", name);
}

/** `volume rm [-f]`: -f only hides "no such volume"; a volume in use is always refused. */
export async function removeVolume(root: StateRoot, name: string, force = false): Promise<void> {
  await withLock(lockPath(root), () => {
    let found = true;
    try {
      found = getVolume(root, name) !== undefined;
    } catch (e) {
      if (!(e instanceof BrokenVolumeError)) throw e; // an unreadable record does not keep it
    }
    if (!found) {
      if (force) return;
      throw new SkiffError(`get ${name}: no such volume`, 1);
    }
    const users = volumeUsers(root, name);
    if (users.length) throw new VolumeInUseError(name, users);
    removeLocked(root, name);
  });
}

/**
 * Removes leftovers (.tmp-NAME-PID, .rm-NAME-PID) of skiff processes that died mid-change, as
 * skiff before the tmp/ naming scheme (lib/state/fsutil.ts, tmp/) left them.
 */
function sweepLeftovers(root: StateRoot): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(volumesDir(root))];
  } catch {
    return;
  }
  for (const e of entries) {
    const m = /^\.(?:tmp|rm)-.+-(\d+)$/.exec(e.name);
    if (!m || processStartTime(Number(m[1])) !== undefined) continue;
    removeIfExists(join(volumesDir(root), e.name));
  }
}

export interface PruneResult {
  deleted: string[];
  reclaimed: number;
}

/** `volume prune`: unused anonymous volumes, or with `all` every unused volume; label filters. */
export async function pruneVolumes(
  root: StateRoot,
  opts: { all: boolean; labels?: ((v: VolumeRecord) => boolean)[] },
): Promise<PruneResult> {
  return await withLock(lockPath(root), () => {
    sweepLeftovers(root);
    const scan = scanContainers(root);
    // an unreadable record may name volumes its container still mounts: none is taken for unused
    if (scan.broken.length) {
      throw new SkiffError(
        `cannot tell which volumes are in use: the record of container ${
          scan.broken[0].id
        } is unreadable (skiff system check --repair)`,
      );
    }
    const containers = scan.records;
    const result: PruneResult = { deleted: [], reclaimed: 0 };
    for (const v of listVolumes(root)) {
      if (!opts.all && !isAnonymous(v)) continue;
      if (!(opts.labels ?? []).every((f) => f(v))) continue;
      if (volumeUsers(root, v.Name, containers).length) continue;
      result.reclaimed += volumeDataSize(v.Mountpoint);
      removeLocked(root, v.Name);
      result.deleted.push(v.Name);
    }
    return result;
  });
}

/**
 * For `rm -v`: removes the container's anonymous volumes that no other container uses. Named
 * volumes stay, as in docker. Returns the names removed.
 */
export async function removeAnonymousVolumes(root: StateRoot, record: ContainerRecord): Promise<string[]> {
  const names = (record.Mounts ?? []).filter((m) => m.Type === "volume" && m.Name).map((m) => m.Name!);
  if (!names.length || !exists(volumesDir(root))) return [];
  return await withLock(lockPath(root), () => {
    const others = listContainers(root).filter((c) => c.Id !== record.Id);
    const removed: string[] = [];
    for (const name of names) {
      const v = getVolume(root, name);
      if (!v || !isAnonymous(v) || volumeUsers(root, name, others).length) continue;
      removeLocked(root, name);
      removed.push(name);
    }
    return removed;
  });
}

/** Bytes in a volume's data (containers write there: walked through fds); 0 when it is gone. */
export function volumeDataSize(mountpoint: string): number {
  let fd: number;
  try {
    fd = openHostDir(mountpoint);
  } catch {
    return 0;
  }
  try {
    return treeSizeAt(fd);
  } finally {
    closeFd(fd);
  }
}
