// The records skiff keeps on disk. Field names follow docker's inspect output where one exists so
// that `inspect` is a projection, not a translation.

/** The parts of an OCI/docker image config's `config` object that skiff honours. */
export interface ImageRunConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  /** set by `build` (HEALTHCHECK, SHELL, ONBUILD) */
  Healthcheck?: {
    Test: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
  };
  Shell?: string[];
  OnBuild?: string[] | null;
  /** set by `build`: the image the step was made from (docker's classic builder) */
  Image?: string;
}

/** The image config blob (OCI image-spec config / docker image JSON). */
export interface ImageConfigBlob {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageRunConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
}

export interface LayerRef {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** OCI chain ID: names the unpacked directory <root>/layers/<hex>. */
  chainId: string;
  /** Digest of the blob as stored/distributed (compressed or not), if kept. */
  blobDigest?: string;
  blobMediaType?: string;
  blobSize?: number;
}

export interface ImageRecord {
  /** "sha256:<hex>" of the config blob: docker's image ID. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Digest of the manifest stored in blobs/, when there is one. */
  manifestDigest?: string;
  layers: LayerRef[];
  config: ImageConfigBlob;
  /** ISO time the image was created (from the config), or when it was stored. */
  created: string;
  /** Unpacked size in bytes of all layers. */
  size: number;
  /** The image a build step made this one from (docker's Parent; built images only). */
  parent?: string;
}

export type ContainerStatus =
  | "created"
  | "running"
  | "paused"
  | "restarting"
  | "removing"
  | "exited"
  | "dead";

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Not in docker's output: start time (clock ticks, /proc/<pid>/stat field 22) to detect pid reuse. */
  PidStartTime?: number;
  /** Not in docker's output: the skiff process that owns and waits on the container. */
  MonitorPid?: number;
  /** Its start time (as PidStartTime): a supervisor that adopted the container is younger than it. */
  MonitorStartTime?: number;
  /** docker's State.Health (lib/engine/health.ts). */
  Health?: HealthState;
}

/** Go's zero time, which docker prints for a time that has not happened yet. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** The state of a container that has been created and never started. */
export function initialState(): ContainerState {
  return {
    Status: "created",
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: "",
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Image: string;
  Volumes: Record<string, unknown> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  /** --stop-timeout: seconds stop waits before SIGKILL (absent: 10). */
  StopTimeout?: number;
  /** -p, --expose and the image's EXPOSE: "80/tcp" → {}. */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** --health-* over the image's HEALTHCHECK (docker's merge); absent when neither has one. */
  Healthcheck?: HealthConfig;
  /** The image's SHELL (build): CMD-SHELL health probes run through it. */
  Shell?: string[];
  /** --mac-address as given (docker 20.10's Config.MacAddress); absent when not given. */
  MacAddress?: string;
}

/** docker's HealthConfig: Test ["CMD", …], ["CMD-SHELL", cmd] or ["NONE"]; durations in ns (0: default). */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** One probe's result, as docker keeps the last five in State.Health.Log. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** State.Health: present once a container with a health check has started. */
export interface HealthState {
  Status: "starting" | "healthy" | "unhealthy";
  FailingStreak: number;
  Log: HealthResult[];
}

export interface DeviceRule {
  type: "a" | "b" | "c";
  major: number | "*";
  minor: number | "*";
  access: string;
}

