// The NAT rules of published ports and of a bridge network's way out, planned as data: the text of
// one `nft -f -` batch, or one `iptables-restore --noflush` batch, and what removes them again.
// Pure (no process is run): lib/network/nat.ts runs the plans.
//
// nftables: skiff's own table `ip skiff`, shared by every state root on the host:
//   prerouting (nat, dstnat) and output (nat, -100): traffic to a local address jumps to `ports`
//   ports: one DNAT rule per published port, its comment naming the state root and the container
//   postrouting (nat, srcnat), fixed, driven by two sets the networks fill:
//     ip saddr @subnets oifname != @bridges masquerade      a container's traffic leaving the host
//     ct status dnat oifname @bridges ip saddr 127.0.0.0/8   127.0.0.1:P (with route_localnet)
//     ct status dnat oifname @bridges ip saddr @subnets      another container, and hairpin
//   The last two make the container answer through the host: without them the reply to 127.0.0.1
//   or to the container's own address never comes back the way the connection went.
//   rawprerouting (filter, raw), fixed: iifname @bridges ip daddr 127.0.0.0/8 drop
//   route_localnet (which the DNAT of 127.0.0.1:P needs) also lets a container that crafts a packet
//   to 127.0.0.1 with the gateway's MAC reach the host's loopback-only services (CVE-2020-8558);
//   nothing legitimate enters a bridge with a loopback destination (host clients of 127.0.0.1:P
//   are DNATed in the output path), so it is dropped before conntrack sees it, as docker's
//   raw-PREROUTING drop of loopback traffic from other interfaces.
// iptables (nft or legacy backend): the same rules in the nat table's chains SKIFF (DNAT, jumped to
// from PREROUTING and OUTPUT for local addresses) and SKIFF-POSTROUTING (from POSTROUTING), and
// the loopback drop per bridge in the raw table's SKIFF-PREROUTING (from PREROUTING).

import type { PortMapping } from "./ports.ts";

/** A bridge network's NAT: the bridge's name and its IPv4 subnet (CIDR). */
export interface NatNetwork {
  bridge: string;
  subnet: string;
}

/** What a container publishes: its address on the network and its port mappings. */
export interface NatEndpoint {
  /** The rules' tag (ruleTag): removed together with the container. */
  tag: string;
  containerIp: string;
  network: NatNetwork;
  mappings: PortMapping[];
}

export const NFT_TABLE = "skiff";
export const IPT_CHAIN = "SKIFF";
export const IPT_POSTROUTING = "SKIFF-POSTROUTING";

/** 32-bit FNV-1a of a string, as 8 hex digits. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** A state root's key in rule tags: roots share the host's table, each sweeps only its own rules. */
export const rootKey = (rootPath: string) => fnv(rootPath);

/** The comment a container's rules carry: `skiff:<root key>:<container id>`. */
export const ruleTag = (rootPath: string, id: string) => `skiff:${rootKey(rootPath)}:${id}`;

/** The container id and root key of a tag; undefined for anything else. */
export function parseTag(tag: string): { rootKey: string; id: string } | undefined {
  const m = /^skiff:([0-9a-f]{8}):([0-9a-f]{64})$/.exec(tag);
  return m ? { rootKey: m[1], id: m[2] } : undefined;
}

const NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;

/** Everything put into a rule is checked here, so no value can change a rule's meaning. */
function check(endpoint: NatEndpoint): void {
  const { network, containerIp, mappings, tag } = endpoint;
  if (!NAME.test(network.bridge)) throw new Error(`bad bridge name ${JSON.stringify(network.bridge)}`);
  if (!CIDR.test(network.subnet)) throw new Error(`bad subnet ${JSON.stringify(network.subnet)}`);
  if (!IPV4.test(containerIp)) throw new Error(`bad container address ${JSON.stringify(containerIp)}`);
  if (!/^[a-z0-9:]+$/.test(tag)) throw new Error(`bad rule tag ${JSON.stringify(tag)}`);
  for (const m of mappings) {
    if (m.proto !== "tcp" && m.proto !== "udp") throw new Error(`cannot publish ${m.proto}`);
    if (!IPV4.test(m.hostIp)) throw new Error(`bad host address ${JSON.stringify(m.hostIp)}`);
    for (const p of [m.hostPort, m.containerPort]) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
    }
  }
}

