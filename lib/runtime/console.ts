// A -t container's terminal, made as runc makes it: in the container's own devpts instance (mounted
// newinstance at /dev/pts by rootfs.ts), so the command sees /dev/pts/0 as docker's does, and no fd
// of the host's devpts ever reaches the container. run's stage setup (init.ts) opens that devpts'
// ptmx by fd and gets the slave with TIOCGPTPEER (no path lookup), binds it on /dev/console and
// keeps the master; the container's PID 1 takes the slave as its stdio and controlling terminal in
// its last program (stage_program.ts), after skiff has set the window size.

import {
  AT_EMPTY_PATH,
  closeFd,
  DEVPTS_SUPER_MAGIC,
  fchownAt,
  fstatfsType,
  O,
  openAt,
  openPtyPeer,
  ptyNumber,
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
