// User-defined networks (`network create/ls/inspect/rm/prune`): each is a bridge of its own
// (br-<12 hex of its id>, made on its first container's start) with a subnet of its own, kept in
// `<root>/network/<id>.json` beside its address leases. Their containers resolve each other by name
// (names.ts); the built-in networks are bridge, host and none.

import { pruneFilter as pruneFilterOf } from "../format/filters.ts";
import { NotFoundError, SkiffError } from "../errors.ts";
import { withLockSync, writeFileAtomic } from "../state/fsutil.ts";
import { listContainers } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import {
  type BridgeState,
  bridgeStatePath,
  ensureBridgeNetworkId,
  intToIp,
  ipToInt,
  networkDir,
  parseBip,
  randomHex,
  readStateFile,
  userNetworkPath,
  userNetworks,
  userNetworkState,
} from "./ipam.ts";
// here for their callers: they read state files only (ipam.ts), and what only reads them (a create)
// must not load the bridge, netlink and NAT code this module does
export { userNetworks, userNetworkState };
import { bridgeConfig, cidrsOverlap, DEFAULT_BRIDGE, sweepDeadEndpoints, userBridgeName } from "./bridge.ts";
import { withRtnl } from "./rtnl.ts";
import { removeInternalForward, removeNetworkNat } from "./nat.ts";
import * as nl from "./netlink.ts";

export const BUILTIN_NETWORKS = ["bridge", "host", "none"] as const;

/** A network as `network ls/inspect` shows it. */
export interface NetworkView {
  Name: string;
  Id: string;
  Created: string;
  Scope: "local";
  Driver: "bridge" | "host" | "null";
  Subnet?: string;
  Gateway?: string;
  Internal: boolean;
  Attachable: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  builtin: boolean;
}

