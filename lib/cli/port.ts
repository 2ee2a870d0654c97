// skiff port CONTAINER [PRIVATE_PORT[/PROTO]]: the host addresses a container's ports are published
// on, as docker prints them.

import { NoSuchContainerError, withExitCode } from "../errors.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { containerPorts } from "../inspect/container.ts";
import { portCommandLines } from "../network/ports.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";

const port: Verb = (args, ctx) => {
  const p = parseArgs(args, { verb: "port", options: [] });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff port CONTAINER [PRIVATE_PORT[/PROTO]]\n\nList port mappings or a specific mapping for the container",
    );
    return Promise.resolve(0);
  }
  requireArgs(p, "port", 1, 2);
  const [ref, wanted] = p.positionals;
  let record;
  try {
    record = lookupContainer(ctx.root, ref);
  } catch (e) {
    if (e instanceof NoSuchContainerError) throw withExitCode(e, 1);
    throw e;
  }
  const lines = portCommandLines(containerPorts(record), ref, wanted);
  if (lines.length) console.log(lines.join("\n"));
  return Promise.resolve(0);
};
export default port;
