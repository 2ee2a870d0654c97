// skiff rm [-f] [-v] CONTAINER...   skiff rm -l /PARENT/ALIAS...
// Each container (or link, with -l) is removed on its own: failures are reported one line each and
// the exit code is 1 when any failed, as docker does; what was removed is printed as given.

import { BrokenContainerError, findContainer } from "../state/containers.ts";
import { NotFoundError } from "../errors.ts";
import { Engine } from "../engine/engine.ts";
import { removeBrokenContainer, removeIncompleteContainer } from "../engine/remove.ts";
import { sweepTmp } from "../state/fsutil.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { CliContext, Verb } from "./context.ts";

const rm: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "rm",
    options: [
      { name: "force", short: "f", kind: "bool" },
      // anonymous volumes of the container (named volumes stay, as in docker)
      { name: "volumes", short: "v", kind: "bool" },
      { name: "link", short: "l", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "rm", 1);
  if (bool(p, "link")) return removeLinks(ctx.root, p.positionals);
  const force = bool(p, "force");
  sweepTmp(ctx.root); // what an rm killed half-way left (its tombstone) goes now
  const engine = new Engine({ root: ctx.root });
  let failed = false;
  for (const ref of p.positionals) {
    try {
      let record;
      try {
        record = findContainer(ctx.root, ref);
      } catch (e) {
        // a container whose record is unreadable (docker's "Dead") is removed by what its id names
        if (e instanceof BrokenContainerError) {
          await removeBrokenContainer(ctx.root, e.id, { force });
          console.log(ref);
          continue;
        }
        // a full id whose creation never completed (crash mid-create) is garbage: clear it
        if (e instanceof NotFoundError && await removeIncompleteContainer(ctx.root, ref)) {
          console.log(ref);
          continue;
        }
        throw e;
      }
      await engine.remove(record, { force, volumes: bool(p, "volumes") });
      console.log(ref);
    } catch (e) {
      failed = true;
      // one container's failure (even an unexpected one) must not stop the others
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return failed ? 1 : 0;
};
export default rm;

/** `rm -l /PARENT/ALIAS…`: each link on its own (lib/network/unlink.ts), as docker's ContainerRm. */
async function removeLinks(root: CliContext["root"], refs: string[]): Promise<number> {
  const { removeLink } = await import("../network/unlink.ts");
  let failed = false;
  for (const ref of refs) {
    try {
      removeLink(root, ref);
      console.log(ref);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return failed ? 1 : 0;
}

const USAGE = `Usage:  skiff rm [OPTIONS] CONTAINER [CONTAINER...]

Remove one or more containers

Options:
  -f, --force     Force the removal of a running container (uses SIGKILL)
  -l, --link      Remove the specified link
  -v, --volumes   Remove anonymous volumes associated with the container`;
