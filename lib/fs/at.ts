// File access relative to directory fds, for everything below a container root, an overlay layer or
// a volume: a process in the container may swap any name there for a symlink at any moment, so a
// name is only ever looked up in a directory fd we hold, with O_NOFOLLOW, or resolved by openat2
// with RESOLVE_IN_ROOT (symlinks re-rooted, never above the root), and a file's data and metadata
// come from the fd that was checked, never from its path again.
//
// Sync FFI only: callers run after unshare/setns (platform notes), and the init stage imports this
// for volume copy-up (no npm, no node: built-ins here).

import { SysError } from "../../ffi/errors.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  checkAt,
  closeFd,
  fgetxattrFd,
  fstatfsType,
  getdents64,
  OAT,
  openAt,
  openAt2,
  readFd,
  readlinkAt,
  RESOLVE,
  rewindFd,
  statxAt,
} from "../../ffi/libc.ts";

export { checkAt, closeFd, OAT };

export const ENOENT = 2,
  EAGAIN = 11,
  EEXIST = 17,
  ENOTDIR = 20,
  EISDIR = 21,
  EINVAL = 22,
  ELOOP = 40,
  ENOSYS = 38,
  EXDEV = 18,
  ENODATA = 61,
  EOPNOTSUPP = 95,
  ENOTEMPTY = 39;

export type FileType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";
const TYPES: Record<number, FileType> = {
  0o100000: "file",
  0o040000: "dir",
  0o120000: "symlink",
  0o020000: "char",
  0o060000: "block",
  0o010000: "fifo",
  0o140000: "socket",
};
export const TYPE_BITS: Record<FileType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** What statx says about one file (times in whole seconds, as tar keeps them). */
export interface Stat {
  type: FileType;
  /** permission bits with setuid/setgid/sticky */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** "devmajor:devminor:ino": the same file seen twice */
  key: string;
  rdevMajor: number;
  rdevMinor: number;
  atime: number;
  mtime: number;
}

const statBuf = new Uint8Array(256);
const EMPTY = new Uint8Array(1);
const statView = new DataView(statBuf.buffer);

function parseStatx(): Stat {
  const v = statView;
  const mode = v.getUint16(28, true);
  return {
    type: TYPES[mode & 0o170000] ?? "socket",
    perm: mode & 0o7777,
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    size: Number(v.getBigUint64(40, true)),
    nlink: v.getUint32(16, true),
    key: `${v.getUint32(136, true)}:${v.getUint32(140, true)}:${v.getBigUint64(32, true)}`,
    rdevMajor: v.getUint32(128, true),
    rdevMinor: v.getUint32(132, true),
    atime: Number(v.getBigInt64(64, true)),
    mtime: Number(v.getBigInt64(112, true)),
  };
}

/** lstat of `name` in `dirFd` ("" = the fd itself); null when it is missing. */
export function statAt(dirFd: number, name: string): Stat | null {
  const r = statxAt(dirFd, name, AT_SYMLINK_NOFOLLOW | (name === "" ? AT_EMPTY_PATH : 0), statBuf);
  if (r === -ENOENT || r === -ENOTDIR) return null;
  checkAt("statx", r, name);
  return parseStatx();
}

/** stat of a host path, following symlinks (and /proc's magic links); null when it is missing. */
export function statPath(path: string): Stat | null {
  const r = statxAt(AT_FDCWD, path, 0, statBuf);
  if (r === -ENOENT || r === -ENOTDIR) return null;
  checkAt("statx", r, path);
  return parseStatx();
}

/** fstat of an open fd (whatever it was opened as, O_PATH included). */
export function fstat(fd: number): Stat {
  checkAt("statx", statxAt(fd, EMPTY, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, statBuf));
  return parseStatx();
}

/** Opens a directory skiff itself owns (a state path, a volume's host path): a plain host lookup. */
export function openHostDir(path: string): number {
  return checkAt("open", openAt(AT_FDCWD, path, OAT.RDONLY | OAT.DIRECTORY | OAT.CLOEXEC), path);
}

