// `info` as docker's types.Info (docker 20.10's field names and order), for `skiff info` and its
// --format: what a script asks a docker host (`docker info --format '{{.ServerVersion}}'`, the
// container counts, the kernel, the cgroup version). The "daemon" is this program's engine: the
// counts come from the state root, the rest from the host (/proc, /etc/os-release, the cgroup
// hierarchy). Nothing is written.

import { hostSupport } from "../cgroups/support.ts";
import { cgroupDriver } from "../cgroups/mod.ts";
import { ImageStore } from "../image/store.ts";
import { deadPlaceholder, scanContainers } from "../state/containers.ts";
import { reconcile } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import { VERSION } from "../version.ts";
import { nanoTimestamp } from "../runtime/logs.ts";
import { exists } from "../state/fsutil.ts";

function readOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/** /etc/os-release's PRETTY_NAME and VERSION_ID (docker's OperatingSystem and OSVersion). */
function osRelease(): { name: string; version: string } {
  const text = readOr("/etc/os-release") || readOr("/usr/lib/os-release");
  const field = (key: string) => {
    const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
    return m ? m[1].replace(/^"(.*)"$/, "$1") : "";
  };
  return { name: field("PRETTY_NAME") || "Linux", version: field("VERSION_ID") };
}

/** The filesystem under the state root as docker names it ("extfs", "xfs", "tmpfs", …). */
function backingFilesystem(path: string): string {
  const names: Record<string, string> = {
    ext2: "extfs",
    ext3: "extfs",
    ext4: "extfs",
    xfs: "xfs",
    btrfs: "btrfs",
    tmpfs: "tmpfs",
    zfs: "zfs",
    overlay: "overlayfs",
    f2fs: "f2fs",
  };
  // the mount that holds the root: the longest mount point that is a prefix of it
  let best = { point: "", type: "" };
  for (const line of readOr("/proc/self/mounts").split("\n")) {
    const [, point, type] = line.split(" ");
    if (!point || !type) continue;
    const under = point === "/" || path === point || path.startsWith(point + "/");
    if (under && point.length >= best.point.length) best = { point, type };
  }
  return names[best.type] ?? best.type;
}

