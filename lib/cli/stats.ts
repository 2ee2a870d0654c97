// skiff stats [--no-stream] [-a] [--no-trunc] [--format] [CONTAINER...]
// Without names: the running containers (all with -a), listed again at every refresh. Streaming
// redraws the table once a second on a terminal and prints it again and again otherwise.

import { compileListFormat } from "../format/list.ts";
import { goStruct } from "../format/template.ts";
import { DEFAULT_STATS_FORMAT, sampleStats, STATS_HEADER, statsRow } from "../container/stats.ts";
import { isRunning, lookupContainer } from "../state/reconcile.ts";
import { listReconciled } from "../state/reconcile.ts";
import { sweepLostEndpoints, sweepLostPorts } from "../network/sweep.ts";
import type { ContainerRecord } from "../state/types.ts";
import { NoSuchContainerError } from "../errors.ts";
import { bool, parseArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

const USAGE = `Usage:  skiff stats [OPTIONS] [CONTAINER...]

Display a live stream of container(s) resource usage statistics

Options:
  -a, --all             Show all containers (default shows just running)
      --format string   Format output using a custom template
      --no-stream       Disable streaming stats and only pull the first result
      --no-trunc        Do not truncate output`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const encoder = new TextEncoder();

function write(text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

const stats: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "stats",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "no-stream", kind: "bool" },
      { name: "no-trunc", kind: "bool" },
      { name: "format", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  const format = compileListFormat(str(p, "format") ?? "", DEFAULT_STATS_FORMAT);
  const named = p.positionals;
  const select = (): [ContainerRecord, string][] => {
    if (!named.length) {
      const listed = listReconciled(ctx.root);
      sweepLostEndpoints(ctx.root); // the leases of lost runs, as ps does
      return listed.filter((c) => bool(p, "all") || isRunning(c))
        .sort((a, b) => (a.Created < b.Created ? 1 : -1)).map((c) => [c, c.Id.slice(0, 12)]);
    }
    return named.map((ref) => {
      try {
        return [lookupContainer(ctx.root, ref), ref];
      } catch (e) {
        if (e instanceof NoSuchContainerError) throw new NoSuchContainerError(ref, 1);
        throw e;
      }
    });
  };
  const noTrunc = bool(p, "no-trunc");
  const stream = !bool(p, "no-stream");
  const terminal = Deno.stdout.isTerminal();
  let containers = select();
  if (!named.length) await sweepLostPorts(ctx.root); // what lost runs left published
  let previous = new Map(containers.map(([c]) => [c.Id, sampleStats(ctx.root, c)]));
  // the first CPU figure needs a second sample
  await sleep(stream ? 1000 : 500);
  try {
    while (true) {
      const next = new Map<string, ReturnType<typeof sampleStats>>();
      const rows = containers.map(([c, shown]) => {
        const after = sampleStats(ctx.root, c);
        next.set(c.Id, after);
        // docker's row type: a field it lacks is a template error (exit 1), not "<no value>"
        return goStruct(
          "*container.statsContext",
          statsRow(c, shown, previous.get(c.Id) ?? after, after, noTrunc),
        );
      });
      const table = format.render(rows, STATS_HEADER);
      write(stream && terminal ? `\x1b[2J\x1b[H${table}` : table);
      if (!stream) return 0;
      previous = next;
      await sleep(1000);
      containers = select();
      for (const [c] of containers) if (!previous.has(c.Id)) previous.set(c.Id, sampleStats(ctx.root, c));
    }
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) return 0;
    throw e;
  }
};
export default stats;
