// Mounts onto targets inside a container root, by fd. The init stage runs with the host's "/" as its
// root until pivot_root, and another container that shares a volume may swap any name in it for a
// symlink at any moment: a target resolved to a host path string and then created or mounted by
// that string could land on the host. So each target is resolved from a directory fd of the root
// (openat2 RESOLVE_IN_ROOT, ./at.ts), its missing components are created relative to the parent fd
// we hold (mkdirat, openat O_CREAT|O_EXCL|O_NOFOLLOW), and the mount goes onto that very inode: a
// bind by move_mount to the target fd, a new filesystem through the fd's /proc/self/fd link (runc's
// way). Afterwards the mount's own location is read back and must lie inside the root.
//
// Sync FFI only, no npm and no node: built-ins (the init stage imports this).

import {
  AT_EMPTY_PATH,
  AT_RECURSIVE,
  checkAt,
  closeFd,
  mkdirAt,
  mount,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_RDONLY,
  mountSetattrFd,
  moveMountFd,
  MS,
  OAT,
  OPEN_TREE_CLONE,
  openAt,
  openTree,
  STATX_ATTR_MOUNT_ROOT,
  STATX_MNT_ID,
  statxAt,
} from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import {
  EAGAIN,
  EEXIST,
  ELOOP,
  ENOENT,
  ENOSYS,
  ENOTDIR,
  fstat,
  openHostDir,
  readLinkAt,
  tryOpenInRoot,
} from "./at.ts";

export type TargetKind = "dir" | "file";

/** How a bind is made read-only: not at all, its top mount, its whole tree, or the tree where the kernel can. */
export type ReadOnly = "no" | "top" | "tree" | "tree-if-possible";

/** A source to bind: a host path skiff chose (a volume, a state file, -v's host path) or a name in a dir fd. */
export type BindSource = string | { dirFd: number; name: string };

const magic = (fd: number) => `/proc/self/fd/${fd}`;
const split = (path: string) => path.split("/").filter((p) => p !== "" && p !== ".");

/** A SysError about a container path (never the /proc/self/fd link the call went through). */
function about(e: unknown, shown: string): unknown {
  return e instanceof SysError ? new SysError(e.call, e.errno, e.code, e.detail, shown) : e;
}
function fail(call: string, result: number, shown: string): never {
  checkAt(call, result, shown);
  throw new Error(`${call} ${shown}: failed`);
}

const statxBuf = new Uint8Array(256);
const statxView = new DataView(statxBuf.buffer);
/** The mount id of the fd and whether it is the root of its mount (undefined where statx cannot say: < 5.8). */
function mountOf(fd: number): { id?: bigint; isRoot?: boolean } {
  checkAt("statx", statxAt(fd, "", AT_EMPTY_PATH, statxBuf, 0x7ff | STATX_MNT_ID));
  const mask = statxView.getUint32(0, true);
  const attributes = statxView.getBigUint64(8, true);
  const known = statxView.getBigUint64(56, true);
  const ROOT = BigInt(STATX_ATTR_MOUNT_ROOT);
  return {
    id: mask & STATX_MNT_ID ? statxView.getBigUint64(144, true) : undefined,
    isRoot: known & ROOT ? (attributes & ROOT) !== 0n : undefined,
  };
}

/** The container root, opened once, and every mount below it made through fds. */
export class RootMounts {
  readonly rootFd: number;
  private readonly procFd: number;
  /**
   * No open_tree (Linux < 5.2): binds by mount(2) through /proc/self/fd. SKIFF_MOUNT_API=legacy
   * takes that path on any kernel (the tests run the attacks against it too).
   */
  private openTreeMissing = Deno.env.get("SKIFF_MOUNT_API") === "legacy";

  constructor(readonly root: string) {
    this.rootFd = openHostDir(root);
    // the host's /proc/self/fd (skiff's own mount namespace: nothing in a container can change it)
    this.procFd = checkAt("open", openAt(-100, "/proc/self/fd", OAT.PATH | OAT.DIRECTORY | OAT.CLOEXEC));
  }

  close(): void {
    closeFd(this.rootFd);
    closeFd(this.procFd);
  }

  /** An O_PATH fd of `path` in the root, following its symlinks inside the root; -errno when missing. */
  tryOpen(path: string, flags: number = OAT.PATH): number {
    return tryOpenInRoot(this.rootFd, path, flags);
  }

  /**
   * An O_PATH fd of the mount target `path`, made when missing: directories along the way, the last
   * component as `kind`, each created in the directory fd we hold and opened with O_NOFOLLOW.
   */
  target(path: string, kind: TargetKind): number {
    const fd = this.tryOpen(path);
    if (fd >= 0) return fd;
    if (fd !== -ENOENT) fail("openat2", fd, path);
    for (let attempt = 0; attempt < 8; attempt++) {
      const made = createInRoot(this.rootFd, path, kind);
      if (made >= 0) return made;
      // EAGAIN: seen once in a whole-suite run (creating /etc/hosts in a fresh overlay, 1 of 40 `run -d`
      // of stage_cgroup_test, 2026-12-06); as with the cgroup mkdirs (cgroups/fs.ts) its cause is not
      // known, and a second walk is what a vanished component gets too
      if (made !== -ENOENT && made !== -ENOTDIR && made !== -ELOOP && made !== -EAGAIN) {
        fail("mkdirat", made, path);
      }
      // a component vanished or turned into something else under us: walk again from the root
    }
    throw new Error(`mount target ${path} kept changing while it was created`);
  }

