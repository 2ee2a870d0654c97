// `exec` without -t in a container that has a seccomp filter. A filter stays on the thread that
// installs it and passes to what that thread forks: skiff's main thread, which spawns plain exec's
// command itself, cannot take it (it must go back to the host afterwards, and a filter never comes
// off). So the exec stage (exec_stage.ts) runs the command instead: it installs the container's
// filter and execve()s, as runc's exec does. It costs one Deno start-up more (see README).

import type { ContainerRecord } from "../state/types.ts";
import { processStartTime } from "../state/containers.ts";
import type { StageConfinement } from "./confine.ts";
import { execEnvironment, ExecRefused, type ExecRequest } from "./exec.ts";
import { spawnStage } from "./exec_tty.ts";

export function spawnConfinedExec(
  record: ContainerRecord,
  request: ExecRequest,
  confinement: StageConfinement,
  stdio: { stdin: "inherit" | "null"; stdout: "inherit" | "null"; stderr: "inherit" | "null" },
): Deno.ChildProcess {
  if (processStartTime(record.State.Pid) !== record.State.PidStartTime) {
    throw new ExecRefused(`Container ${record.Id} is not running`);
  }
  return spawnStage(record, {
    pid: record.State.Pid,
    startTime: record.State.PidStartTime,
    user: request.user ?? record.Config.User ?? "",
    groupAdd: record.HostConfig.GroupAdd ?? [],
    env: execEnvironment(record, request.env, undefined, false),
    workingDir: request.workingDir || record.Config.WorkingDir || "/",
    command: request.command,
    privileged: request.privileged || record.HostConfig.Privileged,
    ...confinement,
  }, stdio);
}
