// The events log: what `skiff events` reads, in docker's /events message shape, one JSON line per
// event in <root>/events.jsonl. (transition() in containers.ts, the one writer of a container's
// State, appends the matching event.)
//
// Appending is one write(2) of the whole line on an O_APPEND descriptor: the kernel places it at
// the end of the file under the inode lock, so lines of concurrent skiff processes never interleave.
// Readers still see a line only once its newline is there (a read may overlap a write).
// Bounded: past EVENTS_CAP_BYTES the file is renamed to events.jsonl.1 (one older generation is
// kept; readers read both), so the log never grows past twice the cap.

import { join } from "../path.ts";
import { withLockSync } from "./fsutil.ts";
import type { StateRoot } from "./root.ts";
import type { ContainerRecord } from "./types.ts";

export type EventType = "container" | "image" | "volume" | "network" | "daemon" | "plugin";

/** docker's events.Message as its API sends it (the deprecated status/id/from included). */
export interface EventMessage {
  status?: string;
  id?: string;
  from?: string;
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  /** Nanoseconds since the epoch: beyond a double's exact range, so a bigint. */
  timeNano: bigint;
}

/** 1 MiB per generation: ~4000 container events, far more than docker's 256 kept in memory. */
export const EVENTS_CAP_BYTES = 1 << 20;

export const eventsPath = (root: StateRoot) => join(root.path, "events.jsonl");
export const olderEventsPath = (root: StateRoot) => join(root.path, "events.jsonl.1");

/** The wall clock in nanoseconds (sub-microsecond digits from the monotonic clock). */
export function nowNano(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** A message as docker's daemon fills it: status/id for containers and images, from for containers. */
export function eventMessage(
  type: EventType,
  action: string,
  actorId: string,
  attributes: Record<string, string>,
  timeNano = nowNano(),
): EventMessage {
  const message: EventMessage = {
    Type: type,
    Action: action,
    Actor: { ID: actorId, Attributes: attributes },
    scope: "local",
    time: Number(timeNano / 1_000_000_000n),
    timeNano,
  };
  if (type === "container" || type === "image") {
    const withStatus: EventMessage = { status: action, id: actorId, ...message };
    if (type === "container" && attributes.image !== undefined) {
      return { status: action, id: actorId, from: attributes.image, ...message };
    }
    return withStatus;
  }
  return message;
}

/** A container's attributes as docker gives them: its labels, then image and name. */
export function containerAttributes(
  record: Pick<ContainerRecord, "Name" | "Config">,
  extra: Record<string, string> = {},
): Record<string, string> {
  // optional chaining: a record being salvaged or made by hand may lack parts; an event never throws
  return {
    ...(record.Config?.Labels ?? {}),
    image: record.Config?.Image ?? "",
    name: (record.Name ?? "").replace(/^\/+/, ""),
    ...extra,
  };
}

/** The JSON line of a message, timeNano written exactly. */
export function encodeEvent(message: EventMessage): string {
  return JSON.stringify(message, (_k, v) => typeof v === "bigint" ? `\u0000${v}` : v)
    .replace(/"\\u0000(\d+)"/g, "$1") + "\n";
}

const encoder = new TextEncoder();

/**
 * Appends events. Never throws: an event that cannot be written must not fail the operation it
 * describes (docker's events are best effort too).
 */
export function appendEvent(root: StateRoot, message: EventMessage | EventMessage[]): void {
  try {
    const file = Deno.openSync(eventsPath(root), { append: true, create: true, mode: 0o600 });
    let size = 0;
    try {
      // several events in one write: one open instead of one each (exec's two, at its start)
      file.writeSync(encoder.encode([message].flat().map(encodeEvent).join("")));
      size = file.statSync().size;
    } finally {
      file.close();
    }
    if (size > EVENTS_CAP_BYTES) rotate(root);
  } catch { /* best effort */ }
}

/** Moves a full log aside (one writer wins; a racing one finds the new, small file and stops). */
function rotate(root: StateRoot): void {
  withLockSync(root.lock("events"), () => {
    try {
      if (Deno.statSync(eventsPath(root)).size <= EVENTS_CAP_BYTES) return;
      Deno.renameSync(eventsPath(root), olderEventsPath(root));
    } catch { /* gone meanwhile */ }
  });
}

export function containerEvent(
  root: StateRoot,
  record: Pick<ContainerRecord, "Id" | "Name" | "Config">,
  action: string,
  extra: Record<string, string> = {},
): void {
  appendEvent(root, eventMessage("container", action, record.Id, containerAttributes(record, extra)));
}

/**
 * docker's exec events: "exec_create: CMD ARGS" and "exec_start: CMD ARGS" now (attribute execID),
 * exec_die with the exit code once it is known.
 */
export function execEvents(
  root: StateRoot,
  record: Pick<ContainerRecord, "Id" | "Name" | "Config">,
  command: string[],
): { died(exitCode: number): void } {
  const execID = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  const line = command.join(" ");
  appendEvent(root, [
    eventMessage("container", `exec_create: ${line}`, record.Id, containerAttributes(record, { execID })),
    eventMessage("container", `exec_start: ${line}`, record.Id, containerAttributes(record, { execID })),
  ]);
  return {
    died: (exitCode) => containerEvent(root, record, "exec_die", { execID, exitCode: String(exitCode) }),
  };
}

/** An image's labels, which docker copies into its events' attributes. */
export function imageLabels(image: { config: { config?: { Labels?: Record<string, string> | null } } }) {
  return { ...(image.config.config?.Labels ?? {}) };
}

export function imageEvent(
  root: StateRoot,
  action: string,
  actorId: string,
  attributes: Record<string, string>,
): void {
  appendEvent(root, eventMessage("image", action, actorId, attributes));
}

export function volumeEvent(root: StateRoot, action: string, name: string, driver = "local"): void {
  appendEvent(root, eventMessage("volume", action, name, { driver }));
}

// ---------------------------------------------------------------------------------------------
// Reading

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** One line of the log, checked; undefined when it is not an event skiff wrote. */
export function decodeEvent(line: string): EventMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || typeof value.Type !== "string" || typeof value.Action !== "string") {
    return undefined;
  }
  const actor = value.Actor;
  if (!isRecord(actor) || typeof actor.ID !== "string" || !isRecord(actor.Attributes)) return undefined;
  if (!Object.values(actor.Attributes).every((a) => typeof a === "string")) return undefined;
  for (const key of ["status", "id", "from"]) {
    if (value[key] !== undefined && typeof value[key] !== "string") return undefined;
  }
  const nano = /"timeNano":(\d{1,20})[,}]/.exec(line);
  if (!nano || typeof value.time !== "number") return undefined;
  return { ...(value as unknown as EventMessage), scope: "local", timeNano: BigInt(nano[1]) };
}

