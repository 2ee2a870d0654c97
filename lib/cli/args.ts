// Docker-style command-line parsing. node:util parseArgs cannot stop at the first positional, which
// `run IMAGE CMD -c x` needs, so the verbs share this small parser instead.

import { UsageError } from "../errors.ts";
import { parseBytes } from "../format/bytes.ts";

export type OptionKind = "bool" | "string" | "list";

export interface OptionSpec {
  /** Long name without dashes, e.g. "memory-swap". */
  name: string;
  short?: string;
  kind: OptionKind;
  /** Other long names that mean the same option (docker keeps a few aliases). */
  aliases?: string[];
}

export interface Parsed {
  /** Values keyed by the option's long name: boolean, string (last wins) or string[] for lists. */
  options: Record<string, boolean | string | string[] | undefined>;
  positionals: string[];
}

export interface ParseConfig {
  verb: string;
  options: OptionSpec[];
  /** Stop parsing options at the first positional (run/exec: the rest is the container's command). */
  stopAtPositional?: number;
}

const TRUE = new Set(["true", "1", "t", "T", "TRUE", "True"]);
const FALSE = new Set(["false", "0", "f", "F", "FALSE", "False"]);

export function parseArgs(args: string[], config: ParseConfig): Parsed {
  const byLong = new Map<string, OptionSpec>();
  const byShort = new Map<string, OptionSpec>();
  for (const o of [...config.options, { name: "help", kind: "bool" } as OptionSpec]) {
    byLong.set(o.name, o);
    for (const a of o.aliases ?? []) byLong.set(a, o);
    if (o.short) byShort.set(o.short, o);
  }
  const options: Parsed["options"] = {};
  const positionals: string[] = [];
  const set = (spec: OptionSpec, value: string | boolean, shown: string) => {
    if (spec.kind === "bool") {
      if (typeof value === "string") {
        if (TRUE.has(value)) value = true;
        else if (FALSE.has(value)) value = false;
        else {throw new UsageError(
            `invalid argument "${value}" for "${shown}" flag: parse error`,
            config.verb,
          );}
      }
      options[spec.name] = value;
    } else if (spec.kind === "list") {
      const list = (options[spec.name] as string[] | undefined) ?? [];
      list.push(String(value));
      options[spec.name] = list;
    } else {
      options[spec.name] = String(value);
    }
  };

  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`, config.verb);
      if (eq !== -1) set(spec, arg.slice(eq + 1), `--${name}`);
      else if (spec.kind === "bool") set(spec, true, `--${name}`);
      else {
        if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: --${name}`, config.verb);
        set(spec, args[++i], `--${name}`);
      }
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      // -it, -e K=V, -eK=V, -p=80
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j];
        const spec = byShort.get(ch);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${ch}' in ${arg}`, config.verb);
        if (spec.kind === "bool") {
          if (arg[j + 1] === "=") {
            set(spec, arg.slice(j + 2), `-${ch}`);
            break;
          }
          set(spec, true, `-${ch}`);
          continue;
        }
        let value = arg.slice(j + 1);
        if (value.startsWith("=")) value = value.slice(1);
        if (value === "") {
          if (i + 1 >= args.length) {
            throw new UsageError(`flag needs an argument: '${ch}' in -${ch}`, config.verb);
          }
          value = args[++i];
        }
        set(spec, value, `-${ch}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
    if (config.stopAtPositional !== undefined && positionals.length >= config.stopAtPositional) {
      positionals.push(...args.slice(i + 1));
      break;
    }
  }
  return { options, positionals };
}

// Typed getters so verb modules read options without casts.
export const str = (p: Parsed, name: string): string | undefined => p.options[name] as string | undefined;
export const bool = (p: Parsed, name: string): boolean => p.options[name] === true;
export const list = (p: Parsed, name: string): string[] => (p.options[name] as string[] | undefined) ?? [];

/** Requires an exact count of positionals or throws docker's wording. */
export function requireArgs(p: Parsed, verb: string, min: number, max = Infinity): void {
  const n = p.positionals.length;
  if (n < min || n > max) {
    const what = min === max
      ? `exactly ${min} argument${min === 1 ? "" : "s"}`
      : max === Infinity
      ? `at least ${min} argument${min === 1 ? "" : "s"}`
      : `at least ${min} and at most ${max} arguments`;
    throw new UsageError(`"skiff ${verb}" requires ${what}.`, verb, true);
  }
}

/** docker's wording for a flag value that does not parse. */
export function invalidValue(verb: string, value: string, flag: string, why: string): UsageError {
  return new UsageError(`invalid argument "${value}" for "${flag}" flag: ${why}`, verb);
}

/** A byte-size flag (--memory 64m); "" or absent → 0; "-1" → -1 where the flag allows "unlimited". */
export function bytesFlag(
  verb: string,
  value: string | undefined,
  flag: string,
  allowMinusOne = false,
): number {
  if (value === undefined || value === "") return 0;
  if (allowMinusOne && value.trim() === "-1") return -1;
  try {
    return parseBytes(value, flag);
  } catch {
    throw invalidValue(verb, value, flag, `invalid size: '${value}'`);
  }
}

/** An integer flag, worded like Go's strconv errors; absent → undefined. */
export function intFlag(
  verb: string,
  value: string | undefined,
  flag: string,
  unsigned = false,
): number | undefined {
  if (value === undefined) return undefined;
  if (!(unsigned ? /^\d+$/ : /^[-+]?\d+$/).test(value)) {
    throw invalidValue(
      verb,
      value,
      flag,
      `strconv.Parse${unsigned ? "Uint" : "Int"}: parsing "${value}": invalid syntax`,
    );
  }
  return Number(value);
}

/** --cpus 1.5 → NanoCpus; "" or absent → 0. */
export function cpusFlag(verb: string, value: string | undefined): number {
  if (value === undefined || value === "") return 0;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(value)) {
    throw invalidValue(verb, value, "--cpus", `failed to parse ${value} as a rational number`);
  }
  return Math.round(Number(value) * 1e9);
}

/** The resource flags `run` and `update` share (docker's names and shorthands). */
export const RESOURCE_OPTIONS: OptionSpec[] = [
  { name: "memory", short: "m", kind: "string" },
  { name: "memory-swap", kind: "string" },
  { name: "cpus", kind: "string" },
  { name: "cpu-shares", short: "c", kind: "string" },
  { name: "cpuset-cpus", kind: "string" },
  { name: "cpuset-mems", kind: "string" },
  { name: "pids-limit", kind: "string" },
  { name: "blkio-weight", kind: "string" },
];
