// The container's init stage, skiff's half: while the container's future PID 1, a fork of skiff
// that runs only syscall programs, waits (stage_program.ts), skiff's own thread takes namespaces of
// its own (a thread may: its fs, mount, uts, ipc and net namespaces change, skiff's other threads
// keep the host's), mounts the root filesystem, has PID 1 join it and mount its proc, finishes the
// mounts and resolves what PID 1 becomes (the user, the command's path, its stdio). Each half in
// the container's namespaces is synchronous and goes back to the host's namespaces, working
// directory and umask before it returns, so no other request of this process ever runs in the
// container's namespaces. (A Deno worker would keep the calling thread out of them, but starting one
// blocks it ~11 ms, more than the whole setup takes.)
//
// Only *Sync Deno APIs and FFI here: async APIs run on other threads, in the host's namespaces.

import {
  CLONE,
  close,
  fchdir,
  interfaceUp,
  O,
  open,
  setdomainname,
  sethostname,
  setns,
  umask,
  unshare,
  write,
} from "../../ffi/mod.ts";
import { fstat, releaseReopen, statPath } from "../fs/at.ts";
import { writeIntoMapping } from "../../ffi/exec_program.ts";
import { giveConsoleTo } from "./console.ts";
import {
  closeCopyUps,
  completeRootfs,
  type CopyUp,
  MountRefused,
  type OpenedRootfs,
  openRootfs,
} from "./rootfs.ts";
import { EXIT_SETUP_FAILED, type InitSpec, type NamespaceSpec } from "./spec.ts";
import { type ExecUser, resolveUser } from "./user.ts";
import { checkSysctls, LimitFailure, writeSysctls } from "./limits_stage.ts";
import { containerNull, lookPath } from "./lookpath.ts";
import { encodeProgram, type ExecProgram, type ProgramLayout } from "./exec_program.ts";
import { planNamespacesProgram, type StageSys } from "./stage_program.ts";

/** A failure before execve, with the exit code docker gives it. */
export class InitFailure extends Error {
  /** `daemon`: docker's daemon says this itself (a user lookup), not its runtime: no runc wording */
  constructor(message: string, readonly exitCode: number, readonly daemon = false) {
    super(message);
  }
}

/** What the setup needs: the spec, and how to reach the waiting child. */
export interface StageRequest {
  spec: InitSpec;
  sys: StageSys;
  /** skiff's pidfd of itself (the child pulls skiff's fds with pidfd_getfd). */
  pidfd: number;
  /** Write end of the child's go pipe (skiff's fd). */
  goFd: number;
  /** The child's own ends of those pipes and its error pipe (fd numbers in the child). */
  childReadyFd: number;
  childGoFd: number;
  childErrorFd: number;
  /** The shared program mapping: where the namespaces program goes and what follows it. */
  layout: Omit<ProgramLayout, "dataOffset"> & {
    namespacesAt: number;
    containerAt: number;
  };
}

/** What the setup hands back (skiff's fds). */
export type StageResult =
  | {
    ok: true;
    /** O_PATH fd of the overlay root, everything mounted below it. */
    rootFd: number;
    /** -t: the pty made in the container's devpts. */
    console?: { master: number; slave: number };
    /** The container's /dev/null for stdin (neither -i nor -t). */
    nullFd?: number;
    user: ExecUser;
    /** The command's path as runc's LookPath finds it ("" with --init: the init looks it up). */
    path: string;
    env: string[];
  }
  | { ok: false; exitCode: number; message: string; daemon: boolean; childFailed?: boolean };

const NAMESPACE_FLAGS: Record<NamespaceSpec["type"], number> = {
  mount: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  network: CLONE.NEWNET,
  cgroup: CLONE.NEWCGROUP,
};

/** Joins the namespaces the spec names by path (setns), then makes the others anew in one unshare. */
function enterNamespaces(namespaces: NamespaceSpec[]): void {
  let fresh = 0;
  for (const ns of namespaces) {
    if (ns.type === "cgroup") continue; // made by PID 1 once it is in the container's cgroups
    if (ns.path === undefined) {
      fresh |= NAMESPACE_FLAGS[ns.type];
      continue;
    }
    const fd = open(ns.path, O.RDONLY | O.CLOEXEC);
    try {
      setns(fd, NAMESPACE_FLAGS[ns.type]); // the flag makes the kernel check the fd's kind
    } finally {
      close(fd);
    }
  }
  if (fresh) unshare(fresh);
}

/** Whether this thread's namespace `name` is the one the fd names (nsfs: one inode per namespace). */
const sameNamespace = (name: string, fd: number) =>
  statPath(`/proc/thread-self/ns/${name}`)?.key === fstat(fd).key;

