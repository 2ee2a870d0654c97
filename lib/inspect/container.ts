// `skiff inspect` of a container: docker's ContainerJSON shape, fields in docker's order. Values
// skiff does not have yet are docker's empty values; anything the
// runtime adds to the record under a docker field name shows through.

import { join } from "../path.ts";
import { goNilMap, goNilSlice, goStringer, goStruct } from "../format/template.ts";
import { THROTTLE_FIELDS } from "../cgroups/blkio.ts";
import type { StateRoot } from "../state/root.ts";
import { type ApiMount, type ContainerRecord, initialState, type MountPoint } from "../state/types.ts";
import { type PortMap, runningPorts } from "../network/ports.ts";
import { networkSettings, userSettingsOf } from "../network/mode.ts";
import { networkIdOfMode } from "../network/networks.ts";
import { hostConfigLinks } from "../network/linked.ts";

type Json = Record<string, unknown>;

/** defaults in docker's field order, overridden (and extended) by what the record has. */
function overlay(defaults: Json, actual: object | undefined): Json {
  return { ...defaults, ...(actual ?? {}) };
}

/**
 * Go's typed nils: a null slice or map reads `[]` / `map[]` to a template (docker 20.10), yet stays
 * null in the JSON.
 */
function typedNils(obj: Json, slices: string[], maps: string[] = []): void {
  for (const k of slices) if (obj[k] === null) obj[k] = goNilSlice();
  for (const k of maps) if (obj[k] === null) obj[k] = goNilMap();
}

/**
 * docker's omitempty fields: absent from the JSON, yet a template reads their zero value (a
 * field is never missing from a Go struct). `zeros` makes each value when it is needed.
 */
function zeroFields(obj: Json, zeros: Record<string, () => unknown>): void {
  for (const [k, zero] of Object.entries(zeros)) {
    if (obj[k] === undefined) {
      Object.defineProperty(obj, k, { value: zero(), enumerable: false, configurable: true });
    }
  }
}

/**
 * The fields in the Go struct's order (as `{{.Config}}` prints it and the JSON lists it): those
 * present as they are, the absent ones of `zeros` as hidden zero values; any others after.
 */
function inGoOrder(obj: Json, order: readonly string[], zeros: Record<string, () => unknown> = {}): Json {
  const out: Json = {};
  for (const k of order) {
    if (obj[k] !== undefined) out[k] = obj[k];
    else if (zeros[k]) {
      Object.defineProperty(out, k, {
        value: zeros[k](),
        enumerable: false,
        configurable: true,
        writable: true,
      });
    }
  }
  for (const [k, v] of Object.entries(obj)) if (!order.includes(k)) out[k] = v;
  return out;
}

const nil = () => null;
const empty = () => "";
const no = () => false;

/** nat.PortMap: each binding a struct, as `{{.HostConfig.PortBindings}}` prints it (`{127.0.0.1 8080}`). */
function portMap(ports: Record<string, { HostIp: string; HostPort: string }[] | null> | undefined) {
  return Object.fromEntries(
    Object.entries(ports ?? {}).map(([port, bindings]) => [
      port,
      bindings === null
        ? null
        : bindings.map((b) => goStruct("nat.PortBinding", { HostIp: b.HostIp, HostPort: b.HostPort })),
    ]),
  );
}

/** Fields of our records that are skiff's own bookkeeping, not docker's. */
const PRIVATE_STATE = ["PidStartTime", "MonitorPid", "MonitorStartTime"];
const PRIVATE_TOP = [
  "LowerDirs",
  "NetworkEndpoint",
  "LinkedContainers",
  "NetworkLinks",
  "VolumesCopiedAtCreate",
];

export interface ContainerSizes {
  rw: number;
  rootFs: number;
}

