// skiff start [-a] [-i] [--detach-keys KEYS] CONTAINER...: starts created or stopped containers in
// the background (the supervisor owns them), re-using their container layer. -a / -i attach the
// caller's terminal to the one container before it starts (lib/cli/attach.ts), as docker's start:
// its output (and with -i its stdin) until it stops, then its exit code.

import { SkiffError } from "../errors.ts";
import { Engine } from "../engine/engine.ts";
import { findContainer } from "../state/containers.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { eachContainer } from "./stop.ts";

const start: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "start",
    options: [
      { name: "attach", short: "a", kind: "bool" },
      { name: "interactive", short: "i", kind: "bool" },
      { name: "detach-keys", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "start", 1);
  const engine = new Engine({ root: ctx.root });
  if (!bool(p, "attach") && !bool(p, "interactive")) {
    // docker's start: a line for each failure, then one that names every container that did not start
    const failed: string[] = [];
    for (const ref of p.positionals) {
      if (await eachContainer([ref], ctx, (r) => engine.start(r)) !== 0) failed.push(ref);
    }
    if (!failed.length) return 0;
    console.error(`Error: failed to start containers: ${failed.join(", ")}`);
    return 1;
  }
  if (p.positionals.length > 1) {
    throw new SkiffError("you cannot start and attach multiple containers at once");
  }
  const record = findContainer(ctx.root, p.positionals[0]);
  const { attachTerminal } = await import("./attach.ts");
  const outcome = await attachTerminal(engine, record, {
    start: true,
    stdin: bool(p, "interactive") && record.Config.OpenStdin,
    detachKeys: str(p, "detach-keys"),
    sigProxy: true, // docker's start -a forwards signals (not with -t)
  });
  return outcome === "detached" ? 0 : outcome; // a detach ends start -a quietly
};
export default start;

const USAGE = `Usage:  skiff start [OPTIONS] CONTAINER [CONTAINER...]

Start one or more stopped containers

Options:
  -a, --attach               Attach STDOUT/STDERR and forward signals
      --detach-keys string   Override the key sequence for detaching a container
  -i, --interactive          Attach container's STDIN`;
