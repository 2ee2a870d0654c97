// The shapes of the hot state files (validate.ts says why these are hand-written, not zod): what
// skiff writes in container.json, images/<id>.json and repositories.json, checked on every read.

import {
  array,
  bool,
  type Check,
  int,
  matching,
  nullable,
  num,
  object,
  oneOf,
  optional,
  record,
  str,
  unknownValue,
} from "./validate.ts";
import type { ContainerRecord, ImageRecord } from "./types.ts";

export const CONTAINER_ID_RE = /^[0-9a-f]{64}$/;
const DIGEST = matching(/^sha256:[0-9a-f]{64}$/, "a sha256 digest");
const strings = array(str);
const labels = record(str);

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
});

const hostConfig = object({
  AutoRemove: bool,
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
  LogConfig: optional(object({ Type: oneOf("json-file", "none"), Config: labels })),
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
});

/** repositories.json: tag → image id. */
export const tagIndex: Check<Record<string, string>> = record(DIGEST);
