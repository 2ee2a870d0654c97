// A starting container's network, by its mode (HostConfig.NetworkMode), for the launch path
// (engine/process.ts launchContainer, shared by foreground runs, `run -d`/start in the supervisor):
//   bridge            an endpoint on the default bridge (bridge.ts) in a namespace made here
//   NAME              the same on a user-defined network's bridge (networks.ts)
//   none              a fresh namespace with lo only (the init stage unshares it)
//   host              no network namespace of its own
//   container:NAME    NAME's namespace, joined by an fd this process holds
// and the one place where published ports get their rules before the container's process starts
// (`publishPorts`, deliverable 2 of issue 11).

import { close, O, open } from "../../ffi/mod.ts";
import { NotFoundError, SkiffError } from "../errors.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { isProcessAlive, processStartTime } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { DEFAULT_NAMESPACES, type NamespaceSpec, plainNetworkNamespaces } from "../runtime/spec.ts";
import { runsItsCommand } from "./namespaces.ts";
import { connectTarget } from "../network/connect.ts";
import { createEndpoint, type Endpoint, holdNamespace, noteJoiner, userTarget } from "../network/bridge.ts";
import { userNetworkState } from "../network/networks.ts";
import { joinedContainer } from "../network/mode.ts";
import { refreshNames, writeBridgeHosts } from "../network/names.ts";
import { linksAtStart } from "../network/linked.ts";
import { ensureInternalForward, ensureNetworkNat, publishPorts as natPublish } from "../network/nat.ts";
import { checkPublishable, type PortMapping, publishRequests } from "../network/ports.ts";

export interface ContainerNetwork {
  /** The init stage's namespaces (the OCI spec's linux.namespaces, without pid). */
  namespaces: NamespaceSpec[];
  /** The bridge endpoint, kept in the record while the container runs. */
  endpoint?: Endpoint;
  /** The endpoints of the networks joined with `network connect` (record.ConnectedNetworks). */
  extraEndpoints?: Record<string, Endpoint>;
  /** `--link`'s variables (docker's ALIAS_PORT_…, ALIAS_NAME, ALIAS_ENV_…), under Config.Env. */
  linkEnv?: string[];
}

const withNetwork = (path: string | undefined): NamespaceSpec[] =>
  DEFAULT_NAMESPACES.map((ns) => (ns.type === "network" ? { type: "network", path } : { ...ns }));

/** Opens NAME's network namespace through its process, checked to be that container's process. */
function joinContainerNamespace(root: StateRoot, record: ContainerRecord, ref: string): NamespaceSpec[] {
  const other = lookupContainer(root, ref);
  if (other.Id === record.Id) {
    throw new SkiffError("cannot join own network namespace", 125, { kind: "invalid-argument" });
  }
  const { Pid, PidStartTime, Running } = other.State;
  if (!Running || !Pid || !isProcessAlive(Pid, PidStartTime)) {
    throw new SkiffError(
      `cannot join network namespace of a non running container: container ${other.Name.slice(1)} is ${
        other.State.Status === "running" ? "exited" : other.State.Status
      }`,
      125,
      { kind: "conflict" },
    );
  }
  // a container is recorded running while its init stage, still in the host's network namespace,
  // waits for its go: only a process that runs the container's command has its namespace for good
  if (!runsItsCommand(Pid)) {
    throw new SkiffError(
      `cannot join network namespace of container ${other.Name.slice(1)}: it is still starting`,
      125,
      { kind: "conflict" },
    );
  }
  const fd = open(`/proc/${Pid}/ns/net`, O.RDONLY | O.CLOEXEC);
  // the pid may have been reused between the check and the open: the fd is the right one only if
  // the process is still the container's
  if (processStartTime(Pid) !== PidStartTime) {
    close(fd);
    throw new SkiffError(`cannot join network namespace of container ${other.Name.slice(1)}: it exited`);
  }
  holdNamespace(record.Id, fd);
  noteJoiner(root, other.Id, record.Id);
  return withNetwork(`/proc/${Deno.pid}/fd/${fd}`);
}

/**
 * Sets up the network of a container about to start. Released (idempotently) with the container's
 * "exit" resources (engine/resources.ts), which also runs when the start fails after this.
 */