export interface HostConfig {
  AutoRemove: boolean;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  /** --security-opt as docker keeps it ("seccomp=unconfined", "seccomp=<profile JSON>", "no-new-privileges"). */
  SecurityOpt?: string[] | null;
  NetworkMode: string;
  /** Bytes; 0 = unlimited. */
  Memory: number;
  /** Bytes of memory+swap; 0 = unset, -1 = unlimited. */
  MemorySwap: number;
  /** CPUs × 1e9. */
  NanoCpus: number;
  CpuShares: number;
  CpuPeriod: number;
  CpuQuota: number;
  CpusetCpus: string;
  CpusetMems: string;
  /** null = unlimited. */
  PidsLimit: number | null;
  BlkioWeight: number;
  /** Soft limit in bytes (--memory-reservation); 0 = none. */
  MemoryReservation?: number;
  /** 0..100, or null for the host's default (--memory-swappiness). */
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean;
  /** --device-cgroup-rule values, e.g. "c 10:200 rwm". */
  DeviceCgroupRules?: string[] | null;
  /** --device: host node (or directory of nodes), its path in the container, "rwm" or a subset. */
  Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[] | null;
  /** --cgroup-parent as given (lib/cgroups/parent.ts cleans it); absent or "": skiff's own parent. */
  CgroupParent?: string;
  /** --blkio-weight-device: host device path as given, weight 10..1000 (0: none); absent when none. */
  BlkioWeightDevice?: { Path: string; Weight: number }[] | null;
  /** --device-read-bps, --device-write-bps (bytes/s), --device-read-iops, --device-write-iops. */
  BlkioDeviceReadBps?: { Path: string; Rate: number }[] | null;
  BlkioDeviceWriteBps?: { Path: string; Rate: number }[] | null;
  BlkioDeviceReadIOps?: { Path: string; Rate: number }[] | null;
  BlkioDeviceWriteIOps?: { Path: string; Rate: number }[] | null;
  /** --ulimit, in the order given (-1: unlimited); null when none. */
  Ulimits?: { Name: string; Hard: number; Soft: number }[] | null;
  /** --sysctl KEY=VALUE; absent when none, as docker leaves it. */
  Sysctls?: Record<string, string>;
  /** --oom-score-adj (-1000..1000). */
  OomScoreAdj?: number;
  /** --cidfile's path; absent when none. */
  ContainerIDFile?: string;
  /** --volumes-from as given (CONTAINER[:MODE]); absent when none. */
  VolumesFrom?: string[];
  /** Each -v with a colon, as given (docker's Binds; shown, the mounts are in Mounts); absent when none. */
  Binds?: string[];
  /** Each --mount as docker's CLI sends it (shown by inspect; the mounts are in Mounts/Tmpfs). */
  Mounts?: ApiMount[];
  /** --group-add: extra groups (names or gids) of the container's process. */
  GroupAdd?: string[] | null;
  /** --init: skiff's init runs as PID 1 with the command as its child; absent when not given. */
  Init?: boolean;
  /** --add-host entries as "host:ip". */
  ExtraHosts?: string[] | null;
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  /** Bytes of /dev/shm (--shm-size); docker's default is 64 MiB. */
  ShmSize?: number;
  /** --tmpfs: container path -> mount options ("" for docker's defaults). */
  Tmpfs?: Record<string, string> | null;
  MaskedPaths: string[];
  ReadonlyPaths: string[];
  /** --restart (absent on records made before restart policies: "no"). */
  RestartPolicy?: { Name: "no" | "always" | "on-failure" | "unless-stopped"; MaximumRetryCount: number };
  /** --log-driver / --log-opt (absent: json-file without rotation). */
  LogConfig?: { Type: "json-file" | "local" | "none"; Config: Record<string, string> };
  /** -p as docker keeps it: "80/tcp" → [{HostIp, HostPort}] ("" where not given). */
  PortBindings?: Record<string, { HostIp: string; HostPort: string }[] | null>;
  /** -P: every exposed port on a free host port. */
  PublishAllPorts?: boolean;
  /** --ipc, --pid, --uts, --userns, --cgroupns (lib/runtime/nsmodes.ts); absent on older records. */
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  UsernsMode?: string;
  CgroupnsMode?: string;
}

/** A --mount as docker's CLI sends it (mount.Mount), kept as given in HostConfig.Mounts. */
export interface ApiMount {
  Type: "bind" | "volume" | "tmpfs";
  Source?: string;
  Target: string;
  ReadOnly?: true;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: true };
  VolumeOptions?: { NoCopy?: true; DriverConfig: Record<string, never> };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** One entry of docker's inspect Mounts (volumes, binds, tmpfs). */
export interface MountPoint {
  Type: "volume" | "bind" | "tmpfs";
  /** Volume name (Type volume only). */
  Name?: string;
  /** Host path: the volume's _data dir or the bind source; "" for tmpfs. */
  Source: string;
  Destination: string;
  /** "local" for volumes. */
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /**
   * --mount's bind-recursive when not "enabled" (docker 25: BindOptions NonRecursive,
   * ReadOnlyNonRecursive, ReadOnlyForceRecursive); skiff's own, not shown by inspect.
   */
  BindRecursive?: "disabled" | "writable" | "readonly";
  /**
   * skiff's own, not shown by inspect: the volume never gets the image's files: a --volumes-from
   * mount, or --mount's volume-nocopy (-v's `nocopy` is in Mode).
   */
  NoCopy?: true;
}

