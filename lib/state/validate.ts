// Shape checks for the state files on skiff's hot paths (container records, image records, the tag
// index, volume records). zod would do the same, but importing it costs ~10 ms per process (zod
// 4.1.12: +12 ms wall, zod/mini +9 ms, against a 14 ms empty Deno start; README, Dependencies), and
// run, exec and ps read these files on every call. The colder state files use zod (schemas.ts).
//
// A check returns the value unchanged or throws InvalidState naming the first bad field. Objects are
// checked loosely: fields a newer skiff adds pass through, the fields this one reads must be right.

import type { ContainerRecord, ImageRecord } from "./types.ts";

/** A state file that does not have the shape skiff wrote. `message` names the first bad field. */
export class InvalidState extends Error {
  /** Where the bad value is, outermost first (filled in as the error passes up through the checks). */
  readonly path: string[] = [];
  constructor(readonly detail: string) {
    super(detail);
    this.name = "InvalidState";
  }
  /** Prepends a field name or index; the message becomes `a.b[2]: detail`. */
  within(step: string): this {
    this.path.unshift(step);
    this.message = `${this.path.join("").replace(/^\./, "")}: ${this.detail}`;
    return this;
  }
}

/**
 * Returns the value when it has the shape, else throws InvalidState. The path to a bad value is
 * only built on the way out of a failure: a check that passes costs no string work (ps reads every
 * record on each call, in a process too short for the JIT to help).
 */
export type Check<T> = (value: unknown) => T;

function describe(v: unknown): string {
  if (v === undefined) return "nothing (the field is missing)";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return v.length > 40 ? "a string" : JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function fail(want: string, got: unknown): never {
  throw new InvalidState(`expected ${want}, got ${describe(got)}`);
}

export const str: Check<string> = (v) => typeof v === "string" ? v : fail("a string", v);
export const num: Check<number> = (v) =>
  typeof v === "number" && Number.isFinite(v) ? v : fail("a number", v);
export const int: Check<number> = (v) => Number.isSafeInteger(v) ? v as number : fail("an integer", v);
export const bool: Check<boolean> = (v) => typeof v === "boolean" ? v : fail("true or false", v);
export const unknownValue: Check<unknown> = (v) => v;

export function matching(re: RegExp, what: string): Check<string> {
  return (v) => typeof v === "string" && re.test(v) ? v : fail(what, v);
}

export function oneOf<T extends string>(...values: T[]): Check<T> {
  return (v) => values.includes(v as T) ? v as T : fail(`one of ${values.join(", ")}`, v);
}

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v) => v === undefined ? undefined : check(v);
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v) => v === null ? null : check(v);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Runs a check on one part, naming the part in the error when it fails. */
function at<T>(step: string, check: Check<T>, v: unknown): void {
  try {
    check(v);
  } catch (e) {
    throw e instanceof InvalidState ? e.within(step) : e;
  }
}

export function array<T>(check: Check<T>): Check<T[]> {
  return (v) => {
    if (!Array.isArray(v)) return fail("an array", v);
    let i = 0;
    try {
      for (; i < v.length; i++) check(v[i]);
    } catch (e) {
      throw e instanceof InvalidState ? e.within(`[${i}]`) : e;
    }
    return v as T[];
  };
}

export function record<T>(check: Check<T>): Check<Record<string, T>> {
  return (v) => {
    if (!isObject(v)) return fail("an object", v);
    for (const k in v) {
      if (Object.hasOwn(v, k)) at(`[${JSON.stringify(k)}]`, check, v[k]);
    }
    return v as Record<string, T>;
  };
}

/** An object with at least these fields (a field checked with optional() may be absent). */
export function object<T>(shape: Record<string, Check<unknown>>): Check<T> {
  const keys = Object.keys(shape);
  const checks = keys.map((k) => shape[k]);
  return (v) => {
    if (!isObject(v)) return fail("an object", v);
    let i = 0;
    try {
      for (; i < keys.length; i++) checks[i](v[keys[i]]);
    } catch (e) {
      throw e instanceof InvalidState ? e.within(`.${keys[i]}`) : e;
    }
    return v as T;
  };
}

/** A state file's JSON; InvalidState when it is empty or not JSON. */
export function parseStateJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidState(
      text.trim() === "" ? "the file is empty" : `not valid JSON (${(e as Error).message})`,
    );
  }
}