/** A built-in network's id: the default bridge's own, host's and none's derived from it (stable). */
async function builtinId(root: StateRoot, name: string): Promise<string> {
  const bridgeId = ensureBridgeNetworkId(root);
  if (name === "bridge") return bridgeId;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${name}:${bridgeId}`));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every network, the built-in ones first. */
export async function listNetworks(root: StateRoot): Promise<NetworkView[]> {
  const out: NetworkView[] = [];
  const created = (() => {
    try {
      return Deno.statSync(bridgeStatePath(root)).mtime?.toISOString() ?? new Date().toISOString();
    } catch {
      return new Date().toISOString();
    }
  })();
  for (const name of BUILTIN_NETWORKS) {
    const Id = await builtinId(root, name);
    const bridge = name === "bridge" ? bridgeConfig(root) : undefined;
    out.push({
      Name: name,
      Id,
      Created: created,
      Scope: "local",
      Driver: name === "none" ? "null" : name === "host" ? "host" : "bridge",
      Subnet: bridge?.subnet.cidr,
      Gateway: bridge?.subnet.gateway,
      Internal: false,
      Attachable: false,
      Labels: {},
      Options: bridge
        ? {
          "com.docker.network.bridge.default_bridge": "true",
          "com.docker.network.bridge.enable_ip_masquerade": "true",
          "com.docker.network.bridge.name": bridge.name ?? DEFAULT_BRIDGE,
        }
        : {},
      builtin: true,
    });
  }
  for (const s of userNetworks(root)) {
    const n = s.Network!;
    out.push({
      Name: n.Name,
      Id: s.Id,
      Created: n.Created,
      Scope: "local",
      Driver: "bridge",
      Subnet: n.Subnet,
      Gateway: n.Gateway,
      Internal: n.Internal,
      Attachable: n.Attachable ?? false,
      Labels: n.Labels,
      Options: n.Options,
      builtin: false,
    });
  }
  return out;
}

/** A network by name, full id or unique id prefix (docker's lookup); NotFoundError else. */
export async function findNetwork(root: StateRoot, ref: string): Promise<NetworkView> {
  const all = await listNetworks(root);
  const byName = all.find((n) => n.Name === ref);
  if (byName) return byName;
  const byId = all.filter((n) => n.Id.startsWith(ref));
  if (ref && byId.length === 1) return byId[0];
  throw new NotFoundError(`network ${ref} not found`);
}

export interface CreateNetworkOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  attachable?: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

/** Host routes of the main table, for the subnet checks. */
function hostRoutes(): string[] {
  return withRtnl((rtnl) =>
    rtnl.request("dump routes", (seq) => nl.dumpRoutes(seq)).map(nl.parseRoute)
      .filter((r) => r.table === nl.MAIN_TABLE && !r.dst.endsWith("/0")).map((r) => r.dst)
  );
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `network create`: checks as docker does, picks a free /16 of 10.90-10.254 when no subnet is given. */
export function createNetwork(root: StateRoot, opts: CreateNetworkOptions): string {
  if (!NAME_RE.test(opts.name)) {
    throw new SkiffError(`invalid network name "${opts.name}": must match ${NAME_RE.source}`, 1);
  }
  if ((BUILTIN_NETWORKS as readonly string[]).includes(opts.name)) {
    throw new SkiffError(`operation is not permitted on predefined ${opts.name} network `, 1);
  }
  return withLockSync(root.lock("network"), () => {
    const existing = userNetworks(root);
    if (existing.some((s) => s.Network!.Name === opts.name)) {
      throw new SkiffError(`network with name ${opts.name} already exists`, 1, { kind: "conflict" });
    }
    const taken = [
      bridgeConfig(root).subnet.cidr,
      ...existing.map((s) => s.Network!.Subnet),
    ];
    const routes = hostRoutes().filter((r) => !existing.some((s) => s.Network!.Subnet === r));
    let subnet: string, gateway: string;
    if (opts.subnet) {
      const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(opts.subnet);
      let parsed;
      try {
        parsed = m ? parseBip(`${m[1]}/${m[2]}`) : undefined;
      } catch { /* below */ }
      if (!parsed || intToIp(parsed.network) !== m![1]) {
        throw new SkiffError(
          `invalid subnet ${opts.subnet}: want a network address with a prefix of 8 to 30`,
          1,
        );
      }
      subnet = parsed.cidr;
      if (taken.some((t) => cidrsOverlap(t, subnet))) {
        throw new SkiffError("invalid pool request: Pool overlaps with other one on this address space", 1, {
          kind: "conflict",
        });
      }
      const route = routes.find((r) => cidrsOverlap(r, subnet));
      if (route) {
        throw new SkiffError(`subnet ${subnet} overlaps the host's route to ${route}`, 1, {
          kind: "conflict",
        });
      }
      gateway = parsed.gateway;
      if (opts.gateway) {
        const g = ipToInt(opts.gateway);
        const size = 2 ** (32 - parsed.prefixLen);
        if (
          !/^\d+\.\d+\.\d+\.\d+$/.test(opts.gateway) || g <= parsed.network || g >= parsed.network + size - 1
        ) {
          throw new SkiffError(`no matching subnet for gateway ${opts.gateway}`, 1);
        }
        gateway = opts.gateway;
      }
    } else {
      if (opts.gateway) throw new SkiffError("every ip-range or gateway must have a corresponding subnet", 1);
      const free = Array.from({ length: 165 }, (_, i) => `10.${90 + i}.0.0/16`)
        .find((c) => !taken.some((t) => cidrsOverlap(t, c)) && !routes.some((r) => cidrsOverlap(r, c)));
      if (!free) {
        throw new SkiffError(
          "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
          1,
        );
      }
      subnet = free;
      gateway = parseBip(free).gateway;
    }
    const id = randomHex(32);
    const state: BridgeState = {
      Id: id,
      Leases: {},
      Network: {
        Name: opts.name,
        Created: new Date().toISOString(),
        Subnet: subnet,
        Gateway: gateway,
        Internal: opts.internal ?? false,
        ...(opts.attachable ? { Attachable: true } : {}),
        Labels: opts.labels ?? {},
        Options: opts.options ?? {},
      },
    };
    Deno.mkdirSync(networkDir(root), { recursive: true });
    writeFileAtomic(userNetworkPath(root, id), JSON.stringify(state));
    return id;
  });
}

/** Containers (records) that name a network in their NetworkMode. */
function containersOn(root: StateRoot, view: NetworkView): string[] {
  return listContainers(root).filter((c) =>
    c.HostConfig.NetworkMode === view.Name || c.HostConfig.NetworkMode === view.Id ||
    c.ConnectedNetworks?.includes(view.Name)
  )
    .map((c) => c.Id);
}

