// What every verb receives: the resolved state root and global flags.

import type { StateRoot } from "../state/root.ts";

export interface CliContext {
  root: StateRoot;
  debug: boolean;
}

/** A verb module's entry point: parses its own args, calls the engine, returns the exit code. */
export type Verb = (args: string[], ctx: CliContext) => Promise<number>;
