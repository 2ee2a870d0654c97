// Small path helpers for skiff's own directories (layers, volumes). Container content is read and
// written through directory fds instead (lib/fs): a path string inside a container root or a
// volume may be swapped for a symlink between two calls.

export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

/** The parts of a path, without empty and "." components. */
export function pathParts(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}
