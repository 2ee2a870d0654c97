// The container's filesystem, built by the init stage inside its fresh mount namespace: overlay root,
// /proc, /sys, a minimal /dev, the per-container /etc files, docker's masked and read-only paths,
// then pivot_root. Sync APIs and FFI only (this runs after unshare).

import {
  AT_RECURSIVE,
  chdir,
  makedev,
  mknod,
  MNT_DETACH,
  mount,
  MOUNT_ATTR_RDONLY,
  mountSetattr,
  MS,
  pivotRoot,
  S_IFCHR,
  SysError,
  umount2,
} from "../../ffi/mod.ts";
import { fchmodFd, fchownFd } from "../../ffi/libc.ts";
import {
  checkAt,
  closeFd,
  fstat,
  OAT,
  openHostDir,
  readDirNames,
  releaseReopen,
  tryOpenInRoot,
} from "../fs/at.ts";
import { copyDirContents } from "../fs/tree.ts";
import { type InitSpec, overlayMountData, type OverlayPlan } from "./spec.ts";

const DEVICES: [name: string, major: number, minor: number][] = [
  ["null", 1, 3],
  ["zero", 1, 5],
  ["full", 1, 7],
  ["random", 1, 8],
  ["urandom", 1, 9],
  ["tty", 5, 0],
];

function mkdirp(path: string): void {
  Deno.mkdirSync(path, { recursive: true });
}

/** Creates an empty file (and its parents) to bind a file over, unless something is there already. */
function touch(path: string): void {
  try {
    Deno.lstatSync(path);
  } catch {
    mkdirp(path.slice(0, path.lastIndexOf("/")) || "/");
    Deno.writeFileSync(path, new Uint8Array(), { mode: 0o644 });
  }
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/**
 * The host path of `path` inside the container's `root`, following the image's symlinks as if `root`
 * were / (runc's securejoin): a hostile image's `/etc/hosts -> /etc/shadow` must resolve to the
 * container's own /etc/shadow, never to the host's. Missing components are kept as named.
 */
export function resolveInRoot(root: string, path: string): string {
  const pending = path.split("/").filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      resolved.pop(); // never above root
      continue;
    }
    const candidate = `${root}/${[...resolved, part].join("/")}`;
    let target: string | undefined;
    try {
      if (Deno.lstatSync(candidate).isSymlink) target = Deno.readLinkSync(candidate);
    } catch { /* missing: taken as named */ }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > 255) throw new Error(`too many levels of symbolic links in ${path}`);
    if (target.startsWith("/")) resolved.length = 0;
    pending.unshift(...target.split("/").filter(Boolean));
  }
  return resolved.length ? `${root}/${resolved.join("/")}` : root;
}

/** A bind mount that is then made read-only (a bind mount ignores MS_RDONLY on creation). */
function bindReadOnly(path: string): void {
  mount(path, path, null, MS.BIND | MS.REC);
  // keep proc's nosuid/nodev/noexec: a remount replaces every per-mount flag
  mount(path, path, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.REC | MS.NOSUID | MS.NODEV | MS.NOEXEC);
}

/** --privileged: every device node at the top of the host's /dev, as docker gives it. */
function copyHostDevices(dev: string): void {
  for (const entry of Deno.readDirSync("/dev")) {
    const target = `${dev}/${entry.name}`;
    // the host's console stays the host's; a -t container gets its pty there instead
    if (entry.name === "console" || entry.isDirectory || entry.isSymlink || statOrNull(target)) continue;
    const info = statOrNull(`/dev/${entry.name}`);
    if (!info || !(info.isCharDevice || info.isBlockDevice) || info.rdev === null) continue;
    // st_mode carries the node type and permissions; st_rdev is the dev_t mknod wants
    mknod(target, info.mode ?? 0, BigInt(info.rdev));
    Deno.chownSync(target, info.uid, info.gid);
  }
}

