// `network connect [--ip] [--alias] NET CTR` and `network disconnect [-f] NET CTR` on running
// containers: one more veth pair whose peer goes into the container's namespace as eth1, eth2, …
// (bridge.ts createEndpoint with the namespace opened from the container's process), a lease on
// the network, the container's names in its members' /etc/hosts (names.ts). The lease is released
// with the container's other leases when it stops ("exit" resources: releaseEndpoint walks every
// network's leases), the veth going with the namespace; disconnect deletes the veth and the lease
// at once. The record keeps the endpoint in ExtraEndpoints while the container runs, and the
// network in ConnectedNetworks: every start joins it again (engine/network.ts), as docker does; a stopped
// container's connect only records it.

import { close, O, open } from "../../ffi/mod.ts";
import { NotFoundError, SkiffError } from "../errors.ts";
import { findContainer, isProcessAlive, processStartTime, updateContainerSync } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { createEndpoint, defaultTarget, type NetworkTarget, userTarget } from "./bridge.ts";
import { readStateFile, releaseLease, withNetworkState } from "./ipam.ts";
import { isUserNetwork, joinedContainer } from "./mode.ts";
import { refreshNames, userNetworkPeers } from "./names.ts";
import { ensureNetworkNat } from "./nat.ts";
import { userNetworkState } from "./networks.ts";
import { withRtnl } from "./rtnl.ts";

const conflict = (message: string) => new SkiffError(message, 1, { kind: "conflict" });

/** The target of a network reference: "bridge" or a user network by name, id or id prefix. */
export function connectTarget(root: StateRoot, ref: string): NetworkTarget {
  if (ref === "bridge") return defaultTarget(root);
  if (ref === "host" || ref === "none") {
    throw conflict("container cannot be disconnected from host network or connected to host network");
  }
  const state = userNetworkState(root, ref);
  if (!state) throw new NotFoundError(`network ${ref} not found`);
  return userTarget(root, state);
}

function leaseOf(file: string, id: string): { ip: string; veth?: string } | undefined {
  const state = readStateFile(file);
  for (const [ip, l] of Object.entries(state?.Leases ?? {})) {
    if (l.Container === id) return { ip, veth: l.Veth };
  }
  return undefined;
}

function checkMode(record: ContainerRecord): void {
  const mode = record.HostConfig.NetworkMode;
  if (mode === "host" || joinedContainer(mode) !== undefined) {
    throw conflict(
      "container sharing network namespace with another container or host cannot be connected to any other network",
    );
  }
  if (mode === "none") {
    throw conflict(
      "container cannot be connected to multiple networks with one of the networks in private (none) mode",
    );
  }
}

/** `network connect`: a running container gets an endpoint on one more network now, a stopped one at its next start. */
export function connectContainer(
  root: StateRoot,
  networkRef: string,
  containerRef: string,
  opts: { ip?: string; aliases: string[] },
): void {
  const target = connectTarget(root, networkRef);
  const record = findContainer(root, containerRef);
  checkMode(record);
  const name = record.Name.slice(1);
  if (target.name === "bridge" && (opts.ip || opts.aliases.length)) {
    throw new SkiffError(
      opts.ip
        ? "user specified IP address is supported on user defined networks only"
        : "network-scoped alias is supported only for containers in user defined networks",
      1,
      { kind: "invalid-argument" },
    );
  }
  if (
    record.HostConfig.NetworkMode === target.name || record.ConnectedNetworks?.includes(target.name) ||
    record.ExtraEndpoints?.[target.name] || leaseOf(target.file, record.Id)
  ) {
    throw new SkiffError(`endpoint with name ${name} already exists in network ${target.name}`, 1, {
      kind: "conflict",
    });
  }
  // kept in the record: joined again at every start (docker keeps it in the container's settings)
  const remember = (r: ContainerRecord) => {
    r.ConnectedNetworks = [...(r.ConnectedNetworks ?? []).filter((n) => n !== target.name), target.name];
    if (opts.aliases.length) r.NetworkAliases = { ...r.NetworkAliases, [target.name]: opts.aliases };
    if (opts.ip) r.NetworkIps = { ...r.NetworkIps, [target.name]: opts.ip };
  };
  const { Pid, PidStartTime, Running } = record.State;
  if (!Running || !Pid || !isProcessAlive(Pid, PidStartTime)) {
    // a stopped container: its next start joins the network
    updateContainerSync(root, record.Id, remember);
    return;
  }
  const nsFd = open(`/proc/${Pid}/ns/net`, O.RDONLY | O.CLOEXEC);
  try {
    // the pid may have been reused between the check and the open
    if (processStartTime(Pid) !== PidStartTime) throw conflict(`container ${name} is not running`);
    // the aliases are in the record before the names are written (names.ts reads them there)
    updateContainerSync(root, record.Id, remember);
    let endpoint;
    try {
      endpoint = createEndpoint(root, record.Id, target, opts.ip, nsFd).endpoint;
      if (!target.internal) ensureNetworkNat(root, { bridge: endpoint.bridge, subnet: endpoint.subnet });
    } catch (e) {
      dropEndpoint(root, record.Id, target);
      throw e;
    }
    const saved = updateContainerSync(root, record.Id, (r) => {
      r.ExtraEndpoints = { ...r.ExtraEndpoints, [target.name]: endpoint };
    });
    if (!saved) dropEndpoint(root, record.Id, target);
    if (isUserNetwork(target.name) || isUserNetwork(record.HostConfig.NetworkMode)) {
      refreshNames(root, record.Id);
    }
  } finally {
    close(nsFd);
  }
}

