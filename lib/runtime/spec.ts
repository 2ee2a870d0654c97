// What run's init stage is told about a container (lib/runtime/stage.ts): skiff's own thread
// (init.ts) builds the root filesystem from it in namespaces of its own,
// and the container's forked PID 1 runs the programs planned from it (stage_program.ts). Kept
// free of imports (type imports are erased).

import type { DeviceNode } from "../cgroups/devices.ts";

/** An OCI runtime spec namespace: joined when `path` names one (setns), else made anew (unshare). */
export interface NamespaceSpec {
  type: "mount" | "uts" | "ipc" | "network" | "cgroup";
  path?: string;
}

/**
 * The namespaces the init stage enters (the PID namespace is made by the stage's parent, see
 * stage.ts): docker's default, each new. A later `--network container:X` names X's by path.
 */
export const DEFAULT_NAMESPACES: readonly NamespaceSpec[] = [
  { type: "mount" },
  { type: "uts" },
  { type: "ipc" },
  { type: "network" },
];

/**
 * The namespaces of a network mode that needs nothing made on the host: none (a fresh namespace
 * with lo only) and host (no namespace of its own); undefined for the others (engine/network.ts).
 */
export function plainNetworkNamespaces(mode: string): NamespaceSpec[] | undefined {
  if (mode === "none") return DEFAULT_NAMESPACES.map((ns) => ({ ...ns }));
  if (mode === "host") {
    return DEFAULT_NAMESPACES.filter((ns) => ns.type !== "network").map((ns) => ({ ...ns }));
  }
  return undefined;
}

export interface InitSpec {
  /** Host paths; valid until pivot_root. */
  containerDir: string;
  /** The namespaces to join or make, in order (the OCI spec's linux.namespaces, without pid). */
  namespaces: NamespaceSpec[];
  /** Overlay lowerdirs, top-most first. */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
  mergedDir: string;
  /** skiff writes "<exit code>[!] <message>" here when the stage fails before execve. */
  errorFile: string;
  hostname: string;
  /** --domainname (the UTS namespace's NIS domain name); "" leaves it as the new namespace has it. */
  domainname?: string;
  /** argv of the container's process (entrypoint + cmd), not yet resolved against PATH. */
  args: string[];
  /** KEY=VALUE, without HOME (added from the user's passwd entry when absent). */
  env: string[];
  /** Absolute; created when missing, as docker does. */
  workingDir: string;
  /** docker's -u syntax: "", "name", "uid", "name:group", "uid:gid". */
  user: string;
  /** --group-add: group names (looked up in the image) or gids. */
  groupAdd: string[];

