// skiff ps [-a] [-q] [-l] [-n N] [--no-trunc] [-s] [-f KEY=VALUE]... [--format TEMPLATE]

import { UsageError } from "../errors.ts";
import { checkPsFormat, compileListFormat } from "../format/list.ts";
import {
  containerRwSize,
  DEFAULT_PS_FORMAT,
  parseFilters,
  psHeaderRow,
  psRow,
  selectContainers,
} from "../inspect/ps.ts";
import { ImageStore } from "../image/store.ts";
import { join } from "../path.ts";
import { bool, list, parseArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { sweepLostPorts } from "../network/sweep.ts";

const ps: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "ps",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "latest", short: "l", kind: "bool" },
      { name: "last", short: "n", kind: "string" },
      { name: "no-trunc", kind: "bool" },
      { name: "size", short: "s", kind: "bool" },
      { name: "filter", short: "f", kind: "list" },
      { name: "format", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  if (p.positionals.length) throw new UsageError(`"skiff ps" accepts no arguments.`, "ps", true);
  let last: number | undefined;
  const lastFlag = str(p, "last");
  if (lastFlag !== undefined) {
    if (!/^-?\d+$/.test(lastFlag.trim())) {
      throw new UsageError(
        `invalid argument "${lastFlag}" for "-n, --last" flag: strconv.ParseInt: parsing "${lastFlag}": invalid syntax`,
        "ps",
      );
    }
    last = Number(lastFlag);
  }
  if (bool(p, "latest")) last = 1;
  const filters = parseFilters(list(p, "filter"));
  const noTrunc = bool(p, "no-trunc");

  // parse the template before touching state: a bad template changes nothing
  const defaultTable = DEFAULT_PS_FORMAT + (bool(p, "size") ? "\t{{.Size}}" : "");
  const formatFlag = str(p, "format") ?? "";
  if (formatFlag) checkPsFormat(formatFlag, psHeaderRow());
  const format = bool(p, "quiet") ? undefined : compileListFormat(formatFlag, defaultTable);

  // a killed build's RUN container: docker's daemon removes it when the build is cancelled. The
  // sweep loads only when a build is running or was killed (a listed container of a builder).
  if (hasEntries(join(ctx.root.path, "build-cache", "containers"))) {
    await (await import("../build/containers.ts")).sweepDeadBuilders(ctx.root);
  }
  const images = new ImageStore(ctx.root);
  const resolveImage = (ref: string) => {
    try {
      return images.find(ref)?.id;
    } catch {
      return undefined; // not a valid reference: docker matches nothing
    }
  };
  const containers = selectContainers(ctx.root, { all: bool(p, "all"), last, filters, resolveImage });
  // what lost runs left published (network/nat.ts loads only when there is something)
  const swept = sweepLostPorts(ctx.root).then(() => 0);
  if (!format) {
    writeAll(containers.map((c) => (noTrunc ? c.Id : c.Id.slice(0, 12)) + "\n").join(""));
    return await swept;
  }
  const wantSize = bool(p, "size") || format.uses("Size");
  const now = Date.now();
  const rows = containers.map((c) => {
    let size;
    if (wantSize) {
      const rw = containerRwSize(ctx.root, c);
      size = { rw, rootFs: rw + (images.get(c.Image)?.size ?? 0) };
    }
    return psRow(c, { noTrunc, size, now });
  });
  writeAll(format.render(rows, psHeaderRow()));
  return await swept;
};
export default ps;

function hasEntries(dir: string): boolean {
  try {
    for (const _ of Deno.readDirSync(dir)) return true;
  } catch { /* no build ever ran a step here */ }
  return false;
}

/** Writes all of it; a reader that went away (`| head`) ends the output quietly, as in docker. */
function writeAll(text: string): void {
  const bytes = new TextEncoder().encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

const USAGE = `Usage:  skiff ps [OPTIONS]

List containers

Options:
  -a, --all             Show all containers (default shows just running)
  -f, --filter filter   Filter output based on conditions provided
      --format string   Format output using a custom template:
                        'table':            Print output in table format with column headers (default)
                        'table TEMPLATE':   Print output in table format using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given Go template
  -n, --last int        Show n last created containers (includes all states) (default -1)
  -l, --latest          Show the latest created container (includes all states)
      --no-trunc        Don't truncate output
  -q, --quiet           Only display container IDs
  -s, --size            Display total file sizes`;
