// A streaming tar reader (push-based: feed it chunks as they arrive, it calls back per entry and per
// piece of entry data without buffering file contents) and a small tar writer.
//
// Reads ustar, POSIX pax (x and g headers), GNU long names (L/K) and base-256 numbers. The reader
// never touches the filesystem: what to do with an entry is the caller's business.

import { SkiffError } from "../errors.ts";

export type TarEntryType =
  | "file"
  | "link" // hard link
  | "symlink"
  | "char"
  | "block"
  | "dir"
  | "fifo"
  | "unsupported";

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** The raw type flag, for error messages about unsupported entries. */
  typeFlag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (may be fractional from pax). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax SCHILY.xattr.* records: name → raw value. */
  xattrs?: Map<string, Uint8Array>;
}

/** Receives one entry's data; `end` is called once after the last byte (also for empty entries). */
export interface EntryHandler {
  data(chunk: Uint8Array): void;
  end(): void;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function cString(block: Uint8Array, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return decoder.decode(block.subarray(offset, end));
}

/** An octal number, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(block: Uint8Array, offset: number, length: number): number {
  const first = block[offset];
  if (first & 0x80) {
    // base-256, two's complement when the sign bit (0x40) is set too
    const negative = (first & 0x40) !== 0;
    let value = first & 0x3f;
    if (negative) value = value - 0x40;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i];
    return value;
  }
  let value = 0;
  let seen = false;
  for (let i = offset; i < offset + length; i++) {
    const c = block[i];
    if (c >= 0x30 && c <= 0x37) {
      value = value * 8 + (c - 0x30);
      seen = true;
    } else if (c === 0 || (c === 0x20 && seen)) break;
    else if (c !== 0x20) throw new SkiffError("invalid tar header: malformed number");
  }
  return value;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file", // contiguous file: a regular file everywhere that matters
  "1": "link",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

type PaxRecords = Map<string, Uint8Array>;

function parsePax(buf: Uint8Array): PaxRecords {
  const records: PaxRecords = new Map();
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break; // some writers pad with NULs
    let space = i;
    while (space < buf.length && buf[space] !== 0x20) space++;
    const length = parseInt(decoder.decode(buf.subarray(i, space)), 10);
    if (!(length > 0) || i + length > buf.length) throw new SkiffError("invalid tar: malformed pax header");
    const record = buf.subarray(space + 1, i + length - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new SkiffError("invalid tar: malformed pax record");
    records.set(decoder.decode(record.subarray(0, eq)), record.slice(eq + 1));
    i += length;
  }
  return records;
}

/**
 * Push parser. `onEntry` returns a handler for the entry's data, or undefined to skip it. Throws
 * SkiffError on a malformed archive; `finish()` throws if the stream ended inside an entry.
 */
export class TarReader {
  private header = new Uint8Array(512);
  private headerFill = 0;
  private remaining = 0;
  private padding = 0;
  private handler?: EntryHandler;
  /** Collects the body of a pax/GNU meta entry. */
  private meta?: { type: string; chunks: Uint8Array[] };
  private longName?: string;
  private longLink?: string;
  private pax?: PaxRecords;
  private globalPax: PaxRecords = new Map();
  private zeroBlocks = 0;
  private sawEntry = false;
  /** True once the end-of-archive marker (two zero blocks) was read. */
  ended = false;

  constructor(private readonly onEntry: (entry: TarEntry) => EntryHandler | undefined) {}

