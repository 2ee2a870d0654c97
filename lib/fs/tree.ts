// The two tree walks over container content, both on directory fds (./at.ts): reading a tree into
// tar entries (export, commit, diff, cp out, save of a commit) and copying a tree into a directory
// (cp in and out of a stopped container, volume copy-up). A name swapped for a symlink, a device or
// a fifo meanwhile is never followed or opened: what is read is what the fd that was checked holds.
// A volume's copy-up reads either one directory (the container's overlay, for a record of an older
// skiff) or the same directory in each of an image's layers, merged here as overlayfs would.
// Sync but for the copy-up's turns, no node: built-ins (the init stage imports it).

import { SkiffError } from "../errors.ts";
import type { TarWriteEntry } from "../image/tar.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  cstr,
  fchmodAt2,
  fchmodFd,
  fchownAt,
  fchownFd,
  fgetxattrFd,
  fsetxattrFd,
  futimes,
  linkAt,
  makedev,
  mkdirAt,
  mknodAt,
  openAt,
  openAt2,
  readFd,
  RESOLVE,
  symlinkAt,
  unlinkAt,
  utimensAt,
  writeFd,
} from "../../ffi/libc.ts";
import {
  checkAt,
  closeFd,
  DT_CHR,
  DT_UNKNOWN,
  EEXIST,
  ELOOP,
  ENOENT,
  ENOSYS,
  ENOTDIR,
  EOPNOTSUPP,
  fstat,
  isOpaqueDir,
  OAT,
  readDirEntries,
  readDirNames,
  readFdFully,
  readLinkAt,
  reopenPinned,
  type Stat,
  statAt,
  tryOpenDirAt,
  TYPE_BITS,
} from "./at.ts";

/** A name to read or write: `name` in the directory `dir` ("" = the fd `dir` itself, e.g. O_PATH). */
export interface At {
  dir: number;
  name: string;
}

/** A file read through its checked fd: its stat, and for a directory an open fd (the caller closes it). */
export interface ReadNode {
  stat: Stat;
  /** regular file: its data, from the fd that was checked */
  data?: Uint8Array;
  /** symlink: its target */
  linkname?: string;
  /** directory: an O_RDONLY fd of it */
  dirFd?: number;
  /** regular file opened instead of read (readNode's `openFiles`): the caller closes it */
  fileFd?: number;
  /** regular file: the extended attributes a layer keeps (docker's: security.capability) */
  xattrs?: Record<string, Uint8Array>;
}

const capBuf = new Uint8Array(256);
/** A file's capabilities (security.capability): docker's layers keep that xattr and no other. */
function keptXattrs(fd: number): Record<string, Uint8Array> | undefined {
  const n = fgetxattrFd(fd, "security.capability", capBuf);
  return n > 0 ? { "security.capability": capBuf.slice(0, n) } : undefined;
}

const DOT = cstr(".");

/** Attempts before giving up on a name that keeps changing type under us. */
const RETRIES = 16;

/**
 * Reads one name without following it; null when it vanished. The name is pinned first (an O_PATH
 * fd, which opens nothing), and everything after reads that very inode: a swap of the name
 * meanwhile changes nothing. Directories come back open, and regular files too with `openFiles`
 * (else their data is read).
 */
export function readNode(at: At, openFiles = false): ReadNode | null {
  const pin = at.name === "" ? at.dir : openAt(at.dir, at.name, OAT.PATH | OAT.NOFOLLOW | OAT.CLOEXEC);
  if (pin === -ENOENT) return null;
  checkAt("openat", pin, at.name);
  try {
    const stat = fstat(pin);
    switch (stat.type) {
      case "dir":
        return {
          stat,
          dirFd: checkAt("openat", openAt(pin, DOT, OAT.RDONLY | OAT.DIRECTORY | OAT.CLOEXEC), at.name),
        };
      case "file": {
        const fd = reopenPinned(pin, at.name);
        const xattrs = keptXattrs(fd);
        if (openFiles) return { stat, fileFd: fd, ...(xattrs ? { xattrs } : {}) };
        try {
          return { stat, data: readFdFully(fd, stat.size), ...(xattrs ? { xattrs } : {}) };
        } finally {
          closeFd(fd);
        }
      }
      case "symlink":
        return { stat, linkname: readLinkAt(pin, "") };
      default:
        return { stat }; // devices, fifos, sockets: never opened
    }
  } finally {
    if (pin !== at.dir) closeFd(pin);
  }
}

/** The tar header fields of a stat. */
export function tarBase(stat: Stat) {
  return { mode: stat.perm, uid: stat.uid, gid: stat.gid, mtime: stat.mtime };
}

