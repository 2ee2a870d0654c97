// The container's filesystem, built by the init stage inside its fresh mount namespace: overlay root,
// /proc, /sys, a minimal /dev, the per-container /etc files, docker's masked and read-only paths,
// then pivot_root. Sync APIs and FFI only (this runs after unshare).

import { chdir, makedev, mount, MS, S_IFCHR, SysError } from "../../ffi/mod.ts";
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  fchownAt,
  fstatfsType,
  mkdirAt,
  mknodAt,
  openAt,
  setRawAtCalls,
  statxAt,
  symlinkAt,
} from "../../ffi/libc.ts";
import { checkAt, closeFd, fstat, OAT, openHostDir, readDirNames, releaseReopen, statAt } from "../fs/at.ts";
import { type ReadOnly, RootMounts, type TargetKind } from "../fs/mount_at.ts";
import { type InitSpec, overlayMountData, type OverlayPlan } from "./spec.ts";
import { makeDevices } from "./limits_stage.ts";
import { openPtyIn, type PtyPair } from "./console.ts";

const DEVICES: [name: string, major: number, minor: number][] = [
  ["null", 1, 3],
  ["zero", 1, 5],
  ["full", 1, 7],
  ["random", 1, 8],
  ["urandom", 1, 9],
  ["tty", 5, 0],
];

const TMPFS_MAGIC = 0x01021994;

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** Creates `name` in the directory fd (mknodat, symlinkat, mkdirat); a failure names the container path. */
function made(call: string, result: number, shown: string): void {
  checkAt(call, result, shown);
}

/** --privileged: every device node at the top of the host's /dev, as docker gives it. */
function copyHostDevices(devFd: number): void {
  for (const entry of Deno.readDirSync("/dev")) {
    // the host's console stays the host's; a -t container gets its pty there instead
    if (entry.name === "console" || entry.isDirectory || entry.isSymlink || statAt(devFd, entry.name)) {
      continue;
    }
    const info = statOrNull(`/dev/${entry.name}`);
    if (!info || !(info.isCharDevice || info.isBlockDevice) || info.rdev === null) continue;
    // st_mode carries the node type and permissions; st_rdev is the dev_t mknod wants
    made("mknodat", mknodAt(devFd, entry.name, info.mode ?? 0, BigInt(info.rdev)), `/dev/${entry.name}`);
    made(
      "fchownat",
      fchownAt(devFd, entry.name, info.uid ?? 0, info.gid ?? 0, AT_SYMLINK_NOFOLLOW),
      `/dev/${entry.name}`,
    );
  }
}

/** A new filesystem on `path` in the root (created as a directory when missing). */
function mountFsAt(
  m: RootMounts,
  fstype: string,
  source: string,
  path: string,
  flags: number,
  data: string | null,
) {
  const target = m.target(path, "dir");
  try {
    m.mountFs(fstype, source, target, flags, data, path);
  } finally {
    closeFd(target);
  }
}

