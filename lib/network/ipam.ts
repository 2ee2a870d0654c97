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

/** The host end's name: veth + 11 hex of the container id (IFNAMSIZ leaves 15 characters). */
export const vethName = (containerId: string) => `veth${containerId.slice(0, 11)}`;

export interface Lease {
  Container: string;
  /** The skiff process that made it, and its start time (a reused pid is not the holder). */
  Holder: number;
  HolderStart?: number;
  /** Containers started with `--network container:` this one: they share its namespace. */
  Joiners?: string[];
}

export interface BridgeState {
  /** The network's id (docker's NetworkID), made once per state root. */
  Id: string;
  Leases: Record<string, Lease>;
  /** The address handed out last: the next allocation starts after it. */
  Last?: string;
}

const randomHex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
export { randomHex };

export const bridgeStatePath = (root: StateRoot) => join(root.path, "network", "bridge.json");

function readState(root: StateRoot): BridgeState {
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(bridgeStatePath(root)));
    if (
      typeof parsed?.Id === "string" && /^[0-9a-f]{64}$/.test(parsed.Id) && parsed.Leases &&
      typeof parsed.Leases === "object"
    ) {
      return parsed as BridgeState;
    }
  } catch { /* absent or unreadable: a fresh one (the holders' veths are swept by name) */ }
  return { Id: randomHex(32), Leases: {} };
}

function writeState(root: StateRoot, state: BridgeState): void {
  Deno.mkdirSync(join(root.path, "network"), { recursive: true });
  // not synced: after a crash every lease is stale anyway (its holder is gone)
  writeFileAtomic(bridgeStatePath(root), JSON.stringify(state), 0o644, false);
}

/** Reads and changes the lease file under the network lock; `change` returns what to give back. */
export function withBridgeState<T>(root: StateRoot, change: (state: BridgeState) => T): T {
  return withLockSync(root.lock("network"), () => {
    const state = readState(root);
    const before = JSON.stringify(state);
    const result = change(state);
    if (JSON.stringify(state) !== before) writeState(root, state);
    return result;
  });
}

/** The network id without taking the lock (inspect). */
export function bridgeNetworkId(root: StateRoot): string {
  try {
    return (JSON.parse(Deno.readTextFileSync(bridgeStatePath(root))) as BridgeState).Id ?? "";
  } catch {
    return "";
  }
}

/** The leases' containers (for the leak checks and the sweep). */
export function leasedContainers(state: BridgeState): string[] {
  return Object.values(state.Leases).map((l) => l.Container);
}

/** Takes the next free address for a container (dropping a lease it held already). */
export function lease(state: BridgeState, subnet: Subnet, lease: Lease): string {
  releaseLease(state, lease.Container);
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