/**
 * One node as a tar entry; undefined for sockets. A regular file seen before (same inode, more
 * than one link) becomes a hard link to its first name.
 */
export function tarEntryOf(
  node: ReadNode,
  name: string,
  links: Map<string, string>,
): TarWriteEntry | undefined {
  const { stat } = node;
  const base = { ...tarBase(stat), name };
  switch (stat.type) {
    case "dir":
      return { ...base, name: `${name}/`, type: "dir" };
    case "symlink":
      return { ...base, type: "symlink", linkname: node.linkname };
    case "file": {
      if (stat.nlink > 1) {
        const first = links.get(stat.key);
        if (first) return { ...base, type: "link", linkname: first };
        links.set(stat.key, name);
      }
      return { ...base, type: "file", data: node.data, ...(node.xattrs ? { xattrs: node.xattrs } : {}) };
    }
    case "char":
    case "block":
      return { ...base, type: stat.type, devmajor: stat.rdevMajor, devminor: stat.rdevMinor };
    case "fifo":
      return { ...base, type: "fifo" };
    default:
      return undefined;
  }
}

/** Tar entries of the tree at `at` (names rooted at `name`, children in name order), links kept as links. */
export function* tarTree(at: At, name: string, links: Map<string, string>): Generator<TarWriteEntry> {
  const node = readNode(at);
  if (!node) return;
  try {
    const entry = tarEntryOf(node, name, links);
    if (entry) yield entry;
    if (node.dirFd === undefined) return;
    for (const child of readDirNames(node.dirFd).sort()) {
      yield* tarTree({ dir: node.dirFd, name: child }, `${name}/${child}`, links);
    }
  } finally {
    if (node.dirFd !== undefined) closeFd(node.dirFd);
  }
}

// ---- writing ----

/** Owner, mode and times to give a file we create. */
export interface Meta {
  uid: number;
  gid: number;
  perm: number;
  atime: number;
  mtime: number;
}

/** Thrown when a copy would replace a directory with a non-directory. */
export class OverwriteDirError extends Error {}

/** Metadata on an fd we created: chown first (it clears setuid bits), then mode, then times. */
export function setFdMeta(fd: number, meta: Meta): void {
  checkAt("fchown", fchownFd(fd, meta.uid, meta.gid));
  checkAt("fchmod", fchmodFd(fd, meta.perm));
  futimes(fd, meta.atime, meta.mtime);
}

/** Removes a non-directory at `at`; throws OverwriteDirError for a directory. */
function clearName(at: At, shown: string): void {
  const existing = statAt(at.dir, at.name);
  if (!existing) return;
  if (existing.type === "dir") {
    throw new OverwriteDirError(`cannot overwrite directory "${shown}" with non-directory`);
  }
  const r = unlinkAt(at.dir, at.name);
  if (r !== -ENOENT) checkAt("unlinkat", r, shown);
}

/**
 * A new regular file at `dest` (replacing a non-directory there), created O_EXCL|O_NOFOLLOW in the
 * directory fd: returns its O_WRONLY fd; set its metadata with setFdMeta once written.
 */
export function createFileAt(dest: At, shown: string): number {
  for (let attempt = 0;; attempt++) {
    clearName(dest, shown);
    const fd = openAt(
      dest.dir,
      dest.name,
      OAT.WRONLY | OAT.CREAT | OAT.EXCL | OAT.NOFOLLOW | OAT.CLOEXEC,
      0o600,
    );
    // someone made the name again between our unlink and create: try again, then give up
    if (fd === -EEXIST && attempt < RETRIES) continue;
    return checkAt("openat", fd, shown);
  }
}

/**
 * A symlink, device node or fifo at `dest` (replacing a non-directory there), with its metadata set
 * by name without following it: if the name is swapped meanwhile, the call changes whatever now
 * sits in this directory, never what a link points at.
 */
