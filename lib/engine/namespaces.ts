// The namespace modes of a starting container (--ipc, --pid, --uts, --cgroupns; lib/runtime/nsmodes.ts)
// on the launch path: another container's namespace is joined by an fd taken from that container's
// own process, pinned by a pidfd and checked against its record (pid and start time), never by a
// path a container could redirect; a shareable container's /dev/shm is a tmpfs this process
// mounts on the host (docker's ShmPath), which its joiners bind.

import {
  close,
  flock,
  ioctlInt,
  LOCK,
  MNT_DETACH,
  MS,
  O,
  open,
  pidfdOpen,
  pidfdSignal,
  umount2,
} from "../../ffi/libc.ts";
import { dirname } from "../path.ts";
import { fstat, statPath } from "../fs/at.ts";
import { mount } from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import { SkiffError } from "../errors.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { processStartTime } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { applyNamespaceModes, containerOfMode, shmPlan } from "../runtime/nsmodes.ts";
import type { InitSpec, NamespaceSpec } from "../runtime/spec.ts";

/** How long a join waits for the other container's command to replace its init stage. */
const STARTING_WAIT_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** IPC namespace fds this process holds for starting containers (the stage opens them by /proc/<us>/fd). */
const heldIpc = new Map<string, number>();

const shmDir = (root: StateRoot, id: string) => `${root.container(id)}/shm`;

/** The link text of a namespace fd or file ("ipc:[4026531839]"): its identity. */
const nsIdentity = (path: string) => Deno.readLinkSync(path);

/** True once the process is the container's command, no longer skiff's init stage (its exe is not ours). */
export function runsItsCommand(pid: number): boolean {
  try {
    const exe = Deno.statSync(`/proc/${pid}/exe`), self = Deno.statSync("/proc/self/exe");
    return exe.dev !== self.dev || exe.ino !== self.ino;
  } catch {
    return false;
  }
}

type Kind = "ipc" | "pid";

/** docker's refusals, by kind. */
const notRunning = (kind: Kind, id: string) =>
  kind === "ipc"
    ? new SkiffError(`can't join IPC of container ${id}: container ${id} is not running`, 125, {
      kind: "conflict",
    })
    : new SkiffError(`container ${id} is not running`, 125, { kind: "conflict" });

const restarting = (kind: Kind, id: string) =>
  new SkiffError(
    `${kind === "ipc" ? `can't join IPC of container ${id}: ` : ""}` +
      `Container ${id} is restarting, wait until the container is running`,
    125,
    { kind: "conflict" },
  );

/**
 * An fd of the `kind` namespace of container `ref`'s process. The process is pinned by a pidfd whose
 * pid's start time is the record's (so a reused pid is refused), the namespace opened while it is
 * still alive (the pidfd takes a signal 0 after), and only once the process runs the container's
 * command (its init stage starts out in the host's namespaces). A namespace that is ours (the
 * host's) is refused unless the other container's own mode says host.
 */
async function donorNamespace(
  root: StateRoot,
  ref: string,
  kind: Kind,
  self?: string,
): Promise<{ fd: number; donor: ContainerRecord }> {
  let other = lookupContainer(root, ref);
  if (other.Id === self) throw new SkiffError(`cannot join own ${kind} namespace`);
  for (let waited = 0;; waited += 10) {
    const { Pid, Running } = other.State;
    if (other.State.Restarting || other.State.Status === "restarting") throw restarting(kind, other.Id);
    if (!Running || !Pid || processStartTime(Pid) !== other.State.PidStartTime) {
      throw notRunning(kind, other.Id);
    }
    if (runsItsCommand(Pid)) break;
    if (waited >= STARTING_WAIT_MS) throw notRunning(kind, other.Id);
    await sleep(10);
    other = lookupContainer(root, other.Id);
  }
  // dockerd's test: the donor has a /dev/shm to share (shareable, the host's, or its own donor's)
  const ipcMode = other.HostConfig.IpcMode ?? "private";
  if (kind === "ipc" && ipcMode !== "shareable" && ipcMode !== "host" && !containerOfMode(ipcMode)) {
    throw new SkiffError(
      `can't join IPC of container ${other.Id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`,
    );
  }
  const { Pid, PidStartTime } = other.State;
  let pidfd = -1;
  try {
    pidfd = pidfdOpen(Pid);
  } catch (e) {
    // before Linux 5.3 the start time read again after the open proves the same (see below)
    if (!(e instanceof SysError) || e.code !== "ENOSYS") throw notRunning(kind, other.Id);
  }
  try {
    if (processStartTime(Pid) !== PidStartTime) throw notRunning(kind, other.Id);
    let fd: number;
    try {
      fd = open(`/proc/${Pid}/ns/${kind}`, O.RDONLY | O.CLOEXEC);
    } catch {
      throw notRunning(kind, other.Id);
    }
    try {
      // still the pinned process (born before the open, alive after it): the namespace was its own
      if (pidfd >= 0) pidfdSignal(pidfd, 0);
      else if (processStartTime(Pid) !== PidStartTime) throw notRunning(kind, other.Id);
      const hostMode = kind === "ipc" ? other.HostConfig.IpcMode : other.HostConfig.PidMode;
      if (hostMode !== "host" && nsIdentity(`/proc/self/fd/${fd}`) === nsIdentity(`/proc/self/ns/${kind}`)) {
        throw new SkiffError(`cannot join ${kind} namespace of container ${other.Id}: it is the host's`);
      }
      return { fd, donor: other };
    } catch (e) {
      close(fd);
      throw e instanceof SkiffError ? e : notRunning(kind, other.Id);
    }
  } finally {
    if (pidfd >= 0) close(pidfd);
  }
}

