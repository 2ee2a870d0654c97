// skiff rmi [-f] IMAGE...: untag and delete images. Each image is handled on its own: an error is
// reported and the others still go; the exit code is 1 if any failed, as with docker.

import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import { ImageStore } from "../image/store.ts";
import { SkiffError } from "../errors.ts";

const HELP = `Usage:  skiff rmi [OPTIONS] IMAGE [IMAGE...]

Remove one or more images

Aliases:
  skiff image rm, skiff image remove, skiff rmi

Options:
  -f, --force      Force removal of the image
      --no-prune   Do not delete untagged parents
`;

const rmi: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "rmi",
    options: [
      { name: "force", short: "f", kind: "bool" },
      { name: "no-prune", kind: "bool" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "rmi", 1);
  const store = new ImageStore(ctx.root);
  let failed = false;
  for (const ref of p.positionals) {
    try {
      for (const r of await store.remove(ref, bool(p, "force"), !bool(p, "no-prune"))) {
        console.log("untagged" in r ? `Untagged: ${r.untagged}` : `Deleted: ${r.deleted}`);
      }
    } catch (e) {
      if (!(e instanceof SkiffError)) throw e;
      console.error(`skiff: ${e.message}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
};
export default rmi;