/** The docker-shaped inspect object of a container (template-ready: nested structs are marked). */
export function inspectContainer(root: StateRoot, record: ContainerRecord, sizes?: ContainerSizes): Json {
  const dir = root.container(record.Id);
  const extra = record as unknown as Json;

  const state: Json = overlay({ ...initialState() }, record.State);
  for (const k of PRIVATE_STATE) delete state[k];
  // docker's *Health (omitempty): absent from the JSON when there is none, <nil>/null to a template
  const health = record.State.Health;
  if (health) {
    state.Health = goStruct("*types.Health", {
      Status: health.Status,
      FailingStreak: health.FailingStreak,
      Log: health.Log.map((r) =>
        goStruct("*types.HealthcheckResult", {
          Start: r.Start,
          End: r.End,
          ExitCode: r.ExitCode,
          Output: r.Output,
        })
      ),
    });
  } else Object.defineProperty(state, "Health", { value: null, enumerable: false });

  const host = record.HostConfig;
  const hostConfig: Json = overlay({
    Binds: null,
    ContainerIDFile: "",
    LogConfig: goStruct("container.LogConfig", { Type: "none", Config: {} }),
    NetworkMode: "none",
    PortBindings: {},
    RestartPolicy: goStruct("container.RestartPolicy", { Name: "no", MaximumRetryCount: 0 }),
    AutoRemove: false,
    VolumeDriver: "",
    VolumesFrom: null,
    ConsoleSize: [0, 0],
    CapAdd: null,
    CapDrop: null,
    CgroupnsMode: "host",
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: "private",
    Cgroup: "",
    Links: null,
    OomScoreAdj: 0,
    PidMode: "",
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    UTSMode: "",
    UsernsMode: "",
    ShmSize: 67108864,
    Sysctls: null,
    Runtime: "skiff",
    Isolation: "",
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: "",
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: "",
    CpusetMems: "",
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: false,
    PidsLimit: null,
    Ulimits: null,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: [],
    ReadonlyPaths: [],
  }, host);
  // --link on the default bridge, by the linked containers' names now
  hostConfig.Links = hostConfigLinks(root, record);
  // docker leaves out an empty Sysctls and shows no devices as []
  if (!host.Sysctls || Object.keys(host.Sysctls).length === 0) {
    // absent from the JSON (docker's omitempty), yet a template still reads it as Go's nil map
    delete hostConfig.Sysctls;
    // docker 20.10: `{{.HostConfig.Sysctls}}` -> map[], `{{json .HostConfig.Sysctls}}` -> null
    Object.defineProperty(hostConfig, "Sysctls", { value: goNilMap(), enumerable: false });
  }
  // docker's blkiodev types: {Path, Rate} / {Path, Weight} in JSON, "PATH:VALUE" in a template
  for (const field of THROTTLE_FIELDS) {
    hostConfig[field] = (host[field] ?? []).map(({ Path, Rate }) =>
      goStringer(goStruct("*blkiodev.ThrottleDevice", { Path, Rate }), `${Path}:${Rate}`)
    );
  }
  hostConfig.BlkioWeightDevice = (host.BlkioWeightDevice ?? []).map(({ Path, Weight }) =>
    goStringer(goStruct("*blkiodev.WeightDevice", { Path, Weight }), `${Path}:${Weight}`)
  );
  hostConfig.Devices = (host.Devices ?? []).map((d) =>
    goStruct("container.DeviceMapping", {
      PathOnHost: d.PathOnHost,
      PathInContainer: d.PathInContainer,
      CgroupPermissions: d.CgroupPermissions,
    })
  );
  if (host.Ulimits) {
    hostConfig.Ulimits = host.Ulimits.map((u) =>
      goStruct("*units.Ulimit", { Name: u.Name, Hard: u.Hard, Soft: u.Soft })
    );
  } else hostConfig.Ulimits = goNilSlice(); // null in JSON, `[]` in a template (docker 20.10)
  // docker's *bool with omitempty: absent from the JSON when unset, yet `{{.HostConfig.Init}}` reads <nil>
  if (!("Init" in hostConfig)) Object.defineProperty(hostConfig, "Init", { value: null, enumerable: false });
  typedNils(hostConfig, [
    "Binds",
    "VolumesFrom",
    "CapAdd",
    "CapDrop",
    "ExtraHosts",
    "GroupAdd",
    "Links",
    "SecurityOpt",
    "DeviceCgroupRules",
    "DeviceRequests",
  ]);
  if (host.LogConfig) {
    hostConfig.LogConfig = goStruct("container.LogConfig", {
      Type: host.LogConfig.Type,
      Config: host.LogConfig.Config,
    });
  }
  if (host.RestartPolicy) {
    hostConfig.RestartPolicy = goStruct("container.RestartPolicy", {
      Name: host.RestartPolicy.Name,
      MaximumRetryCount: host.RestartPolicy.MaximumRetryCount,
    });
  }
  hostConfig.PortBindings = portMap(host.PortBindings ?? undefined);
  // a --mount tmpfs is in HostConfig.Mounts (and the container's Mounts), not in Tmpfs, as in docker
  const tmpfsMounts = (host.Mounts ?? []).filter((m) => m.Type === "tmpfs").map((m) =>
    m.Target.replace(/(.)\/+$/, "$1")
  );
  const tmpfs = Object.fromEntries(
    Object.entries(host.Tmpfs ?? {}).filter(([path]) => !tmpfsMounts.includes(path)),
  );
  if (Object.keys(tmpfs).length) hostConfig.Tmpfs = tmpfs;
  else delete hostConfig.Tmpfs;
  if (host.Mounts?.length) hostConfig.Mounts = host.Mounts.map(apiMount);
  zeroFields(hostConfig, { Tmpfs: goNilMap, StorageOpt: goNilMap, Mounts: goNilSlice });

  const config: Json = overlay({
    Hostname: "",
    Domainname: "",
    User: "",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: null,
    Image: "",
    Volumes: null,
    WorkingDir: "",
    Entrypoint: null,
    OnBuild: null,
    Labels: {},
  }, record.Config);
  if (config.StopSignal === undefined) delete config.StopSignal;
  // docker's HealthConfig, its fields in its order, the zero ones left out (omitempty)
  const hc = record.Config.Healthcheck;
  if (hc) {
    config.Healthcheck = goStruct(
      "*container.HealthConfig",
      Object.fromEntries(
        (["Test", "Interval", "Timeout", "StartPeriod", "Retries"] as const).filter((k) =>
          k === "Test" ? hc.Test?.length : hc[k]
        ).map((k) => [k, hc[k]!]),
      ),
    );
  }
  // docker's omitempty fields: not in the JSON, but a template reads their zero (docker 20.10)
  for (const key of Object.keys(config)) if (config[key] === undefined) delete config[key];
  if (config.ExposedPorts) {
    const exposed = config.ExposedPorts as Json;
    config.ExposedPorts = Object.fromEntries(Object.keys(exposed).map((p) => [p, goStruct("struct {}", {})]));
  }
  typedNils(config, ["Env", "Cmd", "Entrypoint", "OnBuild"], ["Volumes"]);
  const configInOrder = inGoOrder(config, CONFIG_FIELDS, {
    ExposedPorts: goNilMap,
    Healthcheck: nil,
    ArgsEscaped: no,
    NetworkDisabled: no,
    MacAddress: empty,
    StopSignal: empty,
    StopTimeout: nil,
    Shell: goNilSlice,
  });

  const networkMode = String(hostConfig.NetworkMode || "none");
  const running = record.State.Running && record.State.Pid > 0;
  const endpoint = running ? record.NetworkEndpoint : undefined;
  const { settings, networks } = networkSettings(
    networkMode,
    endpoint,
    `/proc/${record.State.Pid}/ns/net`,
    networkIdOfMode(root, networkMode),
    {
      user: (network) => userSettingsOf(record, network),
      // networks joined with `network connect`: empty values while stopped, as docker shows them
      connected: Object.fromEntries(
        [...new Set([...(record.ConnectedNetworks ?? []), ...Object.keys(record.ExtraEndpoints ?? {})])].map((
          name,
        ) => {
          const ep = running ? record.ExtraEndpoints?.[name] : undefined;
          return [name, [ep, ep?.networkId ?? networkIdOfMode(root, name)]];
        }),
      ),
    },
  );
  const networkSettingsJson: Json = {
    ...settings,
    Ports: portMap(containerPorts(record)),
    Networks: Object.fromEntries(
      Object.entries(networks).map(([name, value]) => {
        const endpoint = { ...value } as Json;
        typedNils(endpoint, ["Links", "Aliases"], ["DriverOpts"]);
        return [name, goStruct("*network.EndpointSettings", endpoint)];
      }),
    ),
  };
  typedNils(networkSettingsJson, ["SecondaryIPAddresses", "SecondaryIPv6Addresses"]);

  const out: Json = {
    Id: record.Id,
    Created: record.Created,
    Path: record.Path,
    Args: record.Args ?? [],
    State: goStruct("*container.State", state),
    Image: record.Image,
    ResolvConfPath: join(dir, "resolv.conf"),
    HostnamePath: join(dir, "hostname"),
    HostsPath: join(dir, "hosts"),
    // docker shows no path for its local driver's files (their format is its own)
    LogPath: record.HostConfig.LogConfig?.Type === "local" ? "" : extra.LogPath ?? "",
    Name: record.Name,
    RestartCount: record.RestartCount ?? 0,
    Driver: record.Driver ?? "overlay2",
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: extra.ExecIDs ?? goNilSlice(),
    HostConfig: goStruct("*container.HostConfig", hostConfig),
    GraphDriver: goStruct("storage.DriverData", {
      Data: {
        LowerDir: (record.LowerDirs ?? []).join(":"),
        MergedDir: join(dir, "merged"),
        UpperDir: join(dir, "upper"),
        WorkDir: join(dir, "work"),
      },
      Name: "overlay2",
    }),
  };
  if (sizes) {
    out.SizeRw = sizes.rw;
    out.SizeRootFs = sizes.rootFs;
  }
  // skiff's own: BindRecursive (docker shows --mount's bind-recursive in HostConfig.Mounts only) and
  // NoCopy (a --volumes-from mount, --mount's volume-nocopy)
  out.Mounts = [
    ...(record.Mounts ?? []).map(mountPoint),
    ...tmpfsMounts.map((path) =>
      mountPoint({ Type: "tmpfs", Source: "", Destination: path, Mode: "", RW: true, Propagation: "" })
    ),
  ];
  out.Config = goStruct("*container.Config", configInOrder);
  out.NetworkSettings = goStruct("*container.NetworkSettings", networkSettingsJson);
  // fields the runtime adds under docker names that are not placed above
  for (const [k, v] of Object.entries(extra)) {
    if (!(k in out) && !PRIVATE_TOP.includes(k)) out[k] = v;
  }
  return goStruct("container.InspectResponse", out);
}

