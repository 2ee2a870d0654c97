// skiff events [--since T] [--until T] [-f KEY=VALUE]... [--format TEMPLATE]: the events log
// (lib/state/events.ts) as docker's `events` prints it. Without --until it follows new events until
// interrupted (SIGINT/SIGTERM: exit 0); with --until in the past it prints what is kept and exits.
// As docker's daemon: no --since and no --until means only new events; the same filter key twice
// is an OR, different keys an AND (label= filters are all required, as docker's MatchKVList).

import { SkiffError, UsageError } from "../errors.ts";
import { parseEventTime } from "../format/filters.ts";
import { goStruct, parseTemplate, type Template, TemplateParseError } from "../format/template.ts";
import { type EventMessage, EventsReader } from "../state/events.ts";
import { bool, list, parseArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

const POLL_MS = 50;

/** Filter values by key, as docker's filters.Args. */
type Filters = Map<string, Set<string>>;

export function parseEventFilters(values: string[]): Filters {
  const filters: Filters = new Map();
  for (const f of values) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError("bad format of filter (expected name=value)", "events");
    const key = f.slice(0, eq).trim().toLowerCase();
    if (!filters.has(key)) filters.set(key, new Set());
    filters.get(key)!.add(f.slice(eq + 1));
  }
  return filters;
}

const exact = (f: Filters, key: string, source: string) => !f.get(key)?.size || f.get(key)!.has(source);
const fuzzy = (f: Filters, key: string, source: string) =>
  exact(f, key, source) || [...f.get(key)!].some((prefix) => source.startsWith(prefix));

/** docker's reference.FamiliarName: the repository without tag, digest or docker.io/library/. */
function stripTag(image: string): string {
  let name = image.replace(/@.*$/, "");
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > slash) name = name.slice(0, colon);
  return name.replace(/^(docker\.io|index\.docker\.io)\/(library\/)?/, "");
}

/** docker's daemon/events Filter.Include. */
export function eventMatches(f: Filters, ev: EventMessage): boolean {
  const attrs = ev.Actor.Attributes;
  const byName = (type: string) => fuzzy(f, type, ev.Actor.ID) || fuzzy(f, type, attrs.name ?? "");
  const eventValues = f.get("event");
  const fuzzyEvent = eventValues &&
    ["health_status", "exec_create", "exec_start"].some((v) => eventValues.has(v));
  const imageName = attrs[ev.Type === "image" ? "name" : "image"] ?? "";
  const labelsOk = !f.get("label")?.size || (Object.keys(attrs).length > 0 &&
    [...f.get("label")!].every((kv) => {
      const eq = kv.indexOf("=");
      const key = eq === -1 ? kv : kv.slice(0, eq);
      return Object.hasOwn(attrs, key) && (eq === -1 || attrs[key] === kv.slice(eq + 1));
    }));
  return (fuzzyEvent ? fuzzy(f, "event", ev.Action) : exact(f, "event", ev.Action)) &&
    exact(f, "type", ev.Type) &&
    exact(f, "scope", ev.scope) &&
    ["daemon", "container", "plugin", "volume", "network", "service", "node", "secret", "config"]
      .every(byName) &&
    (exact(f, "image", ev.Actor.ID) || exact(f, "image", imageName) ||
      exact(f, "image", stripTag(ev.Actor.ID)) || exact(f, "image", stripTag(imageName))) &&
    labelsOk;
}