/**
 * The PID namespace a container's init stage is spawned in (stage.ts startInitStage): undefined for
 * a new one, "host", or an fd of another container's (the caller closes it once the stage runs).
 */
export async function stagePidNamespace(
  root: StateRoot,
  pidMode: string | undefined,
  self?: string,
): Promise<"host" | PidJoin | undefined> {
  if (pidMode === "host") return "host";
  const ref = containerOfMode(pidMode);
  if (ref === undefined) return undefined;
  const { fd, donor } = await donorNamespace(root, ref, "pid", self);
  let unlock: (() => void) | undefined;
  try {
    unlock = await lockPidJoin(root, nsIdentity(`/proc/self/fd/${fd}`));
    if (tracerSeeing(fd, donor.State.Pid!)) {
      throw new SkiffError(
        `cannot join pid namespace of container ${donor.Id}: a process there holds CAP_SYS_PTRACE ` +
          `and could trace the joining container's setup`,
      );
    }
  } catch (e) {
    close(fd);
    unlock?.();
    throw e;
  }
  return { fd, unlock };
}

/**
 * A PID namespace to spawn a stage in, and the release of the lock that keeps every other joiner of
 * it out until that stage has exec'd or exited (startInitStage calls it then).
 */
export interface PidJoin {
  fd: number;
  unlock: () => void;
}

/**
 * One joiner of a PID namespace at a time, from its tracer check to its execve: the check above
 * skips another joiner's stage (it holds all our capabilities), which may exec a moment later into
 * a command with CAP_SYS_PTRACE (--cap-add SYS_PTRACE --pid container:NAME) while ours is still in
 * its window. Polled (LOCK_NB): a supervisor's other containers go on meanwhile.
 */
async function lockPidJoin(root: StateRoot, identity: string): Promise<() => void> {
  const path = root.lock(`pidjoin-${identity.replace(/\D/g, "")}`);
  Deno.mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    const fd = open(path, O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
    try {
      for (let delay = 1; !flock(fd, LOCK.EX | LOCK.NB, path); delay = Math.min(delay * 2, 20)) {
        await new Promise((r) => setTimeout(r, delay));
      }
      // the holder before us removes the file before it lets go (no lock file outlives its join):
      // ours counts only while it is still the file at the path, else the next one is taken
      const now = statPath(path);
      if (now && now.key === fstat(fd).key) {
        return () => {
          try {
            Deno.removeSync(path);
          } catch { /* gone: nothing to clean */ }
          close(fd);
        };
      }
    } catch (e) {
      close(fd);
      throw e;
    }
    close(fd);
  }
}

const CAP_SYS_PTRACE = 1n << 19n;
const NS_GET_PARENT = 0xb702;

/** A process's bounding set and the depth of its PID namespace (NSpid's entries), or undefined when gone. */
function capsAndDepth(pid: string): { bounding: bigint; depth: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const bounding = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1];
    if (bounding === undefined || nspid === undefined) return undefined;
    return { bounding: BigInt(`0x${bounding}`), depth: nspid.trim().split(/\s+/).length };
  } catch {
    return undefined;
  }
}

