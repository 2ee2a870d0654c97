// The container side of `cp` for a running container: a short-lived `skiff __cp` process that joins
// the container's mount namespace (setns makes the container's root its own root), so that every
// path it touches, symlinks included, resolves inside the container by the kernel itself, even if a
// process in the container swaps a directory for a symlink meanwhile. Host files never reach it:
// data flows as a tar stream over stdin/stdout, as docker does with its chrooted archiver.
//
//   __cp stat PID STARTTIME PATH FOLLOW   → one JSON line {exists, isDir}
//   __cp out  PID STARTTIME PATH FOLLOW   → a tar of PATH on stdout (rooted at its base name)
//   __cp in   PID STARTTIME DIR ARCHIVE   → extracts a tar from stdin into DIR (merging)
//
// Only sync APIs after setns (see the platform notes).

import { chdir, CLONE, close, O, open, setns, unshare, utimensAt, writeFd } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import {
  checkAt,
  closeFd,
  ENOENT,
  OAT,
  openInRoot,
  prepareReopen,
  type Stat,
  statAt,
  tryOpenInRoot,
} from "../fs/at.ts";
import {
  type At,
  createFileAt,
  createSpecialAt,
  linkFileAt,
  type Meta,
  openOrMakeDirAt,
  OverwriteDirError,
  setFdMeta,
  tarTree,
} from "../fs/tree.ts";
import { type EntryHandler, type TarEntry, TarReader, writeTar } from "../image/tar.ts";
import { cleanEntryPath } from "../image/unpack.ts";
import { processStartTime } from "../state/containers.ts";

function joinMountNamespace(pid: number, startTime: number): void {
  // /proc/self/fd of this process, while /proc is the host's: files are reopened through it
  prepareReopen();
  const fd = open(`/proc/${pid}/ns/mnt`, O.RDONLY | O.CLOEXEC);
  try {
    // the fd pins the namespace: check afterwards that it is still the container's process
    if (processStartTime(pid) !== startTime) throw new SkiffError("the container stopped meanwhile");
    // a threaded process shares its fs info (root, cwd) between threads: setns needs its own copy
    unshare(CLONE.FS);
    setns(fd, CLONE.NEWNS);
  } finally {
    close(fd);
  }
  chdir("/");
}