  push(chunk: Uint8Array): void {
    let p = 0;
    const len = chunk.length;
    while (p < len && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, len - p);
        const part = chunk.subarray(p, p + n);
        if (this.meta) this.meta.chunks.push(part.slice());
        else this.handler?.data(part);
        this.remaining -= n;
        p += n;
        if (this.remaining === 0) this.finishEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, len - p);
        this.padding -= n;
        p += n;
        continue;
      }
      const n = Math.min(512 - this.headerFill, len - p);
      this.header.set(chunk.subarray(p, p + n), this.headerFill);
      this.headerFill += n;
      p += n;
      if (this.headerFill === 512) {
        this.headerFill = 0;
        this.readHeader(this.header);
      }
    }
  }

  /** Call at end of input. A missing end marker is tolerated (GNU tar does too); a cut entry is not. */
  finish(): void {
    if (this.remaining > 0 || this.headerFill > 0 || this.meta) {
      throw new SkiffError("invalid tar: unexpected end of archive");
    }
    if (!this.sawEntry && !this.ended && this.zeroBlocks === 0) {
      throw new SkiffError("invalid tar: empty archive");
    }
  }

  private readHeader(b: Uint8Array): void {
    let allZero = true;
    for (let i = 0; i < 512; i++) {
      if (b[i] !== 0) {
        allZero = false;
        break;
      }
    }
    if (allZero) {
      if (++this.zeroBlocks >= 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    // The checksum treats its own field as spaces; old writers summed signed bytes.
    let unsigned = 0, signed = 0;
    for (let i = 0; i < 512; i++) {
      const v = i >= 148 && i < 156 ? 32 : b[i];
      unsigned += v;
      signed += v > 127 ? v - 256 : v;
    }
    let stored = -1;
    try {
      stored = parseNumber(b, 148, 8);
    } catch { /* garbage: reported below */ }
    if (stored !== unsigned && stored !== signed) {
      throw new SkiffError(
        this.sawEntry ? "invalid tar: bad header checksum" : "invalid tar: not a tar archive",
      );
    }
    this.sawEntry = true;
    const typeFlag = String.fromCharCode(b[156]);
    const headerSize = parseNumber(b, 124, 12);

    if (typeFlag === "L" || typeFlag === "K" || typeFlag === "x" || typeFlag === "g") {
      if (headerSize > 16 * 1024 * 1024) throw new SkiffError("invalid tar: oversized extended header");
      this.meta = { type: typeFlag, chunks: [] };
      this.remaining = headerSize;
      this.padding = (512 - (headerSize % 512)) % 512;
      if (headerSize === 0) this.finishEntry();
      return;
    }

    // POSIX ustar ("ustar\0") has a name prefix; GNU ("ustar  ") uses that area for other things.
    const posix = b[257] === 0x75 && b[262] === 0 && cString(b, 257, 5) === "ustar";
    const prefix = posix ? cString(b, 345, 155) : "";
    const pax = this.pax;
    const global = this.globalPax;
    const paxStr = (key: string): string | undefined => {
      const v = pax?.get(key) ?? global.get(key);
      return v === undefined ? undefined : decoder.decode(v);
    };
    // GNU tar's forms: sizes and ids plain decimal digits in range, times an optional minus and a
    // decimal fraction; "0.5", "1e3", "+1", " 1", "0x10" are malformed headers to it, and here
    const paxNum = (key: "size" | "uid" | "gid" | "mtime"): number | undefined => {
      const v = paxStr(key);
      if (v === undefined) return undefined;
      const form = key === "mtime" ? /^-?[0-9]+(\.[0-9]*)?$/ : /^[0-9]+$/;
      const n = Number(v);
      const max = key === "size" || key === "mtime" ? Number.MAX_SAFE_INTEGER : 2 ** 32 - 1;
      if (!form.test(v) || !(Math.abs(n) <= max)) throw new SkiffError(`invalid tar: bad pax ${key} "${v}"`);
      return n;
    };
    const name = paxStr("path") ?? this.longName ?? (prefix ? `${prefix}/` : "") + cString(b, 0, 100);
    let type = TYPES[typeFlag] ?? "unsupported";
    // old tars mark directories by a trailing slash on a regular-file entry
    if (type === "file" && typeFlag !== "7" && name.endsWith("/")) type = "dir";
    const size = paxNum("size") ?? headerSize;
    let xattrs: Map<string, Uint8Array> | undefined;
    for (const records of [global, pax]) {
      if (!records) continue;
      for (const [key, value] of records) {
        if (key.startsWith("SCHILY.xattr.")) (xattrs ??= new Map()).set(key.slice(13), value);
        else if (key.startsWith("GNU.sparse.")) type = "unsupported";
      }
    }
    const entry: TarEntry = {
      name,
      type,
      typeFlag,
      mode: parseNumber(b, 100, 8) & 0o7777,
      uid: paxNum("uid") ?? parseNumber(b, 108, 8),
      gid: paxNum("gid") ?? parseNumber(b, 116, 8),
      size,
      mtime: paxNum("mtime") ?? parseNumber(b, 136, 12),
      linkname: paxStr("linkpath") ?? this.longLink ?? cString(b, 157, 100),
      devmajor: type === "char" || type === "block" ? parseNumber(b, 329, 8) : 0,
      devminor: type === "char" || type === "block" ? parseNumber(b, 337, 8) : 0,
      xattrs,
    };
    this.longName = this.longLink = this.pax = undefined;
    // Only regular files carry data; for others the size field is ignored by readers (hardlinks
    // written by some tools have a size but no data).
    const dataSize = type === "file" || type === "unsupported" ? size : 0;
    this.remaining = dataSize;
    this.padding = (512 - (dataSize % 512)) % 512;
    this.handler = this.onEntry(entry);
    if (dataSize === 0) this.finishEntry();
  }

  private finishEntry(): void {
    if (this.meta) {
      const { type, chunks } = this.meta;
      this.meta = undefined;
      const buf = chunks.length === 1 ? chunks[0] : concat(chunks);
      if (type === "L") this.longName = cString(buf, 0, buf.length);
      else if (type === "K") this.longLink = cString(buf, 0, buf.length);
      else if (type === "x") this.pax = parsePax(buf);
      else for (const [k, v] of parsePax(buf)) this.globalPax.set(k, v);
      return;
    }
    const handler = this.handler;
    this.handler = undefined;
    handler?.end();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---- writer ----

export interface TarWriteEntry {
  name: string;
  type?: TarEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  data?: Uint8Array | string;
  xattrs?: Record<string, string | Uint8Array>;
  /** How to store a name longer than 100 bytes: a pax header (default) or a GNU L/K entry. */
  longNames?: "pax" | "gnu";
}

const TYPE_FLAGS: Record<TarEntryType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
  unsupported: "S",
};

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  block.set(bytes.subarray(0, length), offset);
}
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeString(block, offset, length - 1, value.toString(8).padStart(length - 1, "0"));
}

