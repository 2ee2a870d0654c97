// The rows of `skiff ps`: which containers (filters, -a, -n, -l) and the docker-shaped row each one
// prints (docker's formatter.ContainerContext: .ID .Image .Command .CreatedAt .RunningFor .Ports
// .State .Status .Size .Names .Labels .Label "k" .Mounts .Networks .LocalVolumes).

import { join } from "../path.ts";
import { openHostDir, treeSizeAt } from "../fs/at.ts";
import { close } from "../../ffi/libc.ts";
import { ClientCheckError, type ErrorKind, SkiffError } from "../errors.ts";
import { goStruct } from "../format/template.ts";
import { labelMatches } from "../format/filters.ts";
import { containerStatus, ellipsis, goTimeString, humanSize, shortId, timeAgo } from "../format/human.ts";
import { goQuote } from "../format/template.ts";
import { fullString, parseReference, withDefaultTag } from "../image/reference.ts";
import { deadPlaceholder, findContainer, scanContainers } from "../state/containers.ts";
import { reconcile } from "../state/reconcile.ts";
import { sweepLostEndpoints } from "../network/sweep.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord, ContainerStatus } from "../state/types.ts";
import { displayablePorts, type PortMap, runningPorts } from "../network/ports.ts";

/** docker ps's default table. */
export const DEFAULT_PS_FORMAT =
  "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/** Header cells of the `table` directive, as docker names them. */
export const PS_HEADERS: Record<string, string> = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Ports: "PORTS",
  State: "STATE",
  Status: "STATUS",
  Size: "SIZE",
  Names: "NAMES",
  Labels: "LABELS",
  Label: "LABEL",
  Mounts: "MOUNTS",
  Networks: "NETWORKS",
  LocalVolumes: "LOCAL VOLUMES",
};

const FILTER_KEYS = new Set([
  "ancestor",
  "before",
  "expose",
  "exited",
  "health",
  "id",
  "isolation",
  "is-task",
  "label",
  "name",
  "network",
  "publish",
  "since",
  "status",
  "volume",
]);
const STATUSES: ContainerStatus[] = [
  "created",
  "restarting",
  "running",
  "removing",
  "paused",
  "exited",
  "dead",
];

/** A daemon-side error in docker (exit 1), e.g. an invalid filter value. */
export class PsError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "invalid-argument";
  constructor(message: string) {
    super(message, 1);
  }
}

/** Parses `-f key=value` flags; values of one key are OR'ed, different keys AND'ed. */
export function parseFilters(flags: string[]): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  for (const f of flags) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new ClientCheckError(`bad format of filter (expected name=value)`);
    const key = f.slice(0, eq).trim().toLowerCase();
    const value = f.slice(eq + 1);
    if (!FILTER_KEYS.has(key)) throw new PsError(`invalid filter '${key}'`);
    filters.set(key, [...(filters.get(key) ?? []), value]);
  }
  for (const v of filters.get("status") ?? []) {
    if (!STATUSES.includes(v as ContainerStatus)) throw new PsError(`invalid filter 'status=${v}'`);
  }
  for (const v of filters.get("health") ?? []) {
    if (!["starting", "healthy", "unhealthy", "none"].includes(v)) {
      throw new PsError(`Unrecognised filter value for health: ${v}`);
    }
  }
  for (const v of filters.get("exited") ?? []) {
    if (!/^-?\d+$/.test(v)) throw new PsError(`strconv.Atoi: parsing ${goQuote(v)}: invalid syntax`);
  }
  for (const v of filters.get("name") ?? []) compileFilterRegex(v);
  for (const v of filters.get("id") ?? []) compileFilterRegex(v);
  return filters;
}

function compileFilterRegex(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch {
    throw new PsError(`error parsing regexp: invalid filter value ${goQuote(value)}`);
  }
}

export interface SelectOptions {
  all: boolean;
  /** Show the n last created (all states); undefined or negative = no limit. -l is 1. */
  last?: number;
  filters: Map<string, string[]>;
  /** Resolves an image reference to its image id, or undefined when there is no such image. */
  resolveImage?: (ref: string) => string | undefined;
}

const createdMs = (r: ContainerRecord) => Date.parse(r.Created);