function writeStdout(bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

const baseName = (path: string) => path.split("/").filter(Boolean).at(-1);

/** The container's root (after setns: our own "/") as an O_PATH directory fd. */
const openRootFd = () => openInRoot(-100, /* AT_FDCWD */ "/", OAT.PATH | OAT.DIRECTORY);

/**
 * `path` in the root `rootFd` as an O_PATH fd (the link itself unless `follow`), resolved by the
 * kernel without ever leaving the root; -errno when it cannot be reached.
 */
export function openSource(rootFd: number, path: string, follow: boolean): number {
  return tryOpenInRoot(rootFd, path, OAT.PATH | (follow ? 0 : OAT.NOFOLLOW));
}

/** Writes a tar of the tree at `at` to stdout (names rooted at `name`). */
export function tarToStdout(at: At, name: string): void {
  for (const entry of tarTree(at, name, new Map())) writeStdout(writeTar([entry], { endMarker: false }));
  writeStdout(new Uint8Array(1024));
}

/** Writes a tar of `path` (the link itself unless `follow`) to stdout; false when it is missing. */
export function packToStdout(rootFd: number, path: string, follow: boolean, rootName?: string): boolean {
  const fd = openSource(rootFd, path, follow);
  if (fd < 0) return false;
  try {
    tarToStdout({ dir: fd, name: "" }, rootName ?? baseName(path) ?? ".");
  } finally {
    closeFd(fd);
  }
  return true;
}

/** The stat of `path` in the root (following a final symlink inside it when `follow`), or null. */
function statInRoot(rootFd: number, path: string, follow: boolean): Stat | null {
  const fd = openSource(rootFd, path, follow);
  if (fd < 0) return null;
  try {
    return statAt(fd, "");
  } finally {
    closeFd(fd);
  }
}

/**
 * The directory `rel` below the directory `dir` of the root, made when missing, each lookup
 * resolved inside the root (a symlink in the container leads where it leads there, never out).
 */
function mkdirAllInRoot(rootFd: number, path: string): number {
  const fd = tryOpenInRoot(rootFd, path, OAT.RDONLY | OAT.DIRECTORY);
  if (fd !== -ENOENT) return checkAt("openat2", fd, path);
  const slash = path.lastIndexOf("/");
  const parent = mkdirAllInRoot(rootFd, slash <= 0 ? "/" : path.slice(0, slash));
  try {
    const made = openOrMakeDirAt({ dir: parent, name: path.slice(slash + 1) });
    // a directory made here for a deeper entry: docker's archiver gives it 0755
    setFdMeta(made, { uid: 0, gid: 0, perm: 0o755, atime: nowSec(), mtime: nowSec() });
    return made;
  } finally {
    closeFd(parent);
  }
}

const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * Extracts a tar read from stdin into the existing directory `dir` of the root: directories merge,
 * other entries replace what is there; owners are root unless `archive`. Names with ".." or a
 * leading "/" are refused. Every entry is created in a directory fd with O_EXCL/O_NOFOLLOW, its
 * owner, mode and times set on its fd (or without following it).
 */
export function extractStdin(rootFd: number, dir: string, archive: boolean, renameTop?: string): void {
  const dirTimes: [string, TarEntry][] = [];
  // the top entry may land under a new name (cp FILE ctr:/dir/newname)
  const rename = (name: string) => {
    if (renameTop === undefined) return name;
    const slash = name.indexOf("/");
    return slash === -1 ? renameTop : renameTop + name.slice(slash);
  };
  const at = (name: string) => `${dir === "/" ? "" : dir}/${rename(name)}`;
  const metaOf = (e: TarEntry): Meta => ({
    uid: archive ? e.uid : 0,
    gid: archive ? e.gid : 0,
    perm: e.mode & 0o7777,
    atime: Math.floor(e.mtime),
    mtime: Math.floor(e.mtime),
  });
  // consecutive entries mostly share a directory: keep the last one open
  let parentPath = "", parentFd = -1;
  const parentOf = (path: string): At => {
    const slash = path.lastIndexOf("/");
    const parent = slash <= 0 ? "/" : path.slice(0, slash);
    if (parent !== parentPath || parentFd < 0) {
      if (parentFd >= 0) closeFd(parentFd);
      parentFd = -1;
      parentFd = mkdirAllInRoot(rootFd, parent);
      parentPath = parent;
    }
    return { dir: parentFd, name: path.slice(slash + 1) };
  };
  try {
    const reader = new TarReader((e): EntryHandler | undefined => {
      const name = cleanEntryPath(e.name);
      if (name === "") return undefined;
      const path = at(name);
      const dest = parentOf(path);
      const meta = metaOf(e);
      switch (e.type) {
        case "dir": {
          const fd = openOrMakeDirAt(dest);
          try {
            setFdMeta(fd, meta);
          } finally {
            closeFd(fd);
          }
          dirTimes.push([path, e]);
          return undefined;
        }
        case "file": {
          const fd = createFileAt(dest, path);
          return {
            data(chunk) {
              for (let off = 0; off < chunk.length;) {
                off += checkAt("write", writeFd(fd, chunk.subarray(off), chunk.length - off));
              }
            },
            end() {
              try {
                setFdMeta(fd, meta);
              } finally {
                closeFd(fd);
              }
            },
          };
        }
        case "symlink":
          createSpecialAt(dest, path, "symlink", meta, { linkname: e.linkname });
          return undefined;
        case "link": {
          const target = at(cleanEntryPath(e.linkname, e.name, "link target"));
          const slash = target.lastIndexOf("/");
          const from = tryOpenInRoot(rootFd, target.slice(0, slash) || "/", OAT.PATH | OAT.DIRECTORY);
          checkAt("openat2", from, target);
          try {
            checkAt("linkat", linkFileAt({ dir: from, name: target.slice(slash + 1) }, dest, path), path);
          } finally {
            closeFd(from);
          }
          return undefined;
        }
        case "char":
        case "block":
        case "fifo":
          createSpecialAt(dest, path, e.type, meta, { major: e.devmajor, minor: e.devminor });
          return undefined;
        default:
          return undefined;
      }
    });
    const buf = new Uint8Array(1 << 16);
    while (!reader.ended) {
      const n = Deno.stdin.readSync(buf);
      if (n === null || n === 0) break;
      reader.push(buf.subarray(0, n));
    }
    reader.finish();
  } catch (e) {
    if (e instanceof OverwriteDirError) throw new SkiffError(e.message);
    throw e;
  } finally {
    if (parentFd >= 0) closeFd(parentFd);
  }
  // directory times last: creating their entries changed them
  for (const [path, e] of dirTimes.reverse()) {
    const fd = tryOpenInRoot(rootFd, path, OAT.RDONLY | OAT.DIRECTORY | OAT.NOFOLLOW);
    if (fd < 0) continue;
    try {
      utimensAt(fd, null, Math.floor(e.mtime), Math.floor(e.mtime), 0);
    } finally {
      closeFd(fd);
    }
  }
}

/** What the tar on stdin holds: one tree or file named after the source, or a directory's contents. */
type SourceKind = "dir" | "file" | "contents" | "stream";

/**
 * docker's rules for where the copied source lands, decided here where the destination is seen
 * as the container sees it: the directory to extract into, and the new name of the top entry.
 */
function placeIn(
  rootFd: number,
  dest: string,
  kind: SourceKind,
  destSlash: boolean,
  shown: string,
): { dir: string; rename?: string } {
  const info = statInRoot(rootFd, dest, true);
  const parent = dest.slice(0, dest.lastIndexOf("/")) || "/";
  const name = dest.split("/").filter(Boolean).at(-1);
  const requireParent = () => {
    if (statInRoot(rootFd, parent, true)?.type !== "dir") {
      throw new SkiffError(`Could not find the file ${parent} in container ${shown}`);
    }
  };
  const isDir = info?.type === "dir";
  switch (kind) {
    case "stream":
      if (!isDir) throw new SkiffError(`destination "${shown}:${dest}" must be a directory`);
      return { dir: dest };
    case "contents":
      if (info && !isDir) throw new SkiffError(`cannot copy a directory to a file: ${dest}`);
      if (!info) {
        requireParent();
        closeFd(mkdirAllInRoot(rootFd, dest));
      }
      return { dir: dest };
    case "dir":
      if (info && !isDir) throw new SkiffError(`cannot copy a directory to a file: ${dest}`);
      if (info) return { dir: dest };
      requireParent();
      return { dir: parent, rename: name };
    case "file":
      if (isDir) return { dir: dest };
      if (destSlash) throw new SkiffError(`destination "${shown}:${dest}/" must be a directory`);
      requireParent();
      return { dir: parent, rename: name };
  }
}

/** Entry point of `skiff __cp`. Returns the exit code; one line on stderr on failure. */
export function cpHelperMain(args: string[]): number {
  const [mode, pid, startTime, path, flag] = args;
  try {
    joinMountNamespace(Number(pid), Number(startTime));
    const rootFd = openRootFd();
    switch (mode) {
      case "stat": {
        const info = statInRoot(rootFd, path, flag === "1");
        const parent = path.slice(0, path.lastIndexOf("/")) || "/";
        const parentIsDir = statInRoot(rootFd, parent, true)?.type === "dir";
        const answer = { exists: !!info, isDir: info?.type === "dir", parentIsDir };
        writeStdout(new TextEncoder().encode(JSON.stringify(answer) + "\n"));
        return 0;
      }
      case "out":
        if (
          !packToStdout(rootFd, path, flag === "1", path.split("/").filter(Boolean).length ? undefined : ".")
        ) {
          console.error(`Could not find the file ${path}`);
          return 2;
        }
        return 0;
      case "in": {
        const { dir, rename } = placeIn(rootFd, path, args[5] as SourceKind, args[6] === "1", args[7] ?? "");
        extractStdin(rootFd, dir, flag === "1", rename);
        return 0;
      }
      default:
        console.error(`unknown __cp mode ${mode}`);
        return 1;
    }
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
}

/** `skiff __cp ...` as a verb (hidden; started by cp itself). */
const cpHelperVerb = (args: string[]) => Promise.resolve(cpHelperMain(args));
export default cpHelperVerb;
