// The container store: one directory per container holding container.json (a ContainerRecord).
// Creation takes the containers lock so names stay unique when many skiff processes run at once.

import { dirname, join } from "../path.ts";
import { newContainerId } from "./ids.ts";
import { type ErrorKind, NoSuchContainerError, SkiffError } from "../errors.ts";
import {
  exists,
  isProcessAlive,
  processStartTime,
  removeIfExists,
  spreadSubdirs,
  tmpPath,
  withLock,
  withLockSync,
  writeJsonAtomic,
} from "./fsutil.ts";
import type { StateRoot } from "./root.ts";
import { type ContainerRecord, NO_RESOURCE_LIMITS } from "./types.ts";
import { containerEvent } from "./events.ts";

/** Go's zero time (types.ts has it too; a value import of types.ts would load one more module). */
const ZERO_TIME = "0001-01-01T00:00:00Z";
import { CONTAINER_ID_RE, containerRecord, InvalidState, parseState } from "./validate.ts";

export { isProcessAlive, processStartTime };

// Whether a record can be believed, without reconcile.ts: a command whose container's monitor is
// alive (exec, the common case) needs no more, and reconcile.ts loads the cgroup code a lost
// container's cleanup needs (six modules, ~1.5 ms of a command's start).

/** The record says the container is up (running, paused or restarting). */
export const claimsLive = (s: ContainerRecord["State"]) =>
  s.Running || s.Status === "running" || s.Status === "paused" || s.Status === "restarting";

/** True while the skiff process that waits on the container is alive (and is not a reused pid). */
export function monitorAlive(record: ContainerRecord): boolean {
  const pid = record.State.MonitorPid;
  if (!pid) return false;
  const started = processStartTime(pid);
  if (started === undefined) return false;
  if (record.State.MonitorStartTime !== undefined) return started === record.State.MonitorStartTime;
  // the monitor starts the container, so a "monitor" younger than the container is a reused pid
  const containerStarted = record.State.PidStartTime;
  return containerStarted === undefined || started <= containerStarted;
}

/** True while the container's process runs (paused counts as running, as in docker). */
export function isRunning(record: ContainerRecord): boolean {
  return record.State.Running && record.State.Pid > 0 &&
    isProcessAlive(record.State.Pid, record.State.PidStartTime);
}

// docker's daemon: a leading "/" is allowed, then at least two characters
const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export { newContainerId };

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

/** Throws docker's error for a name it refuses (`--name`, `rename`; with or without its "/"). */
export function validateName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new SkiffError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

/**
 * A requested name as docker's daemon takes it: empty is none (a generated name), one leading "/"
 * is dropped ("--name /web" is "web"); anything else it refuses throws.
 */
export function requestedContainerName(name: string | undefined): string | undefined {
  if (name === undefined || name === "") return undefined;
  validateName(name);
  return name.startsWith("/") ? name.slice(1) : name;
}

const recordPath = (root: StateRoot, id: string) => join(root.container(id), "container.json");

/**
 * A container whose directory is there but whose container.json is not a record skiff wrote (empty,
 * truncated, null, wrong types, another container's id). docker shows such a container as "Dead";
 * it can be removed (rm, container prune) and `system check --repair` removes it.
 */
export class BrokenContainerError extends SkiffError {
  constructor(readonly id: string, readonly detail: string) {
    super(
      `container ${id} is dead: its record (container.json) is unreadable (${detail}); "skiff rm" removes it`,
      1,
    );
    this.name = "BrokenContainerError";
  }
}

/** What can be known of a container whose record is unreadable. */
export interface BrokenContainer {
  /** From the directory's name. */
  id: string;
  /** Why the record is unreadable. */
  detail: string;
  /** Salvaged from the damaged text when it still holds them (a truncated record often does). */
  name?: string;
  image?: string;
  /** Its image's layer dirs, salvaged: they stay while the container exists. */
  lowerDirs: string[];
  /** The record's own Created when salvageable, else the directory's birth or change time. */
  created: string;
}

/**
 * The container's record, checked. NotFound (Deno.errors) when the directory or the record is
 * missing; BrokenContainerError when the record is there but unreadable.
 */