const anyAddress = (ip: string) => ip === "" || ip === "0.0.0.0";

// ---- nftables --------------------------------------------------------------------------------

/** The table, its sets and chains and the fixed rules: idempotent, the same text every time. */
function nftBase(): string[] {
  const t = `ip ${NFT_TABLE}`;
  return [
    `add table ${t}`,
    `add set ${t} bridges { type ifname; }`,
    `add set ${t} subnets { type ipv4_addr; flags interval; }`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} ports`,
    `add chain ${t} rawprerouting { type filter hook prerouting priority raw; policy accept; }`,
    // the base chains' rules are rewritten in the same transaction: never doubled, never missing
    `flush chain ${t} prerouting`,
    `flush chain ${t} output`,
    `flush chain ${t} postrouting`,
    `flush chain ${t} rawprerouting`,
    `add rule ${t} rawprerouting iifname @bridges ip daddr 127.0.0.0/8 drop`,
    `add rule ${t} prerouting fib daddr type local jump ports`,
    `add rule ${t} output fib daddr type local jump ports`,
    `add rule ${t} postrouting ip saddr @subnets oifname != @bridges masquerade`,
    `add rule ${t} postrouting ct status dnat oifname @bridges ip saddr 127.0.0.0/8 masquerade`,
    `add rule ${t} postrouting ct status dnat oifname @bridges ip saddr @subnets masquerade`,
  ];
}

/**
 * A container's DNAT rules, one per published port: the whole per-container batch. The table,
 * chains and sets (nftNetworkBatch) go in once per bridge: declaring them again, even unchanged,
 * costs nft ~10 ms (measured: a batch with them 12-20 ms, the rules alone 2.5 ms).
 */
export function nftRulesBatch(endpoint: NatEndpoint): string {
  check(endpoint);
  const { containerIp, mappings, tag } = endpoint;
  return mappings.map((m) => {
    const daddr = anyAddress(m.hostIp) ? "" : ` ip daddr ${m.hostIp}`;
    return `add rule ip ${NFT_TABLE} ports${daddr} ${m.proto} dport ${m.hostPort} dnat to ${containerIp}:${m.containerPort} comment "${tag}"\n`;
  }).join("");
}

/** Everything at once: the network's NAT (idempotent) and the container's DNAT rules. */
export function nftSetupBatch(endpoint: NatEndpoint): string {
  return nftNetworkBatch(endpoint.network) + nftRulesBatch(endpoint);
}

/** A network's NAT without containers (rules of its containers go with them). */
export function nftNetworkBatch(network: NatNetwork): string {
  check({ tag: "x", containerIp: "0.0.0.0", network, mappings: [] });
  const t = `ip ${NFT_TABLE}`;
  return [
    ...nftBase(),
    `add element ${t} bridges { "${network.bridge}" }`,
    // the bridge's name on its subnet: a network's entries can go when its bridge is gone
    `add element ${t} subnets { ${network.subnet} comment "${network.bridge}" }`,
  ].join("\n") + "\n";
}

/** The networks in skiff's sets, from `nft -j list table ip skiff`: bridges, subnets with their bridge. */
export function parseNftNetworks(
  json: string,
): { bridges: string[]; subnets: { cidr: string; bridge?: string }[] } {
  const out = { bridges: [] as string[], subnets: [] as { cidr: string; bridge?: string }[] };
  const doc = JSON.parse(json) as { nftables?: { set?: { name: string; elem?: unknown[] } }[] };
  for (const item of doc.nftables ?? []) {
    const set = item.set;
    if (!set?.elem) continue;
    for (const raw of set.elem) {
      const el = raw as { elem?: { val: unknown; comment?: string } } & Record<string, unknown>;
      const val = el.elem ? el.elem.val : raw;
      const comment = el.elem?.comment;
      if (set.name === "bridges" && typeof val === "string") out.bridges.push(val);
      const prefix = (val as { prefix?: { addr: string; len: number } })?.prefix;
      if (set.name === "subnets" && prefix) {
        out.subnets.push({ cidr: `${prefix.addr}/${prefix.len}`, bridge: comment });
      }
    }
  }
  return out;
}

/** Deletes the set entries of bridges that are gone (a network removed by hand, a test's bridge). */
export function nftStaleNetworksBatch(
  networks: ReturnType<typeof parseNftNetworks>,
  exists: (bridge: string) => boolean,
): string {
  const t = `ip ${NFT_TABLE}`;
  const gone = networks.bridges.filter((b) => NAME.test(b) && !exists(b));
  const lines = gone.map((b) => `delete element ${t} bridges { "${b}" }`);
  for (const s of networks.subnets) {
    if (s.bridge && NAME.test(s.bridge) && !exists(s.bridge) && CIDR.test(s.cidr)) {
      lines.push(`delete element ${t} subnets { ${s.cidr} }`);
    }
  }
  return lines.map((l) => l + "\n").join("");
}

/** Removes a network's set entries (its containers' rules are gone already). */
export function nftNetworkRemoveBatch(network: NatNetwork): string {
  check({ tag: "x", containerIp: "0.0.0.0", network, mappings: [] });
  const t = `ip ${NFT_TABLE}`;
  return `delete element ${t} bridges { "${network.bridge}" }\ndelete element ${t} subnets { ${network.subnet} }\n`;
}

/** A rule of the `ports` chain as `nft -j -a list chain` shows it. */
export interface NftRule {
  handle: number;
  comment?: string;
  /** The published host port, protocol and address (absent: every address). */
  hostPort?: number;
  proto?: string;
  hostIp?: string;
}

/**
 * The rules of `nft -a list chain ip skiff ports` (the text form: 1 ms faster than -j), e.g.
 * `ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.89.0.2:80 comment "skiff:…" # handle 12`.
 */
export function parseNftPorts(text: string): NftRule[] {
  const out: NftRule[] = [];
  for (const line of text.split("\n")) {
    const handle = /# handle (\d+)\s*$/.exec(line);
    if (!handle || !line.includes(" dnat ")) continue;
    const entry: NftRule = { handle: Number(handle[1]) };
    const comment = /comment "([^"]*)"/.exec(line);
    if (comment) entry.comment = comment[1];
    const port = /\b(tcp|udp) dport (\d+)\b/.exec(line);
    if (port) {
      entry.proto = port[1];
      entry.hostPort = Number(port[2]);
    }
    const daddr = /\bip daddr (\d+\.\d+\.\d+\.\d+)\b/.exec(line);
    if (daddr) entry.hostIp = daddr[1];
    out.push(entry);
  }
  return out;
}