export interface ContainerRecord {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  /** Image ID "sha256:...". */
  Image: string;
  /** "/name", as docker shows it. */
  Name: string;
  RestartCount: number;
  Driver: "overlay2";
  HostConfig: HostConfig;
  Config: ContainerConfig;
  /** Unpacked layer dirs, top-most first, as overlay lowerdir wants them. */
  LowerDirs: string[];
  /** Volumes, binds and tmpfs mounts (docker's inspect Mounts); absent on records without any. */
  Mounts?: MountPoint[];
  /**
   * skiff's own, not shown by inspect: its empty volumes got the image's files when it was made
   * (engine/create_run.ts), as docker's daemon does at create, so no start copies them. A record
   * without it, made by an older skiff that copied at start, still has an empty volume filled at
   * its starts (rootfs.ts copyUps).
   */
  VolumesCopiedAtCreate?: true;
  /**
   * skiff's own: the host ports published while the container runs (lib/network/nat.ts), shown by
   * inspect as NetworkSettings.Ports; absent when it does not run.
   */
  PublishedPorts?: {
    proto: "tcp" | "udp" | "sctp";
    hostIp: string;
    hostPort: number;
    containerPort: number;
  }[];
  /**
   * skiff's own: the bridge endpoint while the container runs (lib/network/bridge.ts Endpoint),
   * shown by inspect as NetworkSettings; absent when it does not run.
   */
  /**
   * skiff's own: `--network-alias` / `network connect --alias`, per network name: the extra names
   * the container answers to there (lib/network/names.ts).
   */
  NetworkAliases?: Record<string, string[]>;
  /**
   * skiff's own: `--link` on the default bridge (lib/network/links.ts), by the linked container's
   * id; inspect shows them as HostConfig.Links.
   */
  LinkedContainers?: { Id: string; Name: string; Alias: string }[];
  /** skiff's own: `--link` on a user network, as given, per network name (docker's EndpointSettings.Links). */
  NetworkLinks?: Record<string, string[]>;
  /** skiff's own: `--ip` / `network connect --ip`, per network name: the address asked for. */
  NetworkIps?: Record<string, string>;
  /**
   * skiff's own: networks joined with `network connect` besides NetworkMode's, in order; joined
   * again at every start, as docker keeps a connection in the container's settings.
   */
  ConnectedNetworks?: string[];
  /** skiff's own: endpoints of networks joined with `network connect` while it runs. */
  ExtraEndpoints?: Record<string, {
    bridge: string;
    subnet: string;
    gateway: string;
    ipAddress: string;
    prefixLen: number;
    macAddress: string;
    hostInterface: string;
    networkId: string;
    endpointId: string;
    sandboxId: string;
  }>;
  NetworkEndpoint?: {
    bridge: string;
    subnet: string;
    gateway: string;
    ipAddress: string;
    prefixLen: number;
    macAddress: string;
    hostInterface: string;
    networkId: string;
    endpointId: string;
    sandboxId: string;
  };
}

/** The cgroup-related HostConfig fields, validated by the CLI. */
export type ResourceSettings = Pick<
  HostConfig,
  | "Memory"
  | "MemorySwap"
  | "NanoCpus"
  | "CpuShares"
  | "CpusetCpus"
  | "CpusetMems"
  | "PidsLimit"
  | "BlkioWeight"
  | "CpuPeriod"
  | "CpuQuota"
  | "MemoryReservation"
  | "MemorySwappiness"
  | "OomKillDisable"
  | "DeviceCgroupRules"
  | "Devices"
  | "CgroupParent"
  | "BlkioWeightDevice"
  | "BlkioDeviceReadBps"
  | "BlkioDeviceWriteBps"
  | "BlkioDeviceReadIOps"
  | "BlkioDeviceWriteIOps"
>;

/** A container without limits (what docker records when no limit flag is given). */
export const NO_RESOURCE_LIMITS: ResourceSettings = {
  Memory: 0,
  MemorySwap: 0,
  NanoCpus: 0,
  CpuShares: 0,
  CpusetCpus: "",
  CpusetMems: "",
  PidsLimit: null,
  BlkioWeight: 0,
  CpuPeriod: 0,
  CpuQuota: 0,
};
