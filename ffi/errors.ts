// The one error type for failed libc calls: which call, errno name and message, and the path or
// argument involved.

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  32: "EPIPE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  61: "ENODATA",
  34: "ERANGE",
  90: "EMSGSIZE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
};

export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `E#${code}`;
}

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly code: string,
    readonly detail: string,
    readonly path?: string,
  ) {
    super(`${call}${path ? ` ${path}` : ""}: ${detail} (${code})`);
    this.name = "SysError";
  }
}