/** True when process `pid`'s PID namespace is the one `identity` names or lies below it (`up` levels). */
function inOrBelow(pid: string, identity: string, up: number): boolean {
  let fd = -1;
  try {
    fd = open(`/proc/${pid}/ns/pid`, O.RDONLY | O.CLOEXEC);
    for (let i = 0; i < up; i++) {
      const parent = ioctlInt(fd, NS_GET_PARENT, 0);
      close(fd);
      fd = parent;
    }
    return nsIdentity(`/proc/self/fd/${fd}`) === identity;
  } catch {
    return false; // gone meanwhile
  } finally {
    if (fd >= 0) close(fd);
  }
}

/**
 * True when a process that can reach the PID namespace `nsFd` (of `donorPid`), a member of it or of
 * one below it, holds CAP_SYS_PTRACE in its bounding set, unless it may hold every capability we
 * hold anyway. A joiner's init stage is spawned into that namespace with the host's root, cwd, mount
 * namespace and capabilities until its pivot_root: non-dumpable does not keep out a tracer with
 * CAP_SYS_PTRACE (docker's LSM profile does, which skiff has none of), and /proc/<stage>/root would
 * hand it the host's root.
 */
function tracerSeeing(nsFd: number, donorPid: number): boolean {
  const identity = nsIdentity(`/proc/self/fd/${nsFd}`);
  // the host's (NAME runs with --pid host): its processes see every container's stage anyway
  if (identity === nsIdentity("/proc/self/ns/pid")) return false;
  const donor = capsAndDepth(String(donorPid));
  const ours = capsAndDepth("self");
  if (!donor || !ours) return true; // cannot tell: refuse
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const p = capsAndDepth(e.name);
    if (!p || p.depth < donor.depth || !(p.bounding & CAP_SYS_PTRACE)) continue;
    if ((p.bounding & ours.bounding) === ours.bounding) continue; // as strong as the host's root already
    if (inOrBelow(e.name, identity, p.depth - donor.depth)) return true;
  }
  return false;
}

/** Where a container's /dev/shm lives on the host, for its --ipc container: joiners (docker's ShmPath). */
function shmSource(root: StateRoot, donor: ContainerRecord): string {
  const mode = donor.HostConfig.IpcMode;
  if (mode === "host") return "/dev/shm";
  const further = containerOfMode(mode);
  return shmDir(root, further ?? donor.Id); // a joiner's own donor: the one tmpfs they all share
}

/** The init stage's namespaces and /dev/shm for the record's modes, on top of the network's. */
export async function prepareNamespaces(
  root: StateRoot,
  record: ContainerRecord,
  network: readonly NamespaceSpec[],
): Promise<{ namespaces: NamespaceSpec[]; shm: NonNullable<InitSpec["shm"]> }> {
  const host = record.HostConfig;
  const donor = containerOfMode(host.IpcMode);
  let ipcPath: string | undefined, donorShm: string | undefined;
  if (donor !== undefined) {
    const joined = await donorNamespace(root, donor, "ipc", record.Id);
    const fd = joined.fd;
    donorShm = shmSource(root, joined.donor);
    const old = heldIpc.get(record.Id);
    if (old !== undefined) close(old);
    heldIpc.set(record.Id, fd);
    ipcPath = `/proc/${Deno.pid}/fd/${fd}`;
  }
  if (host.IpcMode === "shareable") mountShm(root, record);
  return {
    namespaces: applyNamespaceModes(network, host, ipcPath),
    shm: shmPlan(host.IpcMode, shmDir(root, record.Id), donorShm),
  };
}

/** docker's ShmPath of a shareable container: a tmpfs of --shm-size on the host, below its directory. */
function mountShm(root: StateRoot, record: ContainerRecord): void {
  const dir = shmDir(root, record.Id);
  releaseShm(dir); // a crashed run's, if any
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const size = record.HostConfig.ShmSize || 64 * 1024 * 1024;
  mount("shm", dir, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${size}`);
}

function releaseShm(dir: string): void {
  for (let i = 0; i < 8; i++) {
    try {
      umount2(dir, MNT_DETACH);
    } catch {
      return; // not (or no longer) a mount point
    }
  }
}

/** The "exit" release (engine/resources.ts): the held IPC namespace fd and the shareable tmpfs. */
export function releaseNamespaces(root: StateRoot, id: string): void {
  const fd = heldIpc.get(id);
  if (fd !== undefined) {
    heldIpc.delete(id);
    close(fd);
  }
  releaseShm(shmDir(root, id));
}