  /** -t: the setup makes the pty in the container's devpts (runtime/console.ts); skiff keeps the master. */
  console?: boolean;
  /**
   * Neither -i nor -t: stdin becomes the container's own /dev/null (the stage got the host's, whose
   * inode the container's root could chmod through /proc/self/fd/0).
   */
  nullStdin?: boolean;
  privileged: boolean;
  readOnlyRootfs: boolean;
  /** Bytes of /dev/shm. */
  shmSize: number;
  /** --rm: the overlay root is mounted `volatile` (OverlayPlan.volatile). */
  volatileRootfs?: boolean;
  /** --tmpfs mounts: container path and tmpfs options. */
  tmpfs: { path: string; options: string }[];
  /** -v binds and volumes: host source, container destination. */
  mounts: {
    source: string;
    destination: string;
    readOnly: boolean;
    /** docker 25's bind-recursive: "enabled" makes read-only mounts recursively so where the kernel can */
    recursive?: "enabled" | "disabled" | "writable" | "readonly";
    /**
     * The volume gets the image's files here when it is still empty: only for a record made before
     * skiff copied them at create (create_run.ts), which has no VolumesCopiedAtCreate.
     */
    copyUp: boolean;
  }[];
  /** Bounding/effective/permitted set as a decimal string (JSON has no bigint). Ignored when privileged. */
  capabilities: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** The container's own cgroups for /sys/fs/cgroup (lib/cgroups containerCgroupView). */
  cgroupView?: {
    binds: { source: string; target: string }[];
    symlinks: { link: string; target: string }[];
  };
  /**
   * run -d / start without -t: the supervisor's output pipes as `/proc/<supervisor>/fd/<n>`. skiff
   * reopens each read-write for the container's fd 1 and 2, so the pipe always has a
   * reader in the container itself: with the supervisor gone, a write blocks once the pipe is full
   * instead of failing with EPIPE, and the next supervisor reads on from there (engine/output.ts).
   */
  outputPipes?: { stdout: string; stderr: string };
  /** run -d / start: the container outlives its monitor (no parent-death signal once set up). */
  detached?: boolean;
  /** --ulimit (process_limits.ts rlimitSettings): set just before execve. */
  rlimits?: { name: string; resource: number; soft: string; hard: string }[];
  /** --sysctl: written through the stage's own fresh /proc/sys, after runc's namespace check. */
  sysctls?: Record<string, string>;
  /** --oom-score-adj: written first thing (children and execve inherit it). */
  oomScoreAdj?: number;
  /** --device: nodes made in the container's root (the host's facts, gathered by the parent). */
  devices?: DeviceNode[];
  /**
   * /dev/shm by --ipc (lib/runtime/nsmodes.ts shmPlan): absent, a tmpfs of its own; "none", none;
   * "bind", a bind of a host directory (the host's /dev/shm, or a shareable container's tmpfs).
   */
  shm?: { kind: "own" } | { kind: "none" } | { kind: "bind"; source: string };
  /** --init: the command runs as the child of skiff's init (init_program/), executed from a sealed memfd. */
  init?: boolean;
}

/** An overlay root: read-only without an upper dir. */
export interface OverlayPlan {
  /** Top-most first. */
  lowerDirs: string[];
  upperDir?: string;
  workDir?: string;
  /**
   * overlayfs' `volatile` (Linux 5.10+): no sync of the upper layer, not even when it is unmounted.
   * Without it, the last process of a container (its mount namespace going away) unmounts the
   * overlay and that syncs the whole filesystem of the upper dir and flushes the disk's cache
   * before the exit reaches skiff: 0.4-12 ms here (strace of umount2: 0.1-0.2 ms with volatile).
   * For --rm containers only, as podman does: nothing of them outlives the run, a crash included.
   */
  volatile?: boolean;
  /** Where it is mounted. */
  target: string;
}

/** The mount data is limited to one page. */
export const MAX_MOUNT_DATA = 4000;

/**
 * The overlay's mount data. When the full lowerdir paths do not fit in a page, the lowerdirs are
 * named "0:1:..." instead, and `links` says which directory each name must be a symlink to (the
 * executor makes them in a directory of its own and mounts with that as its working directory:
 * overlay resolves relative lowerdirs against it).
 */
export function overlayMountData(plan: OverlayPlan): { data: string; links?: string[] } {
  const options = (lower: string) =>
    plan.upperDir === undefined
      ? `lowerdir=${lower}`
      : `lowerdir=${lower},upperdir=${plan.upperDir},workdir=${plan.workDir}${
        plan.volatile ? ",volatile" : ""
      }`;
  const full = options(plan.lowerDirs.join(":"));
  if (full.length <= MAX_MOUNT_DATA) return { data: full };
  return { data: options(plan.lowerDirs.map((_, i) => String(i)).join(":")), links: plan.lowerDirs };
}

/** docker's default size of /dev/shm. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** docker's default PATH when the image sets none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Paths docker hides from unprivileged containers (files get /dev/null, dirs an empty read-only tmpfs). */
export const DEFAULT_MASKED_PATHS = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Paths docker mounts read-only in unprivileged containers. */
export const DEFAULT_READONLY_PATHS = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/** Exit codes of the init stage when it fails before the container's process runs (docker's). */
export const EXIT_SETUP_FAILED = 125;
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;

/** runc's largest uid or gid (libcontainer/user: 2^31 - 1); here so that run's flags need not load user.ts. */
export const MAX_ID = 2 ** 31 - 1;