export function setupNetwork(root: StateRoot, record: ContainerRecord): ContainerNetwork {
  const mode = record.HostConfig.NetworkMode;
  const plain = plainNetworkNamespaces(mode);
  if (plain) return { namespaces: plain };
  const joined = joinedContainer(mode);
  if (joined !== undefined) return { namespaces: joinContainerNamespace(root, record, joined) };
  let target;
  if (mode !== "bridge") {
    const state = userNetworkState(root, mode);
    if (!state) throw new NotFoundError(`network ${mode} not found`);
    target = userTarget(root, state);
  }
  const wanted = target ? record.NetworkIps?.[target.name] : undefined;
  // --link (default bridge): the linked containers must run there; checked before anything is made
  const links = !target && record.LinkedContainers?.length ? linksAtStart(root, record) : undefined;
  const { endpoint, netnsPath, nsFd } = createEndpoint(
    root,
    record.Id,
    target,
    wanted,
    undefined,
    record.Config.MacAddress,
  );
  // the networks joined with `network connect` are joined again (released with the rest at exit)
  const extraEndpoints = connectAgain(root, record, nsFd);
  if (target || extraEndpoints) {
    // a user network: its members' names in every member's /etc/hosts, this one's address included
    refreshNames(root, record.Id);
  } else {
    // docker writes the container's own address into its /etc/hosts when it starts
    writeBridgeHosts(root, record, endpoint.ipAddress, links?.hosts);
  }
  return {
    namespaces: withNetwork(netnsPath),
    endpoint,
    ...(extraEndpoints ? { extraEndpoints } : {}),
    ...(links?.env.length ? { linkEnv: links.env } : {}),
  };
}

/** The endpoints of record.ConnectedNetworks in the namespace `nsFd`, as eth1, eth2, … */
function connectAgain(
  root: StateRoot,
  record: ContainerRecord,
  nsFd: number,
): Record<string, Endpoint> | undefined {
  const names = record.ConnectedNetworks ?? [];
  if (!names.length) return undefined;
  const out: Record<string, Endpoint> = {};
  for (const name of names) {
    const target = connectTarget(root, name);
    const { endpoint } = createEndpoint(root, record.Id, target, record.NetworkIps?.[name], nsFd);
    if (!target.internal) ensureNetworkNat(root, { bridge: endpoint.bridge, subnet: endpoint.subnet });
    out[name] = endpoint;
  }
  return out;
}

/**
 * Where published ports (-p/-P) get their NAT rules: after the endpoint exists, before the
 * container's process starts; released with the container's "exit" resources (engine/resources.ts
 * "ports"). A bridge endpoint always needs its network's NAT (the way out); that is put in once per
 * bridge (lib/network/nat.ts). Returns what was published (the record's PublishedPorts), undefined
 * for a container without an endpoint of its own (none, host, container:NAME: nothing published).
 */
export function publishPorts(
  root: StateRoot,
  record: ContainerRecord,
  endpoint: Endpoint | undefined,
): PortMapping[] | undefined {
  if (!endpoint) return undefined;
  const mode = record.HostConfig.NetworkMode;
  // an --internal network has no way out: no NAT, nothing published (docker's)
  if (mode !== "bridge" && userNetworkState(root, mode)?.Network?.Internal) {
    // its containers still reach each other where the FORWARD policy is DROP
    ensureInternalForward({ bridge: endpoint.bridge, subnet: endpoint.subnet });
    return [];
  }
  const requests = publishRequests(
    record.HostConfig.PortBindings,
    record.Config.ExposedPorts,
    record.HostConfig.PublishAllPorts ?? false,
  );
  checkPublishable(requests);
  const network = { bridge: endpoint.bridge, subnet: endpoint.subnet };
  if (!requests.length) {
    ensureNetworkNat(root, network);
    return [];
  }
  return natPublish({
    root,
    id: record.Id,
    name: record.Name.replace(/^\//, ""),
    endpointId: endpoint.endpointId,
    containerIp: endpoint.ipAddress,
    network,
    hostInterface: endpoint.hostInterface,
    requests,
  });
}
