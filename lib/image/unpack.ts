// Unpacks one layer tar into a fresh directory, safely: no entry may write outside it.
//
// The directory is private to this unpack (a new temp dir), so an in-memory map of what this layer
// has created there is the complete truth about it: every parent component of every entry is looked
// up in that map, and an entry whose parent is a symlink (or not a directory) is refused. New files
// are created with O_EXCL, which never follows a symlink. That makes an lstat per path component
// unnecessary while giving the same guarantee.
//
// All filesystem work is synchronous (fewer round trips, and it keeps the data in order); only the
// reading and gunzip of the input are async. The one exception: once a layer has shown many files,
// whole small files are created by worker threads (file_pool.ts). A file job's parent is a
// directory in the map like any other, and every step that could change what a pending job's path
// means (removing or replacing an entry, hardlinking to a pending file, re-applying a directory's
// metadata, the final directory times) first waits for the jobs in flight.

import { SkiffError } from "../errors.ts";
import {
  chmod,
  close,
  fchmod,
  fchown,
  futimes,
  lchown,
  lsetxattr,
  lutimes,
  makedev,
  mkfifo,
  mknod,
  O,
  open,
  S_IFBLK,
  S_IFCHR,
  write,
} from "../../ffi/libc.ts";
import { Sha256 } from "./digest.ts";
import { applyXattrs } from "./file_job.ts";
import { FileJobGroup, fileWorkersWanted, SMALL_FILE } from "./file_pool.ts";
import { type EntryHandler, type TarEntry, TarReader } from "./tar.ts";
import { type ByteSource, openDecompressed } from "./stream.ts";

type Kind = "dir" | "file" | "symlink" | "other";

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
const encoder = new TextEncoder();
/** Regular files a layer must show before worker threads are started for it (small layers never need them). */
const PARALLEL_AFTER = 48;

/**
 * The process umask, read without changing it (/proc/self/status): setting it, even briefly, would
 * race with files other threads create. 0o022 when it cannot be read.
 */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return parseInt(m[1], 8);
  } catch { /* no procfs */ }
  return 0o022;
}

function unsafe(name: string, reason: string): SkiffError {
  return new SkiffError(`refusing to unpack layer entry "${name}": ${reason}`);
}

