// Entry of the init stage in a source checkout (see self.ts): the same initMain that main.ts
// dispatches `skiff __init` to, without loading main.ts's CLI imports first.

import { bindLibc, setRawAtCalls, type SymbolName } from "../../ffi/libc.ts";
import { initMain } from "./init.ts";

/**
 * The libc symbols between the go signal and execve: every call there is a raw system call through
 * the one syscall6 binding (a -t container adds nothing), the *at calls of lib/fs too (rootfs.ts
 * opens and makes the mount targets with them: setRawAtCalls). Binding costs ~0.2 ms per symbol:
 * done before waiting for the spec, and kept to one, it is off the critical path.
 */
const INIT_SYMBOLS: readonly SymbolName[] = ["syscall6"];

/** `skiff __init FIFO PARENT_PID`: never returns. */
export function runInitStage(args: string[]): never {
  bindLibc(INIT_SYMBOLS);
  setRawAtCalls(true);
  return initMain(args);
}

if (import.meta.main) runInitStage(Deno.args);