/**
 * The containers ps shows, newest first, each reconciled with reality first. A container whose
 * record is unreadable shows as docker shows a dead one, with what can be known of it.
 */
export function selectContainers(root: StateRoot, opts: SelectOptions): ContainerRecord[] {
  const { records, broken } = scanContainers(root);
  const all = [...records.map((r) => reconcile(root, r)), ...broken.map(deadPlaceholder)]
    .sort((a, b) => createdMs(b) - createdMs(a) || a.Id.localeCompare(b.Id));
  sweepLostEndpoints(root);
  const f = opts.filters;
  const showAll = opts.all || f.has("status") || (opts.last !== undefined && opts.last > 0);
  const pick = (key: string) => f.get(key) ?? [];
  const bound = (key: string) => {
    const refs = pick(key);
    if (!refs.length) return undefined;
    return refs.map((ref) => createdMs(findContainer(root, ref)));
  };
  const before = bound("before");
  const since = bound("since");
  const ancestorIds = pick("ancestor").map((a) => ({ ref: a, id: opts.resolveImage?.(a) }));
  const nameRes = pick("name").map(compileFilterRegex);
  const idRes = pick("id").map(compileFilterRegex);

  const out: ContainerRecord[] = [];
  for (const c of all) {
    const name = c.Name.replace(/^\//, "");
    if (
      !showAll && c.State.Status !== "running" && c.State.Status !== "paused" &&
      c.State.Status !== "restarting"
    ) {
      continue;
    }
    if (nameRes.length && !nameRes.some((re) => re.test(c.Name) || re.test(name))) continue;
    if (idRes.length && !idRes.some((re) => re.test(c.Id))) continue;
    if (pick("status").length && !pick("status").includes(c.State.Status)) continue;
    if (pick("exited").length) {
      const exited = c.State.Status === "exited" && !c.State.StartedAt.startsWith("0001");
      if (!exited || !pick("exited").some((code) => Number(code) === c.State.ExitCode)) continue;
    }
    if (pick("label").length && !pick("label").every((l) => labelMatches(c.Config.Labels ?? {}, l))) continue;
    if (ancestorIds.length && !ancestorIds.some((a) => imageMatches(c, a.ref, a.id))) continue;
    if (before && !before.every((t) => createdMs(c) < t)) continue;
    if (since && !since.every((t) => createdMs(c) > t)) continue;
    if (pick("network").length && !pick("network").some((n) => networkNames(c).includes(n))) continue;
    if (pick("health").length && !pick("health").includes(c.State.Health?.Status ?? "none")) continue;
    if (pick("is-task").length && !pick("is-task").includes("false")) continue;
    if (pick("isolation").length && !pick("isolation").includes("default")) continue;
    if (
      pick("volume").length &&
      !pick("volume").some((v) =>
        mountsOf(c).some((m) => m.Source === v || m.Destination === v || m.Name === v)
      )
    ) continue;
    // docker's: publish matches HostConfig.PortBindings, expose Config.ExposedPorts, in any state
    const portKey = (p: string) => (p.includes("/") ? p : `${p}/tcp`);
    const boundPorts = Object.keys(c.HostConfig.PortBindings ?? {});
    if (pick("publish").length && !pick("publish").some((p) => boundPorts.includes(portKey(p)))) continue;
    const exposed = Object.keys(c.Config.ExposedPorts ?? {});
    if (pick("expose").length && !pick("expose").some((p) => exposed.includes(portKey(p)))) continue;
    out.push(c);
  }
  if (opts.last !== undefined && opts.last > 0) return out.slice(0, opts.last);
  return out;
}

function normalizeRef(ref: string): string | undefined {
  try {
    return fullString(withDefaultTag(parseReference(ref)));
  } catch {
    return undefined;
  }
}

function imageMatches(c: ContainerRecord, ref: string, resolvedId: string | undefined): boolean {
  if (resolvedId) return c.Image === resolvedId;
  const hex = ref.replace(/^sha256:/, "");
  if (/^[0-9a-f]{4,64}$/.test(hex) && c.Image.replace(/^sha256:/, "").startsWith(hex)) return true;
  const want = normalizeRef(ref);
  return want !== undefined && normalizeRef(c.Config.Image) === want;
}

interface MountLike {
  Name?: string;
  Source?: string;
  Destination?: string;
  Driver?: string;
}
// Fields the runtime may add to a record as networking and volumes land; read defensively.
type Extended = ContainerRecord & {
  Mounts?: MountLike[];
  NetworkSettings?: { Networks?: Record<string, unknown> };
};

const mountsOf = (c: ContainerRecord): MountLike[] => (c as Extended).Mounts ?? [];

function portMap(c: ContainerRecord): PortMap {
  return runningPorts(c.State.Running, c.Config.ExposedPorts, c.PublishedPorts);
}

function networkNames(c: ContainerRecord): string[] {
  const nets = (c as Extended).NetworkSettings?.Networks;
  if (nets && Object.keys(nets).length) return Object.keys(nets).sort();
  const mode = c.HostConfig.NetworkMode;
  if (!mode) return [];
  return [mode === "default" ? "bridge" : mode];
}

/** docker's ports column: "0.0.0.0:8080->80/tcp, 443/tcp" (ranges grouped as docker groups them). */
export function formatPorts(c: ContainerRecord): string {
  return displayablePorts(portMap(c));
}

/** The command line docker shows: Path and Args joined by spaces, args with a space in '...'. */
export function commandLine(c: ContainerRecord): string {
  const args = (c.Args ?? []).map((a) => (a.includes(" ") ? `'${a}'` : a));
  return args.length ? `${c.Path} ${args.join(" ")}` : c.Path;
}

/**
 * Bytes of the files a container wrote (its overlay upper dir): docker's SizeRw. Walked through
 * directory fds: a running container can swap a directory there for a symlink (to the host's /).
 */
export function containerRwSize(root: StateRoot, c: ContainerRecord): number {
  let fd: number;
  try {
    fd = openHostDir(join(root.container(c.Id), "upper"));
  } catch {
    return 0;
  }
  try {
    return treeSizeAt(fd);
  } finally {
    close(fd);
  }
}

export interface RowOptions {
  noTrunc: boolean;
  /** SizeRw and SizeRootFs when sizes were asked for. */
  size?: { rw: number; rootFs: number };
  now?: number;
}

/** One ps row, as docker's ContainerContext: a Go struct whose fields are strings. */
export type PsRow = Record<string, string | ((key: string) => string)> & { toJSON(): Record<string, string> };

export function psRow(c: ContainerRecord, opts: RowOptions): PsRow {
  const trunc = !opts.noTrunc;
  const now = opts.now ?? Date.now();
  const labels = c.Config.Labels ?? {};
  let image = c.Config.Image || c.Image;
  if (trunc && /^sha256:[0-9a-f]{64}$/.test(image)) image = shortId(image);
  const mounts = mountsOf(c).map((m) => {
    const name = m.Name || m.Source || "";
    return trunc ? ellipsis(name, 15) : name;
  });
  const sizeRw = opts.size?.rw ?? 0;
  const sizeRoot = opts.size?.rootFs ?? 0;
  const fields: Record<string, string> = {
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Command: goQuote(trunc ? ellipsis(commandLine(c), 20) : commandLine(c)),
    CreatedAt: goTimeString(c.Created),
    RunningFor: timeAgo(c.Created, now),
    Ports: formatPorts(c),
    State: c.State.Status,
    Status: containerStatus(c.State, now),
    Size: sizeRoot > 0 ? `${humanSize(sizeRw)} (virtual ${humanSize(sizeRoot)})` : humanSize(sizeRw),
    Names: c.Name.replace(/^\//, ""),
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(","),
    Mounts: mounts.join(","),
    Networks: networkNames(c).join(","),
    LocalVolumes: String(mountsOf(c).filter((m) => m.Driver === "local").length),
  };
  const row = {
    ...fields,
    Label: (key: string) => labels[key] ?? "",
    toJSON: () => fields,
  };
  return goStruct("*formatter.ContainerContext", row) as unknown as PsRow;
}

/** The data the `table` header row is rendered from: each field name maps to its column title. */
export function psHeaderRow(): Record<string, unknown> {
  const row: Record<string, unknown> = { ...PS_HEADERS, Label: () => "LABEL" };
  return goStruct("*formatter.ContainerContext", row);
}
