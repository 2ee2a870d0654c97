// One typed symbol table for every libc call skiff makes, and thin wrappers that turn a -1 into a
// SysError. Nothing outside ffi/ touches Deno.UnsafePointer.
//
// All calls are synchronous and run on the calling (JS main) thread. That matters: namespaces are
// per thread, so after unshare/setns only these calls and Deno's *Sync APIs see the new namespaces.

import { errnoName, SysError } from "./errors.ts";

const symbols = {
  unshare: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // syscall(long nr, ...) is variadic; on x86-64 SysV integer/pointer args may be passed as fixed args.
  // syscall6 serves most wrappers below: one binding instead of one per function (~0.2 ms each).
  syscall6: { name: "syscall", parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  syscall_pp: { name: "syscall", parameters: ["i64", "buffer", "buffer"], result: "i64" },
  syscall_ibi: { name: "syscall", parameters: ["i64", "i64", "buffer", "i64"], result: "i64" },
  chdir: { parameters: ["buffer"], result: "i32" },
  fchdir: { parameters: ["i32"], result: "i32" },
  chroot: { parameters: ["buffer"], result: "i32" },
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  getppid: { parameters: [], result: "i32" },
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // the same calls on a thread of Deno's blocking pool: for fds that may block for long (a pty master)
  read_async: { name: "read", parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  // a close that may run a filesystem's last unmount (its sync): on Deno's pool, not the JS thread
  close_async: { name: "close", parameters: ["i32"], result: "i32", nonblocking: true },
  write_async: { name: "write", parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  setsid: { parameters: [], result: "i32" },
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // rtnetlink (lib/network/rtnl.ts): libc's wrappers, no syscall numbers per architecture
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  // on Deno's blocking pool: the supervisor waits for connections without blocking its event loop
  accept4_async: {
    name: "accept4",
    parameters: ["i32", "buffer", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  isatty: { parameters: ["i32"], result: "i32" },
  umask: { parameters: ["u32"], result: "u32" },
  // lib/fs walks: the calls made per file, typed (Deno's fast path: no BigInt, no pointer boxing)
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  fgetxattr: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  fsetxattr: { parameters: ["i32", "buffer", "buffer", "usize", "i32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  // exec's syscall program (ffi/exec_program.ts): its pages, and waiting for its command
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  waitpid_async: { name: "waitpid", parameters: ["i32", "buffer", "i32"], result: "i32", nonblocking: true },
  _exit: { parameters: ["i32"], result: "void" },
  dup3: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // the supervisor's output spool (lib/engine/output.ts): a pipe's bytes moved into a file by the
  // kernel; one poll on Deno's blocking pool for every pipe and pidfd it waits on (the pool has 32
  // threads: a blocking call per container would exhaust it)
  splice: { parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"], result: "isize" },
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
export type SymbolName = keyof typeof symbols;
let table: Symbols | undefined;
const bound: Partial<Record<SymbolName, unknown>> = {};
const opened: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = []; // referenced: never closed

function bindNow(names: readonly SymbolName[]): void {
  const missing = names.filter((name) => !(name in bound));
  if (missing.length === 0) return;
  const lib = Deno.dlopen(
    "libc.so.6",
    Object.fromEntries(missing.map((name) => [name, symbols[name]])) as Deno.ForeignLibraryInterface,
  );
  opened.push(lib);
  for (const name of missing) bound[name] = lib.symbols[name];
}

/**
 * The libc symbol table, each symbol bound on its first use: Deno compiles a call trampoline per
 * symbol at dlopen (~0.2 ms each, 10+ ms for the whole table), and a `run` needs only a few of them.
 */
export function libc(): Symbols {
  if (table) return table;
  // bound eagerly: a lazy bind between a failed call and the errno read could clobber errno
  bindNow(["__errno_location", "strerror"]);
  const lazy = {} as Symbols;
  for (const name of Object.keys(symbols) as SymbolName[]) {
    Object.defineProperty(lazy, name, {
      get: () => {
        if (!(name in bound)) bindNow([name]);
        return bound[name];
      },
      enumerable: true,
    });
  }
  return (table = lazy);
}

/**
 * Binds these symbols now instead of on first use: a process that knows what it will call binds it
 * while it would otherwise wait (the init stage, before it blocks on its go signal).
 */
export function bindLibc(names: readonly SymbolName[]): void {
  bindNow(["__errno_location", "strerror", ...names]); // one dlopen, libc()'s own two included
  libc();
}

const encoder = new TextEncoder();
/** A NUL-terminated C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s + "\0");
}
const cstrOrNull = (s: string | null | undefined) => (s == null ? null : cstr(s));

/** errno of the last failed call on this thread; read it right after the call. */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32(0) : 0;
}

export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${code}`;
}

/** Throws a SysError when a call returned -1; otherwise returns the result. */
export function check<T extends number | bigint>(call: string, result: T, path?: string): T {
  if (Number(result) === -1) {
    const code = errno();
    throw new SysError(call, code, errnoName(code), strerror(code), path);
  }
  return result;
}

// ---- constants (x86-64 Linux) ----
export const CLONE = {
  NEWTIME: 0x00000080,
  FS: 0x00000200,
  FILES: 0x00000400,
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  STRICTATIME: 1 << 24,
} as const;
export const MNT_DETACH = 2;
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  NONBLOCK: 0o4000,
  // arm64 swaps these two bits' meanings with O_DIRECT/O_LARGEFILE
  DIRECTORY: Deno.build.arch === "aarch64" ? 0o40000 : 0o200000,
  NOFOLLOW: Deno.build.arch === "aarch64" ? 0o100000 : 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;
export const PR = {
  SET_PDEATHSIG: 1,
  SET_DUMPABLE: 4,
  SET_NAME: 15,
  CAPBSET_DROP: 24,
  SET_KEEPCAPS: 8,
  SET_NO_NEW_PRIVS: 38,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;
export const LOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
/**
 * The system calls made by number, per architecture (x86-64's own table; arm64 uses the generic
 * one, which has no open, dup2 or mknod: their *at and dup3 forms serve both). Checked against
 * lib/seccomp/syscall_tables.ts by tests/engine_plan_test.ts.
 */
const SYS_X86_64 = {
  read: 0,
  write: 1,
  openat: 257,
  close: 3,
  ioctl: 16,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  dup3: 292,
  socket: 41,
  execve: 59,
  kill: 62,
  flock: 73,
  chdir: 80,
  fchdir: 81,
  umask: 95,
  setsid: 112,
  mknodat: 259,
  chroot: 161,
  mount: 165,
  umount2: 166,
  sethostname: 170,
  setdomainname: 171,
  prctl: 157,
  unshare: 272,
  setns: 308,
  capget: 125,
  capset: 126,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  pivot_root: 155,
  close_range: 436,
  mount_setattr: 442,
  bpf: 321,
  seccomp: 317,
  clone: 56,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  pipe2: 293,
  clone3: 435,
  exit_group: 231,
  memfd_create: 319,
  fcntl: 72,
  pidfd_open: 434,
  pidfd_getfd: 438,
  pidfd_send_signal: 424,
  ppoll: 271,
  prlimit64: 302,
  execveat: 322,
  connect: 42,
  sendmsg: 46,
  recvmsg: 47,
} as const;
const SYS_AARCH64: Record<keyof typeof SYS_X86_64, number> = {
  read: 63,
  write: 64,
  openat: 56,
  close: 57,
  ioctl: 29,
  rt_sigaction: 134,
  rt_sigprocmask: 135,
  dup3: 24,
  socket: 198,
  execve: 221,
  kill: 129,
  flock: 32,
  chdir: 49,
  fchdir: 50,
  umask: 166,
  setsid: 157,
  mknodat: 33,
  chroot: 51,
  mount: 40,
  umount2: 39,
  sethostname: 161,
  setdomainname: 162,
  prctl: 167,
  unshare: 97,
  setns: 268,
  capget: 90,
  capset: 91,
  setgroups: 159,
  setresuid: 147,
  setresgid: 149,
  pivot_root: 41,
  close_range: 436,
  mount_setattr: 442,
  bpf: 280,
  seccomp: 277,
  clone: 220,
  mmap: 222,
  mprotect: 226,
  munmap: 215,
  pipe2: 59,
  clone3: 435,
  exit_group: 94,
  memfd_create: 279,
  fcntl: 25,
  pidfd_open: 434,
  pidfd_getfd: 438,
  pidfd_send_signal: 424,
  ppoll: 73,
  prlimit64: 261,
  execveat: 281,
  connect: 203,
  sendmsg: 211,
  recvmsg: 212,
};
/** Both tables, for the test that checks them against the kernel headers' numbers. */
export const SYSCALL_NUMBERS = { x86_64: SYS_X86_64, aarch64: SYS_AARCH64 } as const;
const SYS: Record<keyof typeof SYS_X86_64, number> = Deno.build.arch === "aarch64" ? SYS_AARCH64 : SYS_X86_64;
export const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000;

/** An argument of a raw system call: a number, or a buffer passed as its address. */
type Word = number | bigint | Uint8Array | null;
function word(value: Word): bigint {
  if (value === null) return 0n;
  if (typeof value === "number" || typeof value === "bigint") return BigInt(value);
  void value.buffer; // moves a small typed array's bytes off the V8 heap, where GC cannot move them
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(value)));
}
/**
 * A raw system call (this architecture's number) through glibc's syscall() (-1 and errno on failure). Buffers must stay
 * referenced until it returns: as arguments of the caller they are.
 */
function sys(nr: number, a: Word = 0, b: Word = 0, c: Word = 0, d: Word = 0, e: Word = 0): number {
  return Number(libc().syscall6(BigInt(nr), word(a), word(b), word(c), word(d), word(e), 0n));
}

// ---- thin wrappers ----
export const unshare = (flags: number) => void check("unshare", sys(SYS.unshare, flags));
export const setns = (fd: number, nstype = 0) => void check("setns", sys(SYS.setns, fd, nstype));

export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  check(
    "mount",
    sys(SYS.mount, cstrOrNull(source), cstr(target), cstrOrNull(fstype), flags, cstrOrNull(data)),
    target,
  );
}
export const umount2 = (target: string, flags = 0) =>
  void check("umount2", sys(SYS.umount2, cstr(target), flags), target);
export const pivotRoot = (newRoot: string, putOld: string) =>
  void check("pivot_root", sys(SYS.pivot_root, cstr(newRoot), cstr(putOld)), newRoot);
export const chdir = (path: string) => void check("chdir", sys(SYS.chdir, cstr(path)), path);
export const fchdir = (fd: number) => void check("fchdir", sys(SYS.fchdir, fd));
export const chroot = (path: string) => void check("chroot", sys(SYS.chroot, cstr(path)), path);
export function sethostname(name: string): void {
  const bytes = encoder.encode(name);
  check("sethostname", sys(SYS.sethostname, bytes, bytes.length), name);
}
export function setdomainname(name: string): void {
  const bytes = encoder.encode(name);
  check("setdomainname", sys(SYS.setdomainname, bytes, bytes.length), name);
}
export const getpid = () => libc().getpid();
export const gettid = () => libc().gettid();
export const geteuid = () => libc().geteuid();
export const prctl = (op: number, a = 0n, b = 0n, c = 0n, d = 0n) =>
  check("prctl", sys(SYS.prctl, op, a, b, c, d));
export const open = (path: string, flags: number, mode = 0) =>
  check("open", sys(SYS.openat, AT_FDCWD, cstr(path), flags, mode), path);
export const close = (fd: number) => void check("close", sys(SYS.close, fd));
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return check("read", sys(SYS.read, fd, buf, buf.length));
}
export function write(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return check("write", sys(SYS.write, fd, buf, buf.length));
}
/** read() of a non-blocking fd: the bytes read (0 at its end), or -1 when it would block (EAGAIN). */
export function readSome(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = sys(SYS.read, fd, buf, buf.length);
  if (n === -1 && errno() === 11) return -1;
  return check("read", n);
}
/** write() to a non-blocking fd: the bytes written, or -1 when it would block (EAGAIN). */
export function writeSome(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = sys(SYS.write, fd, buf, buf.length);
  if (n === -1 && errno() === 11) return -1;
  return check("write", n);
}
/** O_NONBLOCK on an open fd (fcntl F_SETFL; its other status flags kept). */
export function setNonBlocking(fd: number): void {
  const F_GETFL = 3, F_SETFL = 4;
  const flags = check("fcntl", sys(SYS.fcntl, fd, F_GETFL));
  check("fcntl", sys(SYS.fcntl, fd, F_SETFL, flags | O.NONBLOCK));
}
/**
 * read() without blocking the JS thread. Returns -1 on failure: errno is not available, the call ran
 * on another thread. Keep `buf` untouched until the promise settles.
 */
export async function readAsync(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  return Number(await libc().read_async(fd, buf, BigInt(buf.length)));
}
/**
 * close() on Deno's blocking pool: the last reference to a mount (an overlay root held open) makes
 * the close run its unmount and the filesystem's sync, which must not stall the event loop.
 */
export async function closeAsync(fd: number): Promise<void> {
  await libc().close_async(fd);
}
/** write() without blocking the JS thread; -1 on failure (see readAsync). */
export async function writeAsync(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  return Number(await libc().write_async(fd, buf, BigInt(buf.length)));
}
// the kernel's dev is 32 bits; glibc's 64-bit encoding (makedev) agrees with it below 2^32
export const mknod = (path: string, mode: number, dev: bigint) =>
  void check("mknod", sys(SYS.mknodat, AT_FDCWD, cstr(path), mode, dev & 0xffffffffn), path);
export const mkfifo = (path: string, mode: number) =>
  void check("mkfifo", sys(SYS.mknodat, AT_FDCWD, cstr(path), S_IFIFO | (mode & 0o7777), 0), path);
/** dup2(2) as dup3 (arm64 has no dup2); dup3 refuses from === to, where dup2 does nothing. */
export const dup2 = (from: number, to: number) => {
  if (from !== to) check("dup2", sys(SYS.dup3, from, to, 0));
};
export const setsid = () => check("setsid", sys(SYS.setsid));
export const kill = (pid: number, sig: number) => void check("kill", sys(SYS.kill, pid, sig), String(pid));
export const umask = (mask: number) => sys(SYS.umask, mask);
export const isatty = (fd: number) => libc().isatty(fd) === 1;

/** Linux dev_t encoding (glibc's gnu_dev_makedev). */
export function makedev(major: number, minor: number): bigint {
  return (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n) |
    (BigInt(major & ~0xfff) << 32n);
}

/**
 * prlimit64(0, resource, {soft, hard}, NULL): this process's limit, inherited across execve.
 * -1n (or any value past 2^63) is RLIM_INFINITY.
 */
export function setRlimit(resource: number, soft: bigint, hard: bigint): void {
  const limits = new BigUint64Array([BigInt.asUintN(64, soft), BigInt.asUintN(64, hard)]);
  check("prlimit64", sys(SYS.prlimit64, 0, resource, new Uint8Array(limits.buffer), null));
}

/** prlimit64(0, resource, NULL, &old): this process's soft and hard limit (2^64-1: RLIM_INFINITY). */
export function getRlimit(resource: number): { soft: bigint; hard: bigint } {
  const limits = new BigUint64Array(2);
  check("prlimit64", sys(SYS.prlimit64, 0, resource, null, new Uint8Array(limits.buffer)));
  return { soft: limits[0], hard: limits[1] };
}

export function setgroups(gids: number[]): void {
  const arr = new Uint32Array(gids.length || 1);
  gids.forEach((g, i) => (arr[i] = g));
  check("setgroups", libc().setgroups(BigInt(gids.length), new Uint8Array(arr.buffer)));
}
export const setresuid = (uid: number) => void check("setresuid", libc().setresuid(uid, uid, uid));
export const setresgid = (gid: number) => void check("setresgid", libc().setresgid(gid, gid, gid));

// The raw syscalls change only the calling thread's credentials (glibc's wrappers change every
// thread): `exec` drops to the container's user on the main thread, spawns from it, and keeps root
// on the other threads for its cleanup.
export function setgroupsThread(gids: number[]): void {
  const arr = new Uint32Array(gids.length || 1);
  gids.forEach((g, i) => (arr[i] = g));
  check(
    "setgroups",
    sys(SYS.setgroups, gids.length, new Uint8Array(arr.buffer)),
  );
}
export const setresuidThread = (uid: number) => void check("setresuid", sys(SYS.setresuid, uid, uid, uid));
export const setresgidThread = (gid: number) => void check("setresgid", sys(SYS.setresgid, gid, gid, gid));

export const ioctlBuf = (fd: number, request: number, buf: Uint8Array<ArrayBuffer>) =>
  check("ioctl", sys(SYS.ioctl, fd, request, buf));
export const ioctlInt = (fd: number, request: number, arg: number) =>
  check("ioctl", sys(SYS.ioctl, fd, request, arg));

const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
const FS_TOPDIR_FL = 0x00020000;

/**
 * Marks a directory as the top of a hierarchy (chattr +T): ext4 then spreads its new
 * subdirectories over block groups instead of packing them beside their parent. Throws where the
 * filesystem has no such flag (EOPNOTSUPP, ENOTTY).
 */
export function setTopDirFlag(path: string): void {
  const fd = open(path, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  try {
    const flags = new Int32Array(2); // the kernel reads and writes an int; room for a long anyway
    const bytes = new Uint8Array(flags.buffer);
    check("ioctl(FS_IOC_GETFLAGS)", sys(SYS.ioctl, fd, FS_IOC_GETFLAGS, bytes), path);
    if (flags[0] & FS_TOPDIR_FL) return;
    flags[0] |= FS_TOPDIR_FL;
    check("ioctl(FS_IOC_SETFLAGS)", sys(SYS.ioctl, fd, FS_IOC_SETFLAGS, bytes), path);
  } finally {
    close(fd);
  }
}

/** flock(); returns false instead of throwing when LOCK_NB finds the lock taken. */
export function flock(fd: number, op: number, path?: string): boolean {
  if (sys(SYS.flock, fd, op) === 0) return true;
  const code = errno();
  if (code === 11 /* EWOULDBLOCK */) return false;
  throw new SysError("flock", code, errnoName(code), strerror(code), path);
}

export function lsetxattr(path: string, name: string, value: Uint8Array<ArrayBuffer>): void {
  check("lsetxattr", libc().lsetxattr(cstr(path), cstr(name), value, BigInt(value.length), 0), path);
}
/** The value of an xattr, or null when the file has none of that name. */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const buf = new Uint8Array(65536);
  const n = Number(libc().lgetxattr(cstr(path), cstr(name), buf, BigInt(buf.length)));
  if (n === -1) {
    const code = errno();
    if (code === 61 /* ENODATA */) return null;
    throw new SysError("lgetxattr", code, errnoName(code), strerror(code), path);
  }
  return buf.slice(0, n);
}
export function llistxattr(path: string): string[] {
  const buf = new Uint8Array(65536);
  const n = Number(check("llistxattr", libc().llistxattr(cstr(path), buf, BigInt(buf.length)), path));
  return new TextDecoder().decode(buf.subarray(0, n)).split("\0").filter(Boolean);
}
export const lchown = (path: string, uid: number, gid: number) =>
  void check("lchown", libc().lchown(cstr(path), uid, gid), path);
/** chmod without following a final symlink is not supported by Linux; this follows (used on non-links). */
export const chmod = (path: string, mode: number) =>
  void check("fchmodat", libc().fchmodat(AT_FDCWD, cstr(path), mode, 0), path);
// fd-based metadata calls: no path walk per call (the layer unpacker sets all three on every file)
export const fchown = (fd: number, uid: number, gid: number) =>
  void check("fchown", libc().fchown(fd, uid, gid));
export const fchmod = (fd: number, mode: number) => void check("fchmod", libc().fchmod(fd, mode));
/** Sets atime and mtime (seconds) of an open file. */
export function futimes(fd: number, atimeSec: number, mtimeSec: number): void {
  const ts = new BigInt64Array([BigInt(Math.trunc(atimeSec)), 0n, BigInt(Math.trunc(mtimeSec)), 0n]);
  check("futimens", libc().futimens(fd, new Uint8Array(ts.buffer)));
}
/** Sets atime and mtime (seconds) of a path without following a final symlink. */
export function lutimes(path: string, atimeSec: number, mtimeSec: number): void {
  const ts = new BigInt64Array([BigInt(Math.trunc(atimeSec)), 0n, BigInt(Math.trunc(mtimeSec)), 0n]);
  check(
    "utimensat",
    libc().utimensat(AT_FDCWD, cstr(path), new Uint8Array(ts.buffer), AT_SYMLINK_NOFOLLOW),
    path,
  );
}

/** close_range flag: mark the fds close-on-exec instead of closing them (they stay usable until execve). */
export const CLOSE_RANGE_CLOEXEC = 4;
export const closeRange = (first: number, flags = 0) =>
  void check(
    "close_range",
    sys(SYS.close_range, first, 0xffffffff, flags),
  );

/** Resets every signal to SIG_DFL and clears the signal mask: ignored signals survive execve. */
export function resetSignals(): void {
  const dfl = new Uint8Array(32); // struct kernel_sigaction, all zero: SIG_DFL, no flags, empty mask
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue; // SIGKILL and SIGSTOP cannot be changed
    // the raw syscall, not glibc's signal(): glibc refuses 32/33, which Deno leaves ignored
    sys(SYS.rt_sigaction, sig, dfl, null, 8);
  }
  sys(SYS.rt_sigprocmask, 2, /* SIG_SETMASK */ new Uint8Array(8), null, 8);
}

/** Sets one signal back to SIG_DFL (the raw syscall: glibc refuses 32 and 33). */
export function defaultSignal(sig: number): void {
  const dfl = new Uint8Array(32);
  check("rt_sigaction", sys(SYS.rt_sigaction, sig, dfl, null, 8));
}

// ---- capabilities (v3: two 32-bit words per set) ----
const CAP_V3 = 0x20080522;
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}
export function capget(): CapSets {
  const header = new Uint32Array([CAP_V3, 0]);
  const data = new Uint32Array(6);
  check(
    "capget",
    sys(SYS.capget, new Uint8Array(header.buffer), new Uint8Array(data.buffer)),
  );
  const join = (lo: number, hi: number) => (BigInt(hi) << 32n) | BigInt(lo);
  return {
    effective: join(data[0], data[3]),
    permitted: join(data[1], data[4]),
    inheritable: join(data[2], data[5]),
  };
}
export function capset(sets: CapSets): void {
  const header = new Uint32Array([CAP_V3, 0]);
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number(v >> 32n);
  const data = new Uint32Array([
    lo(sets.effective),
    lo(sets.permitted),
    lo(sets.inheritable),
    hi(sets.effective),
    hi(sets.permitted),
    hi(sets.inheritable),
  ]);
  check(
    "capset",
    sys(SYS.capset, new Uint8Array(header.buffer), new Uint8Array(data.buffer)),
  );
}

/** A NULL-terminated char*[] plus the string buffers behind it (keep both alive until the call). */
function cstrArray(items: string[]): { array: Uint8Array<ArrayBuffer>; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const ptrs = new BigUint64Array(items.length + 1);
  keep.forEach((b, i) => (ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)))));
  return { array: new Uint8Array(ptrs.buffer), keep };
}

/** execve: returns only on failure, by throwing. */
export function execve(path: string, argv: string[], env: string[]): never {
  const a = cstrArray(argv);
  const e = cstrArray(env);
  const result = sys(SYS.execve, cstr(path), a.array, e.array);
  void a.keep, e.keep; // referenced until after the call
  check("execve", result, path);
  throw new Error("execve returned");
}

// ---- exec's syscall program (ffi/exec_program.ts) ----

const PROT_READ = 1,
  PROT_WRITE = 2,
  PROT_EXEC = 4,
  MAP_SHARED = 0x01,
  MAP_PRIVATE = 0x02,
  MAP_ANONYMOUS = 0x20;

/**
 * An anonymous read-write mapping of `length` bytes; `shared`: a fork keeps seeing what this process
 * writes into it afterwards (run's stage gets its later programs that way).
 */
// (raw system calls through the syscall6 binding: each libc symbol bound costs ~0.2 ms on exec's path)
export function mapAnonymous(length: number, shared = false): Deno.PointerObject {
  const address = libc().syscall6(
    BigInt(SYS.mmap),
    0n,
    BigInt(length),
    BigInt(PROT_READ | PROT_WRITE),
    BigInt((shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS),
    -1n,
    0n,
  );
  const p = Deno.UnsafePointer.create(BigInt.asUintN(64, BigInt(address)));
  if (p === null || Number(address) === -1) {
    throw new SysError("mmap", errno(), errnoName(errno()), strerror(errno()));
  }
  return p;
}
/** Makes the first `length` bytes of a mapping read + execute. */
export const protectCode = (p: Deno.PointerObject, length: number) =>
  void check("mprotect", sys(SYS.mprotect, Deno.UnsafePointer.value(p), length, PROT_READ | PROT_EXEC));
export const unmap = (p: Deno.PointerObject, length: number) =>
  void sys(SYS.munmap, Deno.UnsafePointer.value(p), length);
/** A multiple of every page size Linux has on x86-64 and arm64 (4, 16 and 64 KiB). */
export const PAGE_GRANULE = 64 * 1024;

/** The syscall numbers of this architecture (exec's program is made of them). */
export const SYSCALLS = SYS;

/**
 * memfd_create(2), executable, sealed empty (no write, grow, shrink, further seals), reopened
 * read-only. Fails (EACCES) where vm.memfd_noexec=2 forbids executable memfds.
 */
export const sealedEmptyMemfd = (name: string): number => sealedMemfd(name, new Uint8Array(0));

/** fcntl(F_DUPFD_CLOEXEC): a copy of `fd` numbered `lowest` or above. */
export const dupAbove = (fd: number, lowest: number) =>
  check("fcntl", sys(SYS.fcntl, fd, 1030, /* F_DUPFD_CLOEXEC */ lowest));

/** waitpid on a thread of Deno's blocking pool: the exit code, or 128 + the signal that killed it. */
export async function waitForExitAsync(pid: number): Promise<number> {
  const status = new Int32Array(1);
  // errno is the pool thread's, not ours: a failure is reported without it (ECHILD: not our child)
  if (await libc().waitpid_async(pid, new Uint8Array(status.buffer), 0) !== pid) {
    throw new SysError("waitpid", 10, "ECHILD", "No child processes");
  }
  const s = status[0];
  return (s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
}

/** Blocks until the child ends: its exit code, or 128 + the signal that killed it. */
export function waitForExit(pid: number): number {
  const status = new Int32Array(1);
  while (libc().waitpid(pid, new Uint8Array(status.buffer), 0) === -1) {
    if (errno() !== 4 /* EINTR */) {
      throw new SysError("waitpid", errno(), errnoName(errno()), strerror(errno()));
    }
  }
  const s = status[0];
  return (s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
}

/** _exit(2): ends the process at once, no runtime clean-up (its fds may be gone). */
export function exitNow(code: number): never {
  libc()._exit(code);
  throw new Error("_exit returned");
}

export const dup3 = (from: number, to: number, flags: number) =>
  void check("dup3", libc().dup3(from, to, flags));

/** pipe2(2): [read end, write end]. */
export function pipe(flags: number = O.CLOEXEC): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", sys(SYS.pipe2, new Uint8Array(fds.buffer), flags));
  return [fds[0], fds[1]];
}

/** pidfd_open(2) (Linux 5.3): an fd that polls readable once process `pid` has exited. */
export const pidfdOpen = (pid: number) => check("pidfd_open", sys(SYS.pidfd_open, pid, 0));
/**
 * pidfd_getfd(2) (Linux 5.6): a copy of fd `targetFd` of the process (its very open file, nothing
 * is opened anew), close-on-exec. Needs ptrace access to it.
 */
export const pidfdGetfd = (pidfd: number, targetFd: number) =>
  check("pidfd_getfd", sys(SYS.pidfd_getfd, pidfd, targetFd, 0));

/** pidfd_send_signal(2) (Linux 5.1): a signal to the process the pidfd names (never a reused pid). */
export const pidfdSignal = (pidfd: number, sig: number) =>
  void check("pidfd_send_signal", sys(SYS.pidfd_send_signal, pidfd, sig, 0, 0));

/** waitpid(pid, WNOHANG): the exit code (128 + signal) if the child has exited (reaped then), else undefined. */
export function exitStatusNow(pid: number): number | undefined {
  const status = new Int32Array(1);
  if (libc().waitpid(pid, new Uint8Array(status.buffer), 1 /* WNOHANG */) !== pid) return undefined;
  const s = status[0];
  return (s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
}

/** waitpid(pid, WNOHANG): reaps the child if it has exited; true then. */
export function reapIfExited(pid: number): boolean {
  const status = new Int32Array(1);
  return libc().waitpid(pid, new Uint8Array(status.buffer), 1 /* WNOHANG */) === pid;
}

/**
 * Moves up to `length` bytes from pipe `from` to `to` at its file position (splice(2), no offsets),
 * without waiting for the pipe: the count, 0 once every writer is gone, -1 when it is empty.
 */
export function spliceNow(from: number, to: number, length: number): number {
  const SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2, EAGAIN = 11;
  const n = Number(libc().splice(from, null, to, null, BigInt(length), SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
  if (n === -1 && errno() === EAGAIN) return -1;
  return Number(check("splice", n));
}

/**
 * poll(2) for readability of `fds` on Deno's blocking pool, no timeout: resolves with the revents
 * of each (non-zero: readable, hung up or in error).
 */
export async function pollReadable(fds: readonly number[], events?: readonly number[]): Promise<number[]> {
  const POLLIN = 1;
  const pollfds = new Uint8Array(8 * fds.length); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pollfds.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, events?.[i] ?? POLLIN, true);
  });
  while (Number(await libc().poll_async(pollfds, BigInt(fds.length), -1)) < 1) { /* EINTR: again */ }
  return fds.map((_, i) => view.getInt16(8 * i + 6, true));
}

/** Frees a file's blocks in [0, length) and keeps its size (fallocate PUNCH_HOLE); false if unsupported. */
export function punchHole(fd: number, length: number): boolean {
  const FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
  return libc().fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0n, BigInt(length)) === 0;
}

/** Whether an open fd is the null character device (1:3): statx(2) on the fd itself. */
export function isNullDevice(fd: number): boolean {
  const AT_EMPTY_PATH = 0x1000, STATX_TYPE = 0x1, S_IFMT = 0o170000;
  const buf = new Uint8Array(256); // struct statx: the same layout on every architecture
  check("statx", libc().statx(fd, cstr(""), AT_EMPTY_PATH, STATX_TYPE, buf));
  const view = new DataView(buf.buffer);
  const mode = view.getUint16(0x1c, true);
  return (mode & S_IFMT) === S_IFCHR && view.getUint32(0x80, true) === 1 && view.getUint32(0x84, true) === 3;
}

/** The tty ioctls skiff makes (asm-generic numbers: the same on x86-64 and arm64). */
export const TIOC = {
  GWINSZ: 0x5413,
  SWINSZ: 0x5414,
  SCTTY: 0x540e,
  GPTN: 0x80045430, // _IOR('T', 0x30, unsigned int): the pty's number in its devpts
  SPTLCK: 0x40045431, // _IOW('T', 0x31, int): lock/unlock the slave
  GPTPEER: 0x5441, // _IO('T', 0x41): open the slave from the master, no path lookup (Linux 4.13+)
} as const;
export const DEVPTS_SUPER_MAGIC = 0x1cd1;

/** Unlocks the slave of a master opened from a devpts' ptmx (unlockpt(3)). */
export const unlockPty = (master: number) => ioctlBuf(master, TIOC.SPTLCK, new Uint8Array(4));

/** The pty's number in its devpts instance (TIOCGPTN). */
export function ptyNumber(master: number): number {
  const n = new Uint32Array(1);
  ioctlBuf(master, TIOC.GPTN, new Uint8Array(n.buffer));
  return n[0];
}

/** TIOCGPTPEER: the slave of `master` opened with `flags`; -errno on failure (ENOTTY/EINVAL before 4.13). */
export function openPtyPeer(master: number, flags: number): number {
  const r = sys(SYS.ioctl, master, TIOC.GPTPEER, flags);
  return r === -1 ? -errno() : r;
}
export function getWinsize(fd: number): { rows: number; cols: number } | null {
  const ws = new Uint16Array(4);
  if (libc().ioctl_buf(fd, BigInt(TIOC.GWINSZ), new Uint8Array(ws.buffer)) !== 0) return null;
  return { rows: ws[0], cols: ws[1] };
}
export function setWinsize(fd: number, rows: number, cols: number): void {
  ioctlBuf(fd, TIOC.SWINSZ, new Uint8Array(new Uint16Array([rows, cols, 0, 0]).buffer));
}

/** Brings a network interface up (SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket). */
export function interfaceUp(name: string): void {
  const fd = check("socket", sys(SYS.socket, 2, /* AF_INET */ 2 /* SOCK_DGRAM */ | O.CLOEXEC, 0));
  try {
    const ifr = new Uint8Array(40); // struct ifreq: char name[16]; short flags; ...
    ifr.set(encoder.encode(name).subarray(0, 15));
    ioctlBuf(fd, 0x8913, /* SIOCGIFFLAGS */ ifr);
    const view = new DataView(ifr.buffer);
    view.setInt16(16, view.getInt16(16, true) | 0x1 /* IFF_UP */ | 0x40, /* IFF_RUNNING */ true);
    ioctlBuf(fd, 0x8914, /* SIOCSIFFLAGS */ ifr);
  } finally {
    close(fd);
  }
}

// ---- rtnetlink sockets (lib/network/rtnl.ts builds and parses the messages) ----
const AF_NETLINK = 16, SOCK_RAW = 3, NETLINK_ROUTE = 0;

/** An AF_NETLINK/NETLINK_ROUTE socket (close-on-exec), in the network namespace of the calling thread. */
export const netlinkSocket = () =>
  check("socket", libc().socket(AF_NETLINK, SOCK_RAW | O.CLOEXEC, NETLINK_ROUTE));

/** Sends one buffer of netlink messages (the kernel autobinds the socket on its first send). */
export function netlinkSend(fd: number, message: Uint8Array<ArrayBuffer>): void {
  const sent = Number(check("send", libc().send(fd, message, BigInt(message.length), 0)));
  if (sent !== message.length) throw new SysError("send", 90, "EMSGSIZE", "short netlink send");
}

/** Receives one datagram of netlink messages into `buf`; returns its length. */
export const netlinkReceive = (fd: number, buf: Uint8Array<ArrayBuffer>) =>
  Number(check("recv", libc().recv(fd, buf, BigInt(buf.length), 0)));

/** The network namespace of the calling thread as an fd (close-on-exec). */
export const openThreadNetns = () => open("/proc/thread-self/ns/net", O.RDONLY | O.CLOEXEC);

/**
 * A new network namespace, made on this thread and left again at once: its fd, and whatever `inside`
 * opened while the thread was in it (a netlink socket keeps the namespace it was created in).
 * Synchronous from unshare to setns back, so nothing else of this process ever runs in it.
 */
export function withNewNetns<T>(inside: () => T): { nsFd: number; value: T } {
  const hostNs = openThreadNetns();
  try {
    unshare(CLONE.NEWNET);
    let nsFd = -1;
    try {
      nsFd = openThreadNetns();
      return { nsFd, value: inside() };
    } catch (e) {
      if (nsFd >= 0) close(nsFd);
      throw e;
    } finally {
      // never go on in the new namespace: a failure here leaves the process unusable
      setns(hostNs, CLONE.NEWNET);
    }
  } finally {
    close(hostNs);
  }
}

/**
 * Runs `inside` with this thread in the network namespace `nsFd` and comes back at once (as
 * withNewNetns: synchronous, so nothing else of this process runs there): for a netlink socket of
 * a running container's namespace (`network connect`).
 */
export function inNetns<T>(nsFd: number, inside: () => T): T {
  const hostNs = openThreadNetns();
  try {
    setns(nsFd, CLONE.NEWNET);
    try {
      return inside();
    } finally {
      setns(hostNs, CLONE.NEWNET);
    }
  } finally {
    close(hostNs);
  }
}

// ---- mount_setattr (5.12+): attributes of a whole mount tree at once ----
export const MOUNT_ATTR_RDONLY = 0x1,
  MOUNT_ATTR_NOSUID = 0x2,
  MOUNT_ATTR_NODEV = 0x4,
  MOUNT_ATTR_NOEXEC = 0x8;
export const AT_RECURSIVE = 0x8000;

// ---- unix stream sockets (the supervisor's; libc's wrappers: no syscall numbers per architecture) ----
const AF_UNIX = 1, SOCK_STREAM = 1, SOL_SOCKET = 1, SO_PEERCRED = 17, SHUT_RDWR = 2;

/** A listening unix stream socket at `path` (close-on-exec); its mode follows the umask of the call. */
export function listenUnix(path: string, backlog = 128): number {
  const name = encoder.encode(path);
  if (name.length > 107) throw new SysError("bind", 36, "ENAMETOOLONG", "File name too long", path);
  const addr = new Uint8Array(110); // struct sockaddr_un: sa_family_t sun_family; char sun_path[108]
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  const fd = check("socket", libc().socket(AF_UNIX, SOCK_STREAM | O.CLOEXEC, 0));
  try {
    check("bind", libc().bind(fd, addr, addr.length), path);
    check("listen", libc().listen(fd, backlog), path);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** accept4(CLOEXEC) without blocking the JS thread: the new fd, or -1 (errno is not available). */
export async function acceptAsync(listenFd: number): Promise<number> {
  return await libc().accept4_async(listenFd, null, null, O.CLOEXEC);
}

/** A unix stream socket (close-on-exec) connected to `path` (raw system calls: no libc symbols to bind). */
export function connectUnix(path: string): number {
  const name = encoder.encode(path);
  if (name.length > 107) throw new SysError("connect", 36, "ENAMETOOLONG", "File name too long", path);
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  const fd = check("socket", sys(SYS.socket, AF_UNIX, SOCK_STREAM | O.CLOEXEC, 0));
  try {
    check("connect", sys(SYS.connect, fd, addr, addr.length), path);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

const SCM_RIGHTS = 1, MSG_DONTWAIT = 0x40, MSG_CTRUNC = 0x8, MSG_CMSG_CLOEXEC = 0x40000000;
const CMSG_HEADER = 16, CMSG_SPACE_ONE_FD = 24; // struct cmsghdr (64-bit) and one int, aligned to 8
/** The address of a buffer that stays referenced (and so unmoved) for the system call it is passed to. */
function pinnedAddress(buf: Uint8Array): bigint {
  void buf.buffer; // off the V8 heap, where GC cannot move it
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}
/** struct msghdr (64-bit) with one iovec over `data` and a control buffer. */
function messageHeader(iov: Uint8Array, data: Uint8Array, control: Uint8Array): Uint8Array<ArrayBuffer> {
  const iovView = new DataView(iov.buffer);
  iovView.setBigUint64(0, pinnedAddress(data), true);
  iovView.setBigUint64(8, BigInt(data.length), true);
  const msg = new Uint8Array(56);
  const view = new DataView(msg.buffer);
  view.setBigUint64(16, pinnedAddress(iov), true); // msg_iov (no msg_name)
  view.setBigUint64(24, 1n, true); // msg_iovlen
  view.setBigUint64(32, pinnedAddress(control), true);
  view.setBigUint64(40, BigInt(control.length), true);
  return msg;
}

/** Sends one byte with `fd` attached (SCM_RIGHTS) on a connected unix socket. */
export function sendFd(socket: number, fd: number): void {
  const data = new Uint8Array([1]), iov = new Uint8Array(16), control = new Uint8Array(CMSG_SPACE_ONE_FD);
  const cmsg = new DataView(control.buffer);
  cmsg.setBigUint64(0, BigInt(CMSG_HEADER + 4), true); // cmsg_len = CMSG_LEN(sizeof(int))
  cmsg.setInt32(8, SOL_SOCKET, true);
  cmsg.setInt32(12, SCM_RIGHTS, true);
  cmsg.setInt32(16, fd, true);
  const msg = messageHeader(iov, data, control);
  const sent = check("sendmsg", sys(SYS.sendmsg, socket, msg, 0));
  if (sent !== 1) throw new SysError("sendmsg", 5, "EIO", "short send");
}

/**
 * Receives one byte and the single fd attached to it (close-on-exec), without blocking: the fd, or
 * undefined when the peer closed without sending one. Throws EAGAIN when nothing is there yet; any
 * other shape of message (no fd, several, a truncated control part) is refused, its fds closed.
 */
export function receiveFd(socket: number): number | undefined {
  const data = new Uint8Array(1), iov = new Uint8Array(16), control = new Uint8Array(64);
  const msg = messageHeader(iov, data, control);
  const n = check("recvmsg", sys(SYS.recvmsg, socket, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  const view = new DataView(msg.buffer), cmsg = new DataView(control.buffer);
  const controlLength = Number(view.getBigUint64(40, true));
  const fds: number[] = [];
  for (let at = 0; at + CMSG_HEADER <= controlLength;) {
    const length = Number(cmsg.getBigUint64(at, true));
    if (length < CMSG_HEADER) break;
    if (cmsg.getInt32(at + 8, true) === SOL_SOCKET && cmsg.getInt32(at + 12, true) === SCM_RIGHTS) {
      for (let i = at + CMSG_HEADER; i + 4 <= at + length; i += 4) fds.push(cmsg.getInt32(i, true));
    }
    at += (length + 7) & ~7;
  }
  if (n === 0 && fds.length === 0) return undefined;
  if (fds.length !== 1 || (view.getInt32(48, true) & MSG_CTRUNC)) {
    for (const fd of fds) close(fd);
    throw new SysError("recvmsg", 71, "EPROTO", "expected exactly one file descriptor");
  }
  return fds[0];
}

/** Wakes a thread blocked in accept on `fd` (close alone does not). */
export const shutdownSocket = (fd: number) => void libc().shutdown(fd, SHUT_RDWR);

/** The credentials of a unix socket's peer, as the kernel recorded them at connect (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  const cred = new Int32Array(3); // struct ucred: pid_t pid; uid_t uid; gid_t gid
  const len = new Uint32Array([12]);
  check(
    "getsockopt",
    libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, new Uint8Array(cred.buffer), new Uint8Array(len.buffer)),
  );
  return { pid: cred[0], uid: cred[1] >>> 0, gid: cred[2] >>> 0 };
}

// ---- bpf (cgroup v2 device filter) ----
const BPF_CMD = { PROG_LOAD: 5, PROG_ATTACH: 8 } as const;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
export const BPF_CGROUP_DEVICE = 6;
export const BPF_F_ALLOW_MULTI = 2;
const addressOf = (buf: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));

function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>): number {
  return Number(libc().syscall_ibi(BigInt(SYS.bpf), BigInt(cmd), attr, BigInt(attr.length)));
}

/**
 * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (raw 8-byte instructions) and returns its fd. When the
 * verifier rejects it, the SysError's path carries the verifier's log.
 */
export function bpfLoadCgroupDeviceProgram(insns: Uint8Array<ArrayBuffer>): number {
  const license = cstr("Apache-2.0");
  const load = (log: Uint8Array<ArrayBuffer> | null) => {
    const attr = new Uint8Array(128); // union bpf_attr, the BPF_PROG_LOAD part; the rest stays zero
    const view = new DataView(attr.buffer);
    view.setUint32(0, BPF_PROG_TYPE_CGROUP_DEVICE, true);
    view.setUint32(4, insns.length / 8, true);
    view.setBigUint64(8, addressOf(insns), true);
    view.setBigUint64(16, addressOf(license), true);
    if (log) {
      view.setUint32(24, 1, true); // log_level
      view.setUint32(28, log.length, true);
      view.setBigUint64(32, addressOf(log), true);
    }
    view.setUint32(68, BPF_CGROUP_DEVICE, true); // expected_attach_type
    const fd = bpf(BPF_CMD.PROG_LOAD, attr);
    return { fd, code: fd === -1 ? errno() : 0 };
  };
  const first = load(null);
  if (first.fd >= 0) return first.fd;
  const log = new Uint8Array(65536);
  const retry = load(log); // again with the verifier's log, to say why
  if (retry.fd >= 0) return retry.fd;
  const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))).trim();
  throw new SysError(
    "bpf(PROG_LOAD)",
    first.code,
    errnoName(first.code),
    strerror(first.code),
    text || undefined,
  );
}

/** Attaches a loaded program to a cgroup directory fd; the cgroup then holds the program. */
export function bpfProgAttach(cgroupFd: number, progFd: number, attachType: number, flags: number): void {
  const attr = new Uint8Array(128);
  const view = new DataView(attr.buffer);
  view.setUint32(0, cgroupFd, true);
  view.setUint32(4, progFd, true);
  view.setUint32(8, attachType, true);
  view.setUint32(12, flags, true);
  check("bpf(PROG_ATTACH)", bpf(BPF_CMD.PROG_ATTACH, attr));
}

// ---- dirfd-based file access (lib/fs): every path below a container root or volume is looked up
// relative to a directory fd, never as a host path string. The calls a walk makes per file are
// typed glibc symbols (table above); the rarer ones are raw syscalls through syscall6, with x86-64
// and arm64 numbers. The struct layouts used (statx, linux_dirent64, open_how) are the same on both.
const ARM64 = Deno.build.arch === "aarch64";
const SYS_AT = ARM64
  ? {
    openat2: 437,
    openat: 56,
    close: 57,
    statx: 291,
    readlinkat: 78,
    mkdirat: 34,
    mknodat: 33,
    fchownat: 54,
    fchmodat2: 452,
    renameat2: 276,
    linkat: 37,
    symlinkat: 36,
    utimensat: 88,
    fstatfs: 44,
    unlinkat: 35,
    faccessat: 48,
  }
  : {
    openat2: 437,
    openat: 257,
    close: 3,
    statx: 332,
    readlinkat: 267,
    mkdirat: 258,
    mknodat: 259,
    fchownat: 260,
    fchmodat2: 452,
    renameat2: 316,
    linkat: 265,
    symlinkat: 266,
    utimensat: 280,
    fstatfs: 138,
    unlinkat: 263,
    faccessat: 269,
  };
/** open flags of the *at calls (O_DIRECTORY and O_NOFOLLOW differ on arm64). */
export const OAT = {
  RDONLY: 0,
  WRONLY: 1,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  NONBLOCK: 0o4000,
  DIRECTORY: ARM64 ? 0o40000 : 0o200000,
  NOFOLLOW: ARM64 ? 0o100000 : 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;
export const RESOLVE = { NO_XDEV: 1, NO_MAGICLINKS: 2, NO_SYMLINKS: 4, BENEATH: 8, IN_ROOT: 16 } as const;
export const AT_EMPTY_PATH = 0x1000;

/** A failed *at call: -errno (no throw), for callers that branch on ENOENT/EEXIST/ELOOP. */
function sysAt(nr: number, a: Word = 0, b: Word = 0, c: Word = 0, d: Word = 0, e: Word = 0): number {
  const r = sys(nr, a, b, c, d, e);
  return r === -1 ? -errno() : r;
}
/** A result of a typed call: -errno instead of -1. */
function typed(result: number | bigint): number {
  const n = Number(result);
  return n === -1 ? -errno() : n;
}
/** A name for the *at calls: a string, or one encoded once with cstr() for many calls. */
export type CName = string | Uint8Array<ArrayBuffer>;
const cname = (name: CName) => (typeof name === "string" ? cstr(name) : name);
/** Throws a SysError for a negative result of sysAt. */
export function checkAt<T extends number>(call: string, result: T, path?: string): T {
  if (result < 0) throw new SysError(call, -result, errnoName(-result), strerror(-result), path);
  return result;
}
/**
 * The few *at calls of a short-lived process (the init stage: a hundred calls) go through the one
 * syscall6 binding instead of binding a typed symbol each (~0.2-0.4 ms of CPU per symbol); the
 * typed symbols stay the fast path for tree walks over thousands of files.
 */
let rawAt = false;
/** Switches the *at calls to raw syscalls (true) or the typed symbols (false); returns the old setting. */
export function setRawAtCalls(on: boolean): boolean {
  const was = rawAt;
  rawAt = on;
  return was;
}
export const openAt = (dirFd: number, name: CName, flags: number, mode = 0) =>
  rawAt
    ? sysAt(SYS_AT.openat, dirFd, cname(name), flags, mode)
    : typed(libc().openat(dirFd, cname(name), flags, mode));
/** openat2(2): `resolve` is a RESOLVE_* mask; -ENOSYS on kernels before 5.6. */
export function openAt2(dirFd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  return sysAt(SYS_AT.openat2, dirFd, cstr(path), new Uint8Array(how.buffer), 24);
}
export const closeFd = (fd: number) => void (rawAt ? sys(SYS_AT.close, fd) : libc().close(fd));
export const readFd = (fd: number, buf: Uint8Array, length = buf.length) =>
  typed(libc().read(fd, buf as Uint8Array<ArrayBuffer>, BigInt(length)));
export const writeFd = (fd: number, buf: Uint8Array, length = buf.length) =>
  typed(libc().write(fd, buf as Uint8Array<ArrayBuffer>, BigInt(length)));
export const mkdirAt = (dirFd: number, name: CName, mode: number) =>
  rawAt ? sysAt(SYS_AT.mkdirat, dirFd, cname(name), mode) : typed(libc().mkdirat(dirFd, cname(name), mode));
export const mknodAt = (dirFd: number, name: string, mode: number, dev: bigint) =>
  sysAt(SYS_AT.mknodat, dirFd, cstr(name), mode, dev & 0xffffffffn);
export const symlinkAt = (target: string, dirFd: number, name: string) =>
  sysAt(SYS_AT.symlinkat, cstr(target), dirFd, cstr(name));
export const linkAt = (fromDir: number, fromName: string, toDir: number, toName: string, flags = 0) =>
  sysAt(SYS_AT.linkat, fromDir, cstr(fromName), toDir, cstr(toName), flags);
export const unlinkAt = (dirFd: number, name: CName, flags = 0) =>
  typed(libc().unlinkat(dirFd, cname(name), flags));
/**
 * mkdir and rmdir of a host path skiff owns (cgroupfs), through the syscall6 binding every process
 * has: -errno where Deno's mkdirSync/removeSync throw, and an exception costs ~0.05-0.2 ms (a run
 * made 9 and removed 9 cgroup dirs whose failure is expected: a parent that exists, or is busy).
 */
export const mkdirPath = (path: string, mode: number) => sysAt(SYS_AT.mkdirat, AT_FDCWD, cstr(path), mode);
export const rmdirPath = (path: string) => sysAt(SYS_AT.unlinkat, AT_FDCWD, cstr(path), AT_REMOVEDIR);
/** Whether a host path skiff owns exists (faccessat F_OK, its symlinks followed), without a throw. */
export const pathExists = (path: string) => sysAt(SYS_AT.faccessat, AT_FDCWD, cstr(path), 0) === 0;
export const fchownAt = (dirFd: number, name: string, uid: number, gid: number, flags: number) =>
  sysAt(SYS_AT.fchownat, dirFd, cstr(name), uid, gid, flags);
export const fchownFd = (fd: number, uid: number, gid: number) => typed(libc().fchown(fd, uid, gid));
export const fchmodFd = (fd: number, mode: number) => typed(libc().fchmod(fd, mode));
/** fchmodat2(2) (Linux 6.6): with AT_SYMLINK_NOFOLLOW it never follows a final symlink. */
export const fchmodAt2 = (dirFd: number, name: string, mode: number, flags: number) =>
  sysAt(SYS_AT.fchmodat2, dirFd, cstr(name), mode, flags);
/** utimensat(2) with whole-second times; `name` "" with AT_EMPTY_PATH is not supported: use futimensFd. */
export function utimensAt(
  dirFd: number,
  name: string | null,
  atimeSec: number,
  mtimeSec: number,
  flags: number,
) {
  const ts = new BigInt64Array([BigInt(Math.trunc(atimeSec)), 0n, BigInt(Math.trunc(mtimeSec)), 0n]);
  return sysAt(SYS_AT.utimensat, dirFd, name === null ? null : cstr(name), new Uint8Array(ts.buffer), flags);
}
/** readlinkat(2) into `buf`: the length, or -errno. */
export const readlinkAt = (dirFd: number, name: CName, buf: Uint8Array<ArrayBuffer>) =>
  rawAt
    ? sysAt(SYS_AT.readlinkat, dirFd, cname(name), buf, buf.length)
    : typed(libc().readlinkat(dirFd, cname(name), buf, BigInt(buf.length)));
/** statx(2) into a 256-byte buffer (same layout on every architecture). */
export const statxAt = (
  dirFd: number,
  name: CName,
  flags: number,
  buf: Uint8Array<ArrayBuffer>,
  mask = 0x7ff, /* STATX_BASIC_STATS */
) =>
  rawAt
    ? sysAt(SYS_AT.statx, dirFd, cname(name), flags, mask, buf)
    : typed(libc().statx(dirFd, cname(name), flags, mask, buf));
/** lseek(fd, 0, SEEK_SET): a directory fd lists from its start again. */
export const rewindFd = (fd: number) => typed(libc().lseek(fd, 0n, 0 /* SEEK_SET */));
/** getdents64(2) into `buf`: bytes filled, 0 at the end, or -errno. */
export const getdents64 = (fd: number, buf: Uint8Array<ArrayBuffer>) =>
  typed(libc().getdents64(fd, buf, BigInt(buf.length)));
/** fgetxattr(2): the value's length, or -errno (-ENODATA when absent). */
export const fgetxattrFd = (fd: number, name: CName, buf: Uint8Array<ArrayBuffer>) =>
  typed(libc().fgetxattr(fd, cname(name), buf, BigInt(buf.length)));
/** fsetxattr(2): 0, or -errno. */
export const fsetxattrFd = (fd: number, name: CName, value: Uint8Array<ArrayBuffer>) =>
  typed(libc().fsetxattr(fd, cname(name), value, BigInt(value.length), 0));
/** fstatfs(2): f_type (the filesystem's magic number), or -errno. */
export function fstatfsType(fd: number): number {
  const buf = new BigInt64Array(15); // struct statfs: f_type is the first word on both architectures
  const r = sysAt(SYS_AT.fstatfs, fd, new Uint8Array(buf.buffer));
  return r < 0 ? r : Number(buf[0]);
}

// ---- the new mount API (Linux 5.2+; mount_setattr 5.12+): mounts handled as fds. A bind is cloned
// from its source (open_tree), made read-only while still detached (mount_setattr) and attached to
// a target fd that was resolved inside the container root (move_mount): no path is looked up again
// between the check and the mount. One number table for x86-64 and arm64 (the common range from
// 5.1 on gives every architecture the same numbers). Each returns -errno (-ENOSYS on old kernels).
const EMPTY_NAME = cstr("");
const SYS_MOUNT_API = { open_tree: 428, move_mount: 429, mount_setattr: 442 } as const;
export const OPEN_TREE_CLONE = 1;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4, MOVE_MOUNT_T_EMPTY_PATH = 0x40;
export const STATX_MNT_ID = 0x1000, STATX_ATTR_MOUNT_ROOT = 0x2000;
/** open_tree(2): with OPEN_TREE_CLONE a detached copy of the mount (tree, with AT_RECURSIVE) at `path`. */
export const openTree = (dirFd: number, path: string, flags: number) =>
  sysAt(SYS_MOUNT_API.open_tree, dirFd, cstr(path), flags | O.CLOEXEC);
/** move_mount(2) of the mount fd `fromFd` onto the file or directory fd `toFd` (both by fd alone). */
export const moveMountFd = (fromFd: number, toFd: number) =>
  sysAt(
    SYS_MOUNT_API.move_mount,
    fromFd,
    EMPTY_NAME,
    toFd,
    EMPTY_NAME,
    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
  );
/** mount_setattr(2) on the mount an fd refers to (attached or detached); AT_RECURSIVE for its tree. */
export function mountSetattrFd(fd: number, flags: number, attrSet: number, attrClr = 0): number {
  const attr = new BigUint64Array([BigInt(attrSet), BigInt(attrClr), 0n, 0n]); // struct mount_attr
  return sysAt(
    SYS_MOUNT_API.mount_setattr,
    fd,
    EMPTY_NAME,
    flags | AT_EMPTY_PATH,
    new Uint8Array(attr.buffer),
    attr.byteLength,
  );
}

// ---- IPv4 port probe (the port allocator: is a host port free, as a bind tells) ----
/**
 * Binds a throw-away IPv4 datagram socket to ip:port and closes it: false when the kernel answers
 * EADDRINUSE (another socket holds it), true when the bind worked. libc's wrappers: no syscall
 * numbers per architecture. (TCP goes through Deno.listen, which sets SO_REUSEADDR as Go does.)
 */
export function udpPortBindable(ip: string, port: number): boolean {
  const fd = udpPortBind(ip, port);
  if (fd === undefined) return false;
  close(fd);
  return true;
}

/**
 * An IPv4 datagram socket bound to ip:port (close-on-exec), kept by the caller; undefined when
 * another socket holds the port (EADDRINUSE). The port stays the caller's until it closes the fd.
 */
export function udpPortBind(ip: string, port: number): number | undefined {
  const addr = new Uint8Array(16); // struct sockaddr_in: family, port (network order), address
  const view = new DataView(addr.buffer);
  view.setUint16(0, /* AF_INET */ 2, true);
  view.setUint16(2, port, false);
  addr.set(ip.split(".").map(Number), 4);
  const fd = check("socket", libc().socket(2, /* SOCK_DGRAM */ 2 | O.CLOEXEC, 0));
  if (libc().bind(fd, addr, addr.length) === 0) return fd;
  const err = errno();
  close(fd);
  if (err === 98 /* EADDRINUSE */) return undefined;
  throw new SysError("bind", err, errnoName(err), strerror(err), `${ip}:${port}/udp`);
}
/** lseek(fd, 0, SEEK_END): the file's size, where the next write at the file position goes. */
export const seekToEnd = (fd: number) => Number(check("lseek", libc().lseek(fd, 0n, 2 /* SEEK_END */)));

// ---- --init (lib/runtime/init_program.ts) ----

/**
 * An executable memfd holding `bytes`, sealed (no write, grow, shrink, further seals) and reopened
 * read-only: a process executing it, or anyone reaching it through /proc/PID/exe, cannot change it.
 */
export function sealedMemfd(name: string, bytes: Uint8Array<ArrayBuffer>): number {
  const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2, MFD_EXEC = 0x10, F_ADD_SEALS = 1033;
  const SEALS = 0x1 /* SEAL */ | 0x2 /* SHRINK */ | 0x4 /* GROW */ | 0x8 /* WRITE */;
  // executable (a process's exe must be): asked for explicitly where vm.memfd_noexec=1 would make it
  // noexec; kernels before 6.3 do not know the flag (EINVAL) and make it executable anyway
  let fd = sys(SYS.memfd_create, cstr(name), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd === -1 && errno() === 22) fd = sys(SYS.memfd_create, cstr(name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  check("memfd_create", fd);
  try {
    for (let done = 0; done < bytes.length;) {
      done += check("write", sys(SYS.write, fd, bytes.subarray(done), bytes.length - done));
    }
    check("fcntl", sys(SYS.fcntl, fd, F_ADD_SEALS, SEALS));
    return open(`/proc/self/fd/${fd}`, O.RDONLY | O.CLOEXEC); // a writable fd would make exec fail (ETXTBSY)
  } finally {
    close(fd);
  }
}

/** execveat(fd, "", argv, env, AT_EMPTY_PATH): runs the file open at `fd`. Returns only by throwing. */
export function execveatFd(fd: number, argv: string[], env: string[]): never {
  const AT_EMPTY_PATH = 0x1000;
  const a = cstrArray(argv);
  const e = cstrArray(env);
  const result = sys(SYS.execveat, fd, cstr(""), a.array, e.array, AT_EMPTY_PATH);
  void a.keep, e.keep; // referenced until after the call
  check("execveat", result, argv[0]);
  throw new Error("execveat returned");
}