/** Splits a chunk of the log into events; `bad` counts lines that are not events. */
export function decodeLines(text: string, bad: { count: number }): EventMessage[] {
  const out: EventMessage[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const event = decodeEvent(line);
    if (event) out.push(event);
    else bad.count++;
  }
  return out;
}

/** An open log being read from an offset on: follows it across rotations. */
export class EventsReader {
  private file: Deno.FsFile | undefined;
  private ino: number | null = null;
  private pending = new Uint8Array(0);
  private decoder = new TextDecoder();
  readonly bad = { count: 0 };

  constructor(private readonly root: StateRoot) {}

  /** Every event kept (the older generation first). */
  history(): EventMessage[] {
    let text = "";
    try {
      text = Deno.readTextFileSync(olderEventsPath(this.root));
      if (!text.endsWith("\n")) text = text.slice(0, text.lastIndexOf("\n") + 1);
    } catch { /* none */ }
    const events = decodeLines(text, this.bad);
    this.open(false);
    return [...events, ...this.drain()];
  }

  /** Positions the reader at the end of the current log: only what is appended from now on. */
  skipToEnd(): void {
    this.open(true);
  }

  private open(atEnd: boolean): void {
    this.file?.close();
    this.file = undefined;
    this.pending = new Uint8Array(0);
    try {
      this.file = Deno.openSync(eventsPath(this.root), { read: true });
      this.ino = this.file.statSync().ino;
      if (atEnd) this.file.seekSync(0, Deno.SeekMode.End);
    } catch {
      this.ino = null;
    }
  }

  /** The complete lines appended since the last call, across a rotation. */
  drain(): EventMessage[] {
    const events: EventMessage[] = [];
    if (this.file) events.push(...this.readRest());
    let current: number | null = null;
    try {
      current = Deno.statSync(eventsPath(this.root)).ino;
    } catch { /* not made yet */ }
    if (current !== null && current !== this.ino) {
      // rotated (or created): the old file is finished, the new one is read from its start
      this.open(false);
      events.push(...this.readRest());
    }
    return events;
  }

  private readRest(): EventMessage[] {
    const chunks: Uint8Array[] = [this.pending];
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = this.file!.readSync(buf);
      if (!n) break;
      chunks.push(buf.slice(0, n));
    }
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    const end = all.lastIndexOf(10) + 1; // a line is complete once its newline is there
    this.pending = all.slice(end);
    return decodeLines(this.decoder.decode(all.subarray(0, end)), this.bad);
  }

  close(): void {
    this.file?.close();
    this.file = undefined;
  }
}
