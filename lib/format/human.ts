// Human-readable durations, times and sizes, worded exactly as docker prints them
// (github.com/docker/go-units HumanDuration and HumanSizeWithPrecision).

import { formatFloatG } from "./gofloat.ts";

/** go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", "2 hours", ... */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/** docker's CREATED column for images: "<duration> ago", or "N/A" for a missing or zero timestamp. */
export function createdSince(created: string | undefined, now = Date.now()): string {
  const t = created ? Date.parse(created) : NaN;
  if (!Number.isFinite(t) || t <= 0) return "N/A";
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

/** "3 hours ago", docker's CREATED column. */
export function timeAgo(iso: string, now = Date.now()): string {
  return `${humanDuration(now - Date.parse(iso))} ago`;
}

const ZERO_TIME = "0001-01-01T00:00:00Z";

/** True for docker's zero time and empty/unset times. */
export function isZeroTime(iso: string | undefined): boolean {
  return !iso || iso.startsWith("0001-01-01") || Number.isNaN(Date.parse(iso));
}

export { ZERO_TIME };

export interface StatusInput {
  Status: string;
  Paused?: boolean;
  Restarting?: boolean;
  ExitCode: number;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: string };
}

/** docker's container State.String(): "Up 3 seconds", "Exited (0) 2 minutes ago", "Created". */
export function containerStatus(state: StatusInput, now = Date.now()): string {
  switch (state.Status) {
    case "running":
      if (state.Paused) return `Up ${humanDuration(now - Date.parse(state.StartedAt))} (Paused)`;
      if (state.Health) {
        const health = state.Health.Status === "starting" ? "health: starting" : state.Health.Status;
        return `Up ${humanDuration(now - Date.parse(state.StartedAt))} (${health})`;
      }
      return `Up ${humanDuration(now - Date.parse(state.StartedAt))}`;
    case "paused":
      return `Up ${humanDuration(now - Date.parse(state.StartedAt))} (Paused)`;
    case "restarting":
      return `Restarting (${state.ExitCode}) ${humanDuration(now - Date.parse(state.FinishedAt))} ago`;
    case "removing":
      return "Removal In Progress";
    case "dead":
      return "Dead";
  }
  if (isZeroTime(state.StartedAt)) return "Created";
  if (isZeroTime(state.FinishedAt)) return "";
  return `Exited (${state.ExitCode}) ${humanDuration(now - Date.parse(state.FinishedAt))} ago`;
}

const DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/**
 * go-units HumanSizeWithPrecision: decimal units, "1.24MB", "0B", "12.3kB"; 999999 bytes is "1e+03kB" as in
 * Go. Tables use precision 3 (docker's default); pull/push progress uses 4 (go-units HumanSize).
 */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${formatFloatG(size, precision)}${DECIMAL_UNITS[i]}`;
}

/** Go's time.Time.String() for a whole-second time: "2026-11-29 07:45:29 +0000 UTC". */
export function goTimeString(iso: string): string {
  const d = new Date(Date.parse(iso));
  const offsetMin = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offsetMin * 60_000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${p(local.getUTCFullYear(), 4)}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())}`;
  const time = `${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}`;
  const sign = offsetMin < 0 ? "-" : "+";
  const off = `${sign}${p(Math.trunc(Math.abs(offsetMin) / 60))}${p(Math.abs(offsetMin) % 60)}`;
  const zone = offsetMin === 0 ? "UTC" : zoneAbbreviation(d) ?? off;
  return `${date} ${time} ${off} ${zone}`;
}

function zoneAbbreviation(d: Date): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(d)
      .find((p) => p.type === "timeZoneName")?.value;
  } catch {
    return undefined;
  }
}

/** docker's stringid.TruncateID: the first 12 hex digits, without a "sha256:" prefix. */
export function shortId(id: string): string {
  const hex = id.includes(":") ? id.slice(id.indexOf(":") + 1) : id;
  return hex.slice(0, 12);
}

/** docker's formatter.Ellipsis for ASCII/rune widths: cut to max display chars ending in "…". */
export function ellipsis(s: string, max: number): string {
  if (max <= 0) return "";
  const runes = [...s];
  if (max === 1) return runes[0] ?? "";
  if (runes.length <= max) return s;
  return runes.slice(0, max - 1).join("") + "…";
}