export function createSpecialAt(
  dest: At,
  shown: string,
  type: "symlink" | "char" | "block" | "fifo",
  meta: Meta,
  target: { linkname?: string; major?: number; minor?: number },
): void {
  for (let attempt = 0;; attempt++) {
    clearName(dest, shown);
    const r = type === "symlink"
      ? symlinkAt(target.linkname ?? "", dest.dir, dest.name)
      : mknodAt(dest.dir, dest.name, TYPE_BITS[type] | 0o600, makedev(target.major ?? 0, target.minor ?? 0));
    if (r === -EEXIST && attempt < RETRIES) continue;
    checkAt(type === "symlink" ? "symlinkat" : "mknodat", r, shown);
    break;
  }
  checkAt("fchownat", fchownAt(dest.dir, dest.name, meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW), shown);
  if (type !== "symlink") {
    const r = fchmodAt2(dest.dir, dest.name, meta.perm, AT_SYMLINK_NOFOLLOW);
    // before Linux 6.6 there is no chmod that cannot follow a link: the node keeps mode 0600
    if (r !== -ENOSYS && r !== -EOPNOTSUPP) checkAt("fchmodat2", r, shown);
  }
  checkAt("utimensat", utimensAt(dest.dir, dest.name, meta.atime, meta.mtime, AT_SYMLINK_NOFOLLOW), shown);
}

/** A hard link at `dest` to `from` (replacing a non-directory there); -errno on failure. */
export function linkFileAt(from: At, dest: At, shown: string): number {
  clearName(dest, shown);
  return linkAt(from.dir, from.name, dest.dir, dest.name, 0);
}

/** The directory at `dest`, made (mode 0700) when missing, replacing a non-directory: an O_RDONLY fd of it. */
export function openOrMakeDirAt(dest: At): number {
  for (let attempt = 0; attempt < RETRIES; attempt++) {
    const fd = tryOpenDirAt(dest.dir, dest.name);
    if (fd >= 0) return fd;
    if (fd === -ENOTDIR || fd === -ELOOP) {
      const r = unlinkAt(dest.dir, dest.name);
      if (r !== -ENOENT) checkAt("unlinkat", r, dest.name);
    } else if (fd !== -ENOENT) {
      checkAt("openat", fd, dest.name);
    }
    const made = mkdirAt(dest.dir, dest.name, 0o700);
    if (made !== -EEXIST) checkAt("mkdirat", made, dest.name);
  }
  throw new Error(`${dest.name}: keeps changing while it is written`);
}

/**
 * The directory `rel` below `top` exactly as a copy made it: beneath `top`, through no symlink at
 * all. -errno on failure (also before Linux 5.6: then callers copy instead of linking).
 */
export function openMadeDir(top: number, rel: string): number {
  if (rel === "") return tryOpenDirAt(top, "");
  return openAt2(
    top,
    rel,
    OAT.PATH | OAT.DIRECTORY | OAT.CLOEXEC,
    RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_XDEV,
  );
}

export interface CopyOptions {
  /** Keep the source's uid/gid (cp -a, volume copy-up); otherwise new entries belong to `owner`. */
  preserveOwner: boolean;
  owner?: { uid: number; gid: number };
  /** Leave out directories on another filesystem than the source directory (mounts below it). */
  oneFileSystem?: boolean;
}

interface CopyState {
  opts: CopyOptions;
  /** with oneFileSystem: "major:minor" of the source directory's filesystem */
  device?: string;
  /** the directory the copy's relative paths start from */
  top: number;
  /** inode key of a multiply linked source file -> its copy's path relative to `top` */
  links: Map<string, string>;
  buf: Uint8Array;
  /** directories open below the top (each holds fds and a few generator frames) */
  depth: number;
}

/**
 * How deep a copy goes: each level holds its generators' frames and a directory fd per layer, and
 * at ~1000 levels V8's stack ran out. A deeper tree fails the copy (a volume's: the create) with
 * one line.
 */
export const MAX_COPY_DEPTH = 512;

/**
 * Copies the tree at `src` to the name `dest` (its parent directory fd and a name): merges into an
 * existing directory, replaces other existing entries, never follows a symlink on either side.
 */
export function copyTreeAt(src: At, dest: At, opts: CopyOptions): void {
  const node = readNode(src, true);
  if (!node) throw Object.assign(new Error(`${src.name}: no such file or directory`), { errno: ENOENT });
  drain(
    copyNode(node, [], dest, "", {
      opts,
      top: dest.dir,
      links: new Map(),
      buf: new Uint8Array(1 << 18),
      depth: 0,
    }),
  );
}

/** Runs a copy to its end. */
function drain(steps: Generator<void>): void {
  for (const _ of steps) { /* one entry copied */ }
}

/** When the copies of this process last gave the event loop a turn (shared: one budget for all). */
let lastTurn = 0;
/** The longest a copy holds the thread between turns. */
const TURN_MS = 10;

