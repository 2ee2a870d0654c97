// What every verb receives: the resolved state root and global flags.

import type { StateRoot } from "../state/root.ts";

export interface CliContext {
  root: StateRoot;
  debug: boolean;
  /** The global --insecure-registry flags (dockerd's): see registry_settings.ts. */
  insecureRegistries: string[];
}

/** A verb module's entry point: parses its own args, calls the engine, returns the exit code. */
export type Verb = (args: string[], ctx: CliContext) => Promise<number>;
