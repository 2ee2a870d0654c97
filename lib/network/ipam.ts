// Addresses of the default bridge network: the pure part (CIDR arithmetic, the lowest free address,
// docker's MAC from the address) and the lease file `<root>/network/bridge.json`, changed only under
// the flock `<root>/locks/network.lock` so concurrent skiff commands never hand out one address twice.
//
// A lease names its container and the skiff process that holds it (pid + start time). It is
// released with the container's endpoint (resources.ts, every end of a run); a lease whose holder
// died (kill -9 of skiff) is kept only while its container still runs (a detached container
// outlives its supervisor), else the next allocation, `ps` or reconcile sweeps it and its veth.

import { SkiffError } from "../errors.ts";
import { join } from "../path.ts";
import { withLockSync, writeFileAtomic } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";

export const ipToInt = (ip: string) => ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
export const intToIp = (n: number) =>
  [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export interface Subnet {
  /** Network address / prefix, e.g. "10.89.0.0/16". */
  cidr: string;
  network: number;
  prefixLen: number;
  gateway: string;
}

/**
 * dockerd's `bip`: the bridge's own address with the prefix ("10.89.0.1/16"); a bare network
 * ("10.89.0.0/16") takes its first address as the gateway. Prefixes /8 to /30 (room for a gateway
 * and a container).
 */
export function parseBip(bip: string): Subnet {
  const [ip, len, ...rest] = bip.split("/");
  const m = IPV4.exec(ip ?? "");
  const prefixLen = Number(len);
  if (
    !m || rest.length || !/^\d+$/.test(len ?? "") || prefixLen < 8 || prefixLen > 30 ||
    m.slice(1).some((o) => Number(o) > 255)
  ) {
    throw new SkiffError(
      `invalid bip ${JSON.stringify(bip)}: want an IPv4 address with a prefix of 8 to 30, e.g. 10.89.0.1/16`,
    );
  }
  const size = 2 ** (32 - prefixLen);
  const address = ipToInt(ip);
  const network = address - (address % size);
  const gateway = address === network ? network + 1 : address;
  if (gateway === network + size - 1) throw new SkiffError(`invalid bip ${bip}: the broadcast address`);
  return { cidr: `${intToIp(network)}/${prefixLen}`, network, prefixLen, gateway: intToIp(gateway) };
}

/** skiff's default bridge subnet: not docker's 172.17.0.0/16, nor podman's 10.88.0.0/16. */
export const DEFAULT_BIP = "10.89.0.1/16";

/** `<root>/daemon.json` (dockerd's settings file: "bip", "bridge"), {} when there is none. */
export function daemonSettings(
  root: StateRoot,
): { settings: { bip?: unknown; bridge?: unknown }; path: string } {
  const path = join(root.path, "daemon.json");
  try {
    return { settings: JSON.parse(Deno.readTextFileSync(path)) ?? {}, path };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new SkiffError(`${path}: ${(e as Error).message}`);
    return { settings: {}, path };
  }
}

/** The default bridge's subnet: daemon.json's "bip", else skiff's. */
export function bridgeSubnet(settings: { bip?: unknown }): Subnet {
  return parseBip(typeof settings.bip === "string" ? settings.bip : DEFAULT_BIP);
}

/**
 * --add-host NAME:host-gateway, as docker's daemon resolves it when it writes /etc/hosts: the
 * default bridge's own address (docker's default host-gateway-ip); other entries as they are.
 */
export function resolveHostGateway(root: StateRoot, extraHosts: string[]): string[] {
  if (!extraHosts.some((e) => e.endsWith(":host-gateway"))) return extraHosts;
  let gateway: string;
  try {
    gateway = bridgeSubnet(daemonSettings(root).settings).gateway;
  } catch {
    // a broken daemon.json: the bridge refuses to start, but no /etc/hosts write fails for it
    gateway = parseBip(DEFAULT_BIP).gateway;
  }
  return extraHosts.map((e) =>
    e.endsWith(":host-gateway") ? `${e.slice(0, -"host-gateway".length)}${gateway}` : e
  );
}

/**
 * The first address from `after` on (wrapping around) that is neither the network, the gateway, the
 * broadcast nor used. Sequential, as docker's allocator: an address released a moment ago is not
 * handed out again at once (the kernel may still be tearing down the namespace that had it).
 */
export function nextFree(subnet: Subnet, used: ReadonlySet<string>, after?: string): string | undefined {
  const first = subnet.network + 1, last = subnet.network + 2 ** (32 - subnet.prefixLen) - 2;
  const count = last - first + 1;
  const previous = after === undefined ? first - 1 : ipToInt(after);
  const start = previous >= first && previous <= last ? previous + 1 : first;
  for (let i = 0; i < count; i++) {
    const ip = intToIp(first + ((start - first + i) % count));
    if (ip !== subnet.gateway && !used.has(ip)) return ip;
  }
  return undefined;
}

/** docker's MAC for an IPv4 endpoint: 02:42 and the address's four bytes. */
export function macForIp(ip: string): string {
  return ["02", "42", ...ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
}

/**
 * A host end's name: veth, 7 hex of the container id, 4 random hex (IFNAMSIZ leaves 15 characters).
 * A new name at each start: the last run's pair may still be on its way out with its namespace.
 */
export const vethName = (containerId: string, random = randomHex(2)) =>
  `veth${containerId.slice(0, 7)}${random}`;

export interface Lease {
  Container: string;
  /** The skiff process that made it, and its start time (a reused pid is not the holder). */
  Holder: number;
  HolderStart?: number;
  /** The host end of its veth pair (made after the lease, so a crash leaves a lease that names it). */
  Veth?: string;
  /** Containers started with `--network container:` this one: they share its namespace. */
  Joiners?: string[];
}

/** A user-defined network (`network create`): what docker's `network inspect` shows of it. */
export interface UserNetwork {
  Name: string;
  Created: string;
  /** "a.b.c.d/len" */
  Subnet: string;
  Gateway: string;
  Internal: boolean;
  /** --attachable (docker keeps it for swarm; a local network takes any container either way) */
  Attachable?: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
}

/**
 * One network's state file: `<root>/network/bridge.json` for the default bridge, `<id>.json` for a
 * user-defined network (which then also holds its definition).
 */
export interface BridgeState {
  /** The network's id (docker's NetworkID), made once. */
  Id: string;
  Leases: Record<string, Lease>;
  /** The address handed out last: the next allocation starts after it. */
  Last?: string;
  Network?: UserNetwork;
}

const randomHex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
export { randomHex };

export const networkDir = (root: StateRoot) => join(root.path, "network");
export const bridgeStatePath = (root: StateRoot) => join(networkDir(root), "bridge.json");
export const userNetworkPath = (root: StateRoot, id: string) => join(networkDir(root), `${id}.json`);

/** A state file's content, or undefined when it is absent or unreadable. */
export function readStateFile(file: string): BridgeState | undefined {
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(file));
    if (
      typeof parsed?.Id === "string" && /^[0-9a-f]{64}$/.test(parsed.Id) && parsed.Leases &&
      typeof parsed.Leases === "object"
    ) {
      return parsed as BridgeState;
    }
  } catch { /* absent or unreadable */ }
  return undefined;
}

