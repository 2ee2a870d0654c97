// skiff logs [-f] [--tail N|all] [-t] [--since T] [--until T] [--details] CONTAINER: the container's
// json log, each entry to the stream it came from (stdout or stderr).

import { SkiffError } from "../errors.ts";
import { current, isUp } from "../engine/lifecycle.ts";
import {
  entryTime,
  followLog,
  type LogEntry,
  logPath,
  logSettings,
  parseLogTime,
  readLogEntries,
} from "../runtime/logs.ts";
import { findContainer } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

export interface PrintOptions {
  timestamps?: boolean;
  since?: number;
  until?: number;
}

/** Writes one entry to the stream it came from. */
export function printer(opts: PrintOptions): (e: LogEntry) => void {
  const encoder = new TextEncoder();
  return (e) => {
    if (opts.since !== undefined && entryTime(e) < opts.since) return;
    if (opts.until !== undefined && entryTime(e) > opts.until) return;
    const data = encoder.encode(opts.timestamps ? `${e.time} ${e.log}` : e.log);
    const out = e.stream === "stderr" ? Deno.stderr : Deno.stdout;
    for (let done = 0; done < data.length;) done += out.writeSync(data.subarray(done));
  };
}

/** Follows the container's log from `offset` until the container is down. */
export async function followContainerLog(
  root: StateRoot,
  record: ContainerRecord,
  offset: number,
  emit: (e: LogEntry) => void,
): Promise<void> {
  await followLog(logPath(root, record.Id), offset, emit, () => {
    const now = current(root, record.Id);
    return now !== undefined && isUp(now);
  });
}

const logs: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "logs",
    options: [
      { name: "follow", short: "f", kind: "bool" },
      { name: "tail", short: "n", kind: "string" },
      { name: "timestamps", short: "t", kind: "bool" },
      { name: "since", kind: "string" },
      { name: "until", kind: "string" },
      { name: "details", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "logs", 1, 1);
  // docker 20.10's daemon reads --tail with Go's strconv.Atoi and shows every line for anything
  // else ("all", "x", " 2"); a negative number is every line too
  const tailFlag = str(p, "tail") ?? "all";
  const tail = /^[+-]?\d{1,18}$/.test(tailFlag) ? Number(tailFlag) : -1;
  const now = Date.now();
  const since = str(p, "since") ? parseLogTime(str(p, "since")!, now) : undefined;
  const until = str(p, "until") ? parseLogTime(str(p, "until")!, now, "until") : undefined;
  const record = findContainer(ctx.root, p.positionals[0]);
  const settings = logSettings(record);
  if (settings.driver === "none") {
    throw new SkiffError("configured logging driver does not support reading", 1);
  }
  const { entries, offset } = readLogEntries(logPath(ctx.root, record.Id), settings.maxFile);
  const count = tail < 0 ? entries.length : Math.min(tail, entries.length);
  const print = printer({ timestamps: bool(p, "timestamps"), since, until });
  for (const e of entries.slice(entries.length - count)) print(e);
  // --until in the past: nothing more can come
  if (bool(p, "follow") && (until === undefined || until > now)) {
    await followContainerLog(ctx.root, record, offset, print);
  }
  return 0;
};
export default logs;

const USAGE = `Usage:  skiff logs [OPTIONS] CONTAINER

Fetch the logs of a container

Options:
      --details        Show extra details provided to logs
  -f, --follow         Follow log output
      --since string   Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
  -n, --tail string    Number of lines to show from the end of the logs (default "all")
  -t, --timestamps     Show timestamps
      --until string   Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`;
