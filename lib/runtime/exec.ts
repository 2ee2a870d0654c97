// `exec`: a new process in a running container. `skiff exec` starts the exec stage (exec_stage.ts)
// first thing, in the host's namespaces, and meanwhile makes its spec from the container's stored
// configuration: the capabilities from HostConfig (CapAdd, CapDrop, Privileged) and exec's own
// --privileged, the user from -u or Config.User, the cgroups from the container's id. Nothing that
// decides the new process's privileges or paths is read from the container's processes. The stage
// joins the container and spawns the command; skiff copies its stdio through pipes (docker's
// attach: the container never gets the caller's own files or terminal) and returns its exit code.

import { isRunning, lookupContainer } from "../container/ops.ts";
import { SkiffError } from "../errors.ts";
import { exists } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import type { StageConfinement } from "./confine.ts";
import { capabilityMask } from "./caps.ts";
import {
  type CgroupMove,
  encodeSpec,
  type ExecStage,
  type ExecStageSpec,
  type ExecStdio,
} from "./exec_stage.ts";
import { SIGNAL_NUMBERS } from "./signals.ts";
import { DEFAULT_PATH } from "./spec.ts";
import { copyOutput, drainAfterExit, feedInput, sleep } from "./stdio.ts";

export interface ExecRequest {
  /** argv, not yet resolved against PATH. */
  command: string[];
  /** -e/--env-file entries (KEY=VALUE), applied over the container's Config.Env. */
  env: string[];
  /** -w; the container's WorkingDir (or /) when absent. */
  workingDir?: string;
  /** -u; the container's Config.User when absent. */
  user?: string;
  privileged: boolean;
  tty: boolean;
}

/** A container refused for exec: docker's CLI reports it with exit code 1. */
export class ExecRefused extends SkiffError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** The container to exec into: running and not paused, else docker's errors. */
export function execTarget(root: StateRoot, ref: string): ContainerRecord {
  const record = lookupContainer(root, ref);
  if (!isRunning(record)) throw new ExecRefused(`Container ${record.Id} is not running`);
  if (record.State.Paused) {
    throw new ExecRefused(`Container ${record.Id} is paused, unpause the container before exec`);
  }
  return record;
}

/** The container's environment with exec's -e on top (same key: exec wins), HOME from the user. */
export function execEnvironment(
  record: ContainerRecord,
  extra: string[],
  home: string | undefined,
  tty: boolean,
): string[] {
  const byKey = new Map<string, string>();
  const key = (entry: string) => entry.includes("=") ? entry.slice(0, entry.indexOf("=")) : entry;
  for (const entry of [...(record.Config.Env ?? []), ...extra]) byKey.set(key(entry), entry);
  if (!byKey.has("PATH")) byKey.set("PATH", `PATH=${DEFAULT_PATH}`);
  if (!byKey.has("HOME") && home !== undefined) byKey.set("HOME", `HOME=${home}`);
  if (tty && !byKey.has("TERM")) byKey.set("TERM", "TERM=xterm");
  return [...byKey.values()];
}

// ---- cgroups ----

/** "hierarchy-id:controllers:path" lines of /proc/<pid>/cgroup, keyed by controllers. */
function cgroupPaths(procFile: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of Deno.readTextFileSync(procFile).split("\n")) {
    const first = line.indexOf(":"), second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    out.set(line.slice(first + 1, second), line.slice(second + 1));
  }
  return out;
}

const asSet = (controllers: string) => controllers.split(",").filter(Boolean).sort().join(",");

/** Mount point of each cgroup hierarchy's root in our mount namespace, keyed by its sorted controllers. */
function cgroupMounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const fields = left.split(" ");
    if (fields[3] !== "/") continue; // a hierarchy mounted from a sub-cgroup is not its root
    const [fstype, , superOptions] = right.split(" ");
    const mountPoint = fields[4].replace(/\\040/g, " ");
    if (fstype === "cgroup2" && !out.has("")) out.set("", mountPoint);
    if (fstype !== "cgroup") continue;
    const names = superOptions.split(",").filter((o) =>
      !["rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"].includes(o) &&
      !o.startsWith("release_agent=")
    );
    const key = asSet(names.join(","));
    if (!out.has(key)) out.set(key, mountPoint);
  }
  return out;
}

/**
 * The container's groups, named by its id under skiff's parent in every hierarchy (as `run` made
 * them), with the groups the stage comes from. Never read from /proc/<pid>/cgroup: the container's
 * PID 1 could have moved.
 */
