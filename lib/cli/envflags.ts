// docker's -e / --env-file / --label-file handling, shared by run and exec.

import { SkiffError } from "../errors.ts";

/** Lines of a docker env/label file: blank lines and # comments skipped. */
export function readListFile(path: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new SkiffError(
      `open ${path}: ${
        e instanceof Deno.errors.NotFound ? "no such file or directory" : (e as Error).message
      }`,
    );
  }
  return text.split(/\r?\n/).map((l) => l.trimStart()).filter((l) => l && !l.startsWith("#"));
}

/** docker's -e semantics: K=V as given, bare K takes skiff's own value (and is dropped when unset). */
export function environment(entries: string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const key = eq === -1 ? entry : entry.slice(0, eq);
    if (key === "") throw new SkiffError(`invalid environment variable: ${entry}`);
    if (/\s/.test(key)) throw new SkiffError(`variable '${key}' contains whitespaces`);
    if (eq !== -1) out.push(entry);
    else {
      const value = Deno.env.get(key);
      if (value !== undefined) out.push(`${key}=${value}`);
    }
  }
  return out;
}
