// The bridge networks' executor (the default one and user-defined ones): the bridge itself (made on
// demand, remade when deleted by hand), and one endpoint per running container: a veth pair whose host end is on the bridge and
// whose other end is eth0 in a network namespace made here, with the leased address, docker's MAC,
// the default route via the gateway, and lo up. All through rtnetlink (rtnl.ts), no `ip` binary.
//
// The namespace is made by the launching skiff on its own thread (unshare + setns back, nothing in
// between: ffi withNewNetns), so both netlink sockets are ready without a child process; the init
// stage joins it by path (/proc/<this pid>/fd/<fd>), and this process keeps the fd open until the
// run ends (releaseEndpoint), so the path stays valid however late the stage opens it.
//
// Settings: `<root>/daemon.json`, dockerd's keys: "bip" (the bridge's address and prefix, default
// 10.89.0.1/16) and "bridge" (its name, default skiff0).

import { bridgeSubnet, daemonSettings } from "./ipam.ts";
import { close, inNetns, SysError, withNewNetns } from "../../ffi/mod.ts";
import { SkiffError } from "../errors.ts";
import { join } from "../path.ts";
import { isProcessAlive, processStartTime } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import {
  addJoiner,
  type BridgeState,
  bridgeStatePath,
  ipToInt,
  lease,
  macForIp,
  parseBip,
  randomHex,
  readStateFile,
  releaseLease,
  stateFiles,
  type Subnet,
  userNetworkPath,
  vethName,
  withNetworkState,
} from "./ipam.ts";
import * as nl from "./netlink.ts";
import { endpointMac } from "./mode.ts";
import { refreshNames } from "./names.ts";
import { Rtnl, withRtnl } from "./rtnl.ts";
import { scheduleBridgeGc, withBridgeInUse } from "./gc.ts";

export const DEFAULT_BRIDGE = "skiff0";

/** What a container's endpoint on the bridge is: kept in its record (NetworkEndpoint) while it runs. */
export interface Endpoint {
  bridge: string;
  /** e.g. "10.89.0.0/16" */
  subnet: string;
  gateway: string;
  ipAddress: string;
  prefixLen: number;
  macAddress: string;
  /** The host end of the veth pair. */
  hostInterface: string;
  networkId: string;
  endpointId: string;
  sandboxId: string;
}

export interface BridgeConfig {
  name: string;
  subnet: Subnet;
}

/** The bridge's settings from `<root>/daemon.json` ("bip", "bridge"), else skiff's defaults. */
export function bridgeConfig(root: StateRoot): BridgeConfig {
  const { settings, path } = daemonSettings(root);
  const name = typeof settings.bridge === "string" && settings.bridge ? settings.bridge : DEFAULT_BRIDGE;
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) {
    throw new SkiffError(`${path}: invalid bridge name ${JSON.stringify(name)}`);
  }
  return { name, subnet: bridgeSubnet(settings) };
}

/** Turns IPv4 forwarding on (docker does too: the bridge's traffic must be routed). */
function enableForwarding(): void {
  const path = "/proc/sys/net/ipv4/ip_forward";
  try {
    if (Deno.readTextFileSync(path).trim() !== "1") Deno.writeTextFileSync(path, "1\n");
  } catch { /* a read-only /proc/sys: the bridge still works between containers */ }
}

/** Whether two IPv4 CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [ipA, lenA] = a.split("/"), [ipB, lenB] = b.split("/");
  const len = Math.min(Number(lenA), Number(lenB));
  const block = 2 ** (32 - len);
  return Math.floor(ipToInt(ipA) / block) === Math.floor(ipToInt(ipB) / block);
}

/**
 * Refuses a subnet that overlaps a route of the host's main table through another link (the
 * containers could not reach what lies behind it, and replies to the host would go astray).
 */
function checkHostRoutes(rtnl: Rtnl, config: BridgeConfig): void {
  const routes = rtnl.request("dump routes", (seq) => nl.dumpRoutes(seq)).map(nl.parseRoute);
  // another skiff may have made the bridge (and its route) since we found it missing: its routes
  // are the bridge's own (looked up after the dump, so a route in the dump is never missed)
  const bridge = rtnl.linkIndex(config.name);
  const clash = routes.find((r) =>
    r.table === nl.MAIN_TABLE && !r.dst.endsWith("/0") && r.oif !== bridge &&
    cidrsOverlap(r.dst, config.subnet.cidr)
  );
  if (clash) {
    throw new SkiffError(
      `the subnet ${config.subnet.cidr} of bridge ${config.name} overlaps the host's route to ${clash.dst}: ` +
        (config.name.startsWith("br-")
          ? "remove the network and create it with another subnet"
          : `set another "bip" in the state root's daemon.json`),
      125,
      { kind: "conflict" },
    );
  }
}