export function planCgroupMoves(root: StateRoot, id: string): CgroupMove[] {
  const own = new Map([...cgroupPaths("/proc/thread-self/cgroup")].map(([k, v]) => [asSet(k), v]));
  const moves: CgroupMove[] = [];
  for (const [controllers, mount] of cgroupMounts()) {
    const ownPath = own.get(controllers);
    const containerDir = `${mount}/${root.cgroupParent}/${id}`;
    if (ownPath === undefined || !exists(containerDir)) continue;
    moves.push({
      file: controllers === "" ? "cgroup.procs" : "tasks",
      containerDir,
      ownDir: `${mount}${ownPath === "/" ? "" : ownPath}`,
    });
  }
  return moves;
}

/** What the stage is told: all of it from the record and exec's flags. */
export function execStageSpec(
  root: StateRoot,
  record: ContainerRecord,
  request: ExecRequest,
  stdio: ExecStdio,
  interactive: boolean,
  confinement: StageConfinement,
  ttySlave?: string,
): ExecStageSpec {
  const host = record.HostConfig;
  const privileged = request.privileged || host.Privileged;
  return {
    containerId: record.Id,
    pid: record.State.Pid,
    startTime: record.State.PidStartTime,
    cgroups: planCgroupMoves(root, record.Id),
    stdio,
    interactive: interactive && stdio === "pipes",
    ttySlave,
    user: request.user ?? record.Config.User ?? "",
    groupAdd: host.GroupAdd ?? [],
    env: execEnvironment(record, request.env, undefined, request.tty),
    workingDir: request.workingDir || record.Config.WorkingDir || "/",
    command: request.command,
    capabilities: capabilityMask(host.CapAdd ?? [], host.CapDrop ?? [], privileged).toString(),
    privileged,
    // the container's seccomp filter and no-new-privileges (docker: exec --privileged keeps them)
    ...confinement,
  };
}

// ---- the stage, from skiff exec's side ----

/**
 * Sends the spec: the go signal. On a hybrid host the stage joins the container's v2 group from
 * here first (it charges nothing there; its RCU grace period passes while the stage starts up).
 */
export async function sendExecSpec(
  stage: ExecStage,
  spec: ExecStageSpec,
): Promise<WritableStreamDefaultWriter<Uint8Array>> {
  const hybrid = spec.cgroups.some((m) => m.file === "tasks");
  for (const m of spec.cgroups) {
    if (!hybrid || m.file !== "cgroup.procs") continue;
    await Deno.writeTextFile(`${m.containerDir}/${m.file}`, String(stage.child.pid));
    m.joined = true;
  }
  const writer = stage.child.stdin.getWriter();
  await writer.write(encodeSpec(spec));
  return writer;
}

/**
 * Once the command is born (the stage's child), the stage's main thread (v1) or the whole stage (v2)
 * goes back to skiff's own groups: only the command stays in the container's. From here, by
 * polling: the stage's main thread can start no thread to do it (its children go to another PID
 * namespace), and never sooner, or the command would be born outside the container's limits.
 */
export async function leaveWhenSpawned(stage: ExecStage, moves: CgroupMove[]): Promise<void> {
  if (moves.length === 0) return;
  const pid = stage.child.pid;
  let exited = false;
  stage.child.status.then(() => exited = true);
  while (true) {
    if (exited) return;
    try {
      if (Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim()) break;
    } catch {
      return; // gone
    }
    await sleep(5);
  }
  for (const m of moves) {
    try {
      await Deno.writeTextFile(`${m.ownDir}/${m.file}`, String(pid));
    } catch { /* it exited meanwhile */ }
  }
}

/** The stage exits with the command's code (128 + N when a signal killed it); so does skiff. */
export function statusCode(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

/**
 * exec without -t: the command's stdio are pipes copied by skiff (stdin only with -i: without it
 * the command gets /dev/null, as with docker); with -d nothing is attached and skiff returns once
 * the command runs. Resolves to the exit code: the command's, or 126/127 (and the stage's line on
 * stderr) when it could not start.
 */
export async function execWithPipes(
  root: StateRoot,
  record: ContainerRecord,
  request: ExecRequest,
  stage: ExecStage,
  stdio: "pipes" | "detached",
  interactive: boolean,
  confinement: StageConfinement,
): Promise<number> {
  const child = stage.child;
  const outputs = [copyOutput(child.stdout, Deno.stdout), copyOutput(child.stderr, Deno.stderr)];
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  try {
    const spec = execStageSpec(root, record, request, stdio, interactive, confinement);
    writer = await sendExecSpec(stage, spec);
    leaveWhenSpawned(stage, spec.cgroups);
  } catch { /* the stage is gone: its status and stderr say why */ }
  if (writer && interactive && stdio === "pipes") feedInput(writer);
  else writer?.close().catch(() => {});
  const code = statusCode(await child.status);
  await drainAfterExit(outputs);
  return code;
}