  /** Fails unless the fd's own location (its /proc/self/fd link) lies inside the root. */
  assertInside(fd: number, shown: string): void {
    const at = readLinkAt(this.procFd, String(fd));
    if (at !== this.root && !at.startsWith(`${this.root}/`)) {
      throw new Error(`mount target ${shown} resolved outside the container (${at})`);
    }
  }

  /**
   * mount(2) of a new filesystem onto the inode `targetFd` holds (through its /proc/self/fd link).
   * `inFreshMount`: see bind().
   */
  mountFs(
    fstype: string,
    source: string,
    targetFd: number,
    flags: number,
    data: string | null,
    shown: string,
    inFreshMount = false,
  ) {
    try {
      mount(source, magic(targetFd), fstype, flags, data);
    } catch (e) {
      throw about(e, shown);
    }
    if (!inFreshMount) this.assertInside(targetFd, shown);
  }

  /** A remount of the mount whose root `mountRootFd` is (from reopenMounted or a bind's tree fd). */
  remount(mountRootFd: number, flags: number, shown: string): void {
    try {
      mount(null, magic(mountRootFd), null, MS.REMOUNT | flags);
    } catch (e) {
      throw about(e, shown);
    }
  }

  /**
   * The mount now on `path` (just mounted onto `coveredFd`), opened as a directory: it must be the
   * root of a mount other than the covered one, so what is created in it lands in the new mount.
   */
  reopenMounted(path: string, coveredFd: number): number {
    const fd = checkAt("openat2", this.tryOpen(path, OAT.RDONLY | OAT.DIRECTORY), path);
    const now = mountOf(fd), covered = mountOf(coveredFd);
    if (now.isRoot === false || (now.id !== undefined && now.id === covered.id)) {
      closeFd(fd);
      throw new Error(`the mount at ${path} was moved away during setup`);
    }
    this.assertInside(fd, path);
    return fd;
  }

  /**
   * A bind of `source` onto the target `targetFd` (shown as `shown`): cloned with open_tree, made
   * read-only while still detached, attached with move_mount to the fd. On kernels without the new
   * mount API (< 5.2): mount(2) through the fd's /proc/self/fd link and a remount of what the path
   * leads to afterwards, checked to be the bind of that source.
   */
  bind(
    source: BindSource,
    targetFd: number,
    shown: string,
    options: {
      recursive?: boolean;
      readOnly?: ReadOnly;
      /** with readOnly: nosuid, nodev and noexec too (MOUNT_ATTR_* bits; MS_* bits for the remount) */
      lockdown?: boolean;
      /**
       * The target is a name this stage just made (mkdirat/openat O_EXCL, then opened O_NOFOLLOW)
       * in the root fd of a tmpfs it mounted itself and checked with reopenMounted (/dev,
       * /sys/fs/cgroup): nothing else can reach that tmpfs (the container has no process yet and
       * the mount namespace is the stage's own), so the mount lies inside the root by construction
       * and reading its place back (a readlink of /proc/self/fd) proves nothing more.
       */
      inFreshMount?: boolean;
    } = {},
  ): void {
    const recursive = options.recursive ?? true;
    const readOnly = options.readOnly ?? "no";
    const lockdown = options.lockdown ?? false;
    const inFresh = options.inFreshMount ?? false;
    const remountFlags = MS.BIND | MS.RDONLY | (lockdown ? MS.NOSUID | MS.NODEV | MS.NOEXEC : 0);
    const attrs = MOUNT_ATTR_RDONLY |
      (lockdown ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC : 0);
    const tree = this.openTreeMissing ? -ENOSYS : openSource(source, recursive);
    if (tree === -ENOSYS) {
      this.openTreeMissing = true;
      return this.bindByPath(source, targetFd, shown, recursive, readOnly, remountFlags, attrs, inFresh);
    }
    if (tree < 0) fail("open_tree", tree, typeof source === "string" ? source : source.name);
    try {
      let remountAfter = false;
      if (readOnly !== "no") {
        const r = mountSetattrFd(tree, readOnly === "top" ? 0 : AT_RECURSIVE, attrs);
        if (r === -ENOSYS) {
          if (readOnly === "tree") {
            throw new Error(
              `cannot make ${shown} recursively read-only: the kernel has no mount_setattr (Linux 5.12+)`,
            );
          }
          remountAfter = true; // the top mount alone, once attached (a detached one cannot be remounted)
        } else fail2("mount_setattr", r, shown);
      }
      fail2("move_mount", moveMountFd(tree, targetFd), shown);
      // the mount itself, where it now is: inside the root
      if (!inFresh) this.assertInside(tree, shown);
      if (remountAfter) this.remount(tree, remountFlags, shown);
    } finally {
      closeFd(tree);
    }
  }

