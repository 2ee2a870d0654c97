// What a container holds on the host, as one list: every path that ends a container's run (the
// foreground run's finish, the supervisor's, a failed start) or removes it (rm, rm -f, --rm, the
// removal of a broken or half-created container, system check --repair) releases through
// `releaseExitResources` and `releaseAndRemove`, so a resource added here (networking: a veth, an address, NAT rules, DNS
// entries) is released on every one of those paths by construction.
//
// Setup happens where each resource is born: the volumes when the container is created
// (create_run.ts prepareMounts), the cgroup when it starts (`startCgroup`), the rootfs mounts in
// the init stage's own mount namespace (gone with it; what a crashed runtime left below the
// container's directory is detached on removal).

import { MNT_DETACH, umount2 } from "../../ffi/libc.ts";
import { cgroupLimitsOf, createCgroup, openCgroup } from "../cgroups/mod.ts";
import { readMountInfo } from "../mountinfo.ts";
import { containerLockPath, entombContainerDir } from "../state/containers.ts";
import { removeTree, withLockSync } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import { plainNetworkNamespaces } from "../runtime/spec.ts";
import { releaseNamespaces } from "./namespaces.ts";
import type { ContainerRecord } from "../state/types.ts";

/**
 * When a resource is released: "exit" once the container's process is gone (a start makes it
 * anew), "remove" with the container, before its directory goes (under its lock), "removed" after
 * the directory is gone. A removal runs all three in that order.
 */
export type ReleasePhase = "exit" | "remove" | "removed";

export interface ReleaseContext {
  root: StateRoot;
  id: string;
  /** Absent for a container whose record is unreadable or was never written. */
  record?: ContainerRecord;
  /** Where its cgroup is when there is no record yet (a run's request); neither: it is looked for. */
  cgroupPlacement?: { CgroupParent?: string };
  /** rm -v and --rm: the container's anonymous volumes go with it. */
  removeVolumes?: boolean;
}

export interface ContainerResource {
  name: string;
  releasedAt: ReleasePhase;
  /** Idempotent: a resource already gone is no error. Synchronous except in "removed". */
  release(ctx: ReleaseContext): void | Promise<void>;
}

/** Lazily unmounts anything left mounted below the container's directory (a crashed runtime). */
function detachMountsUnder(dir: string): void {
  let mounts;
  try {
    mounts = readMountInfo();
  } catch {
    return;
  }
  const points = mounts.map((m) => m.mountPoint).filter((m) => m === dir || m.startsWith(dir + "/"));
  for (const m of points.sort((a, b) => b.length - a.length)) {
    try {
      umount2(m, MNT_DETACH);
    } catch { /* already gone */ }
  }
}

/** The network's releases (network/nat.ts, bridge.ts: ~130 KB of modules): resources.ts sets them. */
export interface NetworkRelease {
  unpublishPorts(root: StateRoot, id: string): void;
  releaseEndpoint(root: StateRoot, id: string): void;
}
let networkRelease: NetworkRelease | undefined;

export function registerNetworkRelease(release: NetworkRelease): void {
  networkRelease = release;
}

/**
 * The network's releases, or undefined for a container whose record says it never had an endpoint
 * of its own (--network none or host): a foreground `run` of one never loads the network's code.
 */
function networkFor(ctx: ReleaseContext): NetworkRelease | undefined {
  const mode = ctx.record?.HostConfig?.NetworkMode;
  if (mode !== undefined && plainNetworkNamespaces(mode)) return undefined;
  if (!networkRelease) {
    throw new Error("internal: the network's release code is not loaded (import engine/resources.ts)");
  }
  return networkRelease;
}

/** The list, in release order. */
export const CONTAINER_RESOURCES: readonly ContainerResource[] = [
  {
    name: "cgroup",
    releasedAt: "exit",
    // kills whatever is left in it (thawed first) and removes it; at the recorded --cgroup-parent
    // (without a record: where it is found)
    release: ({ root, id, record, cgroupPlacement }) =>
      openCgroup(root, id, record?.HostConfig ?? cgroupPlacement).destroy(),
  },
  {
    // the NAT rules of its published ports and their host ports (network/nat.ts), before the
    // endpoint they lead to goes
    name: "ports",
    releasedAt: "exit",
    release: (ctx) => networkFor(ctx)?.unpublishPorts(ctx.root, ctx.id),
  },
  {
    // the veth pair and the address lease of the bridge endpoint, the network namespace fd held
    // (network/bridge.ts); a stopped container has no address, as in docker
    name: "network",
    releasedAt: "exit",
    release: (ctx) => networkFor(ctx)?.releaseEndpoint(ctx.root, ctx.id),
  },
  {
    // the init stage mounts in its own namespace; only a crashed runtime leaves mounts on the host,
    // and the directory must not be deleted through one
    name: "mounts",
    releasedAt: "remove",
    release: ({ root, id }) => detachMountsUnder(root.container(id)),
  },
  {
    name: "volumes",
    releasedAt: "removed",
    release: async ({ root, record, removeVolumes }) => {
      if (!removeVolumes || !record?.Mounts?.some((m) => m.Type === "volume")) return;
      const { removeAnonymousVolumes } = await import("../volume/store.ts");
      await removeAnonymousVolumes(root, record);
    },
  },
  {
    // --ipc container:NAME's namespace fd held for the stage, a shareable container's /dev/shm tmpfs
    name: "namespaces",
    releasedAt: "exit",
    release: ({ root, id }) => releaseNamespaces(root, id),
  },
];

