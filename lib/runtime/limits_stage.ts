// The init stage's half of --ulimit, --sysctl, --oom-score-adj and --device (the checks are
// process_limits.ts and lib/cgroups/devices.ts). Sync APIs and FFI only: this runs after unshare.

import { getRlimit, makedev, O, open, S_IFCHR, setRlimit, SysError, write } from "../../ffi/mod.ts";
import { AT_SYMLINK_NOFOLLOW, checkAt, fchownAt, mknodAt, openAt } from "../../ffi/libc.ts";
import { closeFd, OAT } from "../fs/at.ts";
import type { RootMounts } from "../fs/mount_at.ts";
import { sysctlComponents, sysctlNamespaceProblem } from "./process_limits.ts";
import { EXIT_NOT_FOUND, EXIT_SETUP_FAILED, type InitSpec } from "./spec.ts";

const S_IFBLK = 0o060000, EEXIST = 17;

/** A failure with docker's exit code (127 where docker's CLI sees "no such file or directory"). */
export class LimitFailure extends Error {
  constructor(message: string, readonly exitCode = EXIT_SETUP_FAILED) {
    super(message);
  }
}

const lower = (e: unknown) => e instanceof SysError ? e.detail.toLowerCase() : String(e);

/** --oom-score-adj: this process's score, which the container's command inherits through execve. */
export function setOomScoreAdj(value: number): void {
  // the host's /proc, before any namespace is entered: nothing of the container exists yet
  const path = "/proc/self/oom_score_adj";
  try {
    const fd = open(path, O.WRONLY | O.CLOEXEC);
    try {
      write(fd, new TextEncoder().encode(String(value)));
    } finally {
      closeFd(fd);
    }
  } catch (e) {
    throw new LimitFailure(`write ${path}: ${lower(e)}`);
  }
}

const RLIMIT_NOFILE = 7;

/**
 * --ulimit, with runc's wording when the kernel refuses (above the hard limit without
 * CAP_SYS_RESOURCE). "privileged" runs while the stage still holds its capabilities, as runc sets
 * them; the open-files limit is only raised there (a low one would leave the stage itself no fd
 * for the files it still reads) and takes its value in the "final" call, just before execve.
 */
export function applyRlimits(rlimits: NonNullable<InitSpec["rlimits"]>, phase: "privileged" | "final"): void {
  for (const r of rlimits) {
    const hard = BigInt.asUintN(64, BigInt(r.hard));
    let soft = BigInt.asUintN(64, BigInt(r.soft));
    if ((r.resource === RLIMIT_NOFILE) !== (phase === "final")) {
      if (phase === "final") continue;
      // the open-files limit, first pass: a higher hard limit while CAP_SYS_RESOURCE may allow it
      const now = getRlimit(r.resource);
      if (hard <= now.hard) continue;
      soft = now.soft;
    }
    try {
      setRlimit(r.resource, soft, hard);
    } catch (e) {
      throw new LimitFailure(`error setting rlimit type ${r.resource}: ${lower(e)}`);
    }
  }
}

/** The namespaces of its own the container has, for runc's sysctl check. */
export interface OwnNamespaces {
  ipc: boolean;
  /** The IPC namespace joined is the one skiff runs in (--ipc container:NAME of an --ipc host NAME). */
  ipcIsHost: boolean;
  network: boolean;
  /** The network namespace joined is the one skiff runs in (--network host, or one that led there). */
  networkIsHost: boolean;
  uts: boolean;
}

/** runc's check of every sysctl against the namespaces, before anything is written. */
export function checkSysctls(sysctls: Record<string, string>, own: OwnNamespaces): void {
  for (const key of Object.keys(sysctls)) {
    const why = sysctlNamespaceProblem(key, own);
    if (why) throw new LimitFailure(why);
  }
}

/**
 * Writes each sysctl through `procFd`, the root of the proc mount the stage has just made in its
 * own namespaces: one O_NOFOLLOW openat per component below sys/ (no component can be ".."), so
 * nothing leads anywhere but that proc's own /proc/sys.
 */
export function writeSysctls(procFd: number, sysctls: Record<string, string>): void {
  for (const [key, value] of Object.entries(sysctls)) {
    const path = ["sys", ...sysctlComponents(key)];
    const shown = `/proc/${path.join("/")}`;
    let dir = -1, fd = -1;
    try {
      dir = checkAt("openat", openAt(procFd, ".", OAT.PATH | OAT.DIRECTORY | OAT.CLOEXEC), "/proc");
      for (const part of path.slice(0, -1)) {
        const next = openAt(dir, part, OAT.PATH | OAT.DIRECTORY | OAT.NOFOLLOW | OAT.CLOEXEC);
        closeFd(dir);
        dir = checkAt("open", next, shown);
      }
      fd = checkAt(
        "open",
        openAt(dir, path[path.length - 1], OAT.WRONLY | OAT.NOFOLLOW | OAT.CLOEXEC),
        shown,
      );
    } catch (e) {
      const code = e instanceof SysError && e.code === "ENOENT" ? EXIT_NOT_FOUND : EXIT_SETUP_FAILED;
      throw new LimitFailure(`open ${shown}: ${lower(e)}`, code);
    } finally {
      if (dir >= 0) closeFd(dir);
    }
    try {
      write(fd, new TextEncoder().encode(value));
    } catch (e) {
      throw new LimitFailure(`write ${shown}: ${lower(e)}`);
    } finally {
      closeFd(fd);
    }
  }
}

/** A container path's components, ".." taken lexically (RESOLVE_IN_ROOT would keep it inside anyway). */
function cleanComponents(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * --device: each node made with mknodat in its parent directory, which is opened (and made when
 * missing) inside the root with RESOLVE_IN_ROOT: an image's symlink on the way leads to a place
 * in the container, never the host's. An existing name is left as it is (runc does the same).
 */
export function makeDevices(m: RootMounts, devices: NonNullable<InitSpec["devices"]>): void {
  for (const node of devices) {
    const parts = cleanComponents(node.path);
    const name = parts.pop();
    if (name === undefined) throw new LimitFailure(`invalid device path in the container: ${node.path}`);
    const parent = `/${parts.join("/")}`;
    const dirFd = m.target(parent, "dir");
    try {
      m.assertInside(dirFd, parent);
      const type = node.type === "c" ? S_IFCHR : S_IFBLK;
      const made = mknodAt(dirFd, name, type | (node.perm & 0o7777), makedev(node.major, node.minor));
      if (made === -EEXIST) continue;
      checkAt("mknodat", made, node.path);
      checkAt("fchownat", fchownAt(dirFd, name, node.uid, node.gid, AT_SYMLINK_NOFOLLOW), node.path);
    } finally {
      closeFd(dirFd);
    }
  }
}