  private bindByPath(
    source: BindSource,
    targetFd: number,
    shown: string,
    recursive: boolean,
    readOnly: ReadOnly,
    remountFlags: number,
    attrs: number,
    inFresh: boolean,
  ): void {
    const sourceFd = typeof source === "string"
      ? checkAt("open", openAt(-100, source, OAT.PATH | OAT.CLOEXEC), source)
      : source.name === ""
      ? source.dirFd // the fd itself (a path bound onto itself)
      : checkAt(
        "openat",
        openAt(source.dirFd, source.name, OAT.PATH | OAT.NOFOLLOW | OAT.CLOEXEC),
        source.name,
      );
    try {
      try {
        mount(magic(sourceFd), magic(targetFd), null, MS.BIND | (recursive ? MS.REC : 0));
      } catch (e) {
        throw about(e, shown);
      }
      if (!inFresh) this.assertInside(targetFd, shown);
      if (readOnly === "no") return;
      // the container path again, resolved inside the root: it must lead to the root of the bind
      // (the source's inode; the covered target is another one)
      const mounted = checkAt("openat2", this.tryOpen(shown), shown);
      try {
        if (fstat(mounted).key !== fstat(sourceFd).key) {
          throw new Error(`the mount at ${shown} was moved away during setup`);
        }
        this.remount(mounted, remountFlags, shown);
        if (readOnly === "top") return;
        const r = mountSetattrFd(mounted, AT_RECURSIVE, attrs);
        if (r !== -ENOSYS) fail2("mount_setattr", r, shown);
        else if (readOnly === "tree") {
          throw new Error(
            `cannot make ${shown} recursively read-only: the kernel has no mount_setattr (Linux 5.12+)`,
          );
        }
      } finally {
        closeFd(mounted);
      }
    } finally {
      if (typeof source === "string" || sourceFd !== source.dirFd) closeFd(sourceFd);
    }
  }
}

function fail2(call: string, result: number, shown: string): void {
  if (result < 0) fail(call, result, shown);
}

function openSource(source: BindSource, recursive: boolean): number {
  const flags = OPEN_TREE_CLONE | (recursive ? AT_RECURSIVE : 0);
  return typeof source === "string"
    ? openTree(-100, source, flags)
    : openTree(source.dirFd, source.name, flags | (source.name === "" ? AT_EMPTY_PATH : 0));
}

/**
 * The walk of RESOLVE_IN_ROOT in userspace, creating what is missing: each name is pinned with
 * O_PATH | O_NOFOLLOW in the directory fd we hold; a symlink is read from its pinned fd and
 * re-rooted; ".." pops our own stack (never the kernel's ".."). Returns the target's O_PATH fd, or
 * -errno when the tree changed under us (the caller walks again).
 */
function createInRoot(rootFd: number, path: string, kind: TargetKind): number {
  const stack: number[] = [];
  const top = () => stack.at(-1) ?? rootFd;
  const pending = split(path);
  let links = 0;
  try {
    while (pending.length) {
      const part = pending.shift()!;
      if (part === "..") {
        const fd = stack.pop();
        if (fd !== undefined) closeFd(fd);
        continue;
      }
      const last = pending.length === 0;
      let fd = openAt(top(), part, OAT.PATH | OAT.NOFOLLOW | OAT.CLOEXEC);
      if (fd === -ENOENT) {
        const made = last && kind === "file"
          ? openAt(top(), part, OAT.WRONLY | OAT.CREAT | OAT.EXCL | OAT.NOFOLLOW | OAT.CLOEXEC, 0o644)
          : mkdirAt(top(), part, 0o755);
        if (made < 0 && made !== -EEXIST) return made;
        if (made >= 0 && last && kind === "file") closeFd(made);
        // ours, or whatever raced us to the name: looked at like any existing name
        fd = openAt(top(), part, OAT.PATH | OAT.NOFOLLOW | OAT.CLOEXEC);
      }
      if (fd < 0) return fd;
      const type = fstat(fd).type;
      if (type === "symlink") {
        const target = readLinkAt(fd, "");
        closeFd(fd);
        if (++links > 40) return -ELOOP;
        if (target.startsWith("/")) { while (stack.length) closeFd(stack.pop()!); }
        pending.unshift(...split(target));
        continue;
      }
      if (last) return fd;
      if (type !== "dir") {
        closeFd(fd);
        throw new SysError("mkdirat", ENOTDIR, "ENOTDIR", "Not a directory", path);
      }
      stack.push(fd);
    }
    return openAt(top(), ".", OAT.PATH | OAT.CLOEXEC);
  } finally {
    for (const fd of stack) closeFd(fd);
  }
}
