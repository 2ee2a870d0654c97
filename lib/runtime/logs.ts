// Container logs in docker's json-file format: <container>/<id>-json.log, one JSON object a line,
// {"log":"text\n","stream":"stdout"|"stderr","time":"RFC3339Nano"}. Rotation (--log-opt max-size,
// max-file) renames <file> -> <file>.1 -> <file>.2 ... and drops the oldest. The monitor writes;
// `logs` reads, following the live file across rotations.

import { SkiffError } from "../errors.ts";
import { parseTimeOrDuration } from "../format/filters.ts";
import { parseBytes } from "../format/bytes.ts";
import { parseGoBool } from "../format/gobool.ts";
import type { StateRoot } from "../state/root.ts";
import { object, oneOf, parseState, str } from "../state/validate.ts";
import type { ContainerRecord } from "../state/types.ts";

export type LogStream = "stdout" | "stderr";

export interface LogEntry {
  log: string;
  stream: LogStream;
  time: string;
}

export interface LogSettings {
  /** "local" is written as json-file is (only `logs` reads it), with docker's local defaults */
  driver: "json-file" | "local" | "none";
  /** bytes; 0 = no rotation */
  maxSize: number;
  maxFile: number;
}

export function logPath(root: StateRoot, id: string): string {
  return `${root.container(id)}/${id}-json.log`;
}

/** Checks --log-driver / --log-opt as docker does and returns the record's LogConfig. */
export function logConfigOf(driver: string | undefined, opts: string[]): NonNullable<
  ContainerRecord["HostConfig"]["LogConfig"]
> {
  const type = driver ?? "json-file";
  if (type !== "json-file" && type !== "local" && type !== "none") {
    throw new SkiffError(
      `failed to create task for container: logger: no log driver named '${type}' is registered`,
    );
  }
  const config: Record<string, string> = {};
  for (const opt of opts) {
    const eq = opt.indexOf("=");
    if (eq <= 0) throw new SkiffError(`invalid key value pair format in log opts: ${opt}`);
    const key = opt.slice(0, eq), value = opt.slice(eq + 1);
    if (type === "local" && !["max-size", "max-file", "compress"].includes(key)) {
      throw new SkiffError(`unknown log opt '${key}' for log driver local`);
    }
    if (type === "none" || !["max-size", "max-file", "compress", "labels", "env", "tag"].includes(key)) {
      throw new SkiffError(`unknown log opt '${key}' for ${type} log driver`);
    }
    config[key] = value;
  }
  settingsOf(type, config); // validates the values
  return { Type: type, Config: config };
}

function settingsOf(type: LogSettings["driver"], config: Record<string, string>): LogSettings {
  if (type === "local") return localSettings(config);
  let maxSize = 0, maxFile = 1;
  if (config["max-size"] !== undefined && config["max-size"] !== "-1") {
    try {
      maxSize = parseBytes(config["max-size"], "max-size");
    } catch {
      throw new SkiffError(`invalid value for max-size: ${config["max-size"]}`);
    }
  }
  if (config["max-file"] !== undefined) {
    maxFile = Number(config["max-file"]);
    if (!Number.isInteger(maxFile) || maxFile < 1) {
      throw new SkiffError(`max-file cannot be less than 1`);
    }
    if (maxFile > 1 && maxSize === 0) {
      throw new SkiffError(`max-file cannot be set unless max-size is set`);
    }
  }
  return { driver: type, maxSize, maxFile };
}

/**
 * docker's local driver: 20 MB files, 5 of them, compressed (skiff keeps the rotated files as they
 * are: only `logs` reads them); its options and refusals as its daemon words them.
 */
function localSettings(config: Record<string, string>): LogSettings {
  let maxSize = 20 * 1024 * 1024, maxFile = 5;
  if (config["max-size"] !== undefined) {
    try {
      maxSize = parseBytes(config["max-size"], "max-size");
    } catch {
      throw new SkiffError(
        `failed to initialize logging driver: invalid value for max-size: ${
          config["max-size"]
        }: invalid size: '${config["max-size"]}'`,
      );
    }
  }
  let compress = true;
  if (config.compress !== undefined) {
    const value = parseGoBool(config.compress);
    if (value === undefined) {
      throw new SkiffError(
        `failed to initialize logging driver: error reading compress log option: strconv.ParseBool: parsing "${config.compress}": invalid syntax`,
      );
    }
    compress = value;
  }
  if (config["max-file"] !== undefined) {
    maxFile = Number(config["max-file"]);
    if (!Number.isInteger(maxFile)) throw new SkiffError(`invalid value for max-file: ${config["max-file"]}`);
    if (maxFile < 1) maxFile = 1; // docker's local driver counts below one as one
  }
  if (compress && maxFile === 1) {
    throw new SkiffError(
      "failed to initialize logging driver: compression cannot be enabled when max file count is 1",
    );
  }
  return { driver: "local", maxSize, maxFile };
}