/** PID 1's namespaces: this thread's that differ from the host's, mnt last (setns order). */
const CHILD_NAMESPACES = [["ipc", CLONE.NEWIPC], ["uts", CLONE.NEWUTS], ["net", CLONE.NEWNET], [
  "mnt",
  CLONE.NEWNS,
]] as const;

function envValue(env: string[], key: string): string | undefined {
  return env.find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1);
}

/** The setup's state between its halves: the container's namespaces and half-made root, by fd. */
export interface StageHalfway {
  spec: InitSpec;
  /** The namespaces program PID 1 runs now (its steps name a failure). */
  program: ExecProgram;
  namespaces: { name: string; fd: number; type: number }[];
  opened: OpenedRootfs;
}

type Failure = Extract<StageResult, { ok: false }>;

function failureOf(e: unknown): Failure {
  const known = e instanceof InitFailure || e instanceof LimitFailure;
  return {
    ok: false,
    exitCode: known ? e.exitCode : EXIT_SETUP_FAILED,
    message: known ? e.message : e instanceof MountRefused
      ? `error during container init: ${e.message}` // runc's words
      : `failed to set up the container: ${(e as Error).message ?? String(e)}`,
    daemon: e instanceof InitFailure && e.daemon,
  };
}

/**
 * Runs `fn` in the container's namespaces: made (`enter`) or re-entered (`namespaces`), with this
 * thread's own fs and umask 0; always back in the host's namespaces, cwd and umask afterwards (if
 * that fails, the process exits at once rather than go on in the container's). Synchronous: no
 * other request of this process runs meanwhile.
 */
function inContainer<T>(enter: () => void, fn: (hostIs: (name: string) => boolean) => T): T {
  const back = CHILD_NAMESPACES.map(([name, type]) => ({
    name,
    fd: open(`/proc/thread-self/ns/${name}`, O.RDONLY | O.CLOEXEC),
    type,
  }));
  const cwd = open(".", O.PATH | O.DIRECTORY | O.CLOEXEC);
  // root, cwd and umask of this thread alone (Deno's other threads keep the process's)
  unshare(CLONE.FS);
  const umaskBefore = umask(0); // device nodes and files we create get exactly the modes we ask for
  try {
    enter();
    return fn((name) => sameNamespace(name, back.find((b) => b.name === name)!.fd));
  } finally {
    comeBack(back, cwd, umaskBefore);
  }
}

/**
 * The first half: the container's namespaces, its overlay root and the /proc target; then PID 1
 * gets its namespaces program (join them, mount its proc) and the go. Never throws.
 */
export function beginContainerRoot(req: StageRequest): { ok: true; halfway: StageHalfway } | Failure {
  const spec = req.spec;
  const made: number[] = [];
  let opened: OpenedRootfs | undefined;
  try {
    return inContainer(() => enterNamespaces(spec.namespaces), (hostIs) => {
      if (spec.sysctls) {
        const has = (type: NamespaceSpec["type"]) => spec.namespaces.some((ns) => ns.type === type);
        // a joined namespace may be the host's (a container:X whose X runs with --ipc or --network host)
        checkSysctls(spec.sysctls, {
          ipc: has("ipc"),
          ipcIsHost: hostIs("ipc"),
          network: has("network"),
          networkIsHost: hostIs("net"),
          uts: has("uts"),
        });
      }
      // what PID 1 joins, and this thread re-enters for the second half
      const namespaces = CHILD_NAMESPACES.filter(([name]) => !hostIs(name)).map(([name, type]) => {
        const fd = open(`/proc/thread-self/ns/${name}`, O.RDONLY | O.CLOEXEC);
        made.push(fd);
        return { fd, type, name };
      });
      opened = openRootfs(spec);
      const layout = req.layout;
      const program = planNamespacesProgram({
        sys: req.sys,
        pidfd: req.pidfd,
        namespaces,
        procTarget: opened.procTarget,
        oomScoreAdj: spec.oomScoreAdj,
        readyFd: req.childReadyFd,
        goFd: req.childGoFd,
        errorFd: req.childErrorFd,
        next: layout.base + BigInt(layout.containerAt),
        setupFailed: EXIT_SETUP_FAILED,
      });
      writeIntoMapping(
        layout.base,
        layout.size,
        layout.namespacesAt,
        encodeProgram(program, { ...layout, dataOffset: layout.namespacesAt }),
      );
      write(req.goFd, new Uint8Array([1]));
      return { ok: true as const, halfway: { spec, program, namespaces, opened } };
    });
  } catch (e) {
    for (const fd of made) close(fd);
    if (opened) {
      close(opened.procTarget);
      opened.mounts.close();
    }
    return failureOf(e);
  }
}

