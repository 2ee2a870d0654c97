// --init: skiff's own init (init_program/init.c, tini's behaviour) as PID 1, the command its child.
// docker bind-mounts the host's docker-init read-only at /sbin/docker-init, which a privileged
// container can remount read-write and so change the file every other container (and the host)
// runs. skiff gives each container its own copy instead: a memfd the init stage fills and seals
// (no write, grow or shrink) and executes with execveat. Nothing of it is in any file system: the
// container sees it only as /proc/1/exe, which it cannot change, and it is gone with the container.

import { execveatFd, sealedMemfd } from "../../ffi/libc.ts";
import { INIT_PROGRAM } from "./init_program/binary.ts";

/** argv[0] as docker's: `ps` in the container shows `/sbin/docker-init -- CMD`. */
export const INIT_PATH = "/sbin/docker-init";

/** The init's executable, sealed, open read-only (close-on-exec: execveat of an ELF file takes that). */
export function initProgramFd(): number {
  const arch = Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";
  return sealedMemfd("docker-init", Uint8Array.fromBase64(INIT_PROGRAM[arch]));
}

/** Runs the init from `fd` with the container's command; returns only by throwing (SysError). */
export function execInit(fd: number, args: string[], env: string[]): never {
  return execveatFd(fd, [INIT_PATH, "--", ...args], env);
}