/** "./a//b/" → "a/b"; refuses absolute paths (but "/"), ".." and NUL bytes. "" is the layer root. */
export function cleanEntryPath(raw: string, entryName = raw, what = "path"): string {
  if (raw.includes("\0")) throw unsafe(entryName, `${what} contains a NUL byte`);
  // "/" alone is the layer root (docker save writes it so); any other absolute name is refused
  if (raw.startsWith("/") && !/^\/+\.?\/*$/.test(raw)) {
    throw unsafe(entryName, `absolute ${what} "${raw}" points outside the layer`);
  }
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw unsafe(entryName, `${what} "${raw}" contains ".." and could escape the layer`);
    parts.push(part);
  }
  return parts.join("/");
}

/** Writes the entries of one layer into `dir` (which must exist and be empty). */
export class LayerWriter {
  private readonly kinds = new Map<string, Kind>([["", "dir"]]);
  /** Directories with the setgid bit: files created inside take the directory's group. */
  private readonly setgidDirs = new Set<string>();
  /** New files come out owned by root:root (unless in a setgid dir), so 0:0 entries need no chown. */
  private readonly createsAsRoot = Deno.uid() === 0 && Deno.gid() === 0;
  /** open() applies it: a file needs chmod only when the umask took away some of its bits. */
  private readonly umask = currentUmask();
  private readonly dirTimes = new Map<string, number>();
  /** docker's layer size: bytes of regular files (hardlinks once) and symlink targets. */
  size = 0;
  private filesSeen = 0;
  private jobs: FileJobGroup | undefined;
  /** Files handed to the workers since the last drain. */
  private readonly pendingFiles = new Set<string>();

  /** `parallel`: create small files on worker threads once the layer shows many of them. */
  constructor(readonly dir: string, private readonly options: { parallel?: boolean } = {}) {}

  /** Waits for the files in flight on the workers; throws the first failure among them. */
  private settle(): void {
    if (this.jobs?.pending) this.jobs.drain();
    this.pendingFiles.clear();
  }

  private abs(rel: string): string {
    return rel === "" ? this.dir : `${this.dir}/${rel}`;
  }

  /** Makes sure every parent of `rel` is a real directory created by this layer. */
  private ensureParents(rel: string, entryName: string): void {
    let slash = rel.indexOf("/");
    while (slash !== -1) {
      const parent = rel.slice(0, slash);
      const kind = this.kinds.get(parent);
      if (kind === undefined) {
        // a directory the archive implies without an entry of its own: 0755, whatever the umask
        Deno.mkdirSync(this.abs(parent), { mode: 0o755 });
        if (this.umask & 0o755) chmod(this.abs(parent), 0o755);
        this.kinds.set(parent, "dir");
      } else if (kind === "symlink") {
        throw unsafe(entryName, `its parent "${parent}" is a symlink in this layer`);
      } else if (kind !== "dir") {
        throw unsafe(entryName, `its parent "${parent}" is not a directory`);
      }
      slash = rel.indexOf("/", slash + 1);
    }
  }

  /** Removes what this layer put at `rel` before (a later entry replaces an earlier one). */
  private removeExisting(rel: string): void {
    const kind = this.kinds.get(rel);
    if (kind === undefined) return;
    this.settle();
    Deno.removeSync(this.abs(rel), { recursive: kind === "dir" });
    this.kinds.delete(rel);
    this.dirTimes.delete(rel);
    this.setgidDirs.delete(rel);
    if (kind === "dir") {
      const prefix = `${rel}/`;
      for (const key of [...this.kinds.keys()]) {
        if (key.startsWith(prefix)) {
          this.kinds.delete(key);
          this.dirTimes.delete(key);
          this.setgidDirs.delete(key);
        }
      }
    }
  }

  /** Ownership, then mode (chown clears setuid/setgid, so chmod must come after), xattrs, mtime. */
  private applyMetadata(rel: string, e: TarEntry, kind: Kind): void {
    const path = this.abs(rel);
    lchown(path, e.uid, e.gid);
    if (kind !== "symlink") chmod(path, e.mode);
    applyXattrs(path, e.xattrs);
    if (kind === "dir") this.dirTimes.set(rel, e.mtime);
    else lutimes(path, e.mtime, e.mtime);
  }

  /** A regular file: written and finished through its fd (no path walk per call; see bench/unpack.ts). */
  private createFile(rel: string, e: TarEntry): EntryHandler {
    const path = this.abs(rel);
    // skipping needless fchown/fchmod calls saves two syscalls on most files of a layer
    const slash = rel.lastIndexOf("/");
    const needsChown = !this.createsAsRoot || e.uid !== 0 || e.gid !== 0 ||
      this.setgidDirs.has(slash === -1 ? "" : rel.slice(0, slash));
    const needsChmod = (e.mode & this.umask) !== 0 || (e.mode & 0o7000) !== 0 || needsChown;
    this.kinds.set(rel, "file");
    this.size += e.size;
    if (this.options.parallel && ++this.filesSeen === PARALLEL_AFTER) this.jobs = new FileJobGroup();
    if (this.jobs?.available && e.size <= SMALL_FILE) return this.queueFile(rel, e, needsChown, needsChmod);
    // O_EXCL|O_NOFOLLOW: fails rather than follow or reuse anything already at the path
    const fd = open(path, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, e.mode & 0o777);
    let closed = false;
    const closeOnce = () => {
      if (!closed) {
        closed = true;
        close(fd);
      }
    };
    return {
      data: (chunk) => {
        try {
          let off = 0;
          while (off < chunk.length) {
            off += write(fd, (off === 0 ? chunk : chunk.subarray(off)) as Uint8Array<ArrayBuffer>);
          }
        } catch (err) {
          closeOnce();
          throw new SkiffError(`failed to unpack layer entry "${e.name}": ${(err as Error).message}`);
        }
      },
      end: () => {
        try {
          if (needsChown) fchown(fd, e.uid, e.gid);
          if (needsChmod) fchmod(fd, e.mode); // after chown, which clears setuid/setgid
          applyXattrs(path, e.xattrs);
          futimes(fd, e.mtime, e.mtime);
        } catch (err) {
          throw new SkiffError(`failed to unpack layer entry "${e.name}": ${(err as Error).message}`);
        } finally {
          closeOnce();
        }
      },
    };
  }

  /** A small file: its bytes are collected, then the whole file goes to a worker thread. */
  private queueFile(rel: string, e: TarEntry, chown: boolean, chmod: boolean): EntryHandler {
    const data = new Uint8Array(e.size);
    let filled = 0;
    return {
      data: (chunk) => {
        if (filled + chunk.length > data.length) {
          throw new SkiffError(`failed to unpack layer entry "${e.name}": more data than its size`);
        }
        data.set(chunk, filled);
        filled += chunk.length;
      },
      end: () => {
        this.jobs!.submit({
          path: this.abs(rel),
          name: e.name,
          data,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          chown,
          chmod,
          mtime: e.mtime,
          xattrs: e.xattrs ? [...e.xattrs] : undefined,
        });
        this.pendingFiles.add(rel);
      },
    };
  }

  /** Handles one tar entry; returns a data sink for regular files. */
  entry(e: TarEntry): EntryHandler | undefined {
    try {
      return this.entryUnchecked(e);
    } catch (err) {
      if (err instanceof SkiffError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new SkiffError(`failed to unpack layer entry "${e.name}": ${detail}`);
    }
  }

  private entryUnchecked(e: TarEntry): EntryHandler | undefined {
    const rel = cleanEntryPath(e.name);
    if (rel === "") {
      // The archive's "./" entry: its mode/owner are those of whatever directory it was made from
      // (often a 0700 temp dir); like docker, keep the layer root as it is.
      if (e.type !== "dir") throw unsafe(e.name, "the layer root must be a directory");
      return undefined;
    }
    this.ensureParents(rel, e.name);
    const slash = rel.lastIndexOf("/");
    const base = rel.slice(slash + 1);
    const parentRel = slash === -1 ? "" : rel.slice(0, slash);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (base === OPAQUE_MARKER) {
        lsetxattr(this.abs(parentRel), "trusted.overlay.opaque", encoder.encode("y"));
        return undefined;
      }
      if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return undefined; // aufs metadata
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === "" || hidden === "." || hidden === "..") throw unsafe(e.name, "invalid whiteout name");
      const target = parentRel === "" ? hidden : `${parentRel}/${hidden}`;
      this.removeExisting(target);
      // overlayfs whiteout: a character device 0/0 with the hidden file's name
      mknod(this.abs(target), S_IFCHR, 0n);
      this.kinds.set(target, "other");
      lchown(this.abs(target), e.uid, e.gid);
      return undefined;
    }

    switch (e.type) {
      case "dir": {
        if (this.kinds.get(rel) !== "dir") {
          this.removeExisting(rel);
          Deno.mkdirSync(this.abs(rel), { mode: 0o755 });
          this.kinds.set(rel, "dir");
        } else {
          this.settle(); // new owner or setgid bit: files still being made inside must not race it
        }
        this.applyMetadata(rel, e, "dir");
        if (e.mode & 0o2000) this.setgidDirs.add(rel);
        else this.setgidDirs.delete(rel);
        return undefined;
      }
      case "file": {
        this.removeExisting(rel);
        return this.createFile(rel, e);
      }
      case "link": {
        const targetRel = cleanEntryPath(e.linkname, e.name, "hardlink target");
        const targetKind = this.kinds.get(targetRel);
        if (targetKind === undefined) {
          throw unsafe(e.name, `hardlink target "${e.linkname}" is not in this layer`);
        }
        if (targetKind === "dir") throw unsafe(e.name, `hardlink target "${e.linkname}" is a directory`);
        if (targetRel === rel) throw unsafe(e.name, "hardlink to itself");
        if (this.pendingFiles.has(targetRel)) this.settle();
        this.ensureParents(targetRel, e.name);
        this.removeExisting(rel);
        Deno.linkSync(this.abs(targetRel), this.abs(rel));
        this.kinds.set(rel, targetKind);
        return undefined;
      }
      case "symlink": {
        if (e.linkname.includes("\0")) throw unsafe(e.name, "symlink target contains a NUL byte");
        this.removeExisting(rel);
        Deno.symlinkSync(e.linkname, this.abs(rel));
        this.kinds.set(rel, "symlink");
        // docker's layer size counts a symlink's own size, the length of its target
        this.size += encoder.encode(e.linkname).length;
        this.applyMetadata(rel, e, "symlink");
        return undefined;
      }
      case "char":
      case "block": {
        this.removeExisting(rel);
        const type = e.type === "char" ? S_IFCHR : S_IFBLK;
        mknod(this.abs(rel), type | e.mode, makedev(e.devmajor, e.devminor));
        this.kinds.set(rel, "other");
        this.applyMetadata(rel, e, "other");
        return undefined;
      }
      case "fifo": {
        this.removeExisting(rel);
        mkfifo(this.abs(rel), e.mode);
        this.kinds.set(rel, "other");
        this.applyMetadata(rel, e, "other");
        return undefined;
      }
      default:
        throw new SkiffError(`unsupported tar entry type '${e.typeFlag}' for layer entry "${e.name}"`);
    }
  }

  /** Directory mtimes last: creating entries inside a directory changes its mtime. */
  finish(): void {
    this.settle();
    for (const [rel, mtime] of this.dirTimes) lutimes(this.abs(rel), mtime, mtime);
  }

  /** Hands batched files to the workers now. */
  flush(): void {
    this.jobs?.flush();
  }

  /** Waits for any files still in flight and frees the workers; call on every path, errors too. */
  close(): void {
    this.jobs?.close();
  }
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** sha256 and size of the stream as given (compressed or not), when asked for. */
  blobDigest?: string;
  blobSize?: number;
  compression: "gzip" | "none";
  /** Bytes of regular file data. */
  size: number;
}

/**
 * Reads a layer (gzip or plain tar) and writes its files into `dir`, hashing the uncompressed
 * stream (the diffID) on the way through, and the raw stream too when `hashBlob` is set.
 */
export async function unpackLayer(
  source: ByteSource,
  dir: string,
  options: { hashBlob?: boolean } = {},
): Promise<UnpackResult> {
  const input = await openDecompressed(source, { hashRaw: options.hashBlob });
  // a file or stdin is gunzipped and hashed on a reader thread: that and this one are busy already
  const writer = new LayerWriter(dir, { parallel: fileWorkersWanted(input.plainDigest ? 2 : 1) });
  const tar = new TarReader((entry) => writer.entry(entry));
  const diffHash = input.plainDigest ? undefined : new Sha256();
  try {
    for await (const chunk of input.plain) {
      diffHash?.update(chunk);
      // keep reading after the end marker: the diffID covers the whole stream, padding included
      if (!tar.ended) tar.push(chunk);
      writer.flush(); // the workers get what this chunk held before we wait for the next
    }
    tar.finish();
    writer.finish();
  } finally {
    // no worker may still be writing into `dir` when the caller removes or renames it
    writer.close();
  }
  return {
    diffId: diffHash ? diffHash.digest() : input.plainDigest!(),
    ...(input.rawHash ? { blobDigest: input.rawHash.digest(), blobSize: input.rawHash.size } : {}),
    compression: input.compression,
    size: writer.size,
  };
}