/** The bridge's index; made (up, with the gateway's address) when missing. */
export function ensureBridge(rtnl: Rtnl, config: BridgeConfig): number {
  let index = rtnl.linkIndex(config.name);
  if (index === undefined) {
    checkHostRoutes(rtnl, config);
    try {
      rtnl.request(`create bridge ${config.name}`, (seq) => nl.newBridge(seq, config.name));
    } catch (e) {
      if (!(e instanceof SysError && e.code === "EEXIST")) throw e; // another skiff made it meanwhile
    }
    index = rtnl.linkIndex(config.name);
    if (index === undefined) throw new SkiffError(`bridge ${config.name} vanished while it was set up`);
    enableForwarding();
  }
  const { gateway, prefixLen } = config.subnet;
  rtnl.request(
    `address ${gateway}/${prefixLen} on ${config.name}`,
    (seq) => nl.newAddress(seq, index, gateway, prefixLen, true),
  );
  rtnl.request(`up ${config.name}`, (seq) => nl.setLinkUp(seq, index));
  refuseRouterAdvertisements(config.name);
  return index;
}

/**
 * The host end of a bridge takes no IPv6 Router Advertisements: with the kernel's default
 * (accept_ra=1 while IPv6 forwarding is off) a container's RA (CAP_NET_RAW) made it the host's IPv6
 * default router, preference high (tests/network_attack_test.ts). skiff's networks are IPv4 only;
 * checked at every start (one small read) so a bridge made before gets it too.
 */
function refuseRouterAdvertisements(bridge: string): void {
  if (bridge === "all" || bridge === "default") return; // those names are the host-wide settings
  const path = `/proc/sys/net/ipv6/conf/${bridge}/accept_ra`;
  try {
    if (Deno.readTextFileSync(path).trim() !== "0") Deno.writeTextFileSync(path, "0\n");
  } catch { /* no IPv6 in this kernel, or a read-only /proc/sys */ }
}

/** Network namespace fds this process holds for the containers it launched (see header). */
const heldNamespaces = new Map<string, number>();

/** Keeps a namespace fd open for a starting container until its endpoint is released. */
export function holdNamespace(containerId: string, fd: number): void {
  const old = heldNamespaces.get(containerId);
  if (old !== undefined) close(old);
  heldNamespaces.set(containerId, fd);
}

export interface PreparedEndpoint {
  endpoint: Endpoint;
  /** The path the init stage joins the namespace by. */
  netnsPath: string;
  /** The namespace's fd (this process holds it until the endpoint is released). */
  nsFd: number;
}

/** True while a lease's holder (the skiff that made it) or its container's process is alive. */
function leaseAlive(root: StateRoot, state: BridgeState, ip: string, alive: Map<number, boolean>): boolean {
  const l = state.Leases[ip];
  let holder = alive.get(l.Holder);
  if (holder === undefined) {
    holder = l.HolderStart === undefined
      ? isProcessAlive(l.Holder, undefined)
      : processStartTime(l.Holder) === l.HolderStart;
    alive.set(l.Holder, holder);
  }
  if (holder) return true;
  try {
    const record = JSON.parse(
      Deno.readTextFileSync(join(root.container(l.Container), "container.json")),
    ) as ContainerRecord;
    return record.State.Running && record.State.Pid > 0 &&
      isProcessAlive(record.State.Pid, record.State.PidStartTime);
  } catch {
    return false;
  }
}

/** Drops the leases (and veths) whose holder and container are both gone; returns how many. */
function sweepLeases(root: StateRoot, state: BridgeState, rtnl: Rtnl): number {
  const alive = new Map<number, boolean>();
  let swept = 0;
  for (const ip of Object.keys(state.Leases)) {
    if (leaseAlive(root, state, ip, alive)) continue;
    const veth = state.Leases[ip].Veth;
    if (veth) rtnl.deleteLink(veth);
    delete state.Leases[ip];
    swept++;
  }
  return swept;
}

/**
 * Releases what skiff processes killed mid-run left on the bridge network (their leases and
 * veths): the reconcile step of every listing. Reads the lease file without the lock first: nothing
 * to do costs one small read.
 */
export function sweepDeadEndpoints(root: StateRoot): void {
  const alive = new Map<number, boolean>();
  for (const file of stateFiles(root)) {
    const state = readStateFile(file);
    if (!state || Object.keys(state.Leases).every((ip) => leaseAlive(root, state, ip, alive))) continue;
    const swept = withRtnl((rtnl) => withNetworkState(root, file, (s) => sweepLeases(root, s, rtnl)));
    if (swept && file === bridgeStatePath(root)) collectIdleDefaultBridge(root);
    // a user network's survivors lose the dead members' names (names.ts)
    const remaining = state.Network ? readStateFile(file) : undefined;
    if (swept && remaining) {
      const members = Object.values(remaining.Leases).map((l) => l.Container);
      if (members.length) refreshNames(root, members[0], members);
    }
  }
}

