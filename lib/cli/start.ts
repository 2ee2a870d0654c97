// skiff start [-a] [-i] CONTAINER...: starts created or stopped containers in the background (the
// supervisor owns them), re-using their container layer. -a follows the output of the one
// container until it stops and exits with its code.

import { SkiffError } from "../errors.ts";
import { Engine } from "../engine/engine.ts";
import { logPath } from "../runtime/logs.ts";
import { findContainer } from "../state/containers.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";
import { followContainerLog, printer } from "./logs.ts";
import { eachContainer } from "./stop.ts";

const start: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "start",
    options: [
      { name: "attach", short: "a", kind: "bool" },
      { name: "interactive", short: "i", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "start", 1);
  const engine = new Engine({ root: ctx.root });
  if (!bool(p, "attach") && !bool(p, "interactive")) {
    return await eachContainer(p.positionals, ctx, (r) => engine.start(r));
  }
  if (p.positionals.length > 1) {
    throw new SkiffError("you cannot start and attach multiple containers at once");
  }
  const record = findContainer(ctx.root, p.positionals[0]);
  let offset = 0;
  try {
    offset = Deno.statSync(logPath(ctx.root, record.Id)).size; // only what this run writes
  } catch { /* no output yet */ }
  await engine.start(record);
  await followContainerLog(ctx.root, record, offset, printer({}));
  return await engine.wait(record);
};
export default start;

const USAGE = `Usage:  skiff start [OPTIONS] CONTAINER [CONTAINER...]

Start one or more stopped containers

Options:
  -a, --attach        Attach STDOUT/STDERR and forward signals
  -i, --interactive   Attach container's STDIN`;
