// `exec`: a new process in a running container, started by skiff itself without a second Deno stage.
//
// The main thread joins the container's cgroups (v1: only this thread, by its tid in `tasks`; v2:
// the whole process, for a moment), unshares its fs info and setns()es into every namespace of the
// container's PID 1, becomes the container's user with the container's capabilities through raw
// syscalls that change only this thread's credentials, and spawns the command: Deno forks from the
// main thread, so the child lands in all of it, and a process forked after setns(CLONE_NEWPID) is
// inside the PID namespace. The other threads keep the host's namespaces and root: they move the
// main thread back out of the container's cgroups afterwards (async APIs run there).
//
// Only *Sync Deno APIs and FFI on the main thread once it has joined (see the platform notes).

import {
  bindLibc,
  capget,
  capset,
  chdir,
  CLONE,
  CLOSE_RANGE_CLOEXEC,
  closeRange,
  defaultSignal,
  O,
  open,
  PR,
  prctl,
  setgroupsThread,
  setns,
  setresgidThread,
  setresuidThread,
  unshare,
} from "../../ffi/libc.ts";
import { close } from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import { isRunning, lookupContainer } from "../container/ops.ts";
import { SkiffError } from "../errors.ts";
import { processStartTime } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { DEFAULT_PATH, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND } from "./spec.ts";
import { type ExecUser, resolveUser } from "./user.ts";

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

/** The command could not start: runc's wording, docker's exit codes (126, 127). */
export class ExecFailed extends SkiffError {
  constructor(detail: string, exitCode: number) {
    super(
      `OCI runtime exec failed: exec failed: unable to start container process: ${detail}: unknown`,
      exitCode,
    );
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

export interface CgroupMove {
  /** v1: `tasks` takes one thread; v2: `cgroup.procs` moves the whole process. */
  file: "tasks" | "cgroup.procs";
  containerDir: string;
  ownDir: string;
}

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

/** Mount point of each cgroup hierarchy in our mount namespace, keyed as /proc/<pid>/cgroup names it. */
function cgroupMounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const [fstype, , superOptions] = right.split(" ");
    const mountPoint = left.split(" ")[4];
    if (fstype === "cgroup2" && !out.has("")) out.set("", mountPoint);
    if (fstype !== "cgroup") continue;
    const names = superOptions.split(",").filter((o) =>
      !["rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"].includes(o) &&
      !o.startsWith("release_agent=")
    );
    const key = names.join(",");
    if (!out.has(key)) out.set(key, mountPoint);
  }
  return out;
}

/** Where the main thread goes for the container's cgroups and where it comes back to. */
export function planCgroupMoves(pid: number): CgroupMove[] {
  const mounts = cgroupMounts();
  const own = cgroupPaths("/proc/thread-self/cgroup");
  const moves: CgroupMove[] = [];
  for (const [controllers, path] of cgroupPaths(`/proc/${pid}/cgroup`)) {
    const ownPath = own.get(controllers);
    if (ownPath === undefined || ownPath === path) continue;
    // mountinfo lists a hierarchy's controllers in its own order: match them as a set
    const wanted = controllers.split(",").sort().join(",");
    const mount = [...mounts].find(([key]) => key.split(",").filter(Boolean).sort().join(",") === wanted)
      ?.[1];
    if (mount === undefined) continue;
    moves.push({
      file: controllers === "" ? "cgroup.procs" : "tasks",
      containerDir: `${mount}${path === "/" ? "" : path}`,
      ownDir: `${mount}${ownPath === "/" ? "" : ownPath}`,
    });
  }
  return moves;
}

// A v1 `tasks` write of "0" moves the writing thread itself, and the kernel then skips the global
// threadgroup lock, whose first taker waits for an RCU grace period: 0.3 ms instead of 9-15 ms here
// (a fresh process, 4 runs each). A v2 `cgroup.procs` write always takes that lock.
const CURRENT_THREAD = "0";

/** Moves the main thread (v1) or the process (v2) into the container's cgroups. */
export function joinCgroups(moves: CgroupMove[]): void {
  for (const m of moves) {
    Deno.writeTextFileSync(
      `${m.containerDir}/${m.file}`,
      m.file === "tasks" ? CURRENT_THREAD : String(Deno.pid),
    );
  }
}

/** Moves the whole process through `cgroup.procs`, on a blocking-pool thread. */
async function joinProcessAsync(moves: CgroupMove[]): Promise<void> {
  for (const m of moves) await Deno.writeTextFile(`${m.containerDir}/${m.file}`, String(Deno.pid));
}

/** Back to our own cgroups, once the main thread is in our own namespaces again. */
export function leaveCgroups(moves: CgroupMove[]): void {
  for (const m of moves) {
    try {
      Deno.writeTextFileSync(`${m.ownDir}/${m.file}`, m.file === "tasks" ? CURRENT_THREAD : String(Deno.pid));
    } catch { /* our own cgroup is gone: nothing to go back to */ }
  }
}

