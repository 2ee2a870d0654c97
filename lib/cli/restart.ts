// skiff restart [-t N] [-s SIG] CONTAINER...: stop (as `stop` does), then start detached.

import { startContainer, stopContainer } from "../runtime/lifecycle.ts";
import type { Verb } from "./context.ts";
import { containerEvent } from "../state/events.ts";
import { eachContainer, stopArgs } from "./stop.ts";

const restart: Verb = async (args, ctx) => {
  const a = stopArgs(args, "restart", USAGE);
  if (!a) return 0;
  return await eachContainer(a.refs, ctx, async (r) => {
    await stopContainer(ctx.root, r, a);
    await startContainer(ctx.root, r);
    containerEvent(ctx.root, r, "restart");
  });
};
export default restart;

const USAGE = `Usage:  skiff restart [OPTIONS] CONTAINER [CONTAINER...]

Restart one or more containers

Options:
  -s, --signal string   Signal to send to the container
  -t, --time int        Seconds to wait before killing the container`;