function headerBlock(
  name: string,
  typeFlag: string,
  size: number,
  e: Partial<TarWriteEntry>,
  linkname: string,
): Uint8Array {
  const b = new Uint8Array(512);
  writeString(b, 0, 100, name);
  writeOctal(b, 100, 8, e.mode ?? (e.type === "dir" ? 0o755 : 0o644));
  writeOctal(b, 108, 8, e.uid ?? 0);
  writeOctal(b, 116, 8, e.gid ?? 0);
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, Math.trunc(e.mtime ?? 0));
  b.fill(0x20, 148, 156);
  writeString(b, 156, 1, typeFlag);
  writeString(b, 157, 100, linkname);
  writeString(b, 257, 6, "ustar");
  writeString(b, 263, 2, "00");
  writeOctal(b, 329, 8, e.devmajor ?? 0);
  writeOctal(b, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  writeString(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const keyBytes = encoder.encode(key);
  const base = keyBytes.length + value.length + 3; // space, '=', newline
  let length = base + String(base).length;
  if (String(length).length !== String(base).length) length = base + String(length).length;
  return concat([encoder.encode(`${length} `), keyBytes, encoder.encode("="), value, encoder.encode("\n")]);
}

const padTo512 = (n: number) => (512 - (n % 512)) % 512;

/** Builds a tar archive in memory (tests, small archives such as a layer made by `import -c`). */
export function writeTar(
  entries: TarWriteEntry[],
  options: { endMarker?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const pushData = (data: Uint8Array) => {
    parts.push(data);
    const pad = padTo512(data.length);
    if (pad) parts.push(new Uint8Array(pad));
  };
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = typeof e.data === "string" ? encoder.encode(e.data) : e.data ?? new Uint8Array(0);
    const linkname = e.linkname ?? "";
    let name = e.name;
    let link = linkname;
    const paxParts: Uint8Array[] = [];
    const tooLong = (s: string) => encoder.encode(s).length > 100;
    if (e.longNames === "gnu") {
      if (tooLong(name)) {
        const body = encoder.encode(name + "\0");
        parts.push(headerBlock("././@LongLink", "L", body.length, {}, ""));
        pushData(body);
        name = name.slice(0, 100);
      }
      if (tooLong(link)) {
        const body = encoder.encode(link + "\0");
        parts.push(headerBlock("././@LongLink", "K", body.length, {}, ""));
        pushData(body);
        link = link.slice(0, 100);
      }
    } else {
      if (tooLong(name)) {
        paxParts.push(paxRecord("path", encoder.encode(name)));
        name = name.slice(0, 100);
      }
      if (tooLong(link)) {
        paxParts.push(paxRecord("linkpath", encoder.encode(link)));
        link = link.slice(0, 100);
      }
    }
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      paxParts.push(paxRecord(`SCHILY.xattr.${k}`, typeof v === "string" ? encoder.encode(v) : v));
    }
    if (paxParts.length) {
      const body = concat(paxParts);
      parts.push(headerBlock("PaxHeader", "x", body.length, {}, ""));
      pushData(body);
    }
    parts.push(headerBlock(name, TYPE_FLAGS[type], type === "file" ? data.length : 0, e, link));
    if (type === "file" && data.length) pushData(data);
  }
  if (options.endMarker !== false) parts.push(new Uint8Array(1024));
  return concat(parts);
}
