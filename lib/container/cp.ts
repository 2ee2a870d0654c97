// `cp`: files between a container and the host, both ways, running or stopped, with docker's path
// rules (trailing "/." copies a directory's contents, a directory lands inside an existing one, a
// file may get a new name) and tar streams on stdin/stdout for "-".
//
// Security: every path inside the container is resolved by resolveInRoot (lstat/readlink per
// component, absolute targets re-rooted), so no symlink in the container leads to the host. A
// running container is reached through /proc/<pid>/root (its own mounts included). A stopped one
// has its overlay mounted in a private mount namespace of this process (unshare(CLONE_NEWNS), mounts
// made private first): the mount is never visible to the host and vanishes with the process. From
// that point on only synchronous APIs are used (see the platform notes), which is why everything
// here is sync, stdin and stdout included.

import { basename, dirname, join, resolve } from "node:path";
import { chdir, CLONE, MNT_DETACH, mount, MS, umount2, unshare } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import { TarReader, type TarWriteEntry, writeTar } from "../image/tar.ts";
import { LayerWriter } from "../image/unpack.ts";
import { containerLockPath } from "../state/containers.ts";
import { removeIfExists, withLockSync } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { copyTree, lstatOrNull, resolveInRoot } from "./fstree.ts";
import { tarEntry } from "./layers.ts";
import { isRunning } from "./ops.ts";

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
 * Runs `fn` with the host path of the container's root: /proc/<pid>/root while it runs, else its
 * overlay mounted (read-only unless `writable`) in this process's private mount namespace, under
 * the container's lock so it is not started meanwhile.
 */
export function withContainerRoot<T>(
  root: StateRoot,
  record: ContainerRecord,
  writable: boolean,
  fn: (rootPath: string) => T,
): T {
  if (isRunning(record)) return fn(`/proc/${record.State.Pid}/root`);
  return withLockSync(containerLockPath(root, record.Id), () => {
    const dir = root.container(record.Id);
    const merged = join(dir, "merged");
    if (!unshared) {
      unshare(CLONE.NEWNS);
      // nothing mounted from here on may propagate back to the host's namespace
      mount(null, "/", null, MS.REC | MS.PRIVATE);
      unshared = true;
    }
    const upper = join(dir, "upper");
    // read-only: the upper dir as the top lower layer, so nothing of the container is written
    let lowers = writable ? record.LowerDirs : [upper, ...record.LowerDirs];
    const options = (l: string[]) =>
      writable
        ? `lowerdir=${l.join(":")},upperdir=${upper},workdir=${join(dir, "work")}`
        : `lowerdir=${l.join(":")}`;
    const cwd = Deno.cwd();
    if (options(lowers).length > 4000) {
      // the mount data is one page: name the layers relative to the layers dir instead
      chdir(root.layers);
      lowers = lowers.map((l) => (l.startsWith(root.layers + "/") ? l.slice(root.layers.length + 1) : l));
    }
    Deno.mkdirSync(merged, { recursive: true });
    try {
      mount("overlay", merged, "overlay", writable ? 0 : MS.RDONLY, options(lowers));
    } finally {
      chdir(cwd);
    }
    try {
      bindContainerMounts(dir, merged, record);
      return fn(merged);
    } finally {
      // detaching the overlay takes the binds on it along
      umount2(merged, MNT_DETACH);
    }
  });
}

/**
 * What a running container sees beyond its overlay, bound into the mounted root as docker does for
 * cp on a stopped container: its /etc/hostname, /etc/hosts and /etc/resolv.conf, and its volumes
 * and bind mounts. Mount points resolve inside the root; missing ones are skipped (never created).
 */
function bindContainerMounts(dir: string, merged: string, record: ContainerRecord): void {
  const binds: [source: string, destination: string][] = ["hostname", "hosts", "resolv.conf"]
    .map((name) => [join(dir, name), `/etc/${name}`]);
  for (const m of record.Mounts ?? []) {
    if (m.Type !== "tmpfs" && m.Source) binds.push([m.Source, m.Destination]);
  }
  for (const [source, destination] of binds) {
    const target = resolveInRoot(merged, destination);
    const sourceInfo = lstatOrNull(source), targetInfo = lstatOrNull(target);
    if (!sourceInfo || !targetInfo || sourceInfo.isDirectory !== targetInfo.isDirectory) continue;
    mount(source, target, null, MS.BIND | MS.REC);
  }
}