/** Where a container's endpoint goes: the default bridge, or a user-defined network. */
export interface NetworkTarget {
  /** The network's name as the container's NetworkSettings.Networks key shows it. */
  name: string;
  /** Its state file (ipam.ts). */
  file: string;
  config: BridgeConfig;
  /** --internal: no default route. */
  internal: boolean;
}

/** The bridge a user network gets, as docker names it: br- and 12 hex of the network's id. */
export const userBridgeName = (networkId: string) => `br-${networkId.slice(0, 12)}`;

/** The target for a container of the default bridge. */
export function defaultTarget(root: StateRoot): NetworkTarget {
  return { name: "bridge", file: bridgeStatePath(root), config: bridgeConfig(root), internal: false };
}

/** The target for a user-defined network's state. */
export function userTarget(root: StateRoot, state: BridgeState): NetworkTarget {
  const net = state.Network!;
  const prefixLen = Number(net.Subnet.split("/")[1]);
  return {
    name: net.Name,
    file: userNetworkPath(root, state.Id),
    config: {
      name: userBridgeName(state.Id),
      subnet: { ...parseBip(net.Subnet), gateway: net.Gateway, prefixLen },
    },
    internal: net.Internal,
  };
}

/**
 * The container's endpoint: an address leased, the bridge ensured, a network namespace made with
 * eth0 and lo configured in it. On failure nothing is left (no lease, no veth, no namespace).
 */
export function createEndpoint(
  root: StateRoot,
  containerId: string,
  target: NetworkTarget = defaultTarget(root),
  wantedIp?: string,
  /** `network connect`: the running container's namespace (the caller's fd) instead of a new one */
  existingNetns?: number,
  /** `--mac-address` (Config.MacAddress): eth0's address instead of docker's from the IPv4 one */
  wantedMac?: string,
): PreparedEndpoint {
  // the default bridge's collector (gc.ts) waits while a run ensures the bridge and attaches to it
  return withBridgeInUse(() =>
    createEndpointNow(root, containerId, target, wantedIp, existingNetns, wantedMac)
  );
}

function createEndpointNow(
  root: StateRoot,
  containerId: string,
  target: NetworkTarget,
  wantedIp: string | undefined,
  existingNetns: number | undefined,
  wantedMac: string | undefined,
): PreparedEndpoint {
  const { config } = target;
  const { subnet } = config;
  const hostInterface = vethName(containerId);
  const rtnl = new Rtnl();
  let nsFd = -1;
  let leased = false;
  let created = true; // whether a link named hostInterface is ours to delete on failure
  try {
    const { ip, networkId } = withNetworkState(root, target.file, (state) => {
      sweepLeases(root, state, rtnl);
      const holderStart = processStartTime(Deno.pid);
      return {
        ip: lease(state, subnet, {
          Container: containerId,
          Holder: Deno.pid,
          HolderStart: holderStart,
          Veth: hostInterface,
        }, wantedIp),
        networkId: state.Id,
      };
    });
    leased = true;
    const master = ensureBridge(rtnl, config);
    let inner: Rtnl;
    if (existingNetns === undefined) {
      const made = withNewNetns(() => new Rtnl());
      nsFd = made.nsFd;
      inner = made.value;
    } else {
      inner = inNetns(existingNetns, () => new Rtnl());
    }
    const mac = endpointMac(wantedMac, macForIp(ip));
    // eth0 in a new namespace; a connected network's is the next free ethN
    let ifName = "eth0";
    for (let n = 1; existingNetns !== undefined && inner.linkIndex(ifName) !== undefined; n++) {
      ifName = `eth${n}`;
    }
    try {
      const pair = {
        hostName: hostInterface,
        master,
        peerName: ifName,
        peerMac: mac.link,
        peerNetns: { fd: existingNetns ?? nsFd },
      };
      try {
        rtnl.request(`create veth ${hostInterface}`, (seq) => nl.newVethPair(seq, pair));
      } catch (e) {
        // another link has the name (the odds: 1 in 65536 per start): the catch below must not delete it
        if (e instanceof SysError && e.code === "EEXIST") created = false;
        // the kernel takes no multicast or all-zero address (docker's start fails the same way)
        if (wantedMac && e instanceof SysError && e.code === "EADDRNOTAVAIL") {
          throw new SkiffError(
            `failed to set up the container's network: error setting interface "${ifName}" MAC to ` +
              `"${mac.shown}": cannot assign requested address`,
            undefined,
            { kind: "invalid-argument", cause: e },
          );
        }
        throw e;
      }
      const eth0 = inner.linkIndex(ifName);
      if (eth0 === undefined) throw new SkiffError(`${ifName} missing in the container's network namespace`);
      inner.request(`${ifName} without IPv6 link-local`, (seq) => nl.noIpv6LinkLocal(seq, eth0));
      inner.request(`address ${ip} on ${ifName}`, (seq) => nl.newAddress(seq, eth0, ip, subnet.prefixLen));
      inner.request("up lo", (seq) => nl.setLinkUp(seq, 1)); // lo is index 1 in every namespace
      inner.request(`up ${ifName}`, (seq) => nl.setLinkUp(seq, eth0));
      // an --internal network has no way out; a connected network keeps the first one's default route
      if (!target.internal && existingNetns === undefined) {
        inner.request(
          `default route via ${subnet.gateway}`,
          (seq) => nl.newDefaultRoute(seq, subnet.gateway, eth0),
        );
      }
    } finally {
      inner.close();
    }
    if (existingNetns === undefined) holdNamespace(containerId, nsFd);
    return {
      endpoint: {
        bridge: config.name,
        subnet: subnet.cidr,
        gateway: subnet.gateway,
        ipAddress: ip,
        prefixLen: subnet.prefixLen,
        macAddress: mac.shown,
        hostInterface,
        networkId,
        endpointId: randomHex(32),
        sandboxId: randomHex(32),
      },
      netnsPath: `/proc/${Deno.pid}/fd/${nsFd}`,
      nsFd,
    };
  } catch (e) {
    if (nsFd >= 0) close(nsFd);
    try {
      if (created) rtnl.deleteLink(hostInterface);
    } catch { /* the first failure is the one to report */ }
    if (leased) withNetworkState(root, target.file, (state) => releaseLease(state, containerId));
    if (e instanceof SkiffError) throw e;
    throw new SkiffError(`failed to set up the container's network: ${(e as Error).message}`, 125, {
      cause: e,
    });
  } finally {
    rtnl.close();
  }
}

