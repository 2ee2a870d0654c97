// Values of docker's --filter / --since / --until flags, shared by every verb that takes them
// (ps, volume ls/prune, container prune, image prune, logs).

import { parseGoDuration } from "./duration.ts";
import { ClientCheckError, SkiffError } from "../errors.ts";

/** Docker's label filter: "key" (present) or "key=value" (equal). */
export function labelMatches(labels: Record<string, string> | null | undefined, filter: string): boolean {
  const all = labels ?? {};
  const eq = filter.indexOf("=");
  if (eq === -1) return Object.hasOwn(all, filter);
  const key = filter.slice(0, eq);
  return Object.hasOwn(all, key) && all[key] === filter.slice(eq + 1);
}

/**
 * A point in time (ms since the epoch) from a Unix timestamp ("1700000000.5"), an RFC 3339 date, or
 * a Go duration before `now` ("10m", "2h30m", "1.5s", "500ms"). Throws docker's wording.
 */
export function parseTimeOrDuration(value: string, now = Date.now()): number {
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

/** What a prune filter needs to know of one object. */
export interface PruneSubject<T> {
  /** Creation time in ms (NaN or 0 when unknown). */
  created(item: T): number;
  labels(item: T): Record<string, string> | null | undefined;
  /** Handles a filter key of the verb's own (e.g. dangling=); returns false for an unknown key. */
  extra?(key: string, op: string, value: string): boolean;
}

/** Parses prune --filter values (until=, label=, label!=) up front into one predicate. */
export function pruneFilter<T>(
  filters: string[],
  subject: PruneSubject<T>,
  now = Date.now(),
): (item: T) => boolean {
  const checks: ((item: T) => boolean)[] = [];
  for (const f of filters) {
    const m = /^([a-z]+)(!?=)(.*)$/s.exec(f);
    if (!m) throw new ClientCheckError(`bad format of filter (expected name=value)`);
    const [, key, op, value] = m;
    if (key === "until" && op === "=") {
      const cutoff = parseTimeOrDuration(value, now);
      checks.push((item) => (subject.created(item) || 0) < cutoff);
    } else if (key === "label") {
      const has = (item: T) => labelMatches(subject.labels(item), value);
      checks.push(op === "=" ? has : (item) => !has(item));
    } else if (!subject.extra?.(key, op, value)) {
      throw new SkiffError(`invalid filter '${key}'`);
    }
  }
  return (item) => checks.every((check) => check(item));
}

/** A Go duration's nanoseconds, or undefined when the text is not one (a timestamp, a date). */
function goDurationOrUndefined(value: string): number | undefined {
  try {
    return parseGoDuration(value);
  } catch {
    return undefined;
  }
}

/**
 * docker's --since/--until for events (the CLI's GetTimestamp): nanoseconds since the epoch from a
 * Go duration before `nowMs` (cut to the second, as docker's CLI sends it), a Unix timestamp
 * (seconds[.nanoseconds]), or a date (RFC 3339, `2006-01-02T15:04:05[.999999999]`, `2006-01-02`;
 * local time without a zone). Throws docker's wording.
 */
export function parseEventTime(value: string, nowMs = Date.now()): bigint {
  const ns = value === "0" ? undefined : goDurationOrUndefined(value);
  if (ns !== undefined) return BigInt(Math.floor((nowMs - ns / 1e6) / 1000)) * 1_000_000_000n;
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix) return BigInt(unix[1]) * 1_000_000_000n + BigInt((unix[2] ?? "").padEnd(9, "0") || "0");
  const date =
    /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d\d:\d\d)?$/.exec(
      value,
    );
  if (date) {
    const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = date;
    const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
    let ms: number;
    if (zone) {
      const offset = /^[zZ]$/.test(zone) ? 0 : (zone[0] === "-" ? -1 : 1) *
        (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
      ms = Date.UTC(...fields) - offset * 60_000;
    } else {
      ms = new Date(...fields).getTime();
    }
    if (!Number.isNaN(ms) && Number(mo) <= 12 && Number(d) <= 31) {
      return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, "0") || "0");
    }
  }
  throw new SkiffError(`failed to parse value as time or duration: "${value}"`, 1);
}
