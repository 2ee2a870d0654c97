// The cgroup limits a run request asks for, apart from create_run.ts: the foreground run makes its
// cgroup (and starts the init stage's join) before it loads the rest of the engine.

import { type CgroupLimits, cgroupLimitsOf } from "../cgroups/limits.ts";
import type { RunRequest } from "./create_run.ts";

/** The cgroup limits a request asks for: the one HostConfig mapping, as for a stored record. */
export function limitsOfRequest(request: RunRequest): CgroupLimits {
  return cgroupLimitsOf({ ...request.container.resources, Privileged: request.container.privileged });
}