/**
 * Releases a container's endpoint (idempotent): the namespace fd this process holds and the lease.
 * The veth pair goes with the namespace: once the container's processes and this fd are gone the
 * kernel tears the namespace down and deletes its eth0 and so the pair (asynchronously, in tens of
 * ms; the sequential IPAM does not hand the address out again meanwhile). Deleting it here instead
 * waits for RCU grace periods: 13-50 ms measured, and a process does not exit before such a call
 * returns, so `run --rm` took ~10 ms longer even with the call on another thread. Only when other
 * containers share the namespace (`--network container:`, which keeps it alive) is the veth deleted
 * here, as docker takes a stopping container's eth0 from them.
 */
export function releaseEndpoint(root: StateRoot, containerId: string): void {
  const nsFd = heldNamespaces.get(containerId);
  if (nsFd !== undefined) {
    heldNamespaces.delete(containerId);
    close(nsFd);
  }
  // a lease file per network (no file: this root never had an endpoint)
  const formerPeers: string[] = [];
  let onUserNetwork = false;
  for (const file of stateFiles(root)) {
    const state = readStateFile(file);
    if (!state || !Object.values(state.Leases).some((l) => l.Container === containerId)) continue;
    if (state.Network) {
      onUserNetwork = true;
      for (const l of Object.values(state.Leases)) {
        if (l.Container !== containerId) formerPeers.push(l.Container);
      }
    }
    const dropped = withNetworkState(root, file, (s) => releaseLease(s, containerId));
    const shared = dropped.filter((l) => l.Joiners?.length && l.Veth);
    if (shared.length) withRtnl((rtnl) => shared.forEach((l) => rtnl.deleteLink(l.Veth!)));
  }
  // the names it had on user networks go from the other members' /etc/hosts
  if (onUserNetwork) refreshNames(root, containerId, formerPeers);
  collectIdleDefaultBridge(root);
}

/**
 * The default bridge goes once no container of any root uses it (gc.ts): when this root holds no lease
 * on it any more, a collector is started that checks the bridge's ports (the kernel's, host-wide).
 */
function collectIdleDefaultBridge(root: StateRoot): void {
  try {
    const state = readStateFile(bridgeStatePath(root));
    if (state && Object.keys(state.Leases).length) return;
    const config = bridgeConfig(root);
    scheduleBridgeGc(config.name, config.subnet.cidr);
  } catch { /* best effort (a daemon.json refused meanwhile): never in the way of a release */ }
}

/** Notes a container that joins `containerId`'s namespace (its endpoint is then deleted explicitly). */
export function noteJoiner(root: StateRoot, containerId: string, joiner: string): void {
  for (const file of stateFiles(root)) {
    const state = readStateFile(file);
    if (state && Object.values(state.Leases).some((l) => l.Container === containerId)) {
      withNetworkState(root, file, (s) => addJoiner(s, containerId, joiner));
    }
  }
}
