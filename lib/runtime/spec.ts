// The contract between `skiff run` (the parent) and the container-side init stage. The init stage is
// started as `__init FIFO PARENT_PID` before the container exists; once cgroups are joined and the
// state is saved, the parent writes this spec to <container>/init.json and that path as one line
// into the FIFO: that line is the go signal.
// Kept free of imports so the init stage loads nothing it does not need.

export interface InitSpec {
  /** Host paths; valid until pivot_root. */
  containerDir: string;
  /** Overlay lowerdirs, top-most first. */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
  mergedDir: string;
  /** The init stage writes "<exit code> <message>" here when it fails before execve. */
  errorFile: string;
  hostname: string;
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

  /** Host path of the pty slave when -t was given. */
  ttySlave?: string;
  /**
   * Neither -i nor -t: stdin becomes the container's own /dev/null (the stage got the host's, whose
   * inode the container's root could chmod through /proc/self/fd/0).
   */
  nullStdin?: boolean;
  privileged: boolean;
  readOnlyRootfs: boolean;
  /** Bytes of /dev/shm. */
  shmSize: number;
  /** --tmpfs mounts: container path and tmpfs options. */
  tmpfs: { path: string; options: string }[];
  /** -v binds and volumes: host source, container destination. */
  mounts: {
    source: string;
    destination: string;
    readOnly: boolean;
    /** docker 25's bind-recursive: "enabled" makes read-only mounts recursively so where the kernel can */
    recursive?: "enabled" | "disabled" | "writable" | "readonly";
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
  /** run -d / start: the container outlives its monitor (no parent-death signal once set up). */
  detached?: boolean;
  /**
   * The parent joins the stage to the container's cgroups while it sets up the rootfs: a second
   * line on the FIFO says it is done, and the stage waits for it before it becomes the container.
   */
  awaitCgroup?: boolean;
  /** The container's seccomp filter (BPF, base64; compiled by the parent) and flags. */
  seccompFilter?: string;
  seccompFlags?: number;
  /** --security-opt no-new-privileges. */
  noNewPrivileges?: boolean;
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