/** Parses and checks a state file's text; InvalidState for both bad JSON and a bad shape. */
export function parseState<T>(text: string, check: Check<T>): T {
  const value = parseStateJson(text);
  try {
    return check(value);
  } catch (e) {
    if (e instanceof InvalidState && e.path.length === 0) e.message = `top level: ${e.detail}`;
    throw e;
  }
}

// ---- the shapes of the hot state files: container.json, images/<id>.json, repositories.json ----
export const CONTAINER_ID_RE = /^[0-9a-f]{64}$/;
const DIGEST = matching(/^sha256:[0-9a-f]{64}$/, "a sha256 digest");
const strings = array(str);
const labels = record(str);

const healthResult = object({ Start: str, End: str, ExitCode: int, Output: str });

const healthConfig = object({
  Test: optional(strings),
  Interval: optional(int),
  Timeout: optional(int),
  StartPeriod: optional(int),
  Retries: optional(int),
});

const containerState = object({
  Status: oneOf("created", "running", "paused", "restarting", "removing", "exited", "dead"),
  Running: bool,
  Paused: bool,
  Restarting: bool,
  OOMKilled: bool,
  Dead: bool,
  Pid: int,
  ExitCode: int,
  Error: str,
  StartedAt: str,
  FinishedAt: str,
  PidStartTime: optional(num),
  MonitorPid: optional(int),
  MonitorStartTime: optional(num),
  Health: optional(object({
    Status: oneOf("starting", "healthy", "unhealthy"),
    FailingStreak: int,
    Log: array(healthResult),
  })),
});

const hostConfig = object({
  AutoRemove: bool,
  VolumesFrom: optional(strings),
  Binds: optional(strings),
  Mounts: optional(array(object({ Type: oneOf("bind", "volume", "tmpfs"), Target: str }))),
  ContainerIDFile: optional(str),
  Privileged: bool,
  ReadonlyRootfs: bool,
  CapAdd: nullable(strings),
  CapDrop: nullable(strings),
  NetworkMode: str,
  Memory: optional(num),
  MemorySwap: optional(num),
  NanoCpus: optional(num),
  CpuShares: optional(num),
  CpuPeriod: optional(num),
  CpuQuota: optional(num),
  CpusetCpus: optional(str),
  CpusetMems: optional(str),
  PidsLimit: optional(nullable(num)),
  BlkioWeight: optional(num),
  MemoryReservation: optional(num),
  MemorySwappiness: optional(nullable(num)),
  OomKillDisable: optional(bool),
  DeviceCgroupRules: optional(nullable(strings)),
  Devices: optional(
    nullable(array(object({ PathOnHost: str, PathInContainer: str, CgroupPermissions: str }))),
  ),
  CgroupParent: optional(str),
  BlkioWeightDevice: optional(nullable(array(object({ Path: str, Weight: num })))),
  BlkioDeviceReadBps: optional(nullable(array(object({ Path: str, Rate: num })))),
  BlkioDeviceWriteBps: optional(nullable(array(object({ Path: str, Rate: num })))),
  BlkioDeviceReadIOps: optional(nullable(array(object({ Path: str, Rate: num })))),
  BlkioDeviceWriteIOps: optional(nullable(array(object({ Path: str, Rate: num })))),
  Ulimits: optional(nullable(array(object({ Name: str, Hard: num, Soft: num })))),
  Sysctls: optional(labels),
  OomScoreAdj: optional(int),
  GroupAdd: optional(nullable(strings)),
  ExtraHosts: optional(nullable(strings)),
  Dns: optional(strings),
  DnsSearch: optional(strings),
  DnsOptions: optional(strings),
  ShmSize: optional(num),
  Tmpfs: optional(nullable(labels)),
  MaskedPaths: strings,
  ReadonlyPaths: strings,
  RestartPolicy: optional(object({
    Name: oneOf("no", "always", "on-failure", "unless-stopped"),
    MaximumRetryCount: int,
  })),
  LogConfig: optional(object({ Type: oneOf("json-file", "local", "none"), Config: labels })),
  PortBindings: optional(nullable(record(nullable(array(object({ HostIp: str, HostPort: str })))))),
  PublishAllPorts: optional(bool),
  IpcMode: optional(str),
  PidMode: optional(str),
  UTSMode: optional(str),
  UsernsMode: optional(str),
  CgroupnsMode: optional(str),
  Init: optional(bool),
});

