// skiff tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]

import type { Verb } from "./context.ts";
import { parseArgs, requireArgs } from "./args.ts";
import { ImageStore } from "../image/store.ts";

const HELP = `Usage:  skiff tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]

Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE

Aliases:
  skiff image tag, skiff tag
`;

const tag: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "tag", options: [] });
  if (p.options.help) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "tag", 2, 2);
  await new ImageStore(ctx.root).tag(p.positionals[0], p.positionals[1]);
  return 0;
};
export default tag;
