// skiff wait CONTAINER...: blocks until each container stops, then prints its exit code.

import { Engine } from "../engine/engine.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";
import { eachContainer } from "./stop.ts";

const wait: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "wait", options: [] });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff wait CONTAINER [CONTAINER...]\n\nBlock until one or more containers stop, then print their exit codes",
    );
    return 0;
  }
  requireArgs(p, "wait", 1);
  const engine = new Engine({ root: ctx.root });
  return await eachContainer(
    p.positionals,
    ctx,
    async (r) => console.log(await engine.wait(r)),
    true,
  );
};
export default wait;
