// `exec -t`: a pty whose slave the exec stage (exec_stage.ts) makes its session's terminal and the
// command's stdio; our side pumps the master (raw mode with -i, window size and SIGWINCH) until the
// command exits.

import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { type ExecRequest, execStageSpec, leaveWhenSpawned, sendExecSpec, statusCode } from "./exec.ts";
import type { ExecStage } from "./exec_stage.ts";
import type { StageConfinement } from "./confine.ts";
import { PtyMaster, rawStdin } from "./pty.ts";
import { copyOutput, drainAfterExit, sleep } from "./stdio.ts";

/** Runs the command on a new pty; resolves to its exit code. */
export async function execWithTerminal(
  root: StateRoot,
  record: ContainerRecord,
  request: ExecRequest,
  stage: ExecStage,
  interactive: boolean,
  confinement: StageConfinement,
): Promise<number> {
  const pty = PtyMaster.open();
  // the stage's own failures before it takes the terminal (its stdout stays unused)
  const outputs = [copyOutput(stage.child.stdout, Deno.stdout), copyOutput(stage.child.stderr, Deno.stderr)];
  let restoreStdin = () => {};
  const onWinch = () => pty.syncWindowSize();
  try {
    pty.syncWindowSize();
    try {
      const spec = execStageSpec(root, record, request, "tty", false, confinement, pty.slavePath);
      const writer = await sendExecSpec(stage, spec);
      await writer.close(); // the command's input comes through the pty
      leaveWhenSpawned(stage, spec.cgroups);
    } catch { /* the stage is gone: its status and stderr say why */ }
    Deno.addSignalListener("SIGWINCH", onWinch);
    const output = pty.pumpOutput();
    if (interactive) {
      restoreStdin = rawStdin();
      pty.pumpInput();
    }
    const status = await stage.child.status;
    pty.releaseSlave();
    // what the command wrote last is still in the pty: drain it, but never hang on it
    await Promise.race([output, sleep(500)]);
    await drainAfterExit(outputs);
    return statusCode(status);
  } finally {
    Deno.removeSignalListener("SIGWINCH", onWinch);
    restoreStdin();
    pty.close();
  }
}
