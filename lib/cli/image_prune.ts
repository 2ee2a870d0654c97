// skiff image prune [-a] [-f] [--filter until=…|label=…]

import type { Verb } from "./context.ts";
import { bool, list, parseArgs } from "./args.ts";
import { UsageError } from "../errors.ts";
import { humanSize } from "../format/human.ts";
import { ImageStore } from "../image/store.ts";
import { imagePruneFilter, pruneImages } from "../image/prune.ts";
import { confirm } from "./volume.ts";

const HELP = `Usage:  skiff image prune [OPTIONS]

Remove unused images

Options:
  -a, --all             Remove all unused images, not just dangling ones
      --filter filter   Provide filter values (e.g. "until=<timestamp>")
  -f, --force           Do not prompt for confirmation
`;

const imagePrune: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "image prune",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "force", short: "f", kind: "bool" },
      { name: "filter", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff image prune" accepts no arguments.`, "image prune", true);
  }
  const filters = list(p, "filter");
  imagePruneFilter(filters); // a bad filter fails before the question
  const all = bool(p, "all");
  if (!bool(p, "force")) {
    const warning = all
      ? "WARNING! This will remove all images without at least one container associated to them."
      : "WARNING! This will remove all dangling images.";
    if (!confirm(`${warning}\nAre you sure you want to continue?`)) return 0;
  }
  const result = await pruneImages(new ImageStore(ctx.root), { all, filters });
  let out = "";
  if (result.records.length) {
    out += "Deleted Images:\n";
    for (const r of result.records) {
      out += "untagged" in r ? `untagged: ${r.untagged}\n` : `deleted: ${r.deleted}\n`;
    }
    out += "\n";
  }
  out += `Total reclaimed space: ${humanSize(result.reclaimed, 4)}\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
};
export default imagePrune;