/** Deletes the listed rules whose tag `drop` picks; "" when there is none. */
export function nftDeleteBatch(rules: NftRule[], drop: (tag: string) => boolean): string {
  return rules.filter((r) => r.comment !== undefined && drop(r.comment))
    .map((r) => `delete rule ip ${NFT_TABLE} ports handle ${r.handle}\n`).join("");
}

// ---- iptables --------------------------------------------------------------------------------

/** The nat table's lines of `iptables-save -t nat`: chains declared and rules (`-A …`). */
export interface IptSaved {
  chains: Set<string>;
  rules: string[];
}

export function parseIptablesSave(text: string, table: "nat" | "filter" | "raw" = "nat"): IptSaved {
  const chains = new Set<string>();
  const rules: string[] = [];
  let inNat = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) inNat = line === `*${table}`;
    else if (!inNat) continue;
    else if (line.startsWith(":")) chains.add(line.slice(1).split(" ")[0]);
    else if (line.startsWith("-A ")) rules.push(line);
  }
  return { chains, rules };
}

const JUMPS = [
  ["PREROUTING", `-m addrtype --dst-type LOCAL -j ${IPT_CHAIN}`],
  ["OUTPUT", `-m addrtype --dst-type LOCAL -j ${IPT_CHAIN}`],
  ["POSTROUTING", `-j ${IPT_POSTROUTING}`],
] as const;