/** Every network state file of the root (the default bridge's first). */
export function stateFiles(root: StateRoot): string[] {
  const files: string[] = [];
  try {
    for (const e of Deno.readDirSync(networkDir(root))) {
      if (e.isFile && /^(bridge|[0-9a-f]{64})\.json$/.test(e.name)) {
        files.push(join(networkDir(root), e.name));
      }
    }
  } catch { /* no network ever made */ }
  return files.sort((a, b) => Number(!a.endsWith("/bridge.json")) - Number(!b.endsWith("/bridge.json")));
}

/** Every user-defined network's state. */
export function userNetworks(root: StateRoot): BridgeState[] {
  return stateFiles(root).map(readStateFile).filter((s): s is BridgeState => !!s?.Network);
}

/** A user network's state by name, id or unique id prefix; undefined if none. */
export function userNetworkState(root: StateRoot, ref: string): BridgeState | undefined {
  const all = userNetworks(root);
  const byId = all.filter((s) => s.Id.startsWith(ref));
  return all.find((s) => s.Network!.Name === ref) ?? (ref && byId.length === 1 ? byId[0] : undefined);
}

function writeState(root: StateRoot, file: string, state: BridgeState): void {
  Deno.mkdirSync(networkDir(root), { recursive: true });
  // not synced: after a crash every lease is stale anyway (its holder is gone); a user network's
  // definition is synced when it is created (network.ts)
  writeFileAtomic(file, JSON.stringify(state), 0o644, false);
}

