// `cp`: files between a container and the host, both ways, running or stopped, with docker's path
// rules (trailing "/." copies a directory's contents, a directory lands inside an existing one, a
// file may get a new name) and tar streams on stdin/stdout for "-".
//
// Security: a path inside the container never resolves to the host.
// - Running container: the container side runs in a `skiff __cp` helper that joined the container's
//   mount namespace (cphelper.ts), so the kernel resolves every path, symlinks included, inside the
//   container, even against a container process that swaps directories for symlinks meanwhile.
//   Host data and container data meet only as tar streams over pipes.
// - Stopped container: nothing in it runs, so paths are resolved by resolveInRoot (lstat/readlink per
//   component, absolute targets re-rooted). Its overlay is mounted in a private mount namespace of
//   this process (unshare(CLONE_NEWNS), mounts made private first): the mount is never visible to the
//   host and vanishes with the process. From then on only synchronous APIs are used (platform
//   notes), which is why that path is sync, stdin and stdout included.

import { basename, dirname, join, resolve } from "node:path";
import { chdir, CLONE, MNT_DETACH, mount, MS, umount2, unshare } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import { TarReader, writeTar } from "../image/tar.ts";
import { LayerWriter } from "../image/unpack.ts";
import { containerLockPath } from "../state/containers.ts";
import { removeIfExists, tmpPath, withLockSync } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { copyTree, lstatOrNull, pathParts, resolveInRoot } from "./fstree.ts";
import { treeEntries } from "./cphelper.ts";
import { selfCommand } from "../runtime/self.ts";
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
 * Runs `fn` with the host path of a stopped container's root: its overlay mounted (read-only unless
 * `writable`) in this process's private mount namespace, under the container's lock so it is not
 * started meanwhile. (A running container's is /proc/<pid>/root: for reading only, e.g. tests.)
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
export async function copyFromContainer(
  root: StateRoot,
  record: ContainerRecord,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): Promise<void> {
  if (isRunning(record)) await copyFromRunning(root, record, srcPath, dest, opts);
  else copyFromStopped(root, record, srcPath, dest, opts);
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
  else copyToStopped(root, record, src, destPath, opts);
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
    const info = Deno.lstatSync(top);
    // "/" has no name of its own: its contents are copied, as docker does
    const given = path === "/" && !endsWithDot(srcPath) ? "/." : srcPath;
    copyBySemantics(top, info, given, resolve(dest), dest, { ...opts, followLink: false });
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
  const srcInfo = opts.followLink ? statFollow(srcAbs) : lstatOrNull(srcAbs);
  if (!srcInfo) throw new CpError(`lstat ${srcAbs}: no such file or directory`);
  if (!srcInfo.isDirectory && endsWithSlash(src)) throw new CpError(`${src}: not a directory`);
  // one helper decides where it lands (it sees the destination as the container does) and extracts
  const kind = !srcInfo.isDirectory ? "file" : endsWithDot(src) ? "contents" : "dir";
  const tops: [abs: string, name: string][] = kind === "contents"
    ? [...Deno.readDirSync(srcAbs)].map((e) => [`${srcAbs}/${e.name}`, e.name] as [string, string])
    : [[srcAbs, basename(srcAbs)]];
  const child = helper(root, record, ["in", dest, archive, kind, destSlash, shown], {
    stdin: "piped",
    stdout: "inherit",
  });
  const done = helperDone(child, "cp");
  const writer = child.stdin.getWriter();
  try {
    const links = new Map<string, string>();
    for (const [abs, name] of tops) {
      const info = abs === srcAbs ? srcInfo : Deno.lstatSync(abs);
      for (const entry of treeEntries(abs, name, info, links)) {
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
}

// ---- stopped: the overlay mounted in this process's private mount namespace ----

function copyFromStopped(
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

function copyToStopped(
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
    staged = tmpPath(root, "cp");
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
