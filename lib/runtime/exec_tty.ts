// `exec -t`: a pty, and the exec stage (exec_stage.ts) spawned inside the container's PID namespace
// and cgroups; our side pumps the pty (raw mode with -i, window size and SIGWINCH) until the
// command exits. The main thread joins the PID namespace and the cgroups only for the spawn.

import { CLONE, close, O, open, setns } from "../../ffi/libc.ts";
import type { ContainerRecord } from "../state/types.ts";
import { execEnvironment, type ExecRequest, joinCgroups, leaveCgroups, planCgroupMoves } from "./exec.ts";
import { execStageCommand, type ExecStageSpec } from "./exec_stage.ts";
import { PtyMaster, rawStdin } from "./pty.ts";
import type { StageConfinement } from "./confine.ts";

/** Starts the exec stage in the container's PID namespace and cgroups, with this stdio. */
export function spawnStage(
  record: ContainerRecord,
  spec: ExecStageSpec,
  stdio: { stdin: "inherit" | "null"; stdout: "inherit" | "null"; stderr?: "inherit" | "null" | "piped" } = {
    stdin: "null",
    stdout: "null",
  },
): Deno.ChildProcess {
  const { cmd, args } = execStageCommand(spec);
  const moves = planCgroupMoves(record.State.Pid);
  const target = open(`/proc/${record.State.Pid}/ns/pid`, O.RDONLY | O.CLOEXEC);
  const own = open("/proc/self/ns/pid", O.RDONLY | O.CLOEXEC);
  try {
    joinCgroups(moves);
    setns(target, CLONE.NEWPID); // only children feel it: the stage starts inside
    try {
      // stderr stays ours: the stage reports a failure before it takes the terminal
      return new Deno.Command(cmd, { args, stderr: "inherit", ...stdio }).spawn();
    } finally {
      setns(own, CLONE.NEWPID);
    }
  } finally {
    leaveCgroups(moves);
    close(target);
    close(own);
  }
}

/** Runs the command on a new pty; resolves to its exit code. */
export async function execWithTerminal(
  record: ContainerRecord,
  request: ExecRequest,
  interactive: boolean,
  confinement: StageConfinement = {},
): Promise<number> {
  const pty = PtyMaster.open();
  let restoreStdin = () => {};
  const onWinch = () => pty.syncWindowSize();
  try {
    pty.syncWindowSize();
    const child = spawnStage(record, {
      pid: record.State.Pid,
      startTime: record.State.PidStartTime,
      slavePath: pty.slavePath,
      user: request.user ?? record.Config.User ?? "",
      groupAdd: record.HostConfig.GroupAdd ?? [],
      env: execEnvironment(record, request.env, undefined, true),
      workingDir: request.workingDir || record.Config.WorkingDir || "/",
      command: request.command,
      privileged: request.privileged || record.HostConfig.Privileged,
      ...confinement,
    });
    Deno.addSignalListener("SIGWINCH", onWinch);
    const output = pty.pumpOutput();
    if (interactive) {
      restoreStdin = rawStdin();
      pty.pumpInput();
    }
    const status = await child.status;
    pty.releaseSlave();
    // what the command wrote last is still in the pty: drain it, but never hang on it
    await Promise.race([output, new Promise((r) => setTimeout(r, 500))]);
    return status.code;
  } finally {
    Deno.removeSignalListener("SIGWINCH", onWinch);
    restoreStdin();
    pty.close();
  }
}
