// skiff commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]

import { NotFoundError, SkiffError } from "../errors.ts";
import { commitContainer } from "../container/commit.ts";
import { bool, list, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

const USAGE = `Usage:  skiff commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]

Create a new image from a container's changes

Options:
  -a, --author string    Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
  -c, --change list      Apply Dockerfile instruction to the created image
  -m, --message string   Commit message
  -p, --pause            Pause container during commit (default true)`;

const commit: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "commit",
    options: [
      { name: "author", short: "a", kind: "string" },
      { name: "change", short: "c", kind: "list" },
      { name: "message", short: "m", kind: "string" },
      { name: "pause", short: "p", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "commit", 1, 2);
  const [ref, tag] = p.positionals;
  try {
    const image = await commitContainer(ctx.root, ref, {
      tag,
      author: str(p, "author"),
      message: str(p, "message"),
      changes: list(p, "change"),
      pause: p.options.pause !== false,
    });
    console.log(image.id);
  } catch (e) {
    if (e instanceof NotFoundError) throw new SkiffError(e.message, 1);
    throw e;
  }
  return 0;
};
export default commit;