/** The directory `name` in `dirFd` ("" = the fd itself), never through a symlink; -errno on failure. */
export function tryOpenDirAt(dirFd: number, name: string): number {
  return openAt(dirFd, name === "" ? "." : name, OAT.RDONLY | OAT.DIRECTORY | OAT.NOFOLLOW | OAT.CLOEXEC);
}
let openat2Missing = false;
const OPENAT2_RETRIES = 32;
const IN_ROOT = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS;

/**
 * Opens `path` as if `rootFd` were "/": symlinks (absolute ones too) and ".." never lead above it,
 * /proc magic links are refused. O_NOFOLLOW in `flags` keeps a final symlink as the link itself.
 * Returns -errno on failure. openat2 where the kernel has it (5.6+), else the same walk in
 * userspace, one O_NOFOLLOW openat per component.
 */
export function tryOpenInRoot(rootFd: number, path: string, flags: number, mode = 0): number {
  const rel = path.split("/").filter((p) => p !== "" && p !== ".").join("/") || ".";
  if (!openat2Missing) {
    // EAGAIN: a rename or mount anywhere on the host raced a ".." step (the kernel's seqlock check);
    // retry, and past that take the walk below, which is as safe and needs no seqlock
    for (let attempt = 0; attempt < OPENAT2_RETRIES; attempt++) {
      const fd = openAt2(rootFd, rel, flags | OAT.CLOEXEC, IN_ROOT, mode);
      if (fd === -ENOSYS) {
        openat2Missing = true;
        break;
      }
      if (fd !== -EAGAIN) return fd;
    }
  }
  return walkInRoot(rootFd, rel, flags | OAT.CLOEXEC, mode);
}
/** tryOpenInRoot's walk for kernels without openat2, on its own (tests compare it with openat2). */
export const tryOpenInRootWithoutOpenat2 = (rootFd: number, path: string, flags: number, mode = 0) =>
  walkInRoot(
    rootFd,
    path.split("/").filter((p) => p !== "" && p !== ".").join("/") || ".",
    flags | OAT.CLOEXEC,
    mode,
  );
export function openInRoot(rootFd: number, path: string, flags: number, mode = 0): number {
  return checkAt("openat2", tryOpenInRoot(rootFd, path, flags, mode), path);
}

/** RESOLVE_IN_ROOT without openat2: a stack of directory fds, symlinks read and re-rooted. */
function walkInRoot(rootFd: number, rel: string, flags: number, mode: number): number {
  const stack: number[] = [];
  const top = () => stack.at(-1) ?? rootFd;
  const pending = rel.split("/").filter((p) => p !== "" && p !== ".");
  let links = 0;
  try {
    if (pending.length === 0) return openAt(rootFd, ".", flags, mode);
    while (pending.length) {
      const part = pending.shift()!;
      if (part === "..") {
        const fd = stack.pop();
        if (fd !== undefined) closeFd(fd);
        if (pending.length === 0) return openAt(top(), ".", flags, mode);
        continue;
      }
      const last = pending.length === 0;
      const st = statAt(top(), part);
      if (st?.type === "symlink" && !(last && (flags & OAT.NOFOLLOW))) {
        if (++links > 40) return -ELOOP;
        const target = readLinkAt(top(), part);
        if (target.startsWith("/")) { while (stack.length) closeFd(stack.pop()!); }
        pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
        if (pending.length === 0) return openAt(top(), ".", flags, mode);
        continue;
      }
      if (last) return openAt(top(), part, flags | OAT.NOFOLLOW, mode);
      const fd = tryOpenDirAt(top(), part);
      if (fd < 0) return fd;
      stack.push(fd);
    }
    return -ENOENT;
  } finally {
    for (const fd of stack) closeFd(fd);
  }
}

/** Names in an open directory (getdents64, from its start), without "." and "..". */
export function readDirNames(dirFd: number): string[] {
  return readDirEntries(dirFd).map((e) => e.name);
}

