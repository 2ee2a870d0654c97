// skiff update [OPTIONS] CONTAINER...: change a container's resource limits.

import { UsageError } from "../errors.ts";
import { type ResourceChanges, updateContainer } from "../container/update.ts";
import {
  bool,
  bytesFlag,
  cpusFlag,
  intFlag,
  type OptionSpec,
  parseArgs,
  requireArgs,
  RESOURCE_OPTIONS,
  str,
} from "./args.ts";
import type { Verb } from "./context.ts";

const OPTIONS: OptionSpec[] = RESOURCE_OPTIONS;

const USAGE = `Usage:  skiff update [OPTIONS] CONTAINER [CONTAINER...]

Update configuration of one or more containers

Options:
      --blkio-weight uint16   Block IO (relative weight), between 10 and 1000, or 0 to disable
  -c, --cpu-shares int        CPU shares (relative weight)
      --cpus decimal          Number of CPUs
      --cpuset-cpus string    CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string    MEMs in which to allow execution (0-3, 0,1)
  -m, --memory bytes          Memory limit
      --memory-swap bytes     Swap limit equal to memory plus swap: -1 to enable unlimited swap
      --pids-limit int        Tune container pids limit (set -1 for unlimited)`;

/** The flags given, as HostConfig changes (docker's parsing and wording). */
export function parseChanges(args: string[]): { changes: ResourceChanges; refs: string[]; help: boolean } {
  const p = parseArgs(args, { verb: "update", options: OPTIONS });
  if (bool(p, "help")) return { changes: {}, refs: [], help: true };
  const changes: ResourceChanges = {};
  const v = (name: string) => str(p, name);
  if (v("memory") !== undefined) changes.Memory = bytesFlag("update", v("memory"), "-m, --memory");
  if (v("memory-swap") !== undefined) {
    changes.MemorySwap = bytesFlag("update", v("memory-swap"), "--memory-swap", true);
  }
  if (v("cpus") !== undefined) changes.NanoCpus = cpusFlag("update", v("cpus"));
  if (v("cpu-shares") !== undefined) {
    changes.CpuShares = intFlag("update", v("cpu-shares"), "-c, --cpu-shares");
  }
  if (v("cpuset-cpus") !== undefined) changes.CpusetCpus = v("cpuset-cpus");
  if (v("cpuset-mems") !== undefined) changes.CpusetMems = v("cpuset-mems");
  if (v("pids-limit") !== undefined) {
    const n = intFlag("update", v("pids-limit"), "--pids-limit")!;
    changes.PidsLimit = n > 0 ? n : null;
  }
  if (v("blkio-weight") !== undefined) {
    changes.BlkioWeight = intFlag("update", v("blkio-weight"), "--blkio-weight", true);
  }
  return { changes, refs: p.positionals, help: false };
}

const update: Verb = (args, ctx) => {
  const { changes, refs, help } = parseChanges(args);
  if (help) {
    console.log(USAGE);
    return Promise.resolve(0);
  }
  requireArgs({ options: {}, positionals: refs }, "update", 1);
  if (Object.keys(changes).length === 0) {
    throw new UsageError("You must provide one or more flags when using this command.", "update");
  }
  let failed = false;
  const warnings: string[] = [];
  for (const ref of refs) {
    try {
      warnings.push(...updateContainer(ctx.root, ref, changes).warnings);
      console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // docker prints the daemon's warnings after the names, on stdout, without a prefix
  if (warnings.length) console.log(warnings.join("\n"));
  return Promise.resolve(failed ? 1 : 0);
};
export default update;