/**
 * Copies what is inside a directory into the directory `destDir` (volume copy-up), giving the
 * event loop a turn at least every TURN_MS: a hostile image's 50,000 files under a VOLUME took an
 * unrelated `run -d` of the same supervisor from 131 ms to 3.2 s when copied in one go. The steps
 * are entries and 1 MiB of a file's data, and the clock is the process's, not the copy's: 400
 * volumes of 500 files each, or one 1 GiB file, held it 14 s and 2 s when counted per entry and per
 * volume. `srcDirs`: that directory's fd alone, or the same directory in each of an image's layers,
 * top-most first, merged as overlayfs merges them (mergedNames).
 */
export async function copyDirContentsAsync(
  srcDirs: number[],
  destDir: number,
  opts: CopyOptions,
): Promise<void> {
  for (const _ of copyDirSteps(srcDirs, destDir, opts)) {
    if (performance.now() - lastTurn >= TURN_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      lastTurn = performance.now();
    }
  }
}

/**
 * docker's copy-up into an empty volume (`volume`, a directory fd): what is inside the image's
 * directory (`srcDirs`, as copyDirContentsAsync takes them) with owners, modes and times, in turns
 * (copyDirContentsAsync); then the volume's root takes the directory's owner and mode, as docker's
 * does. Mounts below the directory are left out.
 */
export async function copyUpAsync(srcDirs: number[], volume: number): Promise<void> {
  await copyDirContentsAsync(srcDirs, volume, { preserveOwner: true, oneFileSystem: true });
  const dir = fstat(srcDirs[0]);
  checkAt("fchown", fchownFd(volume, dir.uid, dir.gid));
  checkAt("fchmod", fchmodFd(volume, dir.perm));
}

function* copyDirSteps(srcDirs: number[], destDir: number, opts: CopyOptions): Generator<void> {
  const device = opts.oneFileSystem ? deviceOf(fstat(srcDirs[0])) : undefined;
  const state = { opts, device, top: destDir, links: new Map(), buf: new Uint8Array(1 << 18), depth: 0 };
  yield* copyChildren(srcDirs, destDir, "", state);
}

/** A whiteout as overlayfs keeps it in a layer: a 0/0 character device. */
export const isWhiteoutStat = (stat: Stat) =>
  stat.type === "char" && stat.rdevMajor === 0 && stat.rdevMinor === 0;

/**
 * The names of a directory as overlayfs merges it from the same directory in several layers
 * (`dirFds`, top-most first): each from the top-most layer that has it (its index), a whiteout
 * there hiding it, an opaque directory hiding the layers below. Unsorted.
 */
export function mergedNames(dirFds: number[]): { name: string; layer: number }[] {
  const owner = new Map<string, number>();
  for (let i = 0; i < dirFds.length; i++) {
    for (const { name, dtype } of readDirEntries(dirFds[i])) {
      if (owner.has(name)) continue;
      // only a character device can be a whiteout: the others need no stat
      const stat = dtype === DT_CHR || dtype === DT_UNKNOWN ? statAt(dirFds[i], name) : undefined;
      if (stat !== null) owner.set(name, stat && isWhiteoutStat(stat) ? -1 : i);
    }
    if (i < dirFds.length - 1 && isOpaqueDir(dirFds[i])) break;
  }
  const names: { name: string; layer: number }[] = [];
  for (const [name, layer] of owner) if (layer >= 0) names.push({ name, layer });
  return names;
}

/**
 * The directory `name` in the layers `dirFds` (the same directory in each, top-most first) as
 * overlayfs merges it: its fd in each layer that contributes, for the caller to close, from the
 * top-most that has the name down to one that has something else there (a whiteout, a file) or
 * whose directory is opaque; none when the top-most is not a directory.
 */
export function mergedDirs(dirFds: number[], name: string): number[] {
  const dirs: number[] = [];
  try {
    for (const dirFd of dirFds) {
      const st = statAt(dirFd, name);
      if (!st) continue;
      const fd = st.type === "dir" ? tryOpenDirAt(dirFd, name) : -1;
      if (fd < 0) break;
      dirs.push(fd);
      if (isOpaqueDir(fd)) break;
    }
  } catch (e) {
    for (const fd of dirs) closeFd(fd);
    throw e;
  }
  return dirs;
}

/**
 * The directory `name` of the layers below `layer` that overlayfs merges into `top` (its fd in
 * `layer`), as mergedDirs gives them; none when `top` itself is opaque.
 */
export function dirsBelow(dirFds: number[], layer: number, name: string, top: number): number[] {
  if (layer === dirFds.length - 1 || isOpaqueDir(top)) return [];
  return mergedDirs(dirFds.slice(layer + 1), name);
}