const containerConfig = object({
  Hostname: str,
  Domainname: str,
  User: str,
  AttachStdin: bool,
  AttachStdout: bool,
  AttachStderr: bool,
  Tty: bool,
  OpenStdin: bool,
  StdinOnce: bool,
  Env: strings,
  Cmd: nullable(strings),
  Image: str,
  Volumes: nullable(record(unknownValue)),
  WorkingDir: str,
  Entrypoint: nullable(strings),
  Labels: labels,
  StopSignal: optional(str),
  StopTimeout: optional(int),
  ExposedPorts: optional(nullable(record(unknownValue))),
  Healthcheck: optional(healthConfig),
  Shell: optional(strings),
  MacAddress: optional(str),
});

const mountPoint = object({
  Type: oneOf("volume", "bind", "tmpfs"),
  Name: optional(str),
  Source: str,
  Destination: str,
  Driver: optional(str),
  Mode: str,
  RW: bool,
  Propagation: str,
  NoCopy: optional(bool),
});

const endpoint = object({
  bridge: str,
  subnet: str,
  gateway: str,
  ipAddress: str,
  prefixLen: int,
  macAddress: str,
  hostInterface: str,
  networkId: str,
  endpointId: str,
  sandboxId: str,
});

/** container.json */
export const containerRecord: Check<ContainerRecord> = object<ContainerRecord>({
  Id: matching(CONTAINER_ID_RE, "a 64-hex container id"),
  Created: str,
  Path: str,
  Args: strings,
  State: containerState,
  Image: str,
  Name: matching(/^\/[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "a container name"),
  RestartCount: int,
  Driver: str,
  HostConfig: hostConfig,
  Config: containerConfig,
  LowerDirs: strings,
  Mounts: optional(array(mountPoint)),
  VolumesCopiedAtCreate: optional(bool),
  PublishedPorts: optional(array(object({
    proto: oneOf("tcp", "udp", "sctp"),
    hostIp: str,
    hostPort: int,
    containerPort: int,
  }))),
  NetworkAliases: optional(record(strings)),
  ConnectedNetworks: optional(strings),
  NetworkIps: optional(record(str)),
  // their aliases and names become /etc/hosts fields
  LinkedContainers: optional(array(object({
    Id: matching(CONTAINER_ID_RE, "a 64-hex container id"),
    Name: matching(/^\/[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "a container name"),
    Alias: matching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "a link alias"),
  }))),
  NetworkLinks: optional(record(strings)),
  NetworkEndpoint: optional(endpoint),
  ExtraEndpoints: optional(record(endpoint)),
});

const imageRunConfig = object({
  User: optional(str),
  Env: optional(nullable(strings)),
  Entrypoint: optional(nullable(strings)),
  Cmd: optional(nullable(strings)),
  WorkingDir: optional(str),
  Labels: optional(nullable(labels)),
  StopSignal: optional(str),
  ExposedPorts: optional(nullable(record(unknownValue))),
  Volumes: optional(nullable(record(unknownValue))),
});

/** An image config blob, as far as skiff reads it (the rest passes through to inspect). */
export const imageConfigBlob = object({
  architecture: optional(str),
  os: optional(str),
  variant: optional(str),
  created: optional(str),
  author: optional(str),
  config: optional(nullable(imageRunConfig)),
  rootfs: object({ type: str, diff_ids: array(DIGEST) }),
  history: optional(nullable(array(object({
    created: optional(str),
    created_by: optional(str),
    empty_layer: optional(bool),
    comment: optional(str),
  })))),
});

/** images/<hex>.json */
export const imageRecord: Check<ImageRecord> = object<ImageRecord>({
  id: DIGEST,
  repoTags: optional(strings),
  repoDigests: strings,
  manifestDigest: optional(DIGEST),
  layers: array(object({
    diffId: DIGEST,
    chainId: DIGEST,
    blobDigest: optional(DIGEST),
    blobMediaType: optional(str),
    blobSize: optional(num),
  })),
  config: imageConfigBlob,
  created: str,
  size: num,
  parent: optional(DIGEST),
});

/** repositories.json: tag → image id. */
export const tagIndex: Check<Record<string, string>> = record(DIGEST);

/** registry/blob-sources.json: registry → blob digest → the repositories it came from. */
export const blobSourcesShape: Check<Record<string, Record<string, string[]>>> = record(record(array(str)));
