// Entry of the init stage in a source checkout (see self.ts): the same initMain that main.ts
// dispatches `skiff __init` to, without loading main.ts's CLI imports first.

import { bindLibc, type SymbolName } from "../../ffi/libc.ts";
import { initMain } from "./init.ts";

/**
 * The libc symbols between the go signal and execve: most calls there are raw system calls through
 * the one syscall6 binding (a -t container adds nothing); the mount targets are opened, checked and
 * made through the typed *at calls of lib/fs (rootfs.ts). Binding costs ~0.2 ms per symbol: done
 * before waiting for the spec, it is off the critical path.
 */
const INIT_SYMBOLS: readonly SymbolName[] = ["syscall6", "openat", "close", "statx", "readlinkat", "mkdirat"];

/** `skiff __init FIFO PARENT_PID`: never returns. */
export function runInitStage(args: string[]): never {
  bindLibc(INIT_SYMBOLS);
  return initMain(args);
}

if (import.meta.main) runInitStage(Deno.args);