function iptNetworkRules(network: NatNetwork): string[] {
  const { bridge, subnet } = network;
  const tag = `-m comment --comment skiff-net:${bridge}`;
  return [
    `-A ${IPT_POSTROUTING} -s ${subnet} ! -o ${bridge} ${tag} -j MASQUERADE`,
    `-A ${IPT_POSTROUTING} -s 127.0.0.0/8 -o ${bridge} -m conntrack --ctstate DNAT ${tag} -j MASQUERADE`,
    `-A ${IPT_POSTROUTING} -s ${subnet} -o ${bridge} -m conntrack --ctstate DNAT ${tag} -j MASQUERADE`,
  ];
}

/** Whether a saved rule is the one planned (iptables-save prints /32 and its own match order). */
function hasRule(saved: IptSaved, chain: string, target: string, comment: string): boolean {
  return saved.rules.some((r) => r.startsWith(`-A ${chain} `) && r.includes(target) && r.includes(comment));
}

/** What an `iptables-restore --noflush` needs so the chains, jumps and the network's rules exist. */
function iptBase(saved: IptSaved, network: NatNetwork): string[] {
  const lines: string[] = [];
  // declaring a chain that exists would flush it with --noflush: only the missing ones
  for (const chain of [IPT_CHAIN, IPT_POSTROUTING]) {
    if (!saved.chains.has(chain)) lines.push(`:${chain} - [0:0]`);
  }
  for (const [chain, spec] of JUMPS) {
    const target = spec.slice(spec.indexOf("-j "));
    if (!saved.rules.some((r) => r.startsWith(`-A ${chain} `) && r.endsWith(target))) {
      lines.push(`-A ${chain} ${spec}`);
    }
  }
  const comment = `skiff-net:${network.bridge}`;
  if (!hasRule(saved, IPT_POSTROUTING, "MASQUERADE", comment)) lines.push(...iptNetworkRules(network));
  return lines;
}

/** One `iptables-restore --noflush` batch for a container, given the nat table as it is now. */
export function iptSetupBatch(saved: IptSaved, endpoint: NatEndpoint): string {
  check(endpoint);
  const { network, containerIp, mappings, tag } = endpoint;
  const lines = ["*nat", ...iptBase(saved, network)];
  for (const m of mappings) {
    const daddr = anyAddress(m.hostIp) ? "" : ` -d ${m.hostIp}/32`;
    lines.push(
      `-A ${IPT_CHAIN}${daddr} -p ${m.proto} -m ${m.proto} --dport ${m.hostPort} -m comment --comment ${tag} -j DNAT --to-destination ${containerIp}:${m.containerPort}`,
    );
  }
  return [...lines, "COMMIT", ""].join("\n");
}

export function iptNetworkBatch(saved: IptSaved, network: NatNetwork): string {
  check({ tag: "x", containerIp: "0.0.0.0", network, mappings: [] });
  return ["*nat", ...iptBase(saved, network), "COMMIT", ""].join("\n");
}

/** The tag of a saved rule (`--comment X` or `--comment "X"`). */
export function iptRuleComment(rule: string): string | undefined {
  return /--comment "?([^" ]+)"?/.exec(rule)?.[1];
}

/** The published port of a saved DNAT rule of SKIFF. */
export function iptRulePort(rule: string): { hostPort: number; proto: string; hostIp?: string } | undefined {
  if (!rule.startsWith(`-A ${IPT_CHAIN} `)) return undefined;
  const port = /--dport (\d+)/.exec(rule), proto = /-p (\w+)/.exec(rule), ip = /-d ([\d.]+)\/32/.exec(rule);
  if (!port || !proto) return undefined;
  return { hostPort: Number(port[1]), proto: proto[1], hostIp: ip?.[1] };
}

/** Deletes the saved rules whose tag `drop` picks; "" when there is none. */
export function iptDeleteBatch(
  saved: IptSaved,
  drop: (tag: string) => boolean,
  table: "nat" | "filter" | "raw" = "nat",
): string {
  const doomed = saved.rules.filter((r) => {
    const tag = iptRuleComment(r);
    return tag !== undefined && drop(tag);
  });
  if (!doomed.length) return "";
  return [`*${table}`, ...doomed.map((r) => "-D" + r.slice(2)), "COMMIT", ""].join("\n");
}