/** Mounts /dev; with `console` (-t) also makes the container's pty (returned) and /dev/console. */
function mountDev(
  m: RootMounts,
  console: boolean,
  privileged: boolean,
  shmSize: number,
  shm?: InitSpec["shm"],
): PtyPair | undefined {
  const covered = m.target("/dev", "dir");
  let devFd: number;
  try {
    m.mountFs("tmpfs", "tmpfs", covered, MS.NOSUID | MS.STRICTATIME, "mode=755,size=65536k", "/dev");
    // the fresh tmpfs itself: every node and link below is made relative to it
    devFd = m.reopenMounted("/dev", covered);
  } finally {
    closeFd(covered);
  }
  try {
    if (fstatfsType(devFd) !== TMPFS_MAGIC) throw new Error("/dev is not the tmpfs just mounted");
    for (const [name, major, minor] of DEVICES) {
      made("mknodat", mknodAt(devFd, name, S_IFCHR | 0o666, makedev(major, minor)), `/dev/${name}`);
    }
    for (
      const [name, fstype, flags, data] of [
        ["pts", "devpts", MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"],
        ["shm", "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${shmSize}`],
        ["mqueue", "mqueue", MS.NOSUID | MS.NODEV | MS.NOEXEC, null],
      ] as const
    ) {
      if (name === "shm" && shm?.kind === "none") continue; // --ipc none: no /dev/shm at all (docker)
      made("mkdirat", mkdirAt(devFd, name, 0o755), `/dev/${name}`);
      const target = openDirPath(devFd, name);
      try {
        // --ipc host, shareable and container:NAME: a host-side tmpfs (or the host's) shared by bind
        if (name === "shm" && shm?.kind === "bind") {
          m.bind(shm.source, target, "/dev/shm", { recursive: false, inFreshMount: true });
          continue;
        }
        m.mountFs(fstype, fstype === "tmpfs" ? "shm" : fstype, target, flags, data, `/dev/${name}`, true);
      } catch (e) {
        if (name !== "mqueue") throw e; // optional: kernels without POSIX message queues
      } finally {
        closeFd(target);
      }
    }
    const links: [string, string][] = [
      ["ptmx", "pts/ptmx"],
      ["fd", "/proc/self/fd"],
      ["stdin", "/proc/self/fd/0"],
      ["stdout", "/proc/self/fd/1"],
      ["stderr", "/proc/self/fd/2"],
    ];
    // runc links /dev/core only where the kernel has a /proc/kcore (CONFIG_PROC_KCORE)
    if (statOrNull("/proc/kcore")) links.push(["core", "/proc/kcore"]);
    for (const [name, target] of links) made("symlinkat", symlinkAt(target, devFd, name), `/dev/${name}`);
    const pty = console ? makeConsole(m, devFd) : undefined;
    if (privileged) copyHostDevices(devFd);
    return pty;
  } finally {
    closeFd(devFd);
  }
}

/**
 * -t: a pty of the devpts just mounted at /dev/pts (console.ts), its slave bound on /dev/console as
 * runc binds it. Everything by fd: "pts" and "console" are names in the fresh /dev tmpfs.
 */
function makeConsole(m: RootMounts, devFd: number): PtyPair {
  const ptsFd = checkAt(
    "openat",
    openAt(devFd, "pts", OAT.RDONLY | OAT.DIRECTORY | OAT.NOFOLLOW | OAT.CLOEXEC),
  );
  let pty: PtyPair;
  try {
    pty = openPtyIn(ptsFd);
  } finally {
    closeFd(ptsFd);
  }
  try {
    const console = openAt(
      devFd,
      "console",
      OAT.WRONLY | OAT.CREAT | OAT.EXCL | OAT.NOFOLLOW | OAT.CLOEXEC,
      0o644,
    );
    made("openat", console, "/dev/console");
    closeFd(console);
    const target = openDirPath(devFd, "console");
    try {
      m.bind({ dirFd: pty.slave, name: "" }, target, "/dev/console", {
        recursive: false,
        inFreshMount: true,
      });
    } finally {
      closeFd(target);
    }
    return pty;
  } catch (e) {
    closeFd(pty.master);
    closeFd(pty.slave);
    throw e;
  }
}

/** An O_PATH fd of a name we just made in a directory fd (never through a symlink). */
function openDirPath(dirFd: number, name: string): number {
  return checkAt("openat", openAt(dirFd, name, OAT.PATH | OAT.NOFOLLOW | OAT.CLOEXEC), name);
}

/** docker's masked paths: a directory gets an empty read-only tmpfs, anything else /dev/null. */
function maskPath(m: RootMounts, path: string): void {
  const target = m.tryOpen(path);
  if (target < 0) return; // missing (or unreachable): nothing to hide
  try {
    if (fstat(target).type === "dir") m.mountFs("tmpfs", "tmpfs", target, MS.RDONLY, null, path);
    else {
      const dev = m.tryOpen("/dev", OAT.PATH | OAT.DIRECTORY);
      try {
        m.bind({ dirFd: checkAt("openat2", dev, "/dev"), name: "null" }, target, path, { recursive: false });
      } finally {
        if (dev >= 0) closeFd(dev);
      }
    }
  } finally {
    closeFd(target);
  }
}

/** docker's read-only paths: a read-only bind of the path onto itself (keeping proc's nosuid/nodev/noexec). */
function readOnlyPath(m: RootMounts, path: string): void {
  const target = m.tryOpen(path);
  if (target < 0) return;
  try {
    m.bind({ dirFd: target, name: "" }, target, path, {
      readOnly: "tree-if-possible",
      lockdown: true,
    });
  } finally {
    closeFd(target);
  }
}

/**
 * /sys/fs/cgroup as runc shows it: the container's own cgroup directories bound on a tmpfs (or the
 * one cgroup2 directory bound there), read-only unless privileged.
 */
function mountCgroupView(
  m: RootMounts,
  view: NonNullable<InitSpec["cgroupView"]>,
  privileged: boolean,
): void {
  const readOnly = privileged ? "no" : "top";
  const onTmpfs = !view.binds.some((b) => b.target === "/sys/fs/cgroup");
  if (!onTmpfs) {
    for (const bind of view.binds) bindAt(m, bind.source, bind.target, "dir", readOnly, true);
    return;
  }
  const covered = m.target("/sys/fs/cgroup", "dir");
  let cgroupFd: number;
  try {
    m.mountFs("tmpfs", "tmpfs", covered, MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=755", "/sys/fs/cgroup");
    cgroupFd = m.reopenMounted("/sys/fs/cgroup", covered);
  } finally {
    closeFd(covered);
  }
  try {
    // the view names container paths below /sys/fs/cgroup: made relative to the new tmpfs
    const below = (path: string) => path.slice("/sys/fs/cgroup/".length);
    for (const bind of view.binds) {
      made("mkdirat", mkdirAt(cgroupFd, below(bind.target), 0o755), bind.target);
      const target = openDirPath(cgroupFd, below(bind.target));
      try {
        m.bind(bind.source, target, bind.target, {
          recursive: false,
          readOnly,
          lockdown: true,
          inFreshMount: true,
        });
      } finally {
        closeFd(target);
      }
    }
    for (const link of view.symlinks) {
      made("symlinkat", symlinkAt(link.target, cgroupFd, below(link.link)), link.link);
    }
    if (!privileged) {
      m.remount(cgroupFd, MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, "/sys/fs/cgroup");
    }
  } finally {
    closeFd(cgroupFd);
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
function mountTmpfs(m: RootMounts, path: string, options: string): void {
  let flags = MS.NOEXEC | MS.NOSUID | MS.NODEV;
  const data: string[] = [];
  for (const option of options.split(",").filter(Boolean)) {
    if (option in TMPFS_FLAGS) flags |= TMPFS_FLAGS[option];
    else if (option in TMPFS_CLEARS) flags &= ~TMPFS_CLEARS[option];
    else data.push(option); // size=, mode=, uid=, gid=, nr_inodes=: for tmpfs itself
  }
  mountFsAt(m, "tmpfs", "tmpfs", path, flags, data.join(",") || null);
}

/** A bind of a host path onto `path` in the root (created as `kind` when missing). */
function bindAt(
  m: RootMounts,
  source: string,
  path: string,
  kind: TargetKind,
  readOnly: ReadOnly,
  lockdown = false,
): void {
  const target = m.target(path, kind);
  try {
    m.bind(source, target, path, { recursive: false, readOnly, lockdown });
  } finally {
    closeFd(target);
  }
}

/**
 * -v binds and volumes and --tmpfs mounts, parents before children (docker sorts them together: a
 * tmpfs at /a/b goes on top of a volume at /a). On a record of an older skiff (spec.ts copyUp), a
 * volume that is still empty first gets the image's files at its destination (docker's copy-up,
 * which skiff now does at create: volume/copyup.ts).
 */
function mountVolumes(
  m: RootMounts,
  mounts: InitSpec["mounts"],
  tmpfs: InitSpec["tmpfs"],
  jobs: CopyUp[],
): void {
  const depth = (path: string) => path.split("/").filter(Boolean).length;
  const all = [
    ...mounts.map((v) => ({ destination: v.destination, volume: v, tmpfs: undefined })),
    ...tmpfs.map((t) => ({ destination: t.path, volume: undefined, tmpfs: t })),
  ];
  for (
    const { destination, volume, tmpfs } of all.sort((a, b) => depth(a.destination) - depth(b.destination))
  ) {
    if (tmpfs) {
      mountTmpfs(m, tmpfs.path, tmpfs.options);
      continue;
    }
    const v = volume!;
    refuseProcDestination(v.source, destination); // before anything is made there
    const isDir = Deno.statSync(v.source).isDirectory; // a host path skiff or the user chose
    const target = m.target(destination, isDir ? "dir" : "file");
    try {
      refuseProcDestination(v.source, destination, target); // where the path led, symlinks and all
      const job = v.copyUp && isDir ? copyUpIfEmpty(v.source, target) : undefined;
      if (job) jobs.push(job);
      const recursive = v.recursive ?? "enabled";
      const readOnly: ReadOnly = !v.readOnly
        ? "no"
        : recursive === "writable" || recursive === "disabled"
        ? "top"
        : recursive === "readonly"
        ? "tree"
        : "tree-if-possible";
      m.bind(v.source, target, destination, { recursive: recursive !== "disabled", readOnly });
    } finally {
      closeFd(target);
    }
  }
}

/** A mount runc refuses (checkProcMount): docker's daemon reports it as its runtime's, exit 125. */
export class MountRefused extends Error {}

/** The files lxcfs stands in for: the only places below /proc that runc lets a bind go. */
const LXCFS_PROC_FILES = new Set([
  "/proc/cpuinfo",
  "/proc/diskstats",
  "/proc/meminfo",
  "/proc/stat",
  "/proc/swaps",
  "/proc/uptime",
  "/proc/loadavg",
  "/proc/slabinfo",
  "/proc/net/dev",
  "/proc/sys/kernel/ns_last_pid",
]);
const PROC_ROOT_INO = 1;

/**
 * runc's checkProcMount, for a volume or bind: on /proc only a proc itself (`-v /proc:/proc`), below
 * it nothing but the files lxcfs stands in for. Checked on the destination's name first (nothing is
 * made in the container's proc), then, given the target's fd, on where the path led: a symlink of
 * the image's that leads into /proc is inside it whatever its name. The container's proc is mounted
 * by then.
 */
function refuseProcDestination(source: string, destination: string, target?: number): void {
  const path = "/" + destination.split("/").filter((p) => p && p !== ".").join("/");
  let onProcRoot: boolean, inside: boolean;
  if (target === undefined) {
    onProcRoot = path === "/proc";
    inside = path.startsWith("/proc/");
  } else {
    const onProc = fstatfsType(target) === PROC_SUPER_MAGIC;
    onProcRoot = onProc && fstat(target).key.endsWith(`:${PROC_ROOT_INO}`);
    inside = onProc && !onProcRoot;
  }
  // the destination as docker's daemon cleans it
  const where = `error mounting "${source}" to rootfs at "${path}"`;
  if (onProcRoot && !sourceIsProc(source)) {
    throw new MountRefused(`${where}: "${path}" cannot be mounted because it is not of type proc`);
  }
  if (inside && !LXCFS_PROC_FILES.has(path)) {
    throw new MountRefused(`${where}: "${path}" cannot be mounted because it is inside /proc`);
  }
}

function sourceIsProc(source: string): boolean {
  const fd = openAt(AT_FDCWD, source, OAT.PATH | OAT.CLOEXEC);
  if (fd < 0) return false;
  try {
    return fstatfsType(fd) === PROC_SUPER_MAGIC;
  } finally {
    closeFd(fd);
  }
}

/**
 * docker's copy-up into an empty volume at start, for a record of an older skiff (skiff now copies at
 * create, as docker does: volume/copyup.ts), done on directory fds: from the image's directory that the
 * volume is about to cover (the target fd we hold), into the volume by its host path (skiff's own),
 * every file created relative to a directory fd (lib/fs). Another container that shares the volume
 * may swap any name in it for a symlink meanwhile: nothing is followed, nothing leaves the volume.
 */
function copyUpIfEmpty(volume: string, targetFd: number): CopyUp | undefined {
  const image = openAt(targetFd, ".", OAT.RDONLY | OAT.DIRECTORY | OAT.CLOEXEC);
  if (image < 0) return undefined; // not a directory in the image
  // docker copies the image's files; proc, sysfs and /dev are mounted here before the volumes: an
  // image's VOLUME /proc had skiff read /proc/kcore (kernel memory, endless) and /proc/kmsg (blocks)
  // into the volume, on the thread every container of a supervisor waits for
  if (fstatfsType(image) !== OVERLAYFS_SUPER_MAGIC) {
    closeFd(image);
    return undefined;
  }
  let volumeFd = -1;
  try {
    volumeFd = openHostDir(volume);
    if (readDirNames(volumeFd).length > 0) {
      closeFd(volumeFd);
      closeFd(image);
      return undefined;
    }
  } catch (e) {
    if (volumeFd >= 0) closeFd(volumeFd);
    closeFd(image);
    throw e;
  }
  // copied once skiff is back in the host's namespaces, in turns (copyUps): the fds reach the
  // image's directory under the volume's bind and the volume as they are now
  return { image, volume: volumeFd };
}

/** A volume's copy-up, still to do: the image's directory it covers and the volume, by fd. */
export interface CopyUp {
  image: number;
  volume: number;
}

/**
 * docker's copy-up of the volumes that need it, every file created relative to a directory fd
 * (lib/fs), the event loop given a turn every few hundred entries (a supervisor's other containers
 * must not wait for a hostile image's million files). Closes the fds.
 */
export async function copyUps(jobs: CopyUp[]): Promise<void> {
  if (jobs.length === 0) return;
  // loaded only here: the copy at start is for records of an older skiff (the copy is at create
  // now, create_run.ts), and a run without volumes loads no tree walker
  const { copyUpAsync } = await import("../fs/tree.ts");
  // thousands of calls: the typed symbols beat the raw syscalls the setup uses
  const raw = setRawAtCalls(false);
  try {
    for (const job of jobs) await copyUpAsync([job.image], job.volume);
  } finally {
    setRawAtCalls(raw);
    closeCopyUps(jobs);
    releaseReopen(); // the host's /proc/self/fd, opened to read the image's files
  }
}

export function closeCopyUps(jobs: CopyUp[]): void {
  for (const job of jobs.splice(0)) {
    closeFd(job.image);
    closeFd(job.volume);
  }
}

/**
 * Mounts an overlay plan at `plan.target` with `flags` (MS_*): the container's root here, a stopped
 * container's for cp. Lowerdirs too long for the mount data are named through symlinks in `linkDir`
 * (made here; the working directory is restored after).
 */
export function mountOverlay(plan: OverlayPlan, linkDir: string, flags = 0): void {
  // a volatile mount leaves work/incompat/volatile behind, and overlayfs refuses the next mount of
  // that upper dir while it is there (its crash check): a --rm container that did not go after its
  // run, mounted again (start, cp), is mounted anew
  if (plan.workDir) removeVolatileMark(plan.workDir);
  try {
    mountOverlayData(plan, linkDir, flags);
  } catch (e) {
    // a kernel before 5.10 has no volatile option: mounted as any other
    if (!plan.volatile || !(e instanceof SysError) || e.code !== "EINVAL") throw e;
    mountOverlayData({ ...plan, volatile: false }, linkDir, flags);
  }
}

function removeVolatileMark(workDir: string): void {
  const mark = `${workDir}/work/incompat`; // skiff's own dir: no container path
  // looked for first: the common case has none, and a failed removeSync (an exception) costs ~0.5 ms
  if (statxAt(AT_FDCWD, mark, AT_SYMLINK_NOFOLLOW, markStat) === 0) {
    Deno.removeSync(mark, { recursive: true });
  }
}
const markStat = new Uint8Array(256);

function mountOverlayData(plan: OverlayPlan, linkDir: string, flags: number): void {
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
    volatile: spec.volatileRootfs,
  };
  mountOverlay(plan, `${spec.containerDir}/lower`);
}

const PROC_SUPER_MAGIC = 0x9fa0, OVERLAYFS_SUPER_MAGIC = 0x794c7630;

/** The root filesystem half made: the overlay mounted, the /proc target opened (made when missing). */
export interface OpenedRootfs {
  mounts: RootMounts;
  /** O_PATH fd of /proc in the root: the container's PID 1 mounts its proc there (stage_program.ts). */
  procTarget: number;
}

/**
 * In the new mount namespace of skiff's thread: makes every mount private (nothing propagates back to
 * the host), mounts the overlay root and opens the /proc target. The overlay's own paths are skiff's;
 * every mount target inside it is resolved and mounted by fd.
 */
export function openRootfs(spec: InitSpec): OpenedRootfs {
  mount(null, "/", null, MS.REC | MS.PRIVATE);
  mountRootOverlay(spec);
  const m = new RootMounts(spec.mergedDir);
  try {
    return { mounts: m, procTarget: m.target("/proc", "dir") };
  } catch (e) {
    m.close();
    throw e;
  }
}

/**
 * Once the container's PID 1 has mounted its proc on the target: checks it (a new proc mount there),
 * hands its root to `onProc` (--sysctl), then mounts /sys, /sys/fs/cgroup, /dev, the volumes, the
 * /etc files, --device nodes and docker's masked and read-only paths, in runc's order. Closes the
 * mounts' fds; the pivot_root is the container's own (stage_program.ts).
 */
export function completeRootfs(
  spec: InitSpec,
  opened: OpenedRootfs,
  onProc?: (procFd: number) => void,
): { console?: PtyPair; copyUps: CopyUp[] } {
  const m = opened.mounts;
  let console: PtyPair | undefined;
  const jobs: CopyUp[] = [];
  try {
    let procFd: number;
    try {
      procFd = m.reopenMounted("/proc", opened.procTarget);
    } finally {
      closeFd(opened.procTarget);
    }
    try {
      if (fstatfsType(procFd) !== PROC_SUPER_MAGIC) throw new Error("/proc is not the proc just mounted");
      onProc?.(procFd);
    } finally {
      closeFd(procFd);
    }
    // read-only unless --privileged, as docker does
    const sysReadOnly = spec.privileged ? 0 : MS.RDONLY;
    mountFsAt(m, "sysfs", "sysfs", "/sys", MS.NOSUID | MS.NODEV | MS.NOEXEC | sysReadOnly, null);
    if (spec.cgroupView) mountCgroupView(m, spec.cgroupView, spec.privileged);
    console = mountDev(m, spec.console === true, spec.privileged, spec.shmSize, spec.shm);
    mountVolumes(m, spec.mounts, spec.tmpfs, jobs);

    for (const name of ["hostname", "hosts", "resolv.conf"]) {
      bindAt(m, `${spec.containerDir}/${name}`, `/etc/${name}`, "file", "no");
    }
    if (spec.devices?.length) makeDevices(m, spec.devices);

    if (!spec.privileged) {
      for (const path of spec.maskedPaths) maskPath(m, path);
      for (const path of spec.readonlyPaths) readOnlyPath(m, path);
    }
    return { console, copyUps: jobs };
  } catch (e) {
    if (console) { for (const fd of [console.master, console.slave]) closeFd(fd); }
    closeCopyUps(jobs);
    throw e;
  }
}