/** The lease and veth of a container on one network, and what the record says of it. */
function dropEndpoint(root: StateRoot, id: string, target: NetworkTarget): boolean {
  const held = leaseOf(target.file, id);
  const peers = userNetworkPeers(root, id);
  if (held?.veth) withRtnl((rtnl) => rtnl.deleteLink(held.veth!));
  if (held) withNetworkState(root, target.file, (s) => releaseLease(s, id));
  updateContainerSync(root, id, (r) => {
    let changed = false;
    if (r.ExtraEndpoints?.[target.name]) {
      delete r.ExtraEndpoints[target.name];
      changed = true;
    }
    if (r.ConnectedNetworks?.includes(target.name)) {
      r.ConnectedNetworks = r.ConnectedNetworks.filter((n) => n !== target.name);
      if (!r.ConnectedNetworks.length) delete r.ConnectedNetworks;
      changed = true;
    }
    if (r.HostConfig.NetworkMode === target.name && r.NetworkEndpoint) {
      delete r.NetworkEndpoint;
      changed = true;
    }
    for (const key of ["NetworkAliases", "NetworkIps"] as const) {
      if (r[key]?.[target.name] !== undefined) {
        delete r[key]![target.name];
        changed = true;
      }
    }
    return changed;
  });
  if (held) refreshNames(root, id, peers);
  return held !== undefined;
}

/** `network disconnect`: the endpoint goes (its veth, its lease, its names). */
export function disconnectContainer(
  root: StateRoot,
  networkRef: string,
  containerRef: string,
  force: boolean,
): void {
  const target = connectTarget(root, networkRef);
  let record: ContainerRecord | undefined;
  try {
    record = findContainer(root, containerRef);
  } catch (e) {
    // -f: the endpoint of a container that is gone goes anyway (docker's force)
    if (!force) throw e;
  }
  if (!record) {
    // -f of a container that is gone: its endpoint (a lease under its full id) goes; else docker's words
    if (/^[0-9a-f]{64}$/.test(containerRef) && leaseOf(target.file, containerRef)) {
      dropEndpoint(root, containerRef, target);
      return;
    }
    throw new NotFoundError(`endpoint ${containerRef} not found`, 1);
  }
  checkMode(record);
  const connected = !!leaseOf(target.file, record.Id) || !!record.ExtraEndpoints?.[target.name] ||
    !!record.ConnectedNetworks?.includes(target.name);
  if (!connected && record.HostConfig.NetworkMode === target.name) {
    throw conflict(
      `skiff cannot disconnect a stopped container from the network it was created on (${target.name})`,
    );
  }
  if (!connected) {
    throw conflict(`container ${record.Id} is not connected to network ${target.name}`);
  }
  dropEndpoint(root, record.Id, target);
}