/** Copies the merged children of `srcDirs` (one directory, or its layers) into `destDir`. */
function* copyChildren(srcDirs: number[], destDir: number, path: string, state: CopyState): Generator<void> {
  for (const { name, layer } of mergedNames(srcDirs)) {
    const node = readNode({ dir: srcDirs[layer], name }, true);
    if (!node) continue;
    let below: number[] = [];
    try {
      if (node.dirFd !== undefined) below = dirsBelow(srcDirs, layer, name, node.dirFd);
      yield* copyNode(node, below, { dir: destDir, name }, path, state);
    } finally {
      for (const fd of below) closeFd(fd);
    }
  }
}

function metaOf(stat: Stat, opts: CopyOptions): Meta {
  const [uid, gid] = opts.preserveOwner ? [stat.uid, stat.gid] : [opts.owner?.uid ?? 0, opts.owner?.gid ?? 0];
  return { uid, gid, perm: stat.perm, atime: stat.atime, mtime: stat.mtime };
}

const deviceOf = (stat: Stat) => stat.key.split(":", 2).join(":");

/**
 * Copies one node (a directory with all below it, merged with `below`: the same directory in the
 * layers under its own), yielding after each entry.
 */
function* copyNode(
  node: ReadNode,
  below: number[],
  dest: At,
  rel: string,
  state: CopyState,
): Generator<void> {
  try {
    // directories only: overlayfs may show a file's own layer device (a file of the same tree)
    if (state.device !== undefined && node.dirFd !== undefined && deviceOf(node.stat) !== state.device) {
      return;
    }
    yield* copyOpenNode(node, below, dest, rel ? `${rel}/${dest.name}` : dest.name, state);
    yield;
  } finally {
    if (node.fileFd !== undefined) closeFd(node.fileFd);
    if (node.dirFd !== undefined) closeFd(node.dirFd);
  }
}

function* copyOpenNode(
  node: ReadNode,
  below: number[],
  dest: At,
  path: string,
  state: CopyState,
): Generator<void> {
  const { stat } = node;
  const meta = metaOf(stat, state.opts);
  if (node.dirFd !== undefined) {
    if (state.depth >= MAX_COPY_DEPTH) {
      throw new SkiffError(`a tree deeper than ${MAX_COPY_DEPTH} directories, at ${path}: not copied`);
    }
    const dirFd = openOrMakeDirAt(dest);
    state.depth++;
    try {
      yield* copyChildren([node.dirFd, ...below], dirFd, path, state);
      setFdMeta(dirFd, meta);
    } finally {
      state.depth--;
      closeFd(dirFd);
    }
    return;
  }
  switch (stat.type) {
    case "file": {
      if (stat.nlink > 1) {
        const first = state.links.get(stat.key);
        if (first !== undefined && linkToFirst(state, first, dest, path)) return;
        state.links.set(stat.key, path);
      }
      const fd = createFileAt(dest, path);
      try {
        yield* copyData(node.fileFd!, fd, state.buf);
        setFdMeta(fd, meta);
        // the one xattr docker keeps (file capabilities); after the owner, whose change clears it
        for (const [name, value] of Object.entries(node.xattrs ?? {})) {
          const r = fsetxattrFd(fd, name, value as Uint8Array<ArrayBuffer>);
          if (r !== -EOPNOTSUPP) checkAt("fsetxattr", r, path);
        }
      } finally {
        closeFd(fd);
      }
      return;
    }
    case "symlink":
      return createSpecialAt(dest, path, "symlink", meta, { linkname: node.linkname });
    case "char":
    case "block":
    case "fifo":
      return createSpecialAt(dest, path, stat.type, meta, { major: stat.rdevMajor, minor: stat.rdevMinor });
    default:
      return; // sockets are not copied (docker skips them too)
  }
}

/** A hard link to the copy made first; false when that copy is gone (then the file is copied). */
function linkToFirst(state: CopyState, first: string, dest: At, path: string): boolean {
  const slash = first.lastIndexOf("/");
  const parent = openMadeDir(state.top, slash === -1 ? "" : first.slice(0, slash));
  if (parent < 0) return false;
  try {
    return linkFileAt({ dir: parent, name: first.slice(slash + 1) }, dest, path) === 0;
  } finally {
    closeFd(parent);
  }
}

/** A file's data, a step (a chance of a turn) every 1 MiB. */
function* copyData(from: number, to: number, buf: Uint8Array): Generator<void> {
  let sinceStep = 0;
  for (let n; (n = checkAt("read", readFd(from, buf))) > 0;) {
    for (let off = 0; off < n;) off += checkAt("write", writeFd(to, buf.subarray(off), n - off));
    if ((sinceStep += n) >= 1 << 20) {
      sinceStep = 0;
      yield;
    }
  }
}
