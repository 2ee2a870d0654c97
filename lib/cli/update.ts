// skiff update [OPTIONS] CONTAINER...: change a container's resource limits.

import { SkiffError, UsageError } from "../errors.ts";
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
import { parseRestartPolicy } from "../runtime/restart.ts";

const OPTIONS: OptionSpec[] = [
  ...RESOURCE_OPTIONS,
  { name: "cpu-period", kind: "string" },
  { name: "cpu-quota", kind: "string" },
  { name: "memory-reservation", kind: "string" },
  { name: "kernel-memory", kind: "string" },
  { name: "restart", kind: "string" },
];

/** The daemon's warning for --kernel-memory (taken, not applied), printed after the names as docker's. */
const KERNEL_MEMORY_WARNING =
  "Specifying a kernel memory limit is deprecated and will be removed in a future release.";

const USAGE = `Usage:  skiff update [OPTIONS] CONTAINER [CONTAINER...]

Update configuration of one or more containers

Options:
      --blkio-weight uint16   Block IO (relative weight), between 10 and 1000, or 0 to disable
      --cpu-period int        Limit CPU CFS (Completely Fair Scheduler) period
      --cpu-quota int         Limit CPU CFS (Completely Fair Scheduler) quota
  -c, --cpu-shares int        CPU shares (relative weight)
      --cpus decimal          Number of CPUs
      --cpuset-cpus string    CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string    MEMs in which to allow execution (0-3, 0,1)
      --kernel-memory bytes   Kernel memory limit (deprecated: taken with a warning, not applied)
  -m, --memory bytes          Memory limit
      --memory-reservation bytes
                              Memory soft limit
      --memory-swap bytes     Swap limit equal to memory plus swap: -1 to enable unlimited swap
      --pids-limit int        Tune container pids limit (set -1 for unlimited)
      --restart string        Restart policy to apply when a container exits`;

/** The flags given, as HostConfig changes (docker's parsing and wording). */
export function parseChanges(
  args: string[],
): { changes: ResourceChanges; refs: string[]; help: boolean; warnings: string[] } {
  const p = parseArgs(args, { verb: "update", options: OPTIONS });
  if (bool(p, "help")) return { changes: {}, refs: [], help: true, warnings: [] };
  const warnings: string[] = [];
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
  if (v("cpu-period") !== undefined) changes.CpuPeriod = intFlag("update", v("cpu-period"), "--cpu-period");
  if (v("cpu-quota") !== undefined) changes.CpuQuota = intFlag("update", v("cpu-quota"), "--cpu-quota");
  if (v("memory-reservation") !== undefined) {
    changes.MemoryReservation = bytesFlag("update", v("memory-reservation"), "--memory-reservation");
  }
  if (v("kernel-memory") !== undefined) {
    bytesFlag("update", v("kernel-memory"), "--kernel-memory");
    warnings.push(KERNEL_MEMORY_WARNING);
  }
  // docker's update: an empty --restart changes nothing; a value is checked by the daemon (exit 1)
  if (v("restart")) {
    try {
      changes.RestartPolicy = parseRestartPolicy(v("restart"));
    } catch (e) {
      throw new SkiffError((e as Error).message, 1); // the daemon's refusal: exit 1, as docker update
    }
  }
  return { changes, refs: p.positionals, help: false, warnings };
}

const update: Verb = (args, ctx) => {
  const { changes, refs, help, warnings: flagWarnings } = parseChanges(args);
  if (help) {
    console.log(USAGE);
    return Promise.resolve(0);
  }
  requireArgs({ options: {}, positionals: refs }, "update", 1);
  if (Object.keys(changes).length === 0 && flagWarnings.length === 0) {
    throw new UsageError("You must provide one or more flags when using this command.", "update");
  }
  let failed = false;
  const warnings: string[] = [];
  for (const ref of refs) {
    try {
      warnings.push(...updateContainer(ctx.root, ref, changes).warnings, ...flagWarnings);
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
