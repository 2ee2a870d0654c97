// skiff rename CONTAINER NEW_NAME

import { SkiffError, UsageError } from "../errors.ts";
import { renameContainer } from "../container/ops.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";
import { refreshNames } from "../network/names.ts";
import { findContainer } from "../state/containers.ts";

const rename: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "rename", options: [] });
  if (bool(p, "help")) {
    console.log("Usage:  skiff rename CONTAINER NEW_NAME\n\nRename a container");
    return 0;
  }
  requireArgs(p, "rename", 2, 2);
  try {
    await renameContainer(ctx.root, p.positionals[0], p.positionals[1]);
    // the new name resolves on its user networks (lib/network/names.ts)
    refreshNames(ctx.root, findContainer(ctx.root, p.positionals[1]).Id);
  } catch (e) {
    // the daemon's refusals: docker's CLI exits 1 for them
    if (e instanceof SkiffError && !(e instanceof UsageError)) throw new SkiffError(e.message, 1);
    throw e;
  }
  return 0;
};
export default rename;
