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

import {
  chdir,
  CLONE,
  close,
  lchown,
  lutimes,
  makedev,
  mkfifo,
  mknod,
  O,
  open,
  setns,
  unshare,
} from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import { type EntryHandler, type TarEntry, TarReader, type TarWriteEntry, writeTar } from "../image/tar.ts";
import { cleanEntryPath } from "../image/unpack.ts";
import { processStartTime } from "../state/containers.ts";
import { lstatOrNull } from "./fstree.ts";
import { tarEntry } from "./layers.ts";

function joinMountNamespace(pid: number, startTime: number): void {
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

/** Tar entries of a tree (names rooted at `name`), links kept as links. */
export function* treeEntries(
  abs: string,
  name: string,
  info: Deno.FileInfo,
  links: Map<string, string>,
): Generator<TarWriteEntry> {
  const entry = tarEntry(abs, name, info, links);
  if (entry) yield entry;
  if (!info.isDirectory) return;
  for (const child of [...Deno.readDirSync(abs)].map((e) => e.name).sort()) {
    const path = abs === "/" ? `/${child}` : `${abs}/${child}`;
    yield* treeEntries(path, `${name}/${child}`, Deno.lstatSync(path), links);
  }
}

/** Writes a tar of `path` (the link itself unless `follow`) to stdout; false when it is missing. */
export function packToStdout(path: string, follow: boolean, rootName?: string): boolean {
  let info: Deno.FileInfo | null;
  try {
    info = follow ? Deno.statSync(path) : Deno.lstatSync(path);
  } catch {
    info = null;
  }
  if (!info) return false;
  const name = rootName ?? baseName(path) ?? ".";
  for (const entry of treeEntries(path, name, info, new Map())) {
    writeStdout(writeTar([entry], { endMarker: false }));
  }
  writeStdout(new Uint8Array(1024));
  return true;
}

/**
 * Extracts a tar read from stdin into the existing directory `dir`: directories merge, other
 * entries replace what is there; owners are root unless `archive`. Names with ".." or a leading
 * "/" are refused.
 */
export function extractStdin(dir: string, archive: boolean, renameTop?: string): void {
  const dirTimes: [string, TarEntry][] = [];
  // the top entry may land under a new name (cp FILE ctr:/dir/newname)
  const rename = (name: string) => {
    if (renameTop === undefined) return name;
    const slash = name.indexOf("/");
    return slash === -1 ? renameTop : renameTop + name.slice(slash);
  };
  const at = (name: string) => `${dir === "/" ? "" : dir}/${rename(name)}`;
  const setMetadata = (path: string, e: TarEntry, symlink: boolean) => {
    lchown(path, archive ? e.uid : 0, archive ? e.gid : 0);
    if (!symlink) Deno.chmodSync(path, e.mode & 0o7777);
    lutimes(path, Math.floor(e.mtime), Math.floor(e.mtime));
  };
  const clear = (path: string) => {
    const existing = lstatOrNull(path);
    if (existing?.isDirectory) {
      throw new SkiffError(`cannot overwrite directory "${path}" with non-directory`);
    }
    if (existing) Deno.removeSync(path);
  };
  const reader = new TarReader((e): EntryHandler | undefined => {
    const name = cleanEntryPath(e.name);
    if (name === "") return undefined;
    const path = at(name);
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    Deno.mkdirSync(parent, { recursive: true });
    switch (e.type) {
      case "dir": {
        const existing = lstatOrNull(path);
        if (existing && !existing.isDirectory) Deno.removeSync(path);
        if (!existing?.isDirectory) Deno.mkdirSync(path, { mode: 0o700 });
        lchown(path, archive ? e.uid : 0, archive ? e.gid : 0);
        Deno.chmodSync(path, e.mode & 0o7777);
        dirTimes.push([path, e]);
        return undefined;
      }
      case "file": {
        clear(path);
        const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
        return {
          data(chunk) {
            for (let off = 0; off < chunk.length;) off += file.writeSync(chunk.subarray(off));
          },
          end() {
            file.close();
            setMetadata(path, e, false);
          },
        };
      }
      case "symlink":
        clear(path);
        Deno.symlinkSync(e.linkname, path);
        setMetadata(path, e, true);
        return undefined;
      case "link":
        clear(path);
        Deno.linkSync(at(cleanEntryPath(e.linkname, e.name, "link target")), path);
        return undefined;
      case "char":
      case "block":
        clear(path);
        mknod(path, (e.type === "char" ? 0o020000 : 0o060000) | 0o600, makedev(e.devmajor, e.devminor));
        setMetadata(path, e, false);
        return undefined;
      case "fifo":
        clear(path);
        mkfifo(path, 0o600);
        setMetadata(path, e, false);
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
  // directory times last: creating their entries changed them
  for (const [path, e] of dirTimes.reverse()) lutimes(path, Math.floor(e.mtime), Math.floor(e.mtime));
}

/** What the tar on stdin holds: one tree or file named after the source, or a directory's contents. */
type SourceKind = "dir" | "file" | "contents" | "stream";

/**
 * docker's rules for where the copied source lands, decided here where the destination is seen
 * as the container sees it: the directory to extract into, and the new name of the top entry.
 */
function placeIn(
  dest: string,
  kind: SourceKind,
  destSlash: boolean,
  shown: string,
): { dir: string; rename?: string } {
  const info = (() => {
    try {
      return Deno.statSync(dest);
    } catch {
      return null;
    }
  })();
  const parent = dest.slice(0, dest.lastIndexOf("/")) || "/";
  const name = dest.split("/").filter(Boolean).at(-1);
  const requireParent = () => {
    let ok = false;
    try {
      ok = Deno.statSync(parent).isDirectory;
    } catch { /* missing */ }
    if (!ok) throw new SkiffError(`Could not find the file ${parent} in container ${shown}`);
  };
  switch (kind) {
    case "stream":
      if (!info?.isDirectory) throw new SkiffError(`destination "${shown}:${dest}" must be a directory`);
      return { dir: dest };
    case "contents":
      if (info && !info.isDirectory) throw new SkiffError(`cannot copy a directory to a file: ${dest}`);
      if (!info) {
        requireParent();
        Deno.mkdirSync(dest, { mode: 0o755 });
      }
      return { dir: dest };
    case "dir":
      if (info && !info.isDirectory) throw new SkiffError(`cannot copy a directory to a file: ${dest}`);
      if (info) return { dir: dest };
      requireParent();
      return { dir: parent, rename: name };
    case "file":
      if (info?.isDirectory) return { dir: dest };
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
    switch (mode) {
      case "stat": {
        let info: Deno.FileInfo | null;
        try {
          info = flag === "1" ? Deno.statSync(path) : Deno.lstatSync(path);
        } catch {
          info = null;
        }
        const parent = path.slice(0, path.lastIndexOf("/")) || "/";
        const parentIsDir = lstatOrNull(parent) !== null && Deno.statSync(parent).isDirectory;
        const answer = { exists: !!info, isDir: !!info?.isDirectory, parentIsDir };
        writeStdout(new TextEncoder().encode(JSON.stringify(answer) + "\n"));
        return 0;
      }
      case "out":
        if (!packToStdout(path, flag === "1", path.split("/").filter(Boolean).length ? undefined : ".")) {
          console.error(`Could not find the file ${path}`);
          return 2;
        }
        return 0;
      case "in": {
        const { dir, rename } = placeIn(path, args[5] as SourceKind, args[6] === "1", args[7] ?? "");
        extractStdin(dir, flag === "1", rename);
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
