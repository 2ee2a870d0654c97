// Errors the CLI turns into one line on stderr and an exit code. The engine throws; it never prints.
// Each error carries a kind (what went wrong, for a caller to act on: an API's HTTP status, a retry)
// apart from the exit code (what docker's CLI returns for it); a cause keeps the error underneath.

/** What went wrong, independent of who reports it (CLI exit code, HTTP status). */
export type ErrorKind =
  | "not-found"
  | "conflict"
  | "invalid-argument"
  | "not-modified"
  | "unavailable"
  | "system";

export interface ErrorDetail {
  /** The kind when it is not the class's own (see `defaultKind`). */
  kind?: ErrorKind;
  cause?: unknown;
}

/**
 * skiff's own failure. Its exit code, unless one is given: docker's CLI's for a failure it does not
 * name one for, 125 for `run` and 1 for every other verb (main.ts `exitCodeOf`); `exitCode` reads
 * 125 then, what the engine's callers (the supervisor, `run`) pass on.
 */
export class SkiffError extends Error {
  /** The kind of every error of this class that does not name its own. */
  static readonly defaultKind: ErrorKind = "system";
  readonly kind: ErrorKind;
  readonly exitCode: number;
  /** Whether the thrower named the exit code (else it is the verb's, see above). */
  readonly exitCodeGiven: boolean;

  constructor(message: string, exitCode?: number, detail: ErrorDetail = {}) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = "SkiffError";
    this.kind = detail.kind ?? (new.target as typeof SkiffError).defaultKind;
    this.exitCode = exitCode ?? 125;
    this.exitCodeGiven = exitCode !== undefined;
  }
}

/**
 * Bad command line: unknown flag, malformed value (docker's CLI: 125), or the wrong number of
 * arguments (`argumentCount`: its CLI exits 1 for those).
 */
export class UsageError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "invalid-argument";
  constructor(message: string, readonly verb?: string, argumentCount = false) {
    super(message, argumentCount ? 1 : 125);
    this.name = "UsageError";
  }
}

/**
 * A check docker's CLI makes itself before it asks its daemon (a flag value it parses, a file it
 * reads): 125 for every verb, `create` included, where the daemon's refusals exit 1.
 */
export class ClientCheckError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "invalid-argument";
  constructor(message: string) {
    super(message, 125);
    this.name = "ClientCheckError";
  }
}

export class NotFoundError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "not-found";
  constructor(message: string, exitCode?: number, detail: ErrorDetail = {}) {
    super(message, exitCode, detail);
    this.name = "NotFoundError";
  }
}

/**
 * The one "No such container" error, with docker's wording; its exit code the verb's unless given
 * (125 for `run`'s, 1 for the verbs that act on a container).
 */
export class NoSuchContainerError extends NotFoundError {
  constructor(readonly ref: string, exitCode?: number) {
    super(`No such container: ${ref}`, exitCode);
    this.name = "NoSuchContainerError";
  }
}

/** The same error with the exit code a verb reports it with (docker's CLI differs per verb). */
export function withExitCode(e: SkiffError, exitCode: number): SkiffError {
  if (e.exitCode === exitCode) return e;
  return new SkiffError(e.message, exitCode, { kind: e.kind, cause: e });
}

/** The HTTP status an API answers for an error of this kind (moby's errdefs mapping). */
export function httpStatusOf(kind: ErrorKind): number {
  switch (kind) {
    case "not-found":
      return 404;
    case "conflict":
      return 409;
    case "invalid-argument":
      return 400;
    case "not-modified":
      return 304;
    case "unavailable":
      return 503;
    case "system":
      return 500;
  }
}

/** The kind of any thrown value: a SkiffError's own, else "system". */
export function kindOf(e: unknown): ErrorKind {
  return e instanceof SkiffError ? e.kind : "system";
}

/** An error's message on one line (stderr gets one line per failure). */
export function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ").trim();
}

/** What Go's os package says of a failed open ("no such file or directory", …): docker's wording. */
export function goOpenErrorText(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return (e as Error).message;
}