/** types.MountPoint in docker's field order (Name and Driver omitempty); skiff's own fields left out. */
function mountPoint(m: MountPoint): Json {
  const { BindRecursive: _, NoCopy: _n, ...shown } = m;
  return goStruct("types.MountPoint", inGoOrder(shown, MOUNT_POINT_FIELDS, { Name: empty, Driver: empty }));
}

const MOUNT_POINT_FIELDS = ["Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation"];

/** container.Config's fields in docker's order. */
const CONFIG_FIELDS = [
  "Hostname",
  "Domainname",
  "User",
  "AttachStdin",
  "AttachStdout",
  "AttachStderr",
  "ExposedPorts",
  "Tty",
  "OpenStdin",
  "StdinOnce",
  "Env",
  "Cmd",
  "Healthcheck",
  "ArgsEscaped",
  "Image",
  "Volumes",
  "WorkingDir",
  "Entrypoint",
  "NetworkDisabled",
  "MacAddress",
  "OnBuild",
  "Labels",
  "StopSignal",
  "StopTimeout",
  "Shell",
];

/** mount.Mount as docker's CLI sent it; the options structs are <nil> to a template when not given. */
function apiMount(m: ApiMount): Json {
  const shown: Json = { ...m };
  for (const [key, type] of API_MOUNT_OPTIONS) if (m[key]) shown[key] = goStruct(type, { ...m[key] });
  return goStruct(
    "mount.Mount",
    inGoOrder(shown, [
      "Type",
      "Source",
      "Target",
      "ReadOnly",
      "Consistency",
      ...API_MOUNT_OPTIONS.map(([k]) => k),
    ], {
      Source: empty,
      ReadOnly: no,
      Consistency: empty,
      BindOptions: nil,
      VolumeOptions: nil,
      TmpfsOptions: nil,
    }),
  );
}

const API_MOUNT_OPTIONS = [
  ["BindOptions", "*mount.BindOptions"],
  ["VolumeOptions", "*mount.VolumeOptions"],
  ["TmpfsOptions", "*mount.TmpfsOptions"],
] as const;

/** NetworkSettings.Ports: what is published while the container runs on a bridge, {} otherwise. */
export function containerPorts(record: ContainerRecord): PortMap {
  return runningPorts(record.State.Running, record.Config.ExposedPorts, record.PublishedPorts);
}
