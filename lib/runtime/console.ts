// A -t container's terminal, made as runc makes it: in the container's own devpts instance (mounted
// newinstance at /dev/pts by rootfs.ts), so the command sees /dev/pts/0 as docker's does, and no fd
// of the host's devpts ever reaches the container. The init stage opens that devpts' ptmx by fd,
// gets the slave with TIOCGPTPEER (no path lookup), makes it its controlling terminal and stdio and
// binds it on /dev/console; the master goes to the parent over a unix socket (SCM_RIGHTS), and the
// stage waits for the parent's ready (window size set) before it goes on to the command.
//
// Imported by the init stage: no npm, no node: built-ins.

import {
  AT_EMPTY_PATH,
  closeFd,
  connectUnix,
  DEVPTS_SUPER_MAGIC,
  dup2,
  fchownAt,
  fstatfsType,
  ioctlInt,
  O,
  openAt,
  openPtyPeer,
  ptyNumber,
  read,
  sendFd,
  TIOC,
  unlockPty,
} from "../../ffi/mod.ts";
import { checkAt, tryOpenInRoot } from "../fs/at.ts";

/** A pty of one devpts instance: the master and its slave, both close-on-exec. */
export interface PtyPair {
  master: number;
  slave: number;
}

/**
 * Opens a new pty in the devpts whose root `ptsFd` is (a directory fd): its `ptmx`, opened
 * O_NOFOLLOW and checked to be devpts', and the slave by TIOCGPTPEER. Before Linux 4.13 (or with
 * `peer` false, for the tests) the slave is opened by its number in that same directory fd.
 */
export function openPtyIn(ptsFd: number, peer = true): PtyPair {
  if (fstatfsType(ptsFd) !== DEVPTS_SUPER_MAGIC) throw new Error("/dev/pts is not a devpts");
  const flags = O.RDWR | O.NOCTTY | O.CLOEXEC;
  const master = checkAt("openat", openAt(ptsFd, "ptmx", flags | O.NOFOLLOW), "/dev/pts/ptmx");
  try {
    if (fstatfsType(master) !== DEVPTS_SUPER_MAGIC) throw new Error("/dev/pts/ptmx is not devpts' ptmx");
    unlockPty(master);
    let slave = peer ? openPtyPeer(master, flags) : -25;
    if (slave === -25 /* ENOTTY */ || slave === -22 /* EINVAL */) {
      const name = String(ptyNumber(master));
      slave = openAt(ptsFd, name, flags | O.NOFOLLOW);
    }
    checkAt("ioctl TIOCGPTPEER", slave, "/dev/pts");
    return { master, slave };
  } catch (e) {
    closeFd(master);
    throw e;
  }
}

/** Makes the slave this process's controlling terminal (it leads a session already) and fds 0-2. */
export function attachConsole(slave: number): void {
  ioctlInt(slave, TIOC.SCTTY, 0);
  for (const target of [0, 1, 2]) dup2(slave, target); // the copies are not close-on-exec
}

/** The user the command runs as owns its terminal (runc's fixStdioPermissions; the group stays tty's). */
export function giveConsoleTo(slave: number, uid: number): void {
  checkAt("fchown", fchownAt(slave, "", uid, -1, AT_EMPTY_PATH), "the container's terminal");
}

/**
 * exec -t: a new pty in the running container's devpts, as runc's exec makes it (docker's shows as
 * /dev/pts/N in the container). /dev/pts is resolved inside the container's root (`rootFd`): the
 * container may have changed anything there, so it must be a devpts directory, and only its
 * ptmx is opened, never a name the container chose.
 */
export function openContainerPty(rootFd: number): PtyPair {
  const ptsFd = checkAt("openat2", tryOpenInRoot(rootFd, "/dev/pts", O.RDONLY | O.DIRECTORY), "/dev/pts");
  try {
    return openPtyIn(ptsFd);
  } finally {
    closeFd(ptsFd);
  }
}

/** The stage's end of the parent's console socket, connected while the stage still sees the host's paths. */
export const connectConsoleSocket = (path: string) => connectUnix(path);

/** Hands the master to the parent and keeps no copy of it. */
export function sendMaster(socket: number, master: number): void {
  try {
    sendFd(socket, master);
  } finally {
    closeFd(master);
  }
}

/**
 * Blocks until the parent has the master and set the window size (one byte), then closes the
 * socket. False when the parent is gone instead (EOF): the container must not start then.
 */
export function awaitConsoleReady(socket: number): boolean {
  try {
    return read(socket, new Uint8Array(1)) === 1;
  } finally {
    closeFd(socket);
  }
}
