// skiff container prune [-f] [--filter until=…|label=…]

import { UsageError } from "../errors.ts";
import { humanSize } from "../format/human.ts";
import { pruneContainers, pruneFilter } from "../container/prune.ts";
import { confirm } from "./volume.ts";
import { bool, list, parseArgs } from "./args.ts";
import type { Verb } from "./context.ts";
import { sweepDeadBuilders } from "../build/containers.ts";

const containerPrune: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "container prune",
    options: [{ name: "force", short: "f", kind: "bool" }, { name: "filter", kind: "list" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff container prune [OPTIONS]\n\nRemove all stopped containers\n\nOptions:\n" +
        '      --filter filter   Provide filter values (e.g. "until=<timestamp>")\n' +
        "  -f, --force           Do not prompt for confirmation",
    );
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff container prune" accepts no arguments.`, "container prune", true);
  }
  const keep = pruneFilter(list(p, "filter"));
  if (!bool(p, "force")) {
    if (!confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?")) {
      return 0;
    }
  }
  await sweepDeadBuilders(ctx.root); // a killed build's RUN container is not the user's to prune
  const result = await pruneContainers(ctx.root, keep);
  let out = "";
  if (result.deleted.length) out += `Deleted Containers:\n${result.deleted.join("\n")}\n\n`;
  out += `Total reclaimed space: ${humanSize(result.reclaimed, 4)}\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
};
export default containerPrune;