export function loadContainer(root: StateRoot, id: string): ContainerRecord {
  const text = Deno.readTextFileSync(recordPath(root, id));
  let record: ContainerRecord;
  try {
    record = parseState(text, containerRecord);
  } catch (e) {
    if (e instanceof InvalidState) throw new BrokenContainerError(id, e.message);
    throw e;
  }
  if (record.Id !== id) throw new BrokenContainerError(id, `it names another container, ${record.Id}`);
  return record;
}

/**
 * Writes the record atomically, and durably except for a --rm container, whose record is transient
 * (ARCHITECTURE.md, "Crash consistency"): a crash leaves at worst an unreadable record, which shows
 * as a dead container and goes with the next prune.
 */
export function saveContainer(root: StateRoot, record: ContainerRecord): void {
  writeJsonAtomic(recordPath(root, record.Id), record, 0o600, !record.HostConfig?.AutoRemove);
}

export interface ContainerScan {
  records: ContainerRecord[];
  broken: BrokenContainer[];
}

/**
 * Every container directory: the readable records, and the ones whose record is unreadable. A
 * directory without container.json is mid-creation (or its creator died: see
 * removeIncompleteContainer) and is in neither list.
 */
export function scanContainers(root: StateRoot): ContainerScan {
  const scan: ContainerScan = { records: [], broken: [] };
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root.containers)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return scan;
    throw e;
  }
  for (const e of entries) {
    if (!e.isDirectory || !CONTAINER_ID_RE.test(e.name)) continue;
    try {
      scan.records.push(loadContainer(root, e.name));
    } catch (err) {
      if (err instanceof BrokenContainerError) scan.broken.push(salvage(root, err));
      // otherwise removed or being created by another process
    }
  }
  return scan;
}

/** Every container whose record is complete and readable. */
export function listContainers(root: StateRoot): ContainerRecord[] {
  return scanContainers(root).records;
}

/**
 * Every container, those whose record is unreadable as dead placeholders: for the checks that
 * protect what a container uses (an image it was made from stays while it exists).
 */
export function listContainersWithDead(root: StateRoot): ContainerRecord[] {
  const { records, broken } = scanContainers(root);
  return [...records, ...broken.map(deadPlaceholder)];
}

const NAME_FIELD_RE = /^\/[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** A string field of a damaged record's text, when it is still whole there and looks right. */
function salvagedField(text: string, name: string, re: RegExp): string | undefined {
  const m = new RegExp(`"${name}":\\s*"([^"\\\\]*)"`).exec(text);
  return m && re.test(m[1]) ? m[1] : undefined;
}

function salvage(root: StateRoot, err: BrokenContainerError): BrokenContainer {
  const dir = root.container(err.id);
  let text = "";
  try {
    text = Deno.readTextFileSync(join(dir, "container.json"));
  } catch { /* gone meanwhile */ }
  const field = (name: string, re: RegExp) => salvagedField(text, name, re);
  let created = field("Created", /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-][\d:]+)$/);
  if (!created) {
    try {
      const st = Deno.statSync(dir);
      created = (st.birthtime ?? st.ctime ?? st.mtime ?? new Date(0)).toISOString();
    } catch {
      created = new Date(0).toISOString();
    }
  }
  const lowers = /"LowerDirs":\s*\[([^\]]*)\]/.exec(text)?.[1] ?? "";
  const lowerDirs = [...lowers.matchAll(/"([^"\\]+)"/g)].map((m) => m[1])
    .filter((d) => d.startsWith(`${root.layers}/`));
  return {
    id: err.id,
    detail: err.detail,
    lowerDirs,
    // a record that names another container holds that one's name, not this one's
    name: err.detail.startsWith("it names another container")
      ? undefined
      : field("Name", /^\/[a-zA-Z0-9][a-zA-Z0-9_.-]*$/),
    image: field("Image", /^sha256:[0-9a-f]{64}$/),
    created,
  };
}

/**
 * A stand-in record for a broken container, for listings: docker's "Dead" state with what can be
 * known (the id from the directory's name; name, image and creation time when salvaged).
 */
