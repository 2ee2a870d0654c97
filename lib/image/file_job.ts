// One whole regular file of a layer, written in one go: the unit of work the unpacker hands to its
// worker threads (lib/image/file_pool.ts). Also the xattr rule both threads share.

import { SysError } from "../../ffi/errors.ts";
import { close, fchmod, fchown, futimes, lsetxattr, O, open, write } from "../../ffi/libc.ts";

export interface FileJob {
  /** Absolute path; its parent is a directory this unpack made (the unpacker checked). */
  path: string;
  /** The entry's name in the tar, for error messages. */
  name: string;
  data: Uint8Array<ArrayBuffer>;
  mode: number;
  uid: number;
  gid: number;
  chown: boolean;
  chmod: boolean;
  mtime: number;
  xattrs?: [string, Uint8Array][];
}

/** Sets a layer entry's xattrs; overlay's own metadata comes only from whiteout markers, never from them. */
export function applyXattrs(path: string, xattrs: Iterable<[string, Uint8Array]> | undefined): void {
  if (!xattrs) return;
  for (const [name, value] of xattrs) {
    if (name.startsWith("trusted.overlay.")) continue;
    try {
      lsetxattr(path, name, new Uint8Array(value));
    } catch (err) {
      if (!(err instanceof SysError && err.code === "EOPNOTSUPP")) throw err;
    }
  }
}

/** Creates the file (O_EXCL|O_NOFOLLOW: never follows or reuses what is there), then its metadata. */
export function writeFileJob(job: FileJob): void {
  const fd = open(job.path, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, job.mode & 0o777);
  try {
    let off = 0;
    while (off < job.data.length) off += write(fd, off === 0 ? job.data : job.data.subarray(off));
    if (job.chown) fchown(fd, job.uid, job.gid);
    if (job.chmod) fchmod(fd, job.mode); // after chown, which clears setuid/setgid
    applyXattrs(job.path, job.xattrs);
    futimes(fd, job.mtime, job.mtime);
  } finally {
    close(fd);
  }
}

// Layout of a job group's shared counters (Int32 slots), then the first error's UTF-8 text.
export const GROUP_DONE = 0;
export const GROUP_FAILED = 1;
export const GROUP_ERROR_LEN = 2;
export const GROUP_ERROR_BYTES = 16;
export const GROUP_SAB_SIZE = GROUP_ERROR_BYTES + 2048;
/** Slot of the pool's shared counter that each worker bumps once it is running. */
export const POOL_READY = 0;
