// skiff update [OPTIONS] CONTAINER...: change a container's resource limits.

import { UsageError } from "../errors.ts";
import { type ResourceChanges, updateContainer } from "../container/update.ts";
import { bool, type OptionSpec, parseArgs, parseBytes, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

const OPTIONS: OptionSpec[] = [
  { name: "memory", short: "m", kind: "string" },
  { name: "memory-swap", kind: "string" },
  { name: "cpus", kind: "string" },
  { name: "cpu-shares", short: "c", kind: "string" },
  { name: "cpuset-cpus", kind: "string" },
  { name: "cpuset-mems", kind: "string" },
  { name: "pids-limit", kind: "string" },
  { name: "blkio-weight", kind: "string" },
];

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

const invalid = (value: string, flag: string, why: string) =>
  new UsageError(`invalid argument "${value}" for "${flag}" flag: ${why}`, "update");

function bytes(value: string, flag: string, allowMinusOne = false): number {
  if (allowMinusOne && value.trim() === "-1") return -1;
  try {
    return parseBytes(value, flag);
  } catch {
    throw invalid(value, flag, `invalid size: '${value}'`);
  }
}

function int(value: string, flag: string, unsigned = false): number {
  if (!(unsigned ? /^\d+$/ : /^[-+]?\d+$/).test(value)) {
    throw invalid(
      value,
      flag,
      `strconv.Parse${unsigned ? "Uint" : "Int"}: parsing "${value}": invalid syntax`,
    );
  }
  return Number(value);
}

/** The flags given, as HostConfig changes (docker's parsing and wording). */
export function parseChanges(args: string[]): { changes: ResourceChanges; refs: string[]; help: boolean } {
  const p = parseArgs(args, { verb: "update", options: OPTIONS });
  if (bool(p, "help")) return { changes: {}, refs: [], help: true };
  const changes: ResourceChanges = {};
  const v = (name: string) => str(p, name);
  if (v("memory") !== undefined) changes.Memory = bytes(v("memory")!, "-m, --memory");
  if (v("memory-swap") !== undefined) changes.MemorySwap = bytes(v("memory-swap")!, "--memory-swap", true);
  if (v("cpus") !== undefined) {
    const cpus = v("cpus")!;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(cpus)) {
      throw invalid(cpus, "--cpus", `failed to parse ${cpus} as a rational number`);
    }
    changes.NanoCpus = Math.round(Number(cpus) * 1e9);
  }
  if (v("cpu-shares") !== undefined) changes.CpuShares = int(v("cpu-shares")!, "-c, --cpu-shares");
  if (v("cpuset-cpus") !== undefined) changes.CpusetCpus = v("cpuset-cpus");
  if (v("cpuset-mems") !== undefined) changes.CpusetMems = v("cpuset-mems");
  if (v("pids-limit") !== undefined) {
    const n = int(v("pids-limit")!, "--pids-limit");
    changes.PidsLimit = n > 0 ? n : null;
  }
  if (v("blkio-weight") !== undefined) changes.BlkioWeight = int(v("blkio-weight")!, "--blkio-weight", true);
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
  for (const ref of refs) {
    try {
      updateContainer(ctx.root, ref, changes);
      console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return Promise.resolve(failed ? 1 : 0);
};
export default update;
