// skiff pause CONTAINER...: freezes every process of each container (cgroup freezer).

import { pauseContainer } from "../container/ops.ts";
import { forEachContainer } from "./unpause.ts";
import type { Verb } from "./context.ts";

const pause: Verb = (args, ctx) =>
  Promise.resolve(
    forEachContainer(args, "pause", "Pause all processes within one or more containers", (ref) =>
      pauseContainer(ctx.root, ref)),
  );
export default pause;
