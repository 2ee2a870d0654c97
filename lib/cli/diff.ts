// skiff diff CONTAINER: files added (A), changed (C) and deleted (D) in the container's filesystem.

import { NotFoundError, SkiffError } from "../errors.ts";
import { containerChanges } from "../container/layers.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";

const diff: Verb = (args, ctx) => {
  const p = parseArgs(args, { verb: "diff", options: [] });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff diff CONTAINER\n\nInspect changes to files or directories on a container's filesystem",
    );
    return Promise.resolve(0);
  }
  requireArgs(p, "diff", 1, 1);
  let record;
  try {
    record = lookupContainer(ctx.root, p.positionals[0]);
  } catch (e) {
    if (e instanceof NotFoundError) throw new SkiffError(e.message, 1);
    throw e;
  }
  const text = containerChanges(ctx.root, record).map((c) => `${c.kind} ${c.path}\n`).join("");
  Deno.stdout.writeSync(new TextEncoder().encode(text));
  return Promise.resolve(0);
};
export default diff;
