// `cp`: files between a container and the host, both ways, running or stopped, with docker's path
// rules (trailing "/." copies a directory's contents, a directory lands inside an existing one, a
// file may get a new name) and tar streams on stdin/stdout for "-".
//
// Security: a path inside the container never resolves to the host.
// - Running container: the container side runs in a `skiff __cp` helper that joined the container's
//   mount namespace (cphelper.ts), so the kernel resolves every path, symlinks included, inside the
//   container, even against a container process that swaps directories for symlinks meanwhile.
//   Host data and container data meet only as tar streams over pipes.
// - Stopped container: a `skiff __cp-stopped` child (lib/cli/cp_stopped.ts: the caller's own process, an
//   engine that may serve other requests, never changes its namespaces) mounts its overlay in a
//   private mount namespace of its own (unshare(CLONE_NEWNS), mounts made private first): the mount
//   is never visible to the host and vanishes with the process. Another container that shares a volume with it may still swap names
//   there meanwhile, so every path is resolved from a directory fd of the mounted root with
//   openat2(RESOLVE_IN_ROOT), and every file is read and written through directory fds (lib/fs).
//   From then on only synchronous APIs are used (platform notes), which is why that path is sync,
//   stdin and stdout included.

import { basename, dirname, join, resolve } from "node:path";
import { AT_FDCWD, CLONE, MNT_DETACH, mount, MS, openAt, umount2, unshare } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import {
  checkAt,
  closeFd,
  fstat,
  OAT,
  openHostDir,
  readDirNames,
  readLinkAt,
  type Stat,
  statAt,
  tryOpenDirAt,
  tryOpenInRoot,
} from "../fs/at.ts";
import { type At, type CopyOptions, copyTreeAt, tarTree } from "../fs/tree.ts";
import { TarReader, writeTar } from "../image/tar.ts";
import { LayerWriter } from "../image/unpack.ts";
import { containerLockPath } from "../state/containers.ts";
import { removeIfExists, tmpPath, withLockSync } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { pathParts } from "./fstree.ts";
import { openSource, tarToStdout } from "./cphelper.ts";
import { selfCommand } from "../runtime/self.ts";
import { mountsFor } from "../runtime/mountplan.ts";
import { mountOverlay } from "../runtime/rootfs.ts";
import { isRunning } from "../state/reconcile.ts";

/** One side of a copy as given on the command line. */
export interface CpArg {
  container?: string;
  path: string;
}