/** Writes all bytes to stdout, synchronously. */
function writeStdout(bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** Tar entries of a tree (names rooted at `name`), links kept as links. */
function* treeEntries(
  abs: string,
  name: string,
  info: Deno.FileInfo,
  links: Map<string, string>,
): Generator<TarWriteEntry> {
  const entry = tarEntry(abs, name, info, links);
  if (entry) yield entry;
  if (!info.isDirectory) return;
  for (const child of [...Deno.readDirSync(abs)].map((e) => e.name).sort()) {
    yield* treeEntries(`${abs}/${child}`, `${name}/${child}`, Deno.lstatSync(`${abs}/${child}`), links);
  }
}

const endsWithDot = (p: string) => p === "." || p.endsWith("/.");
const endsWithSlash = (p: string) => p.endsWith("/") || endsWithDot(p);

/**
 * Copies `srcAbs` (a host path: on the host or inside the container root, already resolved) to the
 * destination by docker's rules. `destAbs` is the resolved destination, `destGiven` the path as the
 * user wrote it (trailing slash matters), `srcGiven` likewise.
 */
function copyBySemantics(
  srcAbs: string,
  srcInfo: Deno.FileInfo,
  srcGiven: string,
  destAbs: string,
  destGiven: string,
  opts: CpOptions,
): void {
  const copyOpts = { preserveOwner: opts.archive, owner: { uid: 0, gid: 0 }, followTop: opts.followLink };
  const destInfo = statFollow(destAbs);
  if (srcInfo.isDirectory) {
    if (!destInfo) {
      requireParent(destAbs, destGiven);
      copyTree(srcAbs, destAbs, copyOpts);
    } else if (!destInfo.isDirectory) {
      throw new CpError(`cannot copy a directory to a file: ${destGiven}`);
    } else if (endsWithDot(srcGiven)) {
      for (const e of Deno.readDirSync(srcAbs)) {
        copyTree(`${srcAbs}/${e.name}`, `${destAbs}/${e.name}`, copyOpts);
      }
    } else {
      copyTree(srcAbs, `${destAbs}/${basename(srcAbs)}`, copyOpts);
    }
    return;
  }
  if (endsWithSlash(srcGiven)) throw new CpError(`${srcGiven}: not a directory`);
  if (!destInfo) {
    if (endsWithSlash(destGiven)) throw new CpError(`destination "${destGiven}" must be a directory`);
    requireParent(destAbs, destGiven);
    copyTree(srcAbs, destAbs, copyOpts);
  } else if (destInfo.isDirectory) {
    copyTree(srcAbs, `${destAbs}/${basename(srcAbs)}`, copyOpts);
  } else {
    if (endsWithSlash(destGiven)) throw new CpError(`destination "${destGiven}" must be a directory`);
    copyTree(srcAbs, destAbs, copyOpts);
  }
}

/** stat that follows a final symlink only when it stays a plain host lookup (resolved paths). */
function statFollow(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return lstatOrNull(path);
  }
}

function requireParent(destAbs: string, destGiven: string): void {
  if (!statFollow(dirname(destAbs))?.isDirectory) {
    throw new CpError(`no such directory: ${dirname(destGiven) || "."}`);
  }
}

/** `cp CONTAINER:SRC DEST` (DEST "-" writes a tar stream to stdout). */
export function copyFromContainer(
  root: StateRoot,
  record: ContainerRecord,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): void {
  withContainerRoot(root, record, false, (croot) => {
    const followFinal = opts.followLink || endsWithSlash(srcPath);
    const srcAbs = resolveInRoot(croot, srcPath, followFinal);
    const srcInfo = lstatOrNull(srcAbs);
    if (!srcInfo) {
      throw new CpError(`Could not find the file ${srcPath} in container ${record.Name.slice(1)}`);
    }
    if (dest === "-") {
      const name = srcAbs === croot ? "." : basename(srcAbs);
      for (const entry of treeEntries(srcAbs, name, srcInfo, new Map())) {
        writeStdout(writeTar([entry], { endMarker: false }));
      }
      writeStdout(new Uint8Array(1024));
      return;
    }
    if (srcInfo.isDirectory && srcAbs === croot && !endsWithDot(srcPath)) {
      // the container's / has no name of its own: copy its contents, as docker does
      return copyBySemantics(srcAbs, srcInfo, "/.", resolve(dest), dest, opts);
    }
    copyBySemantics(srcAbs, srcInfo, srcPath, resolve(dest), dest, opts);
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

/** `cp SRC CONTAINER:DEST` (SRC "-" reads a tar stream from stdin into the directory DEST). */
export function copyToContainer(
  root: StateRoot,
  record: ContainerRecord,
  src: string,
  destPath: string,
  opts: CpOptions,
): void {
  let staged: string | undefined;
  let srcAbs = src === "-" ? "" : resolve(src);
  let srcInfo: Deno.FileInfo | null = null;
  if (src !== "-") {
    srcInfo = opts.followLink ? statFollow(srcAbs) : lstatOrNull(srcAbs);
    if (!srcInfo) throw new CpError(`lstat ${srcAbs}: no such file or directory`);
  } else {
    // unpack the stream on the host first (A's safe unpacker: no entry escapes the directory)
    staged = join(root.tmp, `cp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
    Deno.mkdirSync(staged, { recursive: true, mode: 0o700 });
    srcAbs = staged;
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
    withContainerRoot(root, record, true, (croot) => {
      const destAbs = resolveInRoot(croot, destPath, true);
      if (staged) {
        if (!statFollow(destAbs)?.isDirectory) {
          throw new CpError(`destination "${record.Name.slice(1)}:${destPath}" must be a directory`);
        }
        const copyOpts = { preserveOwner: opts.archive, owner: { uid: 0, gid: 0 } };
        for (const e of Deno.readDirSync(staged)) {
          copyTree(`${staged}/${e.name}`, `${destAbs}/${e.name}`, copyOpts);
        }
        return;
      }
      copyBySemantics(srcAbs, srcInfo!, src, destAbs, destPath, opts);
    });
  } finally {
    if (staged) removeIfExists(staged);
  }
}