export const DT_UNKNOWN = 0, DT_CHR = 2;
/** Names and d_type (DT_*; DT_UNKNOWN where the filesystem does not say) of an open directory. */
export function readDirEntries(dirFd: number): { name: string; dtype: number }[] {
  checkAt("lseek", rewindFd(dirFd));
  const names: { name: string; dtype: number }[] = [];
  const buf = new Uint8Array(32768);
  const view = new DataView(buf.buffer);
  while (true) {
    const n = checkAt("getdents64", getdents64(dirFd, buf));
    if (n === 0) return names;
    for (let off = 0; off < n;) {
      const reclen = view.getUint16(off + 16, true);
      const start = off + 19;
      const end = buf.indexOf(0, start);
      const name = decoder.decode(buf.subarray(start, end));
      if (name !== "." && name !== "..") names.push({ name, dtype: buf[off + 18] });
      off += reclen;
    }
  }
}

const decoder = new TextDecoder();
const linkBuf = new Uint8Array(4097);
/** The target of the symlink `name` in `dirFd` ("" = an O_PATH fd of the link). Throws EINVAL if not a link. */
export function readLinkAt(dirFd: number, name: string): string {
  const n = checkAt("readlinkat", readlinkAt(dirFd, name, linkBuf), name);
  return decoder.decode(linkBuf.subarray(0, n));
}

/** Reads up to `size` bytes from the fd (less if the file shrank meanwhile). */
export function readFdFully(fd: number, size: number): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = checkAt("read", readFd(fd, data.subarray(off), size - off));
    if (n === 0) break;
    off += n;
  }
  return off === size ? data : data.slice(0, off);
}

const xattrBuf = new Uint8Array(8);
/** overlayfs marks a directory that hides everything below it with trusted.overlay.opaque=y. */
export function isOpaqueDir(dirFd: number): boolean {
  const n = fgetxattrFd(dirFd, "trusted.overlay.opaque", xattrBuf);
  return n === 1 && xattrBuf[0] === 0x79; /* "y" */
}

const PROC_SUPER_MAGIC = 0x9fa0;
let procFdDir: number | undefined;

/**
 * Opens /proc/self/fd while /proc is still the host's: reopening a checked O_PATH fd goes through
 * it. Call before joining a container's mount namespace (its /proc does not show this process).
 */
export function prepareReopen(): void {
  if (procFdDir !== undefined) return;
  const fd = checkAt("open", openAt(AT_FDCWD, "/proc/self/fd", OAT.PATH | OAT.DIRECTORY | OAT.CLOEXEC));
  if (fstatfsType(fd) !== PROC_SUPER_MAGIC) {
    closeFd(fd);
    throw new Error("/proc is not procfs");
  }
  procFdDir = fd;
}

/** Closes the /proc/self/fd directory fd (the init stage holds no host fd longer than it must). */
export function releaseReopen(): void {
  if (procFdDir !== undefined) closeFd(procFdDir);
  procFdDir = undefined;
}

/**
 * Opens for reading the regular file pinned by the O_PATH fd `pathFd` (its type checked with fstat
 * by the caller): that very inode, reopened through /proc/self/fd, so a device node or fifo
 * swapped in under the name is never opened (its driver never runs).
 */
export function reopenPinned(pathFd: number, shown: string): number {
  prepareReopen();
  return checkAt("open", openAt(procFdDir!, String(pathFd), OAT.RDONLY | OAT.NOCTTY | OAT.CLOEXEC), shown);
}

/**
 * Bytes of regular-file data below an open directory, walked through fds: a directory that a
 * container swaps for a symlink meanwhile is skipped, never followed out of the tree.
 */
export function treeSizeAt(dirFd: number): number {
  let total = 0;
  let names: string[];
  try {
    names = readDirNames(dirFd);
  } catch (e) {
    if (e instanceof SysError && e.errno === 2) return 0; // removed while it was read (ENOENT)
    throw e;
  }
  for (const name of names) {
    const st = statAt(dirFd, name);
    if (st?.type === "file") total += st.size;
    if (st?.type !== "dir") continue;
    const fd = tryOpenDirAt(dirFd, name);
    if (fd < 0) continue; // swapped or gone since the stat
    try {
      total += treeSizeAt(fd);
    } finally {
      closeFd(fd);
    }
  }
  return total;
}