// ---- namespaces, user, capabilities ----

const NAMESPACES: [string, number][] = [
  ["cgroup", CLONE.NEWCGROUP],
  ["ipc", CLONE.NEWIPC],
  ["uts", CLONE.NEWUTS],
  ["net", CLONE.NEWNET],
  ["pid", CLONE.NEWPID],
  ["mnt", CLONE.NEWNS],
];

export interface NamespacePair {
  target: number;
  own: number;
  type: number;
}

/** Fds of PID 1's namespaces that differ from ours, with ours to come back to. */
export function openNamespaces(pid: number): NamespacePair[] {
  const pairs: NamespacePair[] = [];
  try {
    for (const [name, type] of NAMESPACES) {
      const path = `/proc/${pid}/ns/${name}`;
      if (Deno.readLinkSync(path) === Deno.readLinkSync(`/proc/self/ns/${name}`)) continue;
      const target = open(path, O.RDONLY | O.CLOEXEC);
      pairs.push({ target, own: open(`/proc/self/ns/${name}`, O.RDONLY | O.CLOEXEC), type });
    }
  } catch (e) {
    closeNamespaces(pairs);
    throw e;
  }
  return pairs;
}

export function closeNamespaces(pairs: NamespacePair[]): void {
  for (const { target, own } of pairs) {
    close(target);
    close(own);
  }
}

export interface ProcessSecurity {
  boundingSet: bigint;
  noNewPrivs: boolean;
}

export function processSecurity(pid: number): ProcessSecurity {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => status.match(new RegExp(`^${name}:\\s*(\\S+)`, "m"))?.[1] ?? "0";
  return { boundingSet: BigInt(`0x${field("CapBnd")}`), noNewPrivs: field("NoNewPrivs") === "1" };
}

const CAP_SETGID = 6n;

/**
 * This thread becomes the user with the container's bounding set. Its permitted set stays (KEEPCAPS)
 * so that it can come back afterwards: execve computes the child's sets from the ids and the bounding
 * set alone (root gets the bounding set, any other user nothing), as the container's PID 1 got them.
 */
export function becomeUserOnThisThread(user: ExecUser, security: ProcessSecurity, privileged: boolean): void {
  if (!privileged) {
    const lastCap = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
    for (let cap = 0; cap <= lastCap; cap++) {
      if (!(security.boundingSet & (1n << BigInt(cap)))) prctl(PR.CAPBSET_DROP, BigInt(cap));
    }
  }
  prctl(PR.SET_KEEPCAPS, 1n);
  setgroupsThread(user.additionalGids);
  setresgidThread(user.gid);
  setresuidThread(user.uid);
  const { permitted } = capget();
  // Deno's child calls setgroups(0) for its gid option: without CAP_SETGID in the effective set
  // that fails (ignored) and the groups stay
  capset({ effective: user.uid === 0 ? permitted & ~(1n << CAP_SETGID) : 0n, permitted, inheritable: 0n });
  prctl(PR.CAP_AMBIENT, BigInt(PR.CAP_AMBIENT_CLEAR_ALL));
  if (security.noNewPrivs && !privileged) prctl(PR.SET_NO_NEW_PRIVS, 1n);
}

/** Root again (the bounding set and no_new_privs stay: this thread never execs). */
function restoreCredentials(groups: number[]): void {
  const { permitted } = capget();
  capset({ effective: permitted, permitted, inheritable: 0n });
  setresuidThread(0);
  setresgidThread(0);
  setgroupsThread(groups);
  prctl(PR.SET_KEEPCAPS, 0n);
}

