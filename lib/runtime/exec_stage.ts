// `exec -t`: the command needs a session of its own with the pty as its controlling terminal, which
// takes code between fork and execve. So `skiff exec -t` spawns this stage inside the container's
// PID namespace and cgroups (see exec_tty.ts); the stage joins the other namespaces, takes the
// terminal, becomes the container's user and execve()s the command.
//
//   skiff __exec-stage SPEC_JSON   (source checkout: deno run -A --no-config lib/runtime/exec_stage.ts)
//
// Only *Sync Deno APIs and FFI here: after setns, async APIs would run on threads in the host's
// namespaces.

import {
  CLONE,
  CLOSE_RANGE_CLOEXEC,
  closeRange,
  dup2,
  execve,
  ioctlInt,
  O,
  open,
  resetSignals,
  setns,
  setsid,
  TIOC,
  unshare,
} from "../../ffi/libc.ts";
import { close } from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import {
  becomeUserOnThisThread,
  checkExecutable,
  closeNamespaces,
  ExecFailed,
  openNamespaces,
  processSecurity,
} from "./exec.ts";
import { processStartTime } from "../state/containers.ts";
import { confineBeforeCredentials, confineLast, type StageConfinement } from "./confine.ts";
import { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED } from "./spec.ts";
import { type ExecUser, resolveUser } from "./user.ts";

/** What `skiff exec` hands to the stage (one JSON argument); the container's confinement with it. */
export interface ExecStageSpec extends StageConfinement {
  /** Host pid of the container's PID 1 and its start time. */
  pid: number;
  startTime?: number;
  /** Host path of the pty slave (-t); without it the stage keeps the stdio it was given. */
  slavePath?: string;
  user: string;
  groupAdd: string[];
  /** The container's env with exec's -e on top, without HOME (the user's home is added). */
  env: string[];
  workingDir: string;
  command: string[];
  privileged: boolean;
  /** exec -d: stderr (a pipe to skiff, for this stage's errors) becomes /dev/null right before execve. */
  detached?: boolean;
}

/** How the parent starts the stage: the compiled binary's hidden verb, or this file from source. */
export function execStageCommand(spec: ExecStageSpec): { cmd: string; args: string[] } {
  const json = JSON.stringify(spec);
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: ["__exec-stage", json] };
  const self = decodeURIComponent(new URL(import.meta.url).pathname);
  return { cmd: Deno.execPath(), args: ["run", "-A", "--no-config", self, json] };
}

function run(spec: ExecStageSpec): never {
  const security = processSecurity(spec.pid); // the host's /proc: before setns
  const slave = spec.slavePath ? open(spec.slavePath, O.RDWR) : -1; // a host path: before setns
  const devNull = spec.detached ? open("/dev/null", O.WRONLY | O.CLOEXEC) : -1; // the host's, likewise
  const namespaces = openNamespaces(spec.pid).filter((n) => n.type !== CLONE.NEWPID);
  if (processStartTime(spec.pid) !== spec.startTime) {
    throw new ExecFailed("the container stopped meanwhile", EXIT_SETUP_FAILED);
  }
  unshare(CLONE.FS);
  for (const { target, type } of namespaces) setns(target, type);
  closeNamespaces(namespaces);

  let user: ExecUser;
  try {
    user = resolveUser(spec.user, spec.groupAdd);
  } catch (e) {
    throw new ExecFailed((e as Error).message, EXIT_NOT_EXECUTABLE);
  }
  const env = spec.env.some((e) => e.startsWith("HOME=")) ? spec.env : [...spec.env, `HOME=${user.home}`];
  try {
    Deno.chdir(spec.workingDir);
  } catch (e) {
    throw new ExecFailed(
      `chdir to cwd ("${spec.workingDir}") set in config.json failed: ${
        e instanceof Deno.errors.NotFound ? "no such file or directory" : (e as Error).message
      }`,
      EXIT_NOT_EXECUTABLE,
    );
  }
  const path = checkExecutable(spec.command[0], env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "");

  if (slave >= 0) {
    setsid();
    ioctlInt(slave, TIOC.SCTTY, 0);
    for (const fd of [0, 1, 2]) dup2(slave, fd);
    if (slave > 2) close(slave);
  }
  confineBeforeCredentials(spec);
  becomeUserOnThisThread(user, security, spec.privileged);
  resetSignals();
  closeRange(3, CLOSE_RANGE_CLOEXEC);
  confineLast(spec);
  if (devNull >= 0) dup2(devNull, 2); // skiff sees EOF: the command is about to run
  try {
    execve(path, spec.command, env);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    const code = e.code === "ENOENT" ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
    throw new ExecFailed(`exec: "${spec.command[0]}": ${e.detail.toLowerCase()}`, code);
  }
}

/** Entry point of `skiff __exec-stage SPEC_JSON`: never returns (execve or exit). */
export function execStageMain(args: string[]): never {
  try {
    run(JSON.parse(args[0]) as ExecStageSpec);
  } catch (e) {
    const code = e instanceof ExecFailed ? e.exitCode : EXIT_SETUP_FAILED;
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(`skiff: ${(e as Error).message ?? String(e)}\n`));
    } catch { /* nowhere left to report */ }
    Deno.exit(code);
  }
}

if (import.meta.main) execStageMain(Deno.args);
