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

/** Runs the command through the exec stage; with `detach`, resolves once it runs (0) or failed. */
export function spawnConfinedExec(
  record: ContainerRecord,
  request: ExecRequest,
  confinement: StageConfinement,
  stdio: { stdin: "inherit" | "null"; stdout: "inherit" | "null"; stderr: "inherit" | "null" },
  detach = false,
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
    detached: detach || undefined,
    ...confinement,
  }, detach ? { stdin: "null", stdout: "null", stderr: "piped" } : stdio);
}

/**
 * exec -d through the stage: its errors come through the stderr pipe until it swaps that for
 * /dev/null just before execve. At EOF a stage that is gone (its /proc/PID/exe unreadable: the kernel
 * drops the mm before the files on exit) failed and says how; one still there runs the command.
 */
export async function detachedStart(child: Deno.ChildProcess): Promise<number> {
  for await (const chunk of child.stderr) Deno.stderr.writeSync(chunk);
  try {
    Deno.readLinkSync(`/proc/${child.pid}/exe`);
  } catch {
    return (await child.status).code;
  }
  child.unref();
  return 0;
}
