// run/create --cidfile PATH as docker's CLI does it: the file must not exist (a container may still
// run that wrote it), it is made before the container, holds the id (no newline) once the container
// exists, and goes again when the command fails before that.

import { SkiffError } from "../errors.ts";

export class CidFile {
  private constructor(readonly path: string | undefined) {}

  /** Makes the file now (O_EXCL: never over another run's), or nothing without --cidfile. */
  static open(path: string | undefined): CidFile {
    if (!path) return new CidFile(undefined);
    try {
      Deno.openSync(path, { write: true, createNew: true, mode: 0o644 }).close();
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new SkiffError(
          `container ID file found, make sure the other container isn't running or delete ${path}`,
        );
      }
      // Go's words for the open that failed
      const why = e instanceof Deno.errors.NotFound
        ? "no such file or directory"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : e instanceof Deno.errors.IsADirectory
        ? "is a directory"
        : (e as Error).message;
      throw new SkiffError(`failed to create the container ID file: open ${path}: ${why}`);
    }
    return new CidFile(path);
  }

  write(id: string): void {
    if (!this.path) return;
    Deno.writeTextFileSync(this.path, id);
  }

  /** The command failed and its container does not exist: the file goes (docker's Close). */
  remove(): void {
    if (!this.path) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* removed meanwhile */ }
  }
}
