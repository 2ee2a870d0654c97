// Go's time.Duration as docker's flags and JSON use it: ParseDuration ("1m30s", "-1.5h", "300ms")
// and String ("200ms", "1.5s", "1m0s"), in nanoseconds.

import { SkiffError } from "../errors.ts";

const UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  "μs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** time.ParseDuration: nanoseconds, or `time: invalid duration "TEXT"`. */
export function parseGoDuration(text: string): number {
  const invalid = () => new SkiffError(`time: invalid duration ${JSON.stringify(text)}`);
  let rest = text, sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest[0] === "-" ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw invalid();
  if (/^(\d+\.?\d*|\.\d+)$/.test(rest)) {
    throw new SkiffError(`time: missing unit in duration ${JSON.stringify(text)}`);
  }
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0, pos = 0;
  for (let m; pos < rest.length && (m = re.exec(rest));) {
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== rest.length) throw invalid();
  return sign * Math.round(total);
}

/** time.Duration.String: "0s", "200ms", "1.5s", "1m0s", "2h45m0s", "1.5µs". */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  const abs = Math.abs(ns);
  const trim = (n: number, unit: string, scale: number) => {
    const digits = String(n / scale);
    return `${sign}${digits}${unit}`;
  };
  if (abs < 1e3) return `${sign}${abs}ns`;
  if (abs < 1e6) return trim(abs, "µs", 1e3);
  if (abs < 1e9) return trim(abs, "ms", 1e6);
  const hours = Math.floor(abs / 3600e9);
  const minutes = Math.floor((abs % 3600e9) / 60e9);
  const seconds = String(Number(((abs % 60e9) / 1e9).toFixed(9)));
  if (hours) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}
