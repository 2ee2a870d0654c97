// skiff unpause CONTAINER...: thaws paused containers.

import { unpauseContainer } from "../container/ops.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";

/**
 * Runs `action` for each CONTAINER argument: prints the name as given on success, one error line
 * per failure, exit 1 when any failed (docker's behaviour for pause, unpause and friends).
 */
export function forEachContainer(
  args: string[],
  verb: string,
  summary: string,
  action: (ref: string) => unknown,
): number {
  const p = parseArgs(args, { verb, options: [] });
  if (bool(p, "help")) {
    console.log(`Usage:  skiff ${verb} CONTAINER [CONTAINER...]\n\n${summary}`);
    return 0;
  }
  requireArgs(p, verb, 1);
  let failed = false;
  for (const ref of p.positionals) {
    try {
      action(ref);
      console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return failed ? 1 : 0;
}

const unpause: Verb = (args, ctx) =>
  Promise.resolve(
    forEachContainer(args, "unpause", "Unpause all processes within one or more containers", (ref) =>
      unpauseContainer(ctx.root, ref)),
  );
export default unpause;