function mountDev(dev: string, ttySlave: string | undefined, privileged: boolean, shmSize: number): void {
  mkdirp(dev);
  mount("tmpfs", dev, "tmpfs", MS.NOSUID | MS.STRICTATIME, "mode=755,size=65536k");
  for (const [name, major, minor] of DEVICES) mknod(`${dev}/${name}`, S_IFCHR | 0o666, makedev(major, minor));
  mkdirp(`${dev}/pts`);
  mount("devpts", `${dev}/pts`, "devpts", MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  Deno.symlinkSync("pts/ptmx", `${dev}/ptmx`);
  mkdirp(`${dev}/shm`);
  mount("shm", `${dev}/shm`, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${shmSize}`);
  mkdirp(`${dev}/mqueue`);
  try {
    mount("mqueue", `${dev}/mqueue`, "mqueue", MS.NOSUID | MS.NODEV | MS.NOEXEC);
  } catch { /* optional: kernels without POSIX message queues */ }
  Deno.symlinkSync("/proc/self/fd", `${dev}/fd`);
  Deno.symlinkSync("/proc/self/fd/0", `${dev}/stdin`);
  Deno.symlinkSync("/proc/self/fd/1", `${dev}/stdout`);
  Deno.symlinkSync("/proc/self/fd/2", `${dev}/stderr`);
  // runc links /dev/core only where the kernel has a /proc/kcore (CONFIG_PROC_KCORE)
  if (statOrNull("/proc/kcore")) Deno.symlinkSync("/proc/kcore", `${dev}/core`);
  if (ttySlave) {
    touch(`${dev}/console`);
    mount(ttySlave, `${dev}/console`, null, MS.BIND);
  }
  if (privileged) copyHostDevices(dev);
}

function maskPath(root: string, path: string): void {
  const target = resolveInRoot(root, path);
  const info = statOrNull(target);
  if (!info) return;
  if (info.isDirectory) mount("tmpfs", target, "tmpfs", MS.RDONLY);
  else mount(`${resolveInRoot(root, "/dev")}/null`, target, null, MS.BIND);
}

/**
 * /sys/fs/cgroup as runc shows it: the container's own cgroup directories bound on a tmpfs (or the
 * one cgroup2 directory bound there), read-only unless privileged.
 */
function mountCgroupView(sys: string, view: NonNullable<InitSpec["cgroupView"]>, privileged: boolean): void {
  // the view names container paths below /sys: map them below our own fresh sysfs mount
  const target = (path: string) => `${sys}${path.slice("/sys".length)}`;
  const readOnly = (path: string) =>
    mount(path, path, null, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
  const onTmpfs = !view.binds.some((b) => b.target === "/sys/fs/cgroup");
  if (onTmpfs) {
    mount("tmpfs", target("/sys/fs/cgroup"), "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=755");
    for (const bind of view.binds) mkdirp(target(bind.target));
    for (const link of view.symlinks) Deno.symlinkSync(link.target, target(link.link));
  }
  for (const bind of view.binds) {
    mount(bind.source, target(bind.target), null, MS.BIND);
    if (!privileged) readOnly(target(bind.target));
  }
  if (onTmpfs && !privileged) {
    mount(null, target("/sys/fs/cgroup"), null, MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
  }
}

const TMPFS_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: 16,
  dirsync: 128,
  noatime: 1024,
  nodiratime: 2048,
  relatime: 1 << 21,
  strictatime: MS.STRICTATIME,
};
/** Options that turn a flag above off again. */
const TMPFS_CLEARS: Record<string, number> = {
  rw: MS.RDONLY,
  suid: MS.NOSUID,
  dev: MS.NODEV,
  exec: MS.NOEXEC,
};

/** --tmpfs PATH[:OPTIONS]: docker's defaults are noexec,nosuid,nodev; options may override them. */
function mountTmpfs(target: string, options: string): void {
  let flags = MS.NOEXEC | MS.NOSUID | MS.NODEV;
  const data: string[] = [];
  for (const option of options.split(",").filter(Boolean)) {
    if (option in TMPFS_FLAGS) flags |= TMPFS_FLAGS[option];
    else if (option in TMPFS_CLEARS) flags &= ~TMPFS_CLEARS[option];
    else data.push(option); // size=, mode=, uid=, gid=, nr_inodes=: for tmpfs itself
  }
  mkdirp(target);
  mount("tmpfs", target, "tmpfs", flags, data.join(",") || null);
}

/**
 * -v binds and volumes, parents before children. A volume that is still empty first gets the image's
 * files at its destination (docker's copy-up; the volume store's copyUpIfEmpty does the same).
 */
function mountVolumes(root: string, mounts: InitSpec["mounts"]): void {
  const depth = (path: string) => path.split("/").filter(Boolean).length;
  for (const m of [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination))) {
    const target = resolveInRoot(root, m.destination);
    const source = Deno.statSync(m.source);
    if (source.isDirectory) mkdirp(target);
    else touch(target);
    if (m.copyUp && source.isDirectory) copyUpIfEmpty(m.source, root, m.destination);
    const recursive = m.recursive ?? "enabled";
    mount(m.source, target, null, MS.BIND | (recursive === "disabled" ? 0 : MS.REC));
    if (m.readOnly) makeReadOnly(target, recursive);
  }
}

/**
 * A read-only bind as docker 25 makes it. A remount changes the top mount only (MS_REC does not
 * carry MS_RDONLY down): a tmpfs mounted under the source would stay writable. mount_setattr
 * (Linux 5.12+) makes the whole tree read-only; on an older kernel docker's default ("enabled")
 * falls back to the top mount alone, bind-recursive=readonly refuses, and "writable" asks for the
 * top mount alone (docker 24).
 */
function makeReadOnly(target: string, recursive: "enabled" | "disabled" | "writable" | "readonly"): void {
  mount(target, target, null, MS.BIND | MS.REMOUNT | MS.RDONLY);
  if (recursive === "writable" || recursive === "disabled") return;
  try {
    mountSetattr(target, AT_RECURSIVE, MOUNT_ATTR_RDONLY);
  } catch (e) {
    if (!(e instanceof SysError && e.code === "ENOSYS")) throw e;
    if (recursive === "readonly") {
      throw new Error(
        `cannot make ${target} recursively read-only: the kernel has no mount_setattr (Linux 5.12+)`,
      );
    }
  }
}

/**
 * docker's copy-up into an empty volume, done on directory fds: the image's directory opened inside
 * the root (RESOLVE_IN_ROOT), the volume by its host path (skiff's own), and every file created
 * relative to a directory fd we hold (lib/fs). Another container that shares the volume may swap
 * any name in it for a symlink meanwhile: nothing is followed, nothing leaves the volume.
 */
function copyUpIfEmpty(volume: string, root: string, destination: string): void {
  const rootFd = openHostDir(root);
  const image = tryOpenInRoot(rootFd, destination, OAT.RDONLY | OAT.DIRECTORY);
  closeFd(rootFd);
  if (image < 0) return; // missing or not a directory in the image
  const volumeFd = openHostDir(volume);
  try {
    if (readDirNames(volumeFd).length > 0) return;
    copyDirContents(image, volumeFd, { preserveOwner: true });
    // the volume's root takes the directory's owner and mode, as docker does
    const dir = fstat(image);
    checkAt("fchown", fchownFd(volumeFd, dir.uid, dir.gid));
    checkAt("fchmod", fchmodFd(volumeFd, dir.perm));
  } finally {
    closeFd(volumeFd);
    closeFd(image);
    releaseReopen(); // the host's /proc/self/fd, opened to read the image's files
  }
}

/**
 * Mounts an overlay plan at `plan.target` with `flags` (MS_*): the container's root here, a stopped
 * container's for cp. Lowerdirs too long for the mount data are named through symlinks in `linkDir`
 * (made here; the working directory is restored after).
 */
export function mountOverlay(plan: OverlayPlan, linkDir: string, flags = 0): void {
  const { data, links } = overlayMountData(plan);
  if (!links) {
    mount("overlay", plan.target, "overlay", flags, data);
    return;
  }
  Deno.mkdirSync(linkDir, { recursive: true });
  links.forEach((dir, i) => {
    try {
      Deno.removeSync(`${linkDir}/${i}`);
    } catch { /* first use */ }
    Deno.symlinkSync(dir, `${linkDir}/${i}`);
  });
  const cwd = Deno.cwd();
  chdir(linkDir);
  try {
    mount("overlay", plan.target, "overlay", flags, data);
  } finally {
    chdir(cwd);
  }
}

function mountRootOverlay(spec: InitSpec): void {
  const plan = {
    lowerDirs: spec.lowerDirs,
    upperDir: spec.upperDir,
    workDir: spec.workDir,
    target: spec.mergedDir,
  };
  mountOverlay(plan, `${spec.containerDir}/lower`);
}

/** Mounts everything below `spec.mergedDir`, then makes it the root and changes into it. */
export function setupRootfs(spec: InitSpec): void {
  const root = spec.mergedDir;
  // nothing we mount may propagate back to the host
  mount(null, "/", null, MS.REC | MS.PRIVATE);
  mountRootOverlay(spec);

  // every mount point comes from the image: resolve it inside the root
  const proc = resolveInRoot(root, "/proc");
  mkdirp(proc);
  mount("proc", proc, "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC);
  const sys = resolveInRoot(root, "/sys");
  mkdirp(sys);
  // read-only unless --privileged, as docker does
  const sysReadOnly = spec.privileged ? 0 : MS.RDONLY;
  mount("sysfs", sys, "sysfs", MS.NOSUID | MS.NODEV | MS.NOEXEC | sysReadOnly);
  if (spec.cgroupView) mountCgroupView(sys, spec.cgroupView, spec.privileged);
  mountDev(resolveInRoot(root, "/dev"), spec.ttySlave, spec.privileged, spec.shmSize);
  for (const { path, options } of spec.tmpfs) mountTmpfs(resolveInRoot(root, path), options);
  mountVolumes(root, spec.mounts);

  for (const name of ["hostname", "hosts", "resolv.conf"]) {
    const target = resolveInRoot(root, `/etc/${name}`);
    touch(target);
    mount(`${spec.containerDir}/${name}`, target, null, MS.BIND);
  }

  if (!spec.privileged) {
    for (const path of spec.maskedPaths) maskPath(root, path);
    for (const path of spec.readonlyPaths) {
      const target = resolveInRoot(root, path);
      if (statOrNull(target)) bindReadOnly(target);
    }
  }

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours
  chdir(root);
  pivotRoot(".", ".");
  umount2(".", MNT_DETACH);
  chdir("/");
}

/** --read-only: the overlay root becomes read-only; /dev, /proc and the /etc binds stay as they are. */
export function makeRootReadOnly(): void {
  mount(null, "/", null, MS.BIND | MS.REMOUNT | MS.RDONLY);
}

/** Creates the working directory when the image lacks it (docker does), then changes into it. */
export function enterWorkingDir(path: string): void {
  try {
    chdir(path);
  } catch (e) {
    if (!(e instanceof SysError) || e.code !== "ENOENT") throw e;
    mkdirp(path);
    chdir(path);
  }
}
