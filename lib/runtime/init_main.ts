// Entry of the init stage in a source checkout (see self.ts): the same initMain that main.ts
// dispatches `skiff __init` to, without loading main.ts's CLI imports first.

import { bindLibc, type SymbolName } from "../../ffi/libc.ts";
import { initMain } from "./init.ts";

/**
 * The libc calls between the go signal and execve (a -t container adds dup2/ioctl_int, bound on
 * use). Each costs ~0.2 ms to bind: done before waiting for the spec, that time is off the
 * critical path whenever the parent is still creating the container.
 */
const INIT_SYMBOLS: readonly SymbolName[] = [
  "prctl",
  "open",
  "read",
  "write",
  "close",
  "umask",
  "unshare",
  "setsid",
  "mount",
  "umount2",
  "mknod",
  "chdir",
  "syscall_pp", // pivot_root
  "sethostname",
  "socket",
  "ioctl_buf", // lo up
  "syscall_ibi", // setgroups of this thread (syscall_iii: setresuid/setresgid)
  "syscall_bb", // capget, capset
  "syscall_iii", // close_range
  "syscall_ibbi", // rt_sigaction
  "execve",
];

/** `skiff __init FIFO PARENT_PID`: never returns. */
export function runInitStage(args: string[]): never {
  bindLibc(INIT_SYMBOLS);
  return initMain(args);
}

if (import.meta.main) runInitStage(Deno.args);
