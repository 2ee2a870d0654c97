// skiff cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-
// skiff cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH

import { NoSuchContainerError, SkiffError, UsageError } from "../errors.ts";
import { copyFromContainer, copyToContainer, parseCpArg } from "../container/cp.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";

const USAGE = `Usage:  skiff cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
        skiff cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.

Options:
  -a, --archive       Archive mode (copy all uid/gid information)
  -L, --follow-link   Always follow symbol link in SRC_PATH`;

const cp: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "cp",
    options: [
      { name: "archive", short: "a", kind: "bool" },
      { name: "follow-link", short: "L", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "cp", 2, 2);
  const src = parseCpArg(p.positionals[0]);
  const dest = parseCpArg(p.positionals[1]);
  if (src.container !== undefined && dest.container !== undefined) {
    throw new UsageError("copying between containers is not supported", "cp");
  }
  if (src.container === undefined && dest.container === undefined) {
    throw new UsageError("must specify at least one container source", "cp");
  }
  const side = (src.container ?? dest.container)!;
  const path = src.container !== undefined ? src.path : dest.path;
  if (path === "") throw new SkiffError(`path must not be empty: "${side}:"`, 1);
  let record;
  try {
    record = lookupContainer(ctx.root, side);
  } catch (e) {
    if (e instanceof NoSuchContainerError) throw new NoSuchContainerError(side, 1);
    throw e;
  }
  const opts = { followLink: bool(p, "follow-link"), archive: bool(p, "archive") };
  if (src.container !== undefined) {
    if (dest.path === "-" && Deno.stdout.isTerminal()) {
      throw new SkiffError("cowardly refusing to write a tar archive to a terminal");
    }
    await copyFromContainer(ctx.root, record, src.path, dest.path, opts);
  } else await copyToContainer(ctx.root, record, src.path, dest.path, opts);
  return 0;
};
export default cp;
