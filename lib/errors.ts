// Errors the CLI turns into one line on stderr and an exit code. The engine throws; it never prints.

/** skiff's own failure: docker's exit code 125 unless said otherwise. */
export class SkiffError extends Error {
  constructor(message: string, readonly exitCode = 125) {
    super(message);
    this.name = "SkiffError";
  }
}

/** Bad command line: unknown flag, malformed value, missing argument. */
export class UsageError extends SkiffError {
  constructor(message: string, readonly verb?: string) {
    super(message, 125);
    this.name = "UsageError";
  }
}

export class NotFoundError extends SkiffError {
  constructor(message: string) {
    super(message, 125);
    this.name = "NotFoundError";
  }
}

/** An error's message on one line (stderr gets one line per failure). */
export function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ").trim();
}