/** Drops what the first half holds (PID 1 failed or the setup was abandoned). */
export function abandonContainerRoot(halfway: StageHalfway): void {
  for (const ns of halfway.namespaces) close(ns.fd);
  close(halfway.opened.procTarget);
  halfway.opened.mounts.close();
}

/** The root filesystem mounted: what the last step resolves the container's process in. */
export interface StageMounted {
  ok: true;
  rootFd: number;
  console?: { master: number; slave: number };
  /** Volumes that still get the image's files (rootfs.ts copyUps), before anything reads the root. */
  copyUps: CopyUp[];
}

/**
 * The second half, once PID 1 has mounted its proc: back in the container's namespaces, the rest
 * of the mounts, the hostname and lo. Never throws.
 */
export function finishContainerRoot(halfway: StageHalfway): StageMounted | Failure {
  const { spec, opened } = halfway;
  const made: number[] = [];
  let copyUps: CopyUp[] = [];
  try {
    return inContainer(() => {
      // the mount namespace last: setns to it needs this thread's own fs, which it has
      for (const ns of halfway.namespaces) setns(ns.fd, ns.type);
    }, () => {
      let console: { master: number; slave: number } | undefined;
      try {
        ({ console, copyUps } = completeRootfs(
          spec,
          opened,
          spec.sysctls ? (procFd) => writeSysctls(procFd, spec.sysctls!) : undefined,
        ));
        // docker makes a missing working directory (PID 1's chdir then says what else is wrong)
        close(opened.mounts.target(spec.workingDir, "dir"));
      } finally {
        opened.mounts.close();
      }
      if (console) made.push(console.master, console.slave);
      // --uts host: the host's namespace, whose name is not the container's to set
      if (spec.namespaces.some((ns) => ns.type === "uts")) {
        sethostname(spec.hostname);
        if (spec.domainname) setdomainname(spec.domainname);
      }
      // a namespace of its own (--network none) has lo down; a joined one is set up already
      if (spec.namespaces.some((ns) => ns.type === "network" && ns.path === undefined)) interfaceUp("lo");
      // the overlay with all below it: read by fd from here on, from the host's namespaces
      const rootFd = open(spec.mergedDir, O.PATH | O.DIRECTORY | O.CLOEXEC);
      made.length = 0; // handed over
      return { ok: true as const, rootFd, console, copyUps };
    });
  } catch (e) {
    for (const fd of made) close(fd);
    closeCopyUps(copyUps);
    return failureOf(e);
  } finally {
    for (const ns of halfway.namespaces) close(ns.fd);
  }
}

/**
 * What PID 1 becomes, once the volumes have their files: -u from the container's /etc/passwd and
 * /etc/group, the command by runc's LookPath, its /dev/null; all through the root's fd (the mounts
 * below it are seen from any namespace). Never throws; takes over the mounted fds.
 */
export function resolveContainerProcess(spec: InitSpec, mounted: StageMounted): StageResult {
  const { rootFd, console } = mounted;
  const made = [rootFd, ...(console ? [console.master, console.slave] : [])];
  try {
    let user: ExecUser;
    try {
      user = resolveUser(spec.user, spec.groupAdd, rootFd);
    } catch (e) {
      throw new InitFailure((e as Error).message, EXIT_SETUP_FAILED, true);
    } finally {
      releaseReopen();
    }
    if (console) giveConsoleTo(console.slave, user.uid);
    const env = [...spec.env];
    if (envValue(env, "HOME") === undefined) env.push(`HOME=${user.home}`);
    // with --init the init looks the command up, as docker-init does (and reports it as tini)
    const path = spec.init ? "" : lookPath(
      rootFd,
      spec.workingDir,
      spec.args[0],
      envValue(env, "PATH") ?? "",
      (message, code) => new InitFailure(message, code),
    );
    const nullFd = spec.nullStdin ? containerNull(rootFd) : undefined;
    return { ok: true, rootFd, console, nullFd, user, path, env };
  } catch (e) {
    for (const fd of made) close(fd);
    return failureOf(e);
  }
}

/** The host's namespaces (mnt last: it needs this thread's own fs, which it has), cwd and umask. */
function comeBack(
  back: { name: string; fd: number; type: number }[],
  cwd: number,
  umaskBefore: number,
): void {
  try {
    for (const ns of back) {
      setns(ns.fd, ns.type);
      if (!sameNamespace(ns.name, ns.fd)) {
        throw new Error(`still in another ${ns.name} namespace`);
      }
    }
    fchdir(cwd);
    umask(umaskBefore);
  } catch (e) {
    // nothing of this process may go on in a container's namespaces
    Deno.stderr.writeSync(
      new TextEncoder().encode(`skiff: cannot return to the host's namespaces: ${(e as Error).message}\n`),
    );
    Deno.exit(125);
  }
  for (const ns of back) close(ns.fd);
  close(cwd);
}
