// docker's -e / --env-file / --label-file handling, shared by run and exec.

import { ClientCheckError } from "../errors.ts";

/** bufio.Scanner's longest line (MaxScanTokenSize): docker reads env and label files with one. */
const MAX_LINE = 64 * 1024;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Lines of a docker env/label file (docker's parseKeyValueFile): blank lines and # comments
 * skipped, read line by line, so a line of 64 KiB or more (/dev/zero) is an error, as docker's
 * scanner gives, instead of an endless read; invalid UTF-8 and blanks in a name are refused.
 */
export function readListFile(path: string): string[] {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch (e) {
    throw new ClientCheckError(
      `open ${path}: ${
        e instanceof Deno.errors.NotFound ? "no such file or directory" : (e as Error).message
      }`,
    );
  }
  const lines: string[] = [];
  const take = (bytes: Uint8Array) => {
    const raw = bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
    let text: string;
    try {
      text = strictUtf8.decode(raw);
    } catch {
      throw new ClientCheckError(
        `env file ${path} contains invalid utf8 bytes at line ${lines.length + 1}: [${raw.join(" ")}]`,
      );
    }
    lines.push(text);
  };
  try {
    const buf = new Uint8Array(MAX_LINE);
    let filled = 0;
    for (;;) {
      const n = file.readSync(buf.subarray(filled));
      if (n === null) break;
      let start = 0;
      for (let i = filled; i < filled + n; i++) {
        if (buf[i] === 0x0a) {
          take(buf.subarray(start, i));
          start = i + 1;
        }
      }
      buf.copyWithin(0, start, filled + n);
      filled = filled + n - start;
      if (filled === MAX_LINE) throw new ClientCheckError("bufio.Scanner: token too long");
    }
    if (filled > 0) take(buf.subarray(0, filled));
  } finally {
    file.close();
  }
  const kept = lines.map((l) => l.trimStart()).filter((l) => l && !l.startsWith("#"));
  for (const line of kept) {
    const name = line.split("=", 1)[0];
    if (/[ \t]/.test(name)) {
      throw new ClientCheckError(`poorly formatted environment: variable '${name}' contains whitespaces`);
    }
  }
  return kept;
}

/** docker's -e semantics: K=V as given, bare K takes skiff's own value (and is dropped when unset). */
export function environment(entries: string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const key = eq === -1 ? entry : entry.slice(0, eq);
    if (key === "") throw new ClientCheckError(`invalid environment variable: ${entry}`);
    if (/\s/.test(key)) throw new ClientCheckError(`variable '${key}' contains whitespaces`);
    if (eq !== -1) out.push(entry);
    else {
      const value = Deno.env.get(key);
      if (value !== undefined) out.push(`${key}=${value}`);
    }
  }
  return out;
}