/** docker's engine ID shape (12 groups of 4 base32 characters), derived from the machine and root. */
async function engineId(rootPath: string): Promise<string> {
  const seed = `${readOr("/etc/machine-id").trim()}:${rootPath}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(seed)));
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0, out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 48) {
      out += alphabet[(value >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(":");
}

const bool01 = (path: string) => readOr(path).trim() === "1";

interface IndexConfig {
  Name: string;
  Mirrors: string[];
  Secure: boolean;
  Official: boolean;
}

/** docker.io, then each registry named by host (and port) as insecure (docker's IndexConfigs). */
function indexConfigs(insecure: string[]): Record<string, IndexConfig> {
  const configs: Record<string, IndexConfig> = {
    "docker.io": { Name: "docker.io", Mirrors: [], Secure: true, Official: true },
  };
  for (const r of insecure) configs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
  return configs;
}

export interface InfoOptions {
  /** The insecure registries skiff was given (SKIFF_INSECURE_REGISTRIES), besides 127.0.0.0/8. */
  insecureRegistries: string[];
  /** skiff's own executable: its "runtime". */
  executable: string;
}

/** types.Info, field by field in docker's order; warnings as docker's daemon would give them. */
export async function systemInfo(root: StateRoot, opts: InfoOptions) {
  // as ps sees them: reconciled with reality, an unreadable record as a dead container
  const { records, broken } = scanContainers(root);
  const containers = [...records.map((r) => reconcile(root, r)), ...broken.map(deadPlaceholder)];
  const running = containers.filter((c) => c.State.Running && !c.State.Paused).length;
  const paused = containers.filter((c) => c.State.Paused).length;
  const images = new ImageStore(root).list().length;
  const support = hostSupport();
  const v2 = cgroupDriver() === "v2";
  const os = osRelease();
  const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readOr("/proc/meminfo"))?.[1] ?? 0) * 1024;
  const env = (k: string) => Deno.env.get(k) ?? Deno.env.get(k.toLowerCase()) ?? "";
  const bridgeNf = bool01("/proc/sys/net/bridge/bridge-nf-call-iptables");
  const bridgeNf6 = bool01("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
  const ipForward = bool01("/proc/sys/net/ipv4/ip_forward");
  const memoryMount = v2 ? undefined : "/sys/fs/cgroup/memory";
  const kernelMemory = memoryMount !== undefined && exists(`${memoryMount}/memory.kmem.limit_in_bytes`);
  const kernelMemoryTcp = memoryMount !== undefined &&
    exists(`${memoryMount}/memory.kmem.tcp.limit_in_bytes`);
  // docker 20.10's daemon (fillPlatformInfo): what the host's cgroups lack, no blkio warning on v1
  // (no user can act on it); bridge-nf only where the module is loaded (skiff's NAT does not need it)
  const warnings = [
    [!support.memoryLimit, "WARNING: No memory limit support"],
    [!support.swapLimit, "WARNING: No swap limit support"],
    [!v2 && !support.oomKillDisable, "WARNING: No oom kill disable support"],
    [!support.cpuCfs, "WARNING: No cpu cfs quota support"],
    [!support.cpuCfs, "WARNING: No cpu cfs period support"],
    [!support.cpuShares, "WARNING: No cpu shares support"],
    [!support.cpuset, "WARNING: No cpuset support"],
    [v2 && !support.blkioWeight, "WARNING: No io.weight support"],
    [!ipForward, "WARNING: IPv4 forwarding is disabled"],
    [exists("/proc/sys/net/bridge") && !bridgeNf, "WARNING: bridge-nf-call-iptables is disabled"],
    [exists("/proc/sys/net/bridge") && !bridgeNf6, "WARNING: bridge-nf-call-ip6tables is disabled"],
  ].filter(([when]) => when).map(([, text]) => text as string);
  return {
    ID: await engineId(root.path),
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: containers.length - running - paused,
    Images: images,
    Driver: "overlay2",
    DriverStatus: [
      ["Backing Filesystem", backingFilesystem(root.path)],
      ["Supports d_type", "true"],
      ["Native Overlay Diff", "true"],
      ["userxattr", "false"],
    ],
    Plugins: {
      Volume: ["local"],
      Network: ["bridge", "host", "null"],
      Authorization: null,
      Log: ["json-file", "local"],
    },
    MemoryLimit: support.memoryLimit,
    SwapLimit: support.swapLimit,
    KernelMemory: kernelMemory,
    KernelMemoryTCP: kernelMemoryTcp,
    CpuCfsPeriod: support.cpuCfs,
    CpuCfsQuota: support.cpuCfs,
    CPUShares: support.cpuShares,
    CPUSet: support.cpuset,
    PidsLimit: support.pidsLimit,
    IPv4Forwarding: ipForward,
    BridgeNfIptables: bridgeNf,
    BridgeNfIp6tables: bridgeNf6,
    Debug: false,
    NFd: [...Deno.readDirSync("/proc/self/fd")].length,
    OomKillDisable: support.oomKillDisable,
    NGoroutines: 0,
    SystemTime: nanoTimestamp(),
    LoggingDriver: "json-file",
    CgroupDriver: "cgroupfs",
    CgroupVersion: v2 ? "2" : "1",
    NEventsListener: 0,
    KernelVersion: Deno.osRelease(),
    OperatingSystem: os.name,
    OSVersion: os.version,
    OSType: "linux",
    Architecture: readOr("/proc/sys/kernel/arch").trim() || Deno.build.arch,
    IndexServerAddress: "https://index.docker.io/v1/",
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      // docker's split: CIDRs here, a registry named by host (and port) an insecure IndexConfig
      InsecureRegistryCIDRs: ["127.0.0.0/8", ...opts.insecureRegistries.filter((r) => r.includes("/"))],
      IndexConfigs: indexConfigs(opts.insecureRegistries.filter((r) => !r.includes("/"))),
      Mirrors: [],
    },
    NCPU: navigator.hardwareConcurrency,
    MemTotal: memTotal,
    GenericResources: null,
    DockerRootDir: root.path,
    HttpProxy: env("HTTP_PROXY"),
    HttpsProxy: env("HTTPS_PROXY"),
    NoProxy: env("NO_PROXY"),
    Name: Deno.hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: VERSION,
    Runtimes: { skiff: { path: opts.executable } },
    DefaultRuntime: "skiff",
    Swarm: {
      NodeID: "",
      NodeAddr: "",
      LocalNodeState: "inactive",
      ControlAvailable: false,
      Error: "",
      RemoteManagers: null,
    },
    // detached containers outlive their supervisor and are adopted by the next one (MONITOR.md)
    LiveRestoreEnabled: true,
    Isolation: "",
    InitBinary: "skiff-init",
    ContainerdCommit: { ID: "", Expected: "" },
    RuncCommit: { ID: "", Expected: "" },
    InitCommit: { ID: "", Expected: "" },
    SecurityOptions: ["name=seccomp,profile=default", ...(v2 ? ["name=cgroupns"] : [])],
    Warnings: warnings.length ? warnings : null,
  };
}

export type SystemInfo = Awaited<ReturnType<typeof systemInfo>>;
