// skiff stop [-t N] [-s SIG] CONTAINER...: the stop signal, SIGKILL after the timeout; prints each
// name as given. Also home of eachContainer(), shared by start/kill/restart.

import { findContainer } from "../state/containers.ts";
import type { ContainerRecord } from "../state/types.ts";
import { UsageError } from "../errors.ts";
import { Engine } from "../engine/engine.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

/**
 * Runs `action` for each CONTAINER in turn: the name as given on success (unless `quiet`), one
 * error line per failure, exit 1 when any failed, as docker does.
 */
export async function eachContainer(
  refs: string[],
  ctx: Parameters<Verb>[1],
  action: (record: ContainerRecord) => Promise<void>,
  quiet = false,
): Promise<number> {
  let failed = false;
  for (const ref of refs) {
    try {
      await action(findContainer(ctx.root, ref));
      if (!quiet) console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return failed ? 1 : 0;
}

/** -t/--time N as docker parses it (an integer number of seconds). */
export function timeoutFlag(value: string | undefined, verb: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[-+]?\d+$/.test(value)) {
    throw new UsageError(
      `invalid argument "${value}" for "-t, --time" flag: strconv.ParseInt: parsing "${value}": invalid syntax`,
      verb,
    );
  }
  return Number(value);
}

/** The arguments stop and restart share: undefined for --help (the usage is printed). */
export function stopArgs(
  args: string[],
  verb: string,
  usage: string,
): { refs: string[]; timeout?: number; signal?: string } | undefined {
  const p = parseArgs(args, {
    verb,
    options: [
      { name: "time", short: "t", kind: "string", aliases: ["timeout"] },
      { name: "signal", short: "s", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(usage);
    return undefined;
  }
  requireArgs(p, verb, 1);
  return { refs: p.positionals, timeout: timeoutFlag(str(p, "time"), verb), signal: str(p, "signal") };
}

const stop: Verb = async (args, ctx) => {
  const a = stopArgs(args, "stop", USAGE);
  if (!a) return 0;
  const engine = new Engine({ root: ctx.root });
  return await eachContainer(a.refs, ctx, (r) => engine.stop(r, a));
};
export default stop;

const USAGE = `Usage:  skiff stop [OPTIONS] CONTAINER [CONTAINER...]

Stop one or more running containers

Options:
  -s, --signal string   Signal to send to the container
  -t, --time int        Seconds to wait before killing the container`;
