// --ipc, --pid, --uts, --userns and --cgroupns: docker's namespace modes, checked with docker's
// wording (20.10: the CLI's for --pid/--uts/--userns/--cgroupns, the daemon's for --ipc), kept in
// HostConfig as docker keeps them, and turned into what the init stage does (pure: no kernel here).
//
//   --ipc       "" | private | shareable | none | host | container:NAME   (default private)
//   --pid       "" | host | container:NAME                              (default "": a new one)
//   --uts       "" | host                                               (host: no UTS namespace)
//   --userns    "" | host                                               (skiff never remaps users)
//   --cgroupns  "" | host | private          (default: host on cgroup v1, private on v2, as dockerd)

import { ClientCheckError, SkiffError } from "../errors.ts";
import type { NamespaceSpec } from "./spec.ts";

/** HostConfig's fields for the namespace modes, as docker names them. */
export interface NamespaceModes {
  IpcMode: string;
  PidMode: string;
  UTSMode: string;
  UsernsMode: string;
  CgroupnsMode: string;
}

/** The flags' raw values (absent: not given). */
export interface NamespaceFlags {
  ipc?: string;
  pid?: string;
  uts?: string;
  userns?: string;
  cgroupns?: string;
}

const mode = (value: string) => value.split(":")[0];

/** NAME of "container:NAME", else undefined. */
export function containerOfMode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const colon = value.indexOf(":");
  return colon > 0 && value.slice(0, colon) === "container" ? value.slice(colon + 1) : undefined;
}

/**
 * The flags checked as docker 20.10 checks them; "" where not given (CgroupnsMode is filled in at
 * create, from the host). Throws docker's error (exit 125).
 */
export function parseNamespaceFlags(flags: NamespaceFlags): NamespaceModes {
  const pid = flags.pid ?? "";
  const pidParts = pid.split(":");
  if (
    !(pid === "" || mode(pid) === "host" ||
      (pidParts[0] === "container" && pidParts.length === 2 && pidParts[1] !== ""))
  ) {
    throw new ClientCheckError("--pid: invalid PID mode");
  }
  const uts = flags.uts ?? "";
  if (mode(uts) !== "" && mode(uts) !== "host") throw new ClientCheckError("--uts: invalid UTS mode");
  const userns = flags.userns ?? "";
  if (mode(userns) !== "" && mode(userns) !== "host") {
    throw new ClientCheckError("--userns: invalid USER mode");
  }
  const cgroupns = flags.cgroupns ?? "";
  if (!["", "host", "private"].includes(cgroupns)) {
    throw new ClientCheckError("--cgroupns: invalid CGROUP mode");
  }
  const ipc = flags.ipc ?? "";
  if (!["", "private", "shareable", "none", "host"].includes(ipc) && containerOfMode(ipc) === undefined) {
    throw new SkiffError(`Invalid IPC mode: ${ipc}`); // the daemon's, checked at create
  }
  return {
    IpcMode: ipc || "private",
    PidMode: pid,
    UTSMode: uts,
    UsernsMode: userns,
    CgroupnsMode: cgroupns,
  };
}

/** docker's default cgroup namespace mode: private on a unified (v2) host, host on v1. */
export function defaultCgroupnsMode(unifiedHost: boolean): "host" | "private" {
  return unifiedHost ? "private" : "host";
}

/** How the container's /dev/shm is made (InitSpec.shm): its own tmpfs unless said otherwise. */
export type ShmPlan = { kind: "own" } | { kind: "none" } | { kind: "bind"; source: string };

/**
 * The init stage's namespaces from the network's (engine/network.ts) and the modes: a host mode
 * drops the namespace, a joined IPC namespace is named by `ipcPath` (an fd the launcher holds), a
 * private cgroup namespace is added (the stage makes it once it is in its cgroups).
 */
export function applyNamespaceModes(
  namespaces: readonly NamespaceSpec[],
  modes: Partial<NamespaceModes>,
  ipcPath?: string,
): NamespaceSpec[] {
  const out: NamespaceSpec[] = [];
  for (const ns of namespaces) {
    if (ns.type === "uts" && modes.UTSMode === "host") continue;
    if (ns.type === "ipc" && modes.IpcMode === "host") continue;
    if (ns.type === "ipc" && containerOfMode(modes.IpcMode) !== undefined) {
      out.push({ type: "ipc", path: ipcPath });
      continue;
    }
    if (ns.type === "cgroup") continue; // decided below
    out.push({ ...ns });
  }
  if (modes.CgroupnsMode === "private") out.push({ type: "cgroup" });
  return out;
}

/** /dev/shm by IPC mode: none has none, host binds the host's, shareable and its joiners a host-side tmpfs. */
export function shmPlan(ipcMode: string | undefined, ownShmDir: string, donorShmDir?: string): ShmPlan {
  if (ipcMode === "none") return { kind: "none" };
  if (ipcMode === "host") return { kind: "bind", source: "/dev/shm" };
  if (ipcMode === "shareable") return { kind: "bind", source: ownShmDir };
  if (containerOfMode(ipcMode) !== undefined && donorShmDir) return { kind: "bind", source: donorShmDir };
  return { kind: "own" };
}