// ---- the filter table's FORWARD chain --------------------------------------------------------
//
// A host whose FORWARD policy is DROP (docker sets it) drops the bridges' forwarded traffic, and an
// accept in skiff's own nft table cannot help: with nft every base chain at the hook must accept,
// and iptables' FORWARD is one of them. So, as docker and netavark do, skiff puts ACCEPT rules in
// iptables' filter table (whatever its backend): its own chain SKIFF-FORWARD, jumped to first
// from FORWARD, with the rules of each bridge tagged `skiff-net:<bridge>` (kept with the bridge's
// NAT, removed with the network).

export const IPT_FORWARD = "SKIFF-FORWARD";

/**
 * A bridge's forwarding rules: replies in, published ports in, between its containers, the way
 * out; an --internal network's: between its containers only.
 */
function iptForwardRules(bridge: string, internal: boolean): string[] {
  const tag = `-m comment --comment skiff-net:${bridge}`;
  if (internal) return [`-A ${IPT_FORWARD} -i ${bridge} -o ${bridge} ${tag} -j ACCEPT`];
  return [
    `-A ${IPT_FORWARD} -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`,
    `-A ${IPT_FORWARD} -o ${bridge} -m conntrack --ctstate DNAT ${tag} -j ACCEPT`,
    `-A ${IPT_FORWARD} -i ${bridge} ${tag} -j ACCEPT`,
  ];
}

/** The `iptables-restore --noflush` batch that makes a bridge's traffic pass FORWARD; "" when it does. */
export function iptForwardBatch(saved: IptSaved, network: NatNetwork, internal = false): string {
  check({ tag: "x", containerIp: "0.0.0.0", network, mappings: [] });
  const lines: string[] = [];
  if (!saved.chains.has(IPT_FORWARD)) lines.push(`:${IPT_FORWARD} - [0:0]`);
  if (!saved.rules.some((r) => r === `-A FORWARD -j ${IPT_FORWARD}`)) {
    lines.push(`-I FORWARD 1 -j ${IPT_FORWARD}`);
  }
  if (!hasRule(saved, IPT_FORWARD, "ACCEPT", `skiff-net:${network.bridge}`)) {
    lines.push(...iptForwardRules(network.bridge, internal));
  }
  return lines.length ? ["*filter", ...lines, "COMMIT", ""].join("\n") : "";
}

// ---- the raw table: no loopback destination from a bridge ------------------------------------

export const IPT_RAW = "SKIFF-PREROUTING";

/**
 * The `iptables-restore --noflush` batch that drops packets entering the bridge for 127.0.0.0/8
 * (see the head of this file: route_localnet would route them to the host's loopback services);
 * "" when it is in place.
 */
export function iptRawBatch(saved: IptSaved, network: NatNetwork): string {
  check({ tag: "x", containerIp: "0.0.0.0", network, mappings: [] });
  const lines: string[] = [];
  if (!saved.chains.has(IPT_RAW)) lines.push(`:${IPT_RAW} - [0:0]`);
  if (!saved.rules.some((r) => r === `-A PREROUTING -j ${IPT_RAW}`)) {
    lines.push(`-I PREROUTING 1 -j ${IPT_RAW}`);
  }
  if (!hasRule(saved, IPT_RAW, "DROP", `skiff-net:${network.bridge}`)) {
    lines.push(
      `-A ${IPT_RAW} -d 127.0.0.0/8 -i ${network.bridge} -m comment --comment skiff-net:${network.bridge} -j DROP`,
    );
  }
  return lines.length ? ["*raw", ...lines, "COMMIT", ""].join("\n") : "";
}

/** Removes a network's rules. */
export function iptNetworkRemoveBatch(saved: IptSaved, network: NatNetwork): string {
  return iptDeleteBatch(saved, (tag) => tag === `skiff-net:${network.bridge}`);
}