function ownGroups(): number[] {
  const status = Deno.readTextFileSync("/proc/self/status");
  return (status.match(/^Groups:(.*)$/m)?.[1] ?? "").trim().split(/\s+/).filter(Boolean).map(Number);
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** Go's exec.LookPath as runc uses it, with docker's errors; the path found. */
export function checkExecutable(name: string, searchPath: string): string {
  const executable = (info: Deno.FileInfo | null) => info && !info.isDirectory && ((info.mode ?? 0) & 0o111);
  if (name.includes("/")) {
    const info = statOrNull(name);
    if (!info) {
      throw new ExecFailed(`exec: "${name}": stat ${name}: no such file or directory`, EXIT_NOT_FOUND);
    }
    if (!executable(info)) throw new ExecFailed(`exec: "${name}": permission denied`, EXIT_NOT_EXECUTABLE);
    return name;
  }
  for (const dir of searchPath.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (executable(statOrNull(candidate))) return candidate;
  }
  throw new ExecFailed(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}

/**
 * Ignored signals survive execve: those skiff's caller left ignored (32 and 33 after a posix_spawn)
 * go back to the default, process-wide. SIGPIPE stays: Deno relies on it, the child resets it.
 */
function resetIgnoredSignals(): void {
  const status = Deno.readTextFileSync("/proc/self/status");
  const ignored = BigInt(`0x${status.match(/^SigIgn:\s*(\S+)/m)?.[1] ?? "0"}`);
  for (let sig = 1; sig <= 64; sig++) {
    if (sig !== 13 && ignored & (1n << BigInt(sig - 1))) defaultSignal(sig);
  }
}

export interface StdioChoice {
  stdin: "inherit" | "null";
  stdout: "inherit" | "null";
  stderr: "inherit" | "null";
}

export interface StartedExec {
  child: Deno.ChildProcess;
}

/**
 * Starts `request.command` inside the running container. Throws ExecFailed (126/127) when the
 * command cannot start. The main thread joins the container only for the spawn: it returns to its
 * own namespaces, cgroups and credentials before this returns (a thread in another PID namespace
 * could not even start new threads).
 */
export async function spawnInContainer(
  record: ContainerRecord,
  request: ExecRequest,
  stdio: StdioChoice,
): Promise<StartedExec> {
  const pid = record.State.Pid;
  const notRunning = () => new ExecRefused(`Container ${record.Id} is not running`);
  if (processStartTime(pid) !== record.State.PidStartTime) throw notRunning();
  const groups = ownGroups();
  const cwd = Deno.cwd();
  const moves = planCgroupMoves(pid);
  // On a hybrid host the v2 hierarchy carries no controllers: joining it early charges nothing to
  // the container, and its RCU wait passes on a blocking-pool thread while this one gets ready. The
  // v1 joins ("0" to tasks, 0.3 ms) come last, so that the container's memory cgroup sees none of
  // skiff's own allocations; on a pure v2 host everything is joined there, as late as possible.
  const hybrid = moves.some((m) => m.file === "tasks");
  const early = hybrid ? moves.filter((m) => m.file !== "tasks") : [];
  const late = hybrid ? moves.filter((m) => m.file === "tasks") : moves;
  // from here on, the finally below leaves whatever was joined
  const joining = joinProcessAsync(early);
  joining.catch(() => {}); // awaited below
  let joined = false, credentialsChanged = false;
  let namespaces: NamespacePair[] = [];
  try {
    // every call below is a raw system call through the one syscall6 binding (each bound symbol
    // costs 0.2-0.4 ms: the ten bound here before took 3-5 ms)
    bindLibc(["syscall6"]);
    const security = processSecurity(pid);
    const privileged = request.privileged || record.HostConfig.Privileged;
    namespaces = openNamespaces(pid);
    // the fds pin the namespaces: make sure they are still the container's
    if (processStartTime(pid) !== record.State.PidStartTime) throw notRunning();
    resetIgnoredSignals(); // reads our /proc/self: before the container's /proc replaces it
    joined = true;
    // Deno loads its subprocess code on the first Deno.Command (3-5 ms): now, while the join waits
    new Deno.Command(Deno.execPath());
    await joining;
    joinCgroups(late);
    unshare(CLONE.FS); // setns into a mount namespace needs fs info of our own
    for (const { target, type } of namespaces) setns(target, type);

    let user: ExecUser;
    try {
      user = resolveUser(request.user ?? record.Config.User ?? "", record.HostConfig.GroupAdd ?? []);
    } catch (e) {
      throw new ExecFailed((e as Error).message, EXIT_NOT_EXECUTABLE);
    }
    const env = execEnvironment(record, request.env, user.home, request.tty);
    const workingDir = request.workingDir || record.Config.WorkingDir || "/";
    try {
      chdir(workingDir);
    } catch (e) {
      const why = e instanceof SysError ? e.detail.toLowerCase() : String(e);
      throw new ExecFailed(
        `chdir to cwd ("${workingDir}") set in config.json failed: ${why}`,
        EXIT_NOT_EXECUTABLE,
      );
    }
    const path = env.find((e) => e.startsWith("PATH="))!.slice(5);
    checkExecutable(request.command[0], path);
    credentialsChanged = true;
    becomeUserOnThisThread(user, security, privileged);
    closeRange(3, CLOSE_RANGE_CLOEXEC); // fds inherited from skiff's caller must not reach the container
    try {
      const child = new Deno.Command(request.command[0], {
        args: request.command.slice(1),
        clearEnv: true,
        env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
        // any uid/gid makes Deno fork + exec instead of posix_spawn, whose child would keep signals
        // 32 and 33 ignored; the thread is in that group already
        gid: user.gid,
        ...stdio,
      }).spawn();
      return { child };
    } catch (e) {
      const code = e instanceof Deno.errors.NotFound ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
      throw new ExecFailed(`exec: "${request.command[0]}": ${(e as Error).message}`, code);
    }
  } finally {
    if (credentialsChanged) restoreCredentials(groups);
    if (joined) {
      for (const { own, type } of [...namespaces].reverse()) setns(own, type);
      chdir(cwd);
    }
    // a join still under way must end before we leave (or the main thread stays behind)
    await joining.catch(() => {});
    leaveCgroups(moves);
    closeNamespaces(namespaces);
  }
}