/** Runs the synchronous releases of one phase; one that fails does not keep the others held. */
function releaseSync(ctx: ReleaseContext, phase: "exit" | "remove"): void {
  let failure: unknown;
  for (const resource of CONTAINER_RESOURCES.filter((r) => r.releasedAt === phase)) {
    try {
      const pending = resource.release(ctx);
      if (pending instanceof Promise) {
        throw new Error(`resource ${resource.name}: ${phase} release must be synchronous`);
      }
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
}

/** A container's network endpoint alone (a start that failed before its cgroup existed). */
export function releaseNetwork(root: StateRoot, id: string): void {
  const network = networkFor({ root, id });
  try {
    network?.unpublishPorts(root, id);
  } finally {
    network?.releaseEndpoint(root, id);
  }
}

/** What a run's end (or a failed start, or a lost run found by reconcile) releases. */
export function releaseExitResources(ctx: ReleaseContext): void {
  releaseSync(ctx, "exit");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RemovalOptions {
  /** The run that ends here released its "exit" resources already (--rm). */
  exitReleased?: boolean;
  /**
   * Take the container's lock around the directory's removal and remove the lock file after (a
   * recorded container). false: the caller holds the containers lock (a half-created one).
   */
  containerLock?: boolean;
  /** Called once the directory is gone, before the "removed" resources (the destroy event). */
  onRemoved?: () => void;
}

/**
 * Every removal's sequence: the "exit" resources (a monitor still tearing the cgroup down makes it
 * answer ENODEV for a moment: retried once), then under the container's lock the "remove" ones and
 * the directory, then the "removed" ones (volumes).
 */
export async function releaseAndRemove(ctx: ReleaseContext, opts: RemovalOptions = {}): Promise<void> {
  if (!opts.exitReleased) {
    try {
      releaseSync(ctx, "exit");
    } catch {
      await sleep(100);
      releaseSync(ctx, "exit");
    }
  }
  const { root, id } = ctx;
  const removeDir = () => {
    releaseSync(ctx, "remove");
    return entombContainerDir(root, id);
  };
  let tomb;
  if (opts.containerLock === false) tomb = removeDir();
  else {
    const lock = containerLockPath(root, id);
    tomb = withLockSync(lock, removeDir);
    try {
      Deno.removeSync(lock);
    } catch { /* another skiff removed it */ }
  }
  // out of every listing already; its files go after the lock is released
  if (tomb) await removeTree(tomb);
  opts.onRemoved?.();
  for (const resource of CONTAINER_RESOURCES.filter((r) => r.releasedAt === "removed")) {
    await resource.release(ctx);
  }
}

/** What launch and finish (process.ts) need of a container's cgroup (lib/cgroups/mod.ts's ContainerCgroup). */
export interface CgroupHandle {
  addProcess(pid: number): void;
  /** addProcess on Deno's blocking pool (see lib/cgroups): lets the caller go on meanwhile. */
  addProcessAsync?(pid: number): Promise<void>;
  oomKilled(): boolean;
  /** May load what it releases with (the foreground run loads resources.ts only after its go). */
  destroy(): void | Promise<void>;
}

/**
 * The cgroup of a starting container, with its limits; its `destroy` releases the container's
 * "exit" resources (the runtime calls it when the run ends or fails to start).
 */
export function startCgroup(root: StateRoot, record: ContainerRecord): CgroupHandle {
  const id = record.Id;
  const cgroup = createCgroup(root, id, cgroupLimitsOf(record.HostConfig), record.HostConfig);
  return {
    addProcess: (pid) => cgroup.addProcess(pid),
    addProcessAsync: (pid) => cgroup.addProcessAsync(pid),
    oomKilled: () => cgroup.oomKilled(),
    destroy: () => releaseExitResources({ root, id, record }),
  };
}
