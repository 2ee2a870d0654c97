// sha256 for the build's cache keys, and the per-state-root cache of COPY sources' content hashes.
// WebCrypto, not node:crypto: an unchanged rebuild never loads Deno's Node layer (~15 ms of CPU).
//
// The file hash cache (<root>/build-cache/files.json) is git's index idea: a file whose device,
// inode, size, mtime and ctime (both to the nanosecond) are those recorded when it was hashed has
// the recorded content, so an unchanged rebuild does not read a 5 MB COPY source again. ctime moves
// on every write and metadata change and cannot be set from userspace, so a file rewritten with
// its old size and mtime put back, or a new file on a reused inode, never matches an old record.
// A file changed within the clock tick of its hashing could keep its stamps ("racily clean" in
// git): such files are hashed but not recorded. The cache only ever saves reads: records are
// checked when loaded, a bad one is dropped and reported, and a miss just hashes the file.

import { join } from "../path.ts";
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, statxAt } from "../../ffi/libc.ts";
import { checkAt } from "../fs/at.ts";
import { exists, writeFileAtomic } from "../state/fsutil.ts";

const hex = (bytes: ArrayBuffer) =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

/** The sha256 of `data`, as 64 hex digits. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** What identifies a file's content without reading it: `key` names the inode, `stamp` its state. */
export interface FileIdentity {
  /** "devmajor:devminor:ino" */
  key: string;
  /** "size:mtime_s.mtime_ns:ctime_s.ctime_ns" */
  stamp: string;
  /** the later of mtime and ctime, in ms (the racy-clean check) */
  changedMs: number;
}

const statBuf = new Uint8Array(256);
const EMPTY = new Uint8Array(1);

/** The identity of the file open at `fd` (statx of the fd itself). */
export function fileIdentity(fd: number): FileIdentity {
  checkAt("statx", statxAt(fd, EMPTY, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, statBuf));
  const v = new DataView(statBuf.buffer);
  const time = (off: number) => ({ s: v.getBigInt64(off, true), ns: v.getUint32(off + 8, true) });
  const m = time(112), c = time(96);
  return {
    key: `${v.getUint32(136, true)}:${v.getUint32(140, true)}:${v.getBigUint64(32, true)}`,
    stamp: `${v.getBigUint64(40, true)}:${m.s}.${m.ns}:${c.s}.${c.ns}`,
    changedMs: Math.max(Number(m.s) * 1000 + m.ns / 1e6, Number(c.s) * 1000 + c.ns / 1e6),
  };
}

interface HashRecord {
  stamp: string;
  sha256: string;
}

const STAMP_RE = /^\d+:-?\d+\.\d{1,9}:-?\d+\.\d{1,9}$/;
const KEY_RE = /^\d+:\d+:\d+$/;
const SHA_RE = /^[0-9a-f]{64}$/;
/** Records kept (the least recently used go first): ~130 bytes each. */
const MAX_RECORDS = 20000;
/** A file changed this recently may change again without its stamps moving (coarse clock ticks). */
const RACY_MS = 2000;

export class FileHashCache {
  private records = new Map<string, HashRecord>();
  private dirty = false;
  /** what was wrong with the file as read (empty: nothing) */
  readonly problems: string[] = [];
  private readonly path: string;
  private readonly started = Date.now();

  constructor(private readonly dir: string) {
    this.path = join(dir, "files.json");
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) this.problems.push(`${this.path}: ${(e as Error).message}`);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.problems.push(`${this.path}: not JSON; ignored`);
      this.dirty = true;
      return;
    }
    const files = (parsed as { files?: unknown })?.files;
    if ((parsed as { version?: unknown })?.version !== 1 || typeof files !== "object" || files === null) {
      this.problems.push(`${this.path}: not a version 1 file hash cache; ignored`);
      this.dirty = true;
      return;
    }
    let bad = 0;
    for (const [key, r] of Object.entries(files as Record<string, unknown>)) {
      const rec = r as Partial<HashRecord> | null;
      if (
        KEY_RE.test(key) && typeof rec?.stamp === "string" && STAMP_RE.test(rec.stamp) &&
        typeof rec.sha256 === "string" && SHA_RE.test(rec.sha256)
      ) {
        this.records.set(key, { stamp: rec.stamp, sha256: rec.sha256 });
      } else bad++;
    }
    if (bad) {
      this.problems.push(`${this.path}: ${bad} bad record${bad > 1 ? "s" : ""} ignored`);
      this.dirty = true;
    }
  }

  /** The recorded content hash of the file with this identity, if its stamps are unchanged. */
  get(id: FileIdentity): string | undefined {
    const r = this.records.get(id.key);
    return r && r.stamp === id.stamp ? r.sha256 : undefined;
  }

  /** Records a file's content hash, unless the file changed too recently to be trusted later. */
  set(id: FileIdentity, sha256: string): void {
    if (id.changedMs >= this.started - RACY_MS) return;
    const r = this.records.get(id.key);
    if (r?.stamp === id.stamp && r.sha256 === sha256) return;
    this.records.delete(id.key);
    this.records.set(id.key, { stamp: id.stamp, sha256 });
    this.dirty = true;
  }

  /** Writes the records back when they changed (not synced: a lost write costs a re-hash). */
  save(): void {
    if (!this.dirty) return;
    while (this.records.size > MAX_RECORDS) this.records.delete(this.records.keys().next().value!);
    if (!exists(this.dir)) Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(
      this.path,
      JSON.stringify({ version: 1, files: Object.fromEntries(this.records) }),
      0o600,
      false,
    );
    this.dirty = false;
  }
}