/** The value a --format template sees: docker's events.Message (JSON with its json tags). */
function templateValue(ev: EventMessage) {
  const wire = goStruct("events.Message", {
    ...(ev.status !== undefined ? { status: ev.status } : {}),
    ...(ev.id !== undefined ? { id: ev.id } : {}),
    ...(ev.from !== undefined ? { from: ev.from } : {}),
    Type: ev.Type,
    Action: ev.Action,
    Actor: goStruct("events.Actor", { ID: ev.Actor.ID, Attributes: ev.Actor.Attributes }),
    scope: ev.scope,
    ...(ev.time ? { time: ev.time } : {}),
    ...(ev.timeNano ? { timeNano: ev.timeNano } : {}),
  });
  const value = goStruct("events.Message", {
    Status: ev.status ?? "",
    ID: ev.id ?? "",
    From: ev.from ?? "",
    Type: ev.Type,
    Action: ev.Action,
    Actor: goStruct("events.Actor", { ID: ev.Actor.ID, Attributes: ev.Actor.Attributes }),
    Scope: ev.scope,
    Time: ev.time,
    TimeNano: ev.timeNano,
  });
  Object.defineProperty(value, "toJSON", { value: () => wire, enumerable: false });
  return value;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Go's "2006-01-02T15:04:05.000000000Z07:00" in the local zone, as docker's CLI prints. */
export function formatEventTime(timeNano: bigint): string {
  const ms = Number(timeNano / 1_000_000n);
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const zone = offset === 0
    ? "Z"
    : `${offset < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const nanos = String(((timeNano % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).padStart(9, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:` +
    `${pad(d.getMinutes())}:${pad(d.getSeconds())}.${nanos}${zone}`;
}

/** docker's default line: time, type, action, actor id and the attributes sorted by key. */
export function prettyEvent(ev: EventMessage): string {
  let line = ev.timeNano
    ? `${formatEventTime(ev.timeNano)} `
    : ev.time
    ? `${formatEventTime(BigInt(ev.time) * 1_000_000_000n)} `
    : "";
  line += `${ev.Type} ${ev.Action} ${ev.Actor.ID}`;
  const keys = Object.keys(ev.Actor.Attributes).sort();
  if (keys.length) line += ` (${keys.map((k) => `${k}=${ev.Actor.Attributes[k]}`).join(", ")})`;
  return line + "\n";
}

/** docker's makeTemplate: "json" is {{json .}}; the template is tried on an empty message first. */
function makeTemplate(format: string | undefined): Template | undefined {
  if (!format) return undefined;
  const source = format === "json" ? "{{json .}}" : format;
  try {
    const template = parseTemplate(source);
    template.execute(templateValue({
      Type: "" as EventMessage["Type"],
      Action: "",
      Actor: { ID: "", Attributes: {} },
      scope: "" as "local",
      time: 0,
      timeNano: 0n,
    }));
    return template;
  } catch (e) {
    const message = e instanceof TemplateParseError
      ? e.message.replace(/^template parsing error: /, "")
      : (e as Error).message;
    throw new SkiffError(`Error parsing format: ${message}`, 64);
  }
}

const events: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "events",
    options: [
      { name: "since", kind: "string" },
      { name: "until", kind: "string" },
      { name: "filter", short: "f", kind: "list" },
      { name: "format", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  if (p.positionals.length) throw new UsageError(`"skiff events" accepts no arguments.`, "events", true);
  const template = makeTemplate(str(p, "format"));
  const filters = parseEventFilters(list(p, "filter"));
  const nowMs = Date.now();
  const sinceText = str(p, "since"), untilText = str(p, "until");
  const since = sinceText ? parseEventTime(sinceText, nowMs) : undefined;
  const until = untilText ? parseEventTime(untilText, nowMs) : undefined;
  if (until !== undefined && until < (since ?? 0n)) {
    throw new SkiffError(
      `\`since\` time (${sinceText ?? ""}) cannot be after \`until\` time (${untilText})`,
      1,
    );
  }
  const untilMs = until === undefined ? undefined : Number(until / 1_000_000n);
  const onlyPast = untilMs !== undefined && untilMs < nowMs;

  const encoder = new TextEncoder();
  let stdoutOpen = true;
  const emit = (ev: EventMessage) => {
    if (!stdoutOpen || !eventMatches(filters, ev)) return;
    const text = template ? template.execute(templateValue(ev)) + "\n" : prettyEvent(ev);
    try {
      const bytes = encoder.encode(text);
      for (let n = 0; n < bytes.length;) n += Deno.stdout.writeSync(bytes.subarray(n));
    } catch {
      stdoutOpen = false; // `| head`: stop quietly
    }
  };
  const reader = new EventsReader(ctx.root);
  let warned = false;
  const reportBad = () => {
    if (reader.bad.count && !warned) {
      warned = true;
      console.error(
        `skiff: events log: skipped ${reader.bad.count} unreadable line(s) in ${ctx.root.path}/events.jsonl`,
      );
    }
  };
  try {
    if (since !== undefined || until !== undefined) {
      for (const ev of reader.history()) {
        if (since !== undefined && ev.timeNano < since) continue;
        if (until !== undefined && ev.timeNano > until) continue;
        emit(ev);
      }
    } else {
      reader.skipToEnd();
    }
    reportBad();
    if (onlyPast) return 0;

    let stop = false;
    let wake: (() => void) | undefined;
    const onSignal = () => {
      stop = true;
      wake?.();
    };
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    try {
      while (!stop && stdoutOpen) {
        if (untilMs !== undefined && Date.now() >= untilMs) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, POLL_MS);
        });
        for (const ev of reader.drain()) {
          if (until !== undefined && ev.timeNano > until) continue;
          emit(ev);
        }
        reportBad();
      }
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
    }
    return 0;
  } finally {
    reader.close();
  }
};
export default events;

const USAGE = `Usage:  skiff events [OPTIONS]

Get real time events from the server

Aliases:
  skiff system events, skiff events

Options:
  -f, --filter filter   Filter output based on conditions provided
      --format string   Format output using a custom template:
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given Go template.
      --since string    Show all events created since timestamp
      --until string    Stream events until this timestamp`;
