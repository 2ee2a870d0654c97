// `stats`: one sample of a container's counters (cgroup memory/cpu/pids/block I/O, network from the
// container's network namespace), and the row docker prints from two samples.

import { openCgroup } from "../cgroups/mod.ts";
import { humanSize } from "../format/human.ts";
import { formatFloatG } from "../format/gofloat.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { isRunning } from "../state/reconcile.ts";

export interface StatsSample {
  /** performance.now() in ms when taken */
  at: number;
  running: boolean;
  cpuNanos: number;
  memoryUsage: number;
  memoryLimit: number;
  pids: number;
  blockRead: number;
  blockWrite: number;
  netRx: number;
  netTx: number;
}

let hostMemory: number | undefined;
/** MemTotal: what docker shows as the limit of a container without one. */
function hostMemoryBytes(): number {
  if (hostMemory === undefined) {
    const m = /^MemTotal:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/meminfo"));
    hostMemory = m ? Number(m[1]) * 1024 : 0;
  }
  return hostMemory;
}

/** Bytes received/sent on the container's interfaces, loopback excluded (docker counts endpoints). */
function networkBytes(pid: number): { rx: number; tx: number } {
  const out = { rx: 0, tx: 0 };
  let text = "";
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/net/dev`);
  } catch {
    return out;
  }
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon === -1 || line.slice(0, colon).trim() === "lo") continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    out.rx += fields[0] || 0;
    out.tx += fields[8] || 0;
  }
  return out;
}

export function sampleStats(root: StateRoot, record: ContainerRecord): StatsSample {
  const at = performance.now();
  const empty = {
    at,
    running: false,
    cpuNanos: 0,
    memoryUsage: 0,
    memoryLimit: 0,
    pids: 0,
    blockRead: 0,
    blockWrite: 0,
    netRx: 0,
    netTx: 0,
  };
  if (!isRunning(record)) return empty;
  let s;
  try {
    s = openCgroup(root, record.Id, record.HostConfig).stats();
  } catch {
    return empty; // exited meanwhile
  }
  const net = networkBytes(record.State.Pid);
  const host = hostMemoryBytes();
  return {
    at,
    running: true,
    cpuNanos: s.cpuNanos,
    memoryUsage: s.memoryUsage,
    memoryLimit: s.memoryLimit > 0 && s.memoryLimit < host ? s.memoryLimit : host,
    pids: s.pids,
    blockRead: s.blockReadBytes,
    blockWrite: s.blockWriteBytes,
    netRx: net.rx,
    netTx: net.tx,
  };
}

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/** go-units BytesSize: "%.4g" of binary units, e.g. "1.52MiB". */
export function bytesSize(bytes: number): string {
  let size = bytes, i = 0;
  while (size >= 1024 && i < BINARY_UNITS.length - 1) {
    size /= 1024;
    i++;
  }
  return `${formatFloatG(size, 4)}${BINARY_UNITS[i]}`;
}

/** The fields docker's stats --format offers. */
export interface StatsRow {
  Container: string;
  ID: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

/** The row for a container from two samples (CPU % is the CPU time used between them). */
export function statsRow(
  record: ContainerRecord,
  shown: string,
  before: StatsSample,
  after: StatsSample,
  noTrunc: boolean,
): StatsRow {
  const wallNanos = (after.at - before.at) * 1e6;
  const cpu = after.running && before.running && wallNanos > 0
    ? Math.max(0, (after.cpuNanos - before.cpuNanos) / wallNanos * 100)
    : 0;
  const mem = after.memoryLimit > 0 ? after.memoryUsage / after.memoryLimit * 100 : 0;
  return {
    Container: shown,
    ID: noTrunc ? record.Id : record.Id.slice(0, 12),
    Name: after.running ? record.Name.slice(1) : "--",
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${bytesSize(after.memoryUsage)} / ${bytesSize(after.memoryLimit)}`,
    MemPerc: `${mem.toFixed(2)}%`,
    NetIO: `${humanSize(after.netRx)} / ${humanSize(after.netTx)}`,
    BlockIO: `${humanSize(after.blockRead)} / ${humanSize(after.blockWrite)}`,
    PIDs: String(after.pids),
  };
}

export const STATS_HEADER: StatsRow = {
  Container: "CONTAINER",
  ID: "CONTAINER ID",
  Name: "NAME",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

export const DEFAULT_STATS_FORMAT =
  "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
