// Name resolution on user-defined networks (issue 11, deliverable 3): every running container of a
// user network finds the others by container name, short id (12 hex) and network alias through its
// own /etc/hosts, which skiff rewrites in place whenever a member comes or goes (start, stop, rm,
// rename, connect, disconnect). The default bridge has none, as in docker. Names outside the
// network go through the container's /etc/resolv.conf: the host's resolvers, as docker forwards them.
//
// Why hosts files and not a DNS responder (ARCHITECTURE.md, Networking, measured): a rewrite is a
// few small file writes under the network lock, done by whichever skiff changed the network, with
// nothing running between changes; a responder needs a process per state root (foreground runs have
// no supervisor), ~20+ MB of memory and its start on the first container's path.
//
// The file is rewritten in place (same inode), because the init stage binds the file itself over
// /etc/hosts: a new inode would not be seen by the running container.

import { join } from "../path.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { readStateFile, resolveHostGateway, stateFiles } from "./ipam.ts";
import { hostsFile } from "./mode.ts";
import { userLinkAliases } from "./links.ts";
import { linksAtStart } from "./linked.ts";
import { withLockSync } from "../state/fsutil.ts";

/** One member of a network as other members resolve it. */
export interface NameEntry {
  ip: string;
  names: string[];
}

/** The names a container answers to on a network: its name, its short id, its aliases there. */
export function memberNames(
  record: Pick<ContainerRecord, "Id" | "Name" | "NetworkAliases">,
  network: string,
) {
  const names = [
    record.Name.replace(/^\//, ""),
    record.Id.slice(0, 12),
    ...(record.NetworkAliases?.[network] ?? []),
  ];
  return [...new Set(names)];
}

/**
 * A member's /etc/hosts: docker's head, --add-host, its own address with its hostname, then the
 * other members of its user networks (pure: unit-tested).
 */
export function memberHostsFile(
  extraHosts: string[],
  own: { ip: string; hostname: string } | undefined,
  peers: NameEntry[],
  links: NameEntry[] = [],
): string {
  const lines = peers.map((p) => `${p.ip}\t${p.names.join(" ")}\n`);
  return hostsFile(extraHosts, own, links) + lines.join("");
}

function readRecord(root: StateRoot, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(join(root.container(id), "container.json"))) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/** Rewrites a file's content keeping its inode (it is bound over /etc/hosts in the container). */
function rewriteInPlace(path: string, text: string): void {
  const data = new TextEncoder().encode(text);
  let file;
  try {
    file = Deno.openSync(path, { write: true, truncate: true });
  } catch {
    return; // the container's directory is gone (removed meanwhile)
  }
  try {
    let off = 0;
    while (off < data.length) off += file.writeSync(data.subarray(off));
  } finally {
    file.close();
  }
}

/**
 * A default-bridge container's /etc/hosts: docker's head, its --add-host lines, its --link lines
 * and its own address (written at its start, and again after `rm -l` while it runs), in place.
 */
export function writeBridgeHosts(
  root: StateRoot,
  record: ContainerRecord,
  ip: string,
  links: { ip: string; names: string[] }[] | undefined,
): void {
  rewriteInPlace(
    join(root.container(record.Id), "hosts"),
    hostsFile(resolveHostGateway(root, record.HostConfig.ExtraHosts ?? []), {
      ip,
      hostname: record.Config.Hostname,
    }, links),
  );
}

interface Membership {
  /** network name (as the record names it) → its members: container id → ip */
  networks: Map<string, Map<string, string>>;
  /** whether the network is user-defined (only those resolve names) */
  user: Map<string, boolean>;
}

function memberships(root: StateRoot): Membership {
  const networks = new Map<string, Map<string, string>>();
  const user = new Map<string, boolean>();
  for (const file of stateFiles(root)) {
    const state = readStateFile(file);
    if (!state) continue;
    const name = state.Network?.Name ?? "bridge";
    const members = new Map<string, string>();
    for (const [ip, l] of Object.entries(state.Leases)) members.set(l.Container, ip);
    networks.set(name, members);
    user.set(name, !!state.Network);
  }
  return { networks, user };
}

/**
 * Rewrites the /etc/hosts of `changed` and of every container sharing a user network with it (or
 * that did until now: `formerPeers`). Under the network lock, so concurrent changes are written in
 * the order they happened, each from the state as it is then.
 */
export function refreshNames(root: StateRoot, changed: string, formerPeers: string[] = []): void {
  withLockSync(root.lock("network"), () => {
    const m = memberships(root);
    const targets = new Set<string>([changed, ...formerPeers]);
    for (const [name, members] of m.networks) {
      if (m.user.get(name) && members.has(changed)) members.forEach((_ip, id) => targets.add(id));
    }
    const records = new Map<string, ContainerRecord | undefined>();
    const record = (id: string) => {
      if (!records.has(id)) records.set(id, readRecord(root, id));
      return records.get(id);
    };
    for (const id of targets) writeHostsOf(root, id, m, record);
  });
}

/** The container ids sharing a user network with `id` now (taken before it leaves them). */
export function userNetworkPeers(root: StateRoot, id: string): string[] {
  const m = memberships(root);
  const peers: string[] = [];
  for (const [name, members] of m.networks) {
    if (m.user.get(name) && members.has(id)) {
      members.forEach((_ip, other) => other !== id && peers.push(other));
    }
  }
  return peers;
}

function writeHostsOf(
  root: StateRoot,
  id: string,
  m: Membership,
  record: (id: string) => ContainerRecord | undefined,
): void {
  const self = record(id);
  if (!self) return;
  const mode = self.HostConfig.NetworkMode;
  // only containers with an endpoint of their own: none/host/container:NAME keep their files
  let ownIp: string | undefined;
  const peers: NameEntry[] = [];
  const seen = new Set<string>();
  for (const [name, members] of m.networks) {
    const ip = members.get(id);
    if (ip === undefined) continue;
    if (ownIp === undefined || name === mode) ownIp = ip; // the primary network's address first
    if (!m.user.get(name)) continue;
    for (const [other, otherIp] of members) {
      if (other === id || seen.has(`${name}/${other}`)) continue;
      seen.add(`${name}/${other}`);
      const r = record(other);
      if (!r) continue;
      // its names there, and the aliases this container's --link on that network gives it
      const names = memberNames(r, name);
      const aliases = userLinkAliases(self.NetworkLinks?.[name], names, r.Id);
      peers.push({ ip: otherIp, names: [...new Set([...names, ...aliases])] });
    }
  }
  if (ownIp === undefined && peers.length === 0) {
    // no endpoint any more (stopped): its file keeps docker's head and --add-host lines only
    if (mode === "host" || mode.startsWith("container:")) return;
    rewriteInPlace(
      join(root.container(id), "hosts"),
      hostsFile(resolveHostGateway(root, self.HostConfig.ExtraHosts ?? [])),
    );
    return;
  }
  rewriteInPlace(
    join(root.container(id), "hosts"),
    memberHostsFile(
      resolveHostGateway(root, self.HostConfig.ExtraHosts ?? []),
      ownIp === undefined ? undefined : { ip: ownIp, hostname: self.Config.Hostname },
      peers,
      // a default-bridge container that also joined a user network keeps its --link lines
      self.LinkedContainers?.length && ownIp !== undefined ? linksAtStart(root, self, true).hosts : [],
    ),
  );
}
