// Shape checks for the state files on skiff's hot paths (container records, image records, the tag
// index, volume records). zod would do the same, but importing it costs ~10 ms per process (zod
// 4.1.12: +12 ms wall, zod/mini +9 ms, against a 14 ms empty Deno start; README, Dependencies), and
// run, exec and ps read these files on every call. The colder state files use zod (schemas.ts).
//
// A check returns the value unchanged or throws InvalidState naming the first bad field. Objects are
// checked loosely: fields a newer skiff adds pass through, the fields this one reads must be right.

/** A state file that does not have the shape skiff wrote. `message` names the first bad field. */
export class InvalidState extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidState";
  }
}

export type Check<T> = (value: unknown, at: string) => T;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return v.length > 40 ? "a string" : JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function fail(at: string, want: string, got: unknown): never {
  throw new InvalidState(`${at || "top level"}: expected ${want}, got ${describe(got)}`);
}

export const str: Check<string> = (v, at) => typeof v === "string" ? v : fail(at, "a string", v);
export const num: Check<number> = (v, at) =>
  typeof v === "number" && Number.isFinite(v) ? v : fail(at, "a number", v);
export const int: Check<number> = (v, at) =>
  Number.isSafeInteger(v) ? v as number : fail(at, "an integer", v);
export const bool: Check<boolean> = (v, at) => typeof v === "boolean" ? v : fail(at, "true or false", v);
export const unknownValue: Check<unknown> = (v) => v;

export function matching(re: RegExp, what: string): Check<string> {
  return (v, at) => typeof v === "string" && re.test(v) ? v : fail(at, what, v);
}

export function oneOf<T extends string>(...values: T[]): Check<T> {
  return (v, at) => values.includes(v as T) ? v as T : fail(at, `one of ${values.join(", ")}`, v);
}

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, at) => v === undefined ? undefined : check(v, at);
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, at) => v === null ? null : check(v, at);
}

export function array<T>(check: Check<T>): Check<T[]> {
  return (v, at) => {
    if (!Array.isArray(v)) return fail(at, "an array", v);
    v.forEach((item, i) => check(item, `${at}[${i}]`));
    return v as T[];
  };
}

export function record<T>(check: Check<T>): Check<Record<string, T>> {
  return (v, at) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return fail(at, "an object", v);
    for (const [k, item] of Object.entries(v)) check(item, `${at}[${JSON.stringify(k)}]`);
    return v as Record<string, T>;
  };
}

/** An object with at least these fields (a field checked with optional() may be absent). */
export function object<T>(shape: Record<string, Check<unknown>>): Check<T> {
  const fields = Object.entries(shape);
  return (v, at) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return fail(at, "an object", v);
    const o = v as Record<string, unknown>;
    for (const [k, check] of fields) check(o[k], at ? `${at}.${k}` : k);
    return v as T;
  };
}

/** Parses and checks a state file's text; InvalidState for both bad JSON and a bad shape. */
export function parseState<T>(text: string, check: Check<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidState(
      text.trim() === "" ? "the file is empty" : `not valid JSON (${(e as Error).message})`,
    );
  }
  return check(value, "");
}