/**
 * Reads and changes a network's state file under the network lock; `change` returns what to give
 * back. A default bridge file that does not exist yet is made (its id must not change).
 */
export function withNetworkState<T>(root: StateRoot, file: string, change: (state: BridgeState) => T): T {
  return withLockSync(root.lock("network"), () => {
    const found = readStateFile(file);
    const state = found ?? { Id: randomHex(32), Leases: {} };
    const before = found ? JSON.stringify(state) : "";
    const result = change(state);
    if (JSON.stringify(state) !== before) writeState(root, file, state);
    return result;
  });
}

/** withNetworkState of the default bridge. */
export function withBridgeState<T>(root: StateRoot, change: (state: BridgeState) => T): T {
  return withNetworkState(root, bridgeStatePath(root), change);
}

/** The default bridge's id, "" before the network was first used (inspect reads; it never writes). */
export function bridgeNetworkId(root: StateRoot): string {
  return readStateFile(bridgeStatePath(root))?.Id ?? "";
}

/** The default bridge's id, made now when it has none yet (so it never changes after). */
export function ensureBridgeNetworkId(root: StateRoot): string {
  return readStateFile(bridgeStatePath(root))?.Id ?? withBridgeState(root, (s) => s.Id);
}

/** The leases' containers (for the leak checks and the sweep). */
export function leasedContainers(state: BridgeState): string[] {
  return Object.values(state.Leases).map((l) => l.Container);
}

/** Takes the next free address for a container (dropping a lease it held already). */
export function lease(state: BridgeState, subnet: Subnet, lease: Lease, wanted?: string): string {
  releaseLease(state, lease.Container);
  if (wanted !== undefined) {
    // --ip: docker's IPAM errors
    const n = ipToInt(wanted);
    const inside = n > subnet.network && n < subnet.network + 2 ** (32 - subnet.prefixLen) - 1;
    if (!inside) {
      throw new SkiffError(
        `Invalid address ${wanted}: It does not belong to any of this network's subnets`,
        125,
        { kind: "invalid-argument" },
      );
    }
    if (wanted === subnet.gateway || state.Leases[wanted]) {
      throw new SkiffError(`Address already in use`, 125, { kind: "conflict" });
    }
    state.Leases[wanted] = lease;
    return wanted;
  }
  const ip = nextFree(subnet, new Set(Object.keys(state.Leases)), state.Last);
  if (!ip) throw new SkiffError(`no available IPv4 address on the bridge network ${subnet.cidr}`);
  state.Leases[ip] = lease;
  state.Last = ip;
  return ip;
}

/** Drops every lease of a container; returns the dropped ones. */
export function releaseLease(state: BridgeState, containerId: string): Lease[] {
  const dropped: Lease[] = [];
  for (const [ip, l] of Object.entries(state.Leases)) {
    if (l.Container === containerId) {
      delete state.Leases[ip];
      dropped.push(l);
    }
  }
  return dropped;
}

/** Notes that `joiner` shares the namespace of `containerId`'s endpoint; false when it has none. */
export function addJoiner(state: BridgeState, containerId: string, joiner: string): boolean {
  const held = Object.values(state.Leases).find((l) => l.Container === containerId);
  if (!held) return false;
  held.Joiners = [...new Set([...(held.Joiners ?? []), joiner])];
  return true;
}
