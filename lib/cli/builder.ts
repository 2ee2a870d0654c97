// skiff builder prune [-a] [-f] [--filter until=…] [--keep-storage BYTES]: docker's command over
// skiff's build cache (lib/build/cache_prune.ts says what that is).

import type { Verb } from "./context.ts";
import { bool, bytesFlag, list, parseArgs, str } from "./args.ts";
import { SkiffError, UsageError } from "../errors.ts";
import { humanSize } from "../format/human.ts";
import { ImageStore } from "../image/store.ts";
import { parseEventTime } from "../format/filters.ts";
import { pruneBuildCache } from "../build/cache_prune.ts";
import { confirm } from "./volume.ts";

const HELP = `Usage:  skiff builder COMMAND

Manage builds

Commands:
  prune       Remove build cache`;

const PRUNE_HELP = `Usage:  skiff builder prune

Remove build cache

Options:
  -a, --all                  Remove all unused build cache, not just dangling ones
      --filter filter        Provide filter values (e.g. 'until=24h')
  -f, --force                Do not prompt for confirmation
      --keep-storage bytes   Amount of disk space to keep for cache`;

// deno-lint-ignore require-await -- a Verb returns a promise; this one has nothing to wait for
const builder: Verb = async (args, ctx) => {
  const sub = args[0];
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(HELP);
    return 0;
  }
  if (sub !== "prune") throw new UsageError(`unknown command "${sub}" for "skiff builder"`, "builder");
  const p = parseArgs(args.slice(1), {
    verb: "builder prune",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "force", short: "f", kind: "bool" },
      { name: "filter", kind: "list" },
      { name: "keep-storage", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(PRUNE_HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff builder prune" accepts no arguments.`, "builder prune", true);
  }
  // the cache is a few small files: there is no storage to keep, only its flag to read
  bytesFlag("builder prune", str(p, "keep-storage"), "--keep-storage");
  let olderThanMs: number | undefined;
  for (const f of list(p, "filter")) {
    const eq = f.indexOf("=");
    const key = eq < 0 ? f : f.slice(0, eq);
    if (key !== "until") throw new SkiffError(`invalid filter '${key}'`);
    olderThanMs = Number(parseEventTime(f.slice(eq + 1)) / 1_000_000n);
  }
  const all = bool(p, "all");
  if (!bool(p, "force")) {
    const what = all ? "all build cache" : "all dangling build cache";
    if (!confirm(`WARNING! This will remove ${what}. Are you sure you want to continue?`)) return 0;
  }
  const result = pruneBuildCache(new ImageStore(ctx.root), { all, olderThanMs });
  let out = "";
  if (result.deleted.length) out += `Deleted build cache objects:\n${result.deleted.join("\n")}\n\n`;
  out += `Total reclaimed space: ${humanSize(result.reclaimed, 4)}\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
};
export default builder;
