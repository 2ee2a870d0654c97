// skiff kill [-s SIG] CONTAINER...: a signal (default KILL) to each container's main process.

import { Engine } from "../engine/engine.ts";
import { SkiffError } from "../errors.ts";
import { parseSignal } from "../runtime/signals.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { eachContainer } from "./stop.ts";

const kill: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "kill", options: [{ name: "signal", short: "s", kind: "string" }] });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "kill", 1);
  const signal = str(p, "signal") ?? "KILL";
  try {
    parseSignal(signal); // a bad signal is refused before any container is touched
  } catch (e) {
    if (!(e instanceof SkiffError)) throw e;
    // docker's daemon refuses it for each container named, before looking the container up
    console.error(p.positionals.map(() => `skiff: ${e.message}`).join("\n"));
    return 1;
  }
  const engine = new Engine({ root: ctx.root });
  return await eachContainer(p.positionals, ctx, (r) => engine.kill(r, signal));
};
export default kill;

const USAGE = `Usage:  skiff kill [OPTIONS] CONTAINER [CONTAINER...]

Kill one or more running containers

Options:
  -s, --signal string   Signal to send to the container (default "KILL")`;