export function deadPlaceholder(b: BrokenContainer): ContainerRecord {
  return {
    Id: b.id,
    Created: b.created,
    Path: "",
    Args: [],
    State: {
      Status: "dead",
      Running: false,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: true,
      Pid: 0,
      ExitCode: 0,
      Error: `unreadable record: ${b.detail}`,
      StartedAt: ZERO_TIME,
      FinishedAt: ZERO_TIME,
    },
    Image: b.image ?? "",
    Name: b.name ?? "",
    RestartCount: 0,
    Driver: "overlay2",
    HostConfig: {
      AutoRemove: false,
      Privileged: false,
      ReadonlyRootfs: false,
      CapAdd: null,
      CapDrop: null,
      NetworkMode: "none",
      ...NO_RESOURCE_LIMITS,
      MaskedPaths: [],
      ReadonlyPaths: [],
    },
    Config: {
      Hostname: "",
      Domainname: "",
      User: "",
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: [],
      Cmd: null,
      Image: b.image ?? "",
      Volumes: null,
      WorkingDir: "",
      Entrypoint: null,
      Labels: {},
    },
    LowerDirs: b.lowerDirs,
  };
}

/** True for a record made by deadPlaceholder. */
export const isPlaceholder = (r: ContainerRecord) =>
  r.State.Dead && r.State.Error.startsWith("unreadable record: ");

/**
 * Creates the container's directory and record under the containers lock. `build` fills in the
 * record given the final id and name; the directory is removed again if it throws.
 */
/** createContainer with an id that names a container already (a repeated request). */
export class ContainerIdTakenError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "conflict";
}