/** docker's splitCpArg: absolute paths and ./relative ones are local, NAME:PATH is a container's. */
export function parseCpArg(arg: string): CpArg {
  if (arg.startsWith("/")) return { path: arg };
  const colon = arg.indexOf(":");
  if (colon === -1 || arg.startsWith(".")) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

export interface CpOptions {
  /** -L: follow a symlink given as the source */
  followLink: boolean;
  /** -a: keep uid/gid of the source; otherwise copied files belong to root (the caller) */
  archive: boolean;
}

/** A copy failure docker reports with exit code 1. */
export class CpError extends SkiffError {
  constructor(message: string) {
    super(message, 1);
  }
}

let unshared = false;

/**
 * Runs `fn` with an fd of a stopped container's root: its overlay mounted (read-only unless
 * `writable`) in this process's private mount namespace, under the container's lock so it is not
 * started meanwhile. (A running container's is /proc/<pid>/root: for reading only, e.g. tests.)
 */
export function withContainerRoot<T>(
  root: StateRoot,
  record: ContainerRecord,
  writable: boolean,
  fn: (rootFd: number) => T,
): T {
  const withFd = (path: string) => {
    const fd = openHostDir(path);
    try {
      return fn(fd);
    } finally {
      closeFd(fd);
    }
  };
  if (isRunning(record)) return withFd(`/proc/${record.State.Pid}/root`);
  return withLockSync(containerLockPath(root, record.Id), () => {
    const dir = root.container(record.Id);
    const merged = join(dir, "merged");
    if (!unshared) {
      unshare(CLONE.NEWNS);
      // nothing mounted from here on may propagate back to the host's namespace
      mount(null, "/", null, MS.REC | MS.PRIVATE);
      unshared = true;
    }
    // read-only: the upper dir as the top lower layer, so nothing of the container is written
    const { rootfs } = mountsFor(record, record.LowerDirs, dir, !writable);
    Deno.mkdirSync(merged, { recursive: true });
    mountOverlay(rootfs, join(dir, "cp-lower"), writable ? 0 : MS.RDONLY);
    try {
      const rootFd = openHostDir(merged);
      try {
        bindContainerMounts(dir, rootFd, record);
      } finally {
        closeFd(rootFd);
      }
      // opened again: the fd must see the binds made on top of the overlay
      return withFd(merged);
    } finally {
      // detaching the overlay takes the binds on it along
      umount2(merged, MNT_DETACH);
    }
  });
}

/**
 * What a running container sees beyond its overlay, bound into the mounted root as docker does for
 * cp on a stopped container: its /etc/hostname, /etc/hosts and /etc/resolv.conf, and its volumes
 * and bind mounts. Mount points resolve inside the root (openat2 RESOLVE_IN_ROOT: a volume another
 * container swaps meanwhile cannot redirect a later bind), and the bind goes onto the fd that was
 * checked, through its /proc/self/fd link; missing ones are skipped (never created).
 */
function bindContainerMounts(dir: string, rootFd: number, record: ContainerRecord): void {
  const binds: [source: string, destination: string][] = ["hostname", "hosts", "resolv.conf"]
    .map((name) => [join(dir, name), `/etc/${name}`]);
  for (const m of record.Mounts ?? []) {
    if (m.Type !== "tmpfs" && m.Source) binds.push([m.Source, m.Destination]);
  }
  for (const [source, destination] of binds) {
    const target = tryOpenInRoot(rootFd, destination, OAT.PATH);
    if (target < 0) continue;
    try {
      const sourceInfo = hostStat(source, false);
      if (!sourceInfo || (sourceInfo.type === "dir") !== (fstat(target).type === "dir")) continue;
      mount(source, `/proc/self/fd/${target}`, null, MS.BIND | MS.REC);
    } finally {
      closeFd(target);
    }
  }
}

const endsWithDot = (p: string) => p === "." || p.endsWith("/.");
const endsWithSlash = (p: string) => p.endsWith("/") || endsWithDot(p);

/** Closes the fds a copy opened, whatever happens. */
class Fds {
  private readonly fds: number[] = [];
  add(fd: number): number {
    this.fds.push(fd);
    return fd;
  }
  closeAll(): void {
    for (const fd of this.fds.splice(0)) closeFd(fd);
  }
}

/** The source of a copy: an O_PATH fd of it (name ""), its stat and the name it is copied under. */
interface Source {
  at: At;
  stat: Stat;
  /** the name the copy gets inside a destination directory */
  base: string;
}

/** The destination of a copy, resolved: where a new entry goes, and what is there already. */
interface Place {
  /** what is there, following a final symlink (inside the root for a container); null when missing */
  info: Stat | null;
  /** the name to create or replace, in its parent directory's fd (null when the parent is missing) */
  at: At | null;
  /** the directory itself, when `info` is one */
  openDir(): number;
}

/** lstat (or stat with `follow`) of a host path given by the user. */
function hostStat(path: string, follow: boolean): Stat | null {
  const fd = openAt(AT_FDCWD, path, OAT.PATH | OAT.CLOEXEC | (follow ? 0 : OAT.NOFOLLOW));
  if (fd < 0) return null;
  try {
    return fstat(fd);
  } finally {
    closeFd(fd);
  }
}

/** A host source path given by the user (the host is the user's own: plain lookups). */
function hostSource(path: string, follow: boolean, fds: Fds): Source | null {
  const fd = openAt(AT_FDCWD, path, OAT.PATH | OAT.CLOEXEC | (follow ? 0 : OAT.NOFOLLOW));
  if (fd < 0) return null;
  fds.add(fd);
  return { at: { dir: fd, name: "" }, stat: fstat(fd), base: basename(path) };
}

/** A host destination path given by the user. */
function hostPlace(abs: string, fds: Fds): Place {
  const parent = openAt(AT_FDCWD, dirname(abs), OAT.PATH | OAT.DIRECTORY | OAT.CLOEXEC);
  return {
    info: hostStat(abs, true),
    at: parent < 0 ? null : { dir: fds.add(parent), name: basename(abs) },
    openDir: () =>
      fds.add(checkAt("open", openAt(AT_FDCWD, abs, OAT.RDONLY | OAT.DIRECTORY | OAT.CLOEXEC), abs)),
  };
}

/**
 * A destination inside a container root: final symlinks followed inside the root (as the container
 * would see them), every step from a directory fd resolved with RESOLVE_IN_ROOT.
 */
function placeInRoot(rootFd: number, path: string, fds: Fds): Place {
  let current = "/" + pathParts(path).join("/");
  for (let links = 0; links <= 40; links++) {
    const parts = pathParts(current);
    const name = parts.at(-1);
    if (name === undefined || name === "..") {
      const fd = tryOpenInRoot(rootFd, current, OAT.PATH | OAT.DIRECTORY);
      const info = fd < 0 ? null : fstat(fds.add(fd));
      return { info, at: null, openDir: () => fds.add(checkAt("openat", tryOpenDirAt(fd, ""), path)) };
    }
    const parentPath = "/" + parts.slice(0, -1).join("/");
    const parent = tryOpenInRoot(rootFd, parentPath, OAT.PATH | OAT.DIRECTORY);
    if (parent < 0) return { info: null, at: null, openDir: () => -1 };
    fds.add(parent);
    const info = statAt(parent, name);
    if (info?.type === "symlink") {
      const target = readLinkAt(parent, name);
      current = target.startsWith("/") ? target : `${parentPath}/${target}`;
      continue;
    }
    return {
      info,
      at: { dir: parent, name },
      openDir: () => fds.add(checkAt("openat", tryOpenDirAt(parent, name), path)),
    };
  }
  throw new CpError(`too many levels of symbolic links: ${path}`);
}

/** copyTreeAt; a failure part-way (a directory in the way, a name swapped meanwhile) is docker's exit 1. */
function copyTreeOrFail(from: At, to: At, opts: CopyOptions): void {
  try {
    copyTreeAt(from, to, opts);
  } catch (e) {
    if (e instanceof SkiffError || !(e instanceof Error)) throw e;
    throw new CpError(e.message);
  }
}

/**
 * Copies `src` to the destination by docker's rules. `destGiven` is the path as the user wrote it
 * (a trailing slash matters), `srcGiven` likewise.
 */
function copyBySemantics(
  src: Source,
  srcGiven: string,
  dest: Place,
  destGiven: string,
  opts: CpOptions,
): void {
  const copyOpts = { preserveOwner: opts.archive, owner: { uid: 0, gid: 0 } };
  const requireParent = () => {
    if (!dest.at) throw new CpError(`no such directory: ${dirname(destGiven) || "."}`);
  };
  const copy = (from: At, to: At) => copyTreeOrFail(from, to, copyOpts);
  if (src.stat.type === "dir") {
    if (!dest.info) {
      requireParent();
      copy(src.at, dest.at!);
    } else if (dest.info.type !== "dir") {
      throw new CpError(`cannot copy a directory to a file: ${destGiven}`);
    } else if (endsWithDot(srcGiven)) {
      const from = tryOpenDirAt(src.at.dir, src.at.name);
      checkAt("openat", from, srcGiven);
      const into = dest.openDir();
      try {
        for (const name of readDirNames(from)) copy({ dir: from, name }, { dir: into, name });
      } finally {
        closeFd(from);
      }
    } else {
      copy(src.at, { dir: dest.openDir(), name: src.base });
    }
    return;
  }
  if (endsWithSlash(srcGiven)) throw new CpError(`${srcGiven}: not a directory`);
  if (!dest.info) {
    if (endsWithSlash(destGiven)) throw new CpError(`destination "${destGiven}" must be a directory`);
    requireParent();
    copy(src.at, dest.at!);
  } else if (dest.info.type === "dir") {
    copy(src.at, { dir: dest.openDir(), name: src.base });
  } else {
    if (endsWithSlash(destGiven)) throw new CpError(`destination "${destGiven}" must be a directory`);
    copy(src.at, dest.at!);
  }
}

/** `cp CONTAINER:SRC DEST` (DEST "-" writes a tar stream to stdout). */
export async function copyFromContainer(
  root: StateRoot,
  record: ContainerRecord,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): Promise<void> {
  if (isRunning(record)) await copyFromRunning(root, record, srcPath, dest, opts);
  else await inStoppedHelper(root, record, ["from", srcPath, dest], opts);
}

/** `cp SRC CONTAINER:DEST` (SRC "-" reads a tar stream from stdin into the directory DEST). */
export async function copyToContainer(
  root: StateRoot,
  record: ContainerRecord,
  src: string,
  destPath: string,
  opts: CpOptions,
): Promise<void> {
  if (isRunning(record)) await copyToRunning(root, record, src, destPath, opts);
  else await inStoppedHelper(root, record, ["to", src, destPath], opts);
}

/**
 * Runs the copy of a stopped container in `skiff __cp-stopped` (cp_stopped.ts), which mounts the
 * container's root in a mount namespace of its own; the caller's stdio and cwd are the child's, so
 * "-" streams and relative host paths mean what they meant here. Its failure comes back as the
 * same one line and exit code.
 */
async function inStoppedHelper(
  root: StateRoot,
  record: ContainerRecord,
  [direction, from, to]: [string, string, string],
  opts: CpOptions,
): Promise<void> {
  const { cmd, args } = selfCommand([
    "--root",
    root.path,
    "__cp-stopped",
    direction,
    record.Id,
    from,
    to,
    opts.followLink ? "1" : "0",
    opts.archive ? "1" : "0",
  ]);
  const child = new Deno.Command(cmd, { args, stdin: "inherit", stdout: "inherit", stderr: "piped" }).spawn();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  if (!status.success) throw new SkiffError(stderr.trim() || `cp failed (exit ${status.code})`, status.code);
}

// ---- running: the container side runs in `skiff __cp` inside the container's mount namespace ----

/** Normalises a container path for the helper: absolute, without trailing "/" or "/.". */
function containerPath(path: string): string {
  return "/" + pathParts(path).join("/");
}

function helper(root: StateRoot, record: ContainerRecord, args: string[], io: {
  stdin: "piped" | "inherit" | "null";
  stdout: "piped" | "inherit";
}): Deno.ChildProcess {
  const { cmd, args: argv } = selfCommand([
    "--root",
    root.path,
    "__cp",
    args[0],
    String(record.State.Pid),
    String(record.State.PidStartTime ?? 0),
    ...args.slice(1),
  ]);
  return new Deno.Command(cmd, { args: argv, stdin: io.stdin, stdout: io.stdout, stderr: "piped" }).spawn();
}

async function helperDone(child: Deno.ChildProcess, what: string): Promise<void> {
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  if (!status.success) throw new CpError(stderr.trim() || `${what} failed (exit ${status.code})`);
}

async function copyFromRunning(
  root: StateRoot,
  record: ContainerRecord,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): Promise<void> {
  const follow = opts.followLink || endsWithSlash(srcPath) ? "1" : "0";
  const path = containerPath(srcPath);
  const notFound = () =>
    new CpError(`Could not find the file ${srcPath} in container ${record.Name.slice(1)}`);
  if (dest === "-") {
    const child = helper(root, record, ["out", path, follow], { stdin: "null", stdout: "inherit" });
    const status = await child.status;
    if (status.code === 2) throw notFound();
    if (!status.success) throw new CpError(new TextDecoder().decode((await child.output()).stderr).trim());
    return;
  }
  // stage the tar on the host (A's unpacker: nothing escapes the staging dir), then copy by the rules
  const staged = tmpPath(root, "cp");
  Deno.mkdirSync(staged, { recursive: true, mode: 0o700 });
  try {
    const child = helper(root, record, ["out", path, follow], { stdin: "null", stdout: "piped" });
    const writer = new LayerWriter(staged);
    const tar = new TarReader((entry) => writer.entry(entry));
    const stderr = new Response(child.stderr).text();
    for await (const chunk of child.stdout) if (!tar.ended) tar.push(chunk);
    const status = await child.status;
    if (status.code === 2) throw notFound();
    if (!status.success) throw new CpError((await stderr).trim());
    tar.finish();
    writer.finish();
    const name = path === "/" ? "" : basename(path);
    const top = name ? join(staged, name) : staged;
    // "/" has no name of its own: its contents are copied, as docker does
    const given = path === "/" && !endsWithDot(srcPath) ? "/." : srcPath;
    const fds = new Fds();
    try {
      const source = hostSource(top, false, fds);
      if (!source) throw notFound();
      copyBySemantics(source, given, hostPlace(resolve(dest), fds), dest, opts);
    } finally {
      fds.closeAll();
    }
  } finally {
    removeIfExists(staged);
  }
}

async function copyToRunning(
  root: StateRoot,
  record: ContainerRecord,
  src: string,
  destGiven: string,
  opts: CpOptions,
): Promise<void> {
  const dest = containerPath(destGiven);
  const archive = opts.archive ? "1" : "0";
  const shown = record.Name.slice(1);
  const destSlash = endsWithSlash(destGiven) ? "1" : "0";
  if (src === "-") {
    const child = helper(root, record, ["in", dest, archive, "stream", destSlash, shown], {
      stdin: "inherit",
      stdout: "inherit",
    });
    await helperDone(child, "cp");
    return;
  }
  const srcAbs = resolve(src);
  const fds = new Fds();
  try {
    const source = hostSource(srcAbs, opts.followLink, fds);
    if (!source) throw new CpError(`lstat ${srcAbs}: no such file or directory`);
    const isDir = source.stat.type === "dir";
    if (!isDir && endsWithSlash(src)) throw new CpError(`${src}: not a directory`);
    // one helper decides where it lands (it sees the destination as the container does) and extracts
    const kind = !isDir ? "file" : endsWithDot(src) ? "contents" : "dir";
    let tops: [at: At, name: string][] = [[source.at, source.base]];
    if (kind === "contents") {
      const dirFd = fds.add(checkAt("openat", tryOpenDirAt(source.at.dir, ""), srcAbs));
      tops = readDirNames(dirFd).map((name) => [{ dir: dirFd, name }, name]);
    }
    const child = helper(root, record, ["in", dest, archive, kind, destSlash, shown], {
      stdin: "piped",
      stdout: "inherit",
    });
    const done = helperDone(child, "cp");
    const writer = child.stdin.getWriter();
    try {
      const links = new Map<string, string>();
      for (const [at, name] of tops) {
        for (const entry of tarTree(at, name, links)) {
          await writer.write(writeTar([entry], { endMarker: false }));
        }
      }
      await writer.write(new Uint8Array(1024));
      await writer.close();
    } catch {
      // the helper failed and closed its stdin: its message says why
      try {
        await writer.abort();
      } catch { /* closed */ }
    }
    await done;
  } finally {
    fds.closeAll();
  }
}

// ---- stopped: the overlay mounted in this process's private mount namespace ----

export function copyFromStopped(
  root: StateRoot,
  record: ContainerRecord,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): void {
  withContainerRoot(root, record, false, (rootFd) => {
    const followFinal = opts.followLink || endsWithSlash(srcPath);
    const fd = openSource(rootFd, srcPath, followFinal);
    if (fd < 0) {
      throw new CpError(`Could not find the file ${srcPath} in container ${record.Name.slice(1)}`);
    }
    const fds = new Fds();
    fds.add(fd);
    try {
      const isRoot = pathParts(srcPath).length === 0;
      const source: Source = { at: { dir: fd, name: "" }, stat: fstat(fd), base: basename(srcPath) || "." };
      if (dest === "-") return tarToStdout(source.at, isRoot ? "." : source.base);
      // the container's / has no name of its own: copy its contents, as docker does
      const given = isRoot && source.stat.type === "dir" && !endsWithDot(srcPath) ? "/." : srcPath;
      copyBySemantics(source, given, hostPlace(resolve(dest), fds), dest, opts);
    } finally {
      fds.closeAll();
    }
  });
}

/** Reads all of stdin synchronously. */
function readStdinSync(onChunk: (chunk: Uint8Array) => void): void {
  const buf = new Uint8Array(1 << 16);
  while (true) {
    const n = Deno.stdin.readSync(buf);
    if (n === null || n === 0) break;
    onChunk(buf.slice(0, n));
  }
}

export function copyToStopped(
  root: StateRoot,
  record: ContainerRecord,
  src: string,
  destPath: string,
  opts: CpOptions,
): void {
  let staged: string | undefined;
  const fds = new Fds();
  let source: Source | null = null;
  if (src !== "-") {
    source = hostSource(resolve(src), opts.followLink, fds);
    if (!source) throw new CpError(`lstat ${resolve(src)}: no such file or directory`);
  } else {
    // unpack the stream on the host first (A's safe unpacker: no entry escapes the directory)
    staged = tmpPath(root, "cp");
    Deno.mkdirSync(staged, { recursive: true, mode: 0o700 });
  }
  try {
    if (staged) {
      const writer = new LayerWriter(staged);
      const tar = new TarReader((entry) => writer.entry(entry));
      readStdinSync((chunk) => {
        if (!tar.ended) tar.push(chunk);
      });
      tar.finish();
      writer.finish();
    }
    withContainerRoot(root, record, true, (rootFd) => {
      const dest = placeInRoot(rootFd, destPath, fds);
      if (staged) {
        if (dest.info?.type !== "dir") {
          throw new CpError(`destination "${record.Name.slice(1)}:${destPath}" must be a directory`);
        }
        const from = fds.add(openHostDir(staged));
        const into = dest.openDir();
        const copyOpts = { preserveOwner: opts.archive, owner: { uid: 0, gid: 0 } };
        for (const name of readDirNames(from)) {
          copyTreeOrFail({ dir: from, name }, { dir: into, name }, copyOpts);
        }
        return;
      }
      copyBySemantics(source!, src, dest, destPath, opts);
    });
  } finally {
    fds.closeAll();
    if (staged) removeIfExists(staged);
  }
}