export function logSettings(record: ContainerRecord): LogSettings {
  const config = record.HostConfig.LogConfig;
  return settingsOf(config?.Type ?? "json-file", config?.Config ?? {});
}

/** Now as RFC3339 with nanoseconds (fixed 9 digits, as docker's logs -t prints). */
export function nanoTimestamp(): string {
  const ms = performance.timeOrigin + performance.now();
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // ...T12:34:56.789Z
  const nanos = Math.floor((ms - whole) * 1e6).toString().padStart(6, "0");
  return `${iso.slice(0, 23)}${nanos}Z`;
}

const MAX_PARTIAL = 16 * 1024;

/** Appends a container's output to its json log, a line per entry, rotating by size. */
export class JsonLogWriter {
  private file: Deno.FsFile | undefined;
  private size = 0;
  private ino = 0;
  /** Bytes of each stream in the entries written so far (the supervisor's spool commits by them). */
  readonly logged: Record<LogStream, number> = { stdout: 0, stderr: 0 };
  private partial: Record<LogStream, Uint8Array[]> = { stdout: [], stderr: [] };
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly path: string, readonly settings: LogSettings) {
    if (settings.driver === "none") return;
    this.file = Deno.openSync(path, { append: true, create: true, mode: 0o640 });
    const info = this.file.statSync();
    this.size = info.size;
    this.ino = info.ino ?? 0;
  }

  /** Reads the live file's length again (after loggedSince() cut a half-written last line). */
  resync(): void {
    if (!this.file) return;
    const info = this.file.statSync();
    this.size = info.size;
    this.ino = info.ino ?? 0;
  }

  /** The live file and its length: where the next entry goes. */
  position(): { ino: number; size: number } {
    return { ino: this.ino, size: this.size };
  }

  /** Takes a chunk as read from the container; complete lines are written at once. */
  write(stream: LogStream, chunk: Uint8Array): void {
    if (!this.file) {
      this.logged[stream] += chunk.length; // --log-driver none: nothing to keep
      return;
    }
    const entries: string[] = [];
    const time = nanoTimestamp();
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      const parts = this.partial[stream];
      parts.push(chunk.subarray(start, i + 1));
      entries.push(this.entry(stream, concat(parts), time));
      this.partial[stream] = [];
      start = i + 1;
    }
    if (start < chunk.length) this.partial[stream].push(chunk.slice(start));
    if (this.partial[stream].reduce((n, p) => n + p.length, 0) > MAX_PARTIAL) {
      entries.push(this.entry(stream, concat(this.partial[stream]), time));
      this.partial[stream] = [];
    }
    if (entries.length) this.append(entries);
  }

  /** Writes what is left of unfinished lines (docker logs them without a newline) and closes. */
  close(): void {
    if (!this.file) return;
    const time = nanoTimestamp();
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream].length) this.append([this.entry(stream, concat(this.partial[stream]), time)]);
      this.partial[stream] = [];
    }
    this.file.close();
    this.file = undefined;
  }

  private entry(stream: LogStream, bytes: Uint8Array, time: string): string {
    this.logged[stream] += bytes.length;
    return JSON.stringify({ log: this.decoder.decode(bytes), stream, time }) + "\n";
  }

  /** Writes entries in as few writes as the size cap allows (rotation happens between entries). */
  private append(entries: string[]): void {
    const { maxSize, maxFile } = this.settings;
    let batch: Uint8Array[] = [], batchSize = 0;
    const flush = () => {
      const data = concat(batch);
      let done = 0;
      while (done < data.length) done += this.file!.writeSync(data.subarray(done));
      this.size += data.length;
      batch = [];
      batchSize = 0;
    };
    for (const entry of entries) {
      const data = this.encoder.encode(entry);
      if (maxSize > 0 && this.size + batchSize > 0 && this.size + batchSize + data.length > maxSize) {
        if (batch.length) flush();
        this.rotate(maxFile);
      }
      batch.push(data);
      batchSize += data.length;
    }
    if (batch.length) flush();
  }

  private rotate(maxFile: number): void {
    this.file!.close();
    if (maxFile <= 1) {
      Deno.truncateSync(this.path, 0);
    } else {
      for (let n = maxFile - 1; n >= 1; n--) {
        const from = n === 1 ? this.path : `${this.path}.${n - 1}`;
        try {
          Deno.renameSync(from, `${this.path}.${n}`);
        } catch { /* not there yet */ }
      }
    }
    this.file = Deno.openSync(this.path, { append: true, create: true, mode: 0o640 });
    this.size = 0;
    this.ino = this.file.statSync().ino ?? 0;
  }
}

/**
 * After a writer was killed: the bytes of each stream in the entries written from `offset` of the
 * file `ino` on (that file, found among the live one and its rotations, and every newer one). A
 * last line cut by the kill is removed from the live file first, so the next entry starts a line.
 */