export async function createContainer(
  root: StateRoot,
  requestedName: string | undefined,
  build: (id: string, name: string, dir: string) => ContainerRecord | Promise<ContainerRecord>,
  /** run picks it up front to create the container's cgroups while the record is still being made */
  id: string = newContainerId(),
): Promise<ContainerRecord> {
  requestedName = requestedContainerName(requestedName);
  const dir = root.container(id);
  return await withLock(root.lock("containers"), async () => {
    // a dead container's salvaged name stays taken until it is removed, as in docker
    const owners = namesInUse(root);
    const taken = new Set(owners.keys());
    let name = requestedName;
    if (name !== undefined && taken.has(name)) {
      throw new SkiffError(
        `Conflict. The container name "/${name}" is already in use by container "${owners.get(name)}". ` +
          `You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    while (name === undefined || taken.has(name)) name = randomName();
    spreadSubdirs(root.containers);
    Deno.mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
    try {
      // never recursive here: an id already taken (a repeated request) must not reach the catch
      // below, which would remove the existing container's directory
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new ContainerIdTakenError(`container ${id} already exists`);
      }
      throw e;
    }
    try {
      const record = await build(id, name, dir);
      saveContainer(root, record);
      containerEvent(root, record, "create");
      return record;
    } catch (e) {
      removeIfExists(dir);
      throw e;
    }
  });
}

/** The container ids (directory names); a directory may lack its record (mid-creation). */
function containerIds(root: StateRoot): string[] {
  try {
    return [...Deno.readDirSync(root.containers)]
      .filter((e) => e.isDirectory && CONTAINER_ID_RE.test(e.name))
      .map((e) => e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * The name a container's record claims, without checking the rest of it (lookups by name read every
 * record; only the one found is checked in full): from the parsed record when it is this
 * container's, else salvaged from a damaged text.
 */
function claimedName(root: StateRoot, id: string): string | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(recordPath(root, id));
  } catch {
    return undefined; // removed meanwhile
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return salvagedField(text, "Name", NAME_FIELD_RE);
  }
  const r = value as { Id?: unknown; Name?: unknown } | null;
  return r && typeof r === "object" && r.Id === id && typeof r.Name === "string" ? r.Name : undefined;
}

/** Every name in use (a dead container's salvaged one too, as in docker) → the container's id. */
function namesInUse(root: StateRoot): Map<string, string> {
  const owners = new Map<string, string>();
  for (const id of containerIds(root)) {
    const name = claimedName(root, id);
    if (name) owners.set(name.slice(1), id);
  }
  return owners;
}

/** The record, checked; a BrokenContainerError when it is unreadable (with what can be salvaged). */
function loadOrBroken(root: StateRoot, id: string): ContainerRecord | BrokenContainer | undefined {
  try {
    return loadContainer(root, id);
  } catch (e) {
    if (e instanceof BrokenContainerError) return salvage(root, e);
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const isBroken = (r: ContainerRecord | BrokenContainer): r is BrokenContainer => "detail" in r;

/**
 * Finds a container by full id, name (with or without the leading /), or unique id prefix, in
 * docker's order. Only the record found is checked in full (exec, inspect, start... read one
 * container); a ref that names a container whose record is unreadable throws BrokenContainerError.
 */
export function findContainer(root: StateRoot, ref: string): ContainerRecord {
  const ids = containerIds(root);
  const found = (r: ContainerRecord | BrokenContainer | undefined) => {
    if (r && isBroken(r)) throw new BrokenContainerError(r.id, r.detail);
    return r;
  };
  if (ids.includes(ref)) {
    const r = found(loadOrBroken(root, ref));
    if (r) return r;
  }
  const name = ref.startsWith("/") ? ref : `/${ref}`;
  const named = ids.filter((id) => claimedName(root, id) === name).map((id) => loadOrBroken(root, id));
  const valid = named.find((r) => r && !isBroken(r));
  if (valid) return valid as ContainerRecord;
  found(named.find((r) => r !== undefined));
  const byPrefix = /^[0-9a-f]+$/.test(ref)
    ? ids.filter((id) => id.startsWith(ref) && exists(recordPath(root, id)))
    : [];
  if (byPrefix.length > 1) throw new SkiffError(`multiple IDs found with provided prefix: ${ref}`);
  if (byPrefix.length === 1) {
    const r = found(loadOrBroken(root, byPrefix[0]));
    if (r) return r;
  }
  throw new NoSuchContainerError(ref);
}

/** Removes a container's directory at once (entombContainerDir, then the delete). */
export function removeContainerDir(root: StateRoot, id: string): void {
  const tomb = entombContainerDir(root, id);
  if (tomb) removeIfExists(tomb);
}

/**
 * Takes a container's directory out of the state: one atomic rename into tmp/ under a tombstone name
 * owned by this process. Returns the tombstone, which the caller deletes (removeTree) once it holds
 * no lock; killed before that, a tmp/ entry of a dead process is left, which the next sweep
 * removes: never a container directory with half its files, listed nowhere.
 */
export function entombContainerDir(root: StateRoot, id: string): string | undefined {
  const tomb = tmpPath(root, "rm");
  try {
    Deno.renameSync(root.container(id), tomb);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      if (!exists(root.tmp)) { // a state root from before tmp/ existed: make it and try again
        Deno.mkdirSync(root.tmp, { recursive: true, mode: 0o700 });
        return entombContainerDir(root, id);
      }
      return undefined; // removed already
    }
    // a directory the kernel will not move (EBUSY: something still mounted on it): delete in place
    removeIfExists(root.container(id));
    return undefined;
  }
  return tomb;
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
 * Synchronous so the runtime can call it after setns. A change with no event: see transition().
 */
export function updateContainerSync(
  root: StateRoot,
  id: string,
  change: (record: ContainerRecord) => boolean | void,
): ContainerRecord | undefined {
  return transition(root, id, null, change);
}

/**
 * The one writer of a container's State: applies `change` to the record under its lock (see
 * updateContainerSync: undefined when the container is gone, `change` may return false to write
 * nothing) and, when it was saved and `action` is given, appends the container event
 * (`attributes` may depend on the changed record, e.g. the exit code).
 */
export function transition(
  root: StateRoot,
  id: string,
  action: string | null,
  change: (record: ContainerRecord) => boolean | void,
  attributes?: (record: ContainerRecord) => Record<string, string>,
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
    // under the lock, so the log's order is the order of the changes; and before the save, so
    // whoever sees the new state (stop, rm waiting for the exit) appends its own event after this one
    if (action) containerEvent(root, record, action, attributes?.(record));
    saveContainer(root, record);
    return record;
  });
}
