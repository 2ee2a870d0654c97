// run/create --cidfile PATH as docker's CLI does it: the file must not exist (a container may still
// run that wrote it), it is made before the container, holds the id (no newline) once the container
// exists, and goes again when the command fails before that.

import { goOpenErrorText, SkiffError } from "../errors.ts";

export class CidFile {
  private constructor(readonly path: string | undefined, private file?: Deno.FsFile) {}

  /** Makes the file now (O_EXCL: never over another run's), or nothing without --cidfile. */
  static open(path: string | undefined): CidFile {
    if (!path) return new CidFile(undefined);
    let file: Deno.FsFile;
    try {
      // kept open: the id goes through this fd, never through the path (which may be swapped)
      file = Deno.openSync(path, { write: true, createNew: true, mode: 0o644 });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new SkiffError(
          `container ID file found, make sure the other container isn't running or delete ${path}`,
        );
      }
      const why = goOpenErrorText(e);
      throw new SkiffError(`failed to create the container ID file: open ${path}: ${why}`);
    }
    return new CidFile(path, file);
  }

  /** The id, in place of what was written before. */
  write(id: string): void {
    if (!this.file) return;
    this.file.truncateSync(0);
    this.file.seekSync(0, Deno.SeekMode.Start);
    const bytes = new TextEncoder().encode(id);
    for (let n = 0; n < bytes.length;) n += this.file.writeSync(bytes.subarray(n));
  }

  /** Done with it (the process's exit closes it too). */
  close(): void {
    this.file?.close();
    this.file = undefined;
  }

  /** The command failed and its container does not exist: the file goes (docker's Close). */
  remove(): void {
    this.close();
    if (!this.path) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* removed meanwhile */ }
  }
}