/** `network rm`: refused while containers run on it (docker's "active endpoints"); its bridge goes too. */
export async function removeNetwork(root: StateRoot, ref: string): Promise<void> {
  const view = await findNetwork(root, ref);
  if (view.builtin) throw new SkiffError(`${view.Name} is a pre-defined network and cannot be removed`, 1);
  sweepDeadEndpoints(root); // leases of runs killed with their skiff are not active endpoints
  withLockSync(root.lock("network"), () => {
    const state = readStateFile(userNetworkPath(root, view.Id));
    if (!state) return;
    if (Object.keys(state.Leases).length) {
      throw new SkiffError(
        `error while removing network: network ${view.Name} id ${view.Id} has active endpoints`,
        1,
        { kind: "conflict" },
      );
    }
    // its NAT (the set entries of its bridge and subnet) before the bridge
    if (state.Network) {
      const network = { bridge: userBridgeName(view.Id), subnet: parseBip(state.Network.Subnet).cidr };
      if (state.Network.Internal) removeInternalForward(network);
      else removeNetworkNat(network);
    }
    withRtnl((rtnl) => rtnl.deleteLink(userBridgeName(view.Id)));
    Deno.removeSync(userNetworkPath(root, view.Id));
  });
}

/** `network prune`: every user network no container uses (and `keep` takes); returns their names. */
export async function pruneNetworks(
  root: StateRoot,
  keep: (n: NetworkView) => boolean = () => true,
): Promise<string[]> {
  const removed: string[] = [];
  for (const view of (await listNetworks(root)).filter((n) => !n.builtin)) {
    if (containersOn(root, view).length || !keep(view)) continue;
    try {
      await removeNetwork(root, view.Id);
      removed.push(view.Name);
    } catch { /* in use meanwhile */ }
  }
  return removed;
}

/** docker's `network inspect` object. */
export function inspectNetwork(root: StateRoot, view: NetworkView): Record<string, unknown> {
  const file = view.Name === "bridge" ? bridgeStatePath(root) : userNetworkPath(root, view.Id);
  const leases = view.builtin && view.Name !== "bridge" ? {} : readStateFile(file)?.Leases ?? {};
  const containers: Record<string, unknown> = {};
  const records = new Map(listContainers(root).map((c) => [c.Id, c]));
  for (const [ip, lease] of Object.entries(leases)) {
    const c = records.get(lease.Container);
    // the endpoint of this network: the primary one, or one of `network connect`
    const ep = c?.ExtraEndpoints?.[view.Name] ??
      (c?.HostConfig.NetworkMode === view.Name ? c.NetworkEndpoint : undefined);
    containers[lease.Container] = {
      Name: c?.Name.slice(1) ?? "",
      EndpointID: ep?.endpointId ?? "",
      MacAddress: ep?.macAddress ?? "",
      IPv4Address: `${ip}/${view.Subnet?.split("/")[1] ?? ""}`,
      IPv6Address: "",
    };
  }
  return {
    Name: view.Name,
    Id: view.Id,
    Created: view.Created,
    Scope: view.Scope,
    Driver: view.Driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: {
      Driver: "default",
      Options: view.builtin ? null : {},
      Config: view.Subnet ? [{ Subnet: view.Subnet, Gateway: view.Gateway }] : [],
    },
    Internal: view.Internal,
    Attachable: view.Attachable,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: containers,
    Options: view.Options,
    Labels: view.Labels,
  };
}

/** The network id a container's NetworkSettings shows for its mode ("" for none known). */
export function networkIdOfMode(root: StateRoot, mode: string): string {
  if (mode === "bridge") return readStateFile(bridgeStatePath(root))?.Id ?? "";
  return userNetworkState(root, mode)?.Id ?? "";
}

/** network prune's --filter (until=, label=, label!=) with docker's words for a bad one. */
export function networkPruneFilter(filters: string[], now = Date.now()): (n: NetworkView) => boolean {
  return pruneFilterOf<NetworkView>(filters, {
    created: (n) => Date.parse(n.Created),
    labels: (n) => n.Labels,
  }, now);
}
