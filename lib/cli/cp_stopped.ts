// `skiff __cp-stopped from|to ID SRC DEST FOLLOW ARCHIVE`: the copy of a stopped container, run as a
// child of `cp` (cp.ts inStoppedHelper) because it unshares its mount namespace to mount the
// container's root: the process that asked keeps its own. One line on stderr and the copy's exit
// code on failure.

import type { CliContext } from "./context.ts";
import { SkiffError } from "../errors.ts";
import { findContainer } from "../state/containers.ts";
import { copyFromStopped, copyToStopped } from "../container/cp.ts";

const cpStopped = (args: string[], ctx: CliContext): Promise<number> => {
  const [direction, id, from, to, follow, archive] = args;
  try {
    const record = findContainer(ctx.root, id);
    const opts = { followLink: follow === "1", archive: archive === "1" };
    if (direction === "from") copyFromStopped(ctx.root, record, from, to, opts);
    else if (direction === "to") copyToStopped(ctx.root, record, from, to, opts);
    else throw new SkiffError(`unknown __cp-stopped direction ${direction}`);
    return Promise.resolve(0);
  } catch (e) {
    console.error((e as Error).message);
    return Promise.resolve(e instanceof SkiffError ? e.exitCode : 1);
  }
};
export default cpStopped;