export function loggedSince(
  path: string,
  maxFile: number,
  from: { ino: number; size: number },
): Record<LogStream, number> {
  const counts: Record<LogStream, number> = { stdout: 0, stderr: 0 };
  try {
    const live = Deno.readFileSync(path);
    const end = live.lastIndexOf(0x0a) + 1;
    if (end < live.length) Deno.truncateSync(path, end);
  } catch { /* no live file */ }
  const files = [path, ...Array.from({ length: maxFile - 1 }, (_, i) => `${path}.${i + 1}`)];
  const texts: string[] = []; // newest first
  for (const file of files) {
    let bytes: Uint8Array, ino: number | null;
    try {
      bytes = Deno.readFileSync(file);
      ino = Deno.statSync(file).ino;
    } catch {
      break;
    }
    if (ino === from.ino) {
      // shorter than committed: truncated in place by a rotation (max-file 1) since
      texts.push(new TextDecoder().decode(bytes.length < from.size ? bytes : bytes.subarray(from.size)));
      break;
    }
    texts.push(new TextDecoder().decode(bytes));
  }
  // not found: the committed file was rotated out, every file left is newer
  const encoder = new TextEncoder();
  for (const text of texts) {
    for (const entry of parseLines(text)) counts[entry.stream] += encoder.encode(entry.log).length;
  }
  return counts;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const logLine = object<LogEntry>({ log: str, stream: oneOf("stdout", "stderr"), time: str });

/** The entries of a json-file log; a line that is not one (cut by a crash mid-write) is skipped. */
function parseLines(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      out.push(parseState(line, logLine));
    } catch { /* a line cut by a crash mid-write, or not a log entry */ }
  }
  return out;
}

/**
 * Every entry still on disk, oldest first (rotated files, then the live one), and the offset in the
 * live file up to which they were read (where followLog() goes on).
 */
export function readLogEntries(path: string, maxFile: number): { entries: LogEntry[]; offset: number } {
  const entries: LogEntry[] = [];
  for (let n = maxFile - 1; n >= 1; n--) {
    try {
      entries.push(...parseLines(Deno.readTextFileSync(`${path}.${n}`)));
    } catch { /* not rotated that far */ }
  }
  let live: Uint8Array;
  try {
    live = Deno.readFileSync(path);
  } catch {
    return { entries, offset: 0 };
  }
  const offset = live.lastIndexOf(0x0a) + 1; // a line being written stays for the follower
  entries.push(...parseLines(new TextDecoder().decode(live.subarray(0, offset))));
  return { entries, offset };
}

/** docker's --since/--until: RFC3339 (date or date-time), a unix timestamp, or a duration ago. */
export function parseLogTime(value: string, now = Date.now(), flag = "since"): number {
  try {
    return parseTimeOrDuration(value, now);
  } catch (e) {
    throw new SkiffError(`invalid value for "${flag}": ${(e as Error).message}`);
  }
}

/** An entry's time in ms (the nanoseconds beyond are dropped). */
export const entryTime = (e: LogEntry) => Date.parse(e.time.slice(0, 23) + "Z");

/**
 * Follows the live log file from `offset` (bytes): calls `emit` for each complete new entry until
 * `stillRunning` turns false and the file has been read to its end. Survives rotation: the old
 * file is read to its end, then the new one from the start.
 */
export async function followLog(
  path: string,
  offset: number,
  emit: (entry: LogEntry) => void,
  stillRunning: () => boolean,
  intervalMs = 50,
): Promise<void> {
  let file: Deno.FsFile | undefined;
  let ino: number | null = null;
  let pending = "";
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  const open = () => {
    try {
      file = Deno.openSync(path);
      ino = file.statSync().ino;
      return true;
    } catch {
      return false;
    }
  };
  const readToEnd = () => {
    if (!file) return;
    while (true) {
      const n = file.readSync(buf);
      if (!n) break;
      pending += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const cut = pending.lastIndexOf("\n");
    if (cut === -1) return;
    for (const entry of parseLines(pending.slice(0, cut))) emit(entry);
    pending = pending.slice(cut + 1);
  };
  if (open()) file!.seekSync(offset, Deno.SeekMode.Start);
  try {
    while (true) {
      const running = stillRunning();
      readToEnd();
      // rotated (or created) meanwhile: finish the old file, go on with the new one
      let current: number | null = null;
      try {
        current = Deno.statSync(path).ino;
      } catch { /* removed with the container */ }
      if (current !== null && current !== ino) {
        file?.close();
        pending = "";
        if (open()) continue;
      } else if (file && file.statSync().size < file.seekSync(0, Deno.SeekMode.Current)) {
        file.seekSync(0, Deno.SeekMode.Start); // truncated in place (max-file 1)
        pending = "";
        continue;
      }
      if (!running) return;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    file?.close();
  }
}
