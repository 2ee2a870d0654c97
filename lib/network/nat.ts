// Published ports and a network's NAT, applied: host ports chosen and checked, the rules of
// nat_plan.ts put into the kernel through `nft` (one `nft` call per container start), or through
// `iptables-save` + `iptables-restore --noflush` where nft is not installed; chosen at run time.
// Kernel NAT only: no userland proxy process stands in the data path.
//
// Host ports are a host-wide resource, shared by every state root and every other process: the
// allocation runs under one host-wide lock (/run/skiff/nat.lock: /run is root's alone, unlike the
// world-writable /run/lock), sees the ports of every root's live rules as taken, binds a socket to a
// candidate to learn whether another process holds it (docker's allocator does the same), and
// records the allocation in the state root (network/ports.json: which container holds what) before
// the rules go in. Everything here is synchronous: a resource release ("exit" phase) must be.

import { close, udpPortBind } from "../../ffi/libc.ts";
import { SkiffError } from "../errors.ts";
import { join } from "../path.ts";
import { processStartTime, readJsonOr, withLockSync, writeJsonAtomic } from "../state/fsutil.ts";
import { peekPorts, type PortsFile, portsFile, staleHolders } from "./ports_book.ts";
import type { StateRoot } from "../state/root.ts";
import {
  iptDeleteBatch,
  iptForwardBatch,
  iptNetworkBatch,
  iptNetworkRemoveBatch,
  iptRawBatch,
  iptRuleComment,
  iptRulePort,
  iptSetupBatch,
  type NatNetwork,
  NFT_TABLE,
  nftDeleteBatch,
  nftNetworkBatch,
  nftNetworkRemoveBatch,
  nftRulesBatch,
  nftStaleNetworksBatch,
  parseIptablesSave,
  parseNftNetworks,
  parseNftPorts,
  parseTag,
  rootKey,
  ruleTag,
} from "./nat_plan.ts";
import type { PortMapping, PublishRequest } from "./ports.ts";

export type Firewall = "nft" | "iptables";

/** The one line a bridge run gets on a host that has neither tool. */
export const NO_FIREWALL =
  "the bridge network needs nftables or iptables for its NAT rules, and neither `nft` nor `iptables` is installed: install one (apt-get install nftables), or run with --network none or --network host";

/** The executable's path when it is on PATH. */
function onPath(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const path = `${dir}/${name}`;
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** nft where it is installed, iptables otherwise; SKIFF_FIREWALL=nft|iptables picks one (tests). */
export function firewall(): Firewall | undefined {
  const forced = Deno.env.get("SKIFF_FIREWALL");
  if (forced === "nft" || forced === "iptables") {
    return onPath(forced === "nft" ? "nft" : "iptables-restore") ? forced : undefined;
  }
  if (onPath("nft")) return "nft";
  if (onPath("iptables-restore") && onPath("iptables-save")) return "iptables";
  return undefined;
}

/** The firewall, or the one-line error that says what to install. */
export function requireFirewall(): Firewall {
  const fw = firewall();
  if (!fw) throw new SkiffError(NO_FIREWALL, 125, { kind: "unavailable" });
  return fw;
}

/** Beyond this, an nft batch goes through a file: one argument may not exceed 128 KiB (MAX_ARG_STRLEN). */
const NFT_ARG_MAX = 64 * 1024;

function run(cmd: string, args: string[]): string {
  const batch = args[args.length - 1];
  if (cmd === "nft" && batch !== undefined && batch.length > NFT_ARG_MAX) {
    // a large publish (-p 20000-29999:20000-29999 is 10000 rules): E2BIG as an argument
    const file = Deno.makeTempFileSync({ prefix: "skiff-nft-" });
    try {
      Deno.writeTextFileSync(file, batch);
      return run(cmd, [...args.slice(0, -1), "-f", file]);
    } finally {
      removeQuietly(file);
    }
  }
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).outputSync();
  if (!out.success) {
    // one line: the tool's first line of complaint (nft's batch itself is not repeated)
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new SkiffError(`setting up NAT rules: ${cmd}: ${err || `exit ${out.code}`}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** iptables-restore reads its batch from a file (outputSync cannot feed stdin). */
function iptablesRestore(batch: string): void {
  const file = Deno.makeTempFileSync({ prefix: "skiff-iptables-" });
  Deno.writeTextFileSync(file, batch);
  try {
    run("iptables-restore", ["--noflush", "-w", "5", file]);
  } finally {
    try {
      Deno.removeSync(file);
    } catch { /* gone */ }
  }
}

/** The ports chain as nft lists it; undefined when skiff's table (or the chain) does not exist. */
function nftListPorts(): ReturnType<typeof parseNftPorts> | undefined {
  const out = new Deno.Command("nft", {
    args: ["-a", "list", "chain", "ip", NFT_TABLE, "ports"],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) return undefined; // no table, no chain: nothing published
  return parseNftPorts(new TextDecoder().decode(out.stdout));
}

const iptSaved = () => parseIptablesSave(run("iptables-save", ["-t", "nat"]));

/** A host port some live rule publishes (any state root's). */
interface LivePort {
  tag: string;
  proto: string;
  hostPort: number;
  /** absent: every address */
  hostIp?: string;
}

/** The live rules, listed once: the ports they publish, and a batch that deletes some of them. */
interface Snapshot {
  live: LivePort[];
  /** nft: skiff's table is not there (flushed by hand, a reboot without the bridge made anew). */
  tableMissing?: boolean;
  deleteBatch(drop: (tag: string) => boolean): string;
  saved?: ReturnType<typeof parseIptablesSave>;
}

function snapshot(fw: Firewall): Snapshot {
  if (fw === "nft") {
    const listed = nftListPorts();
    const rules = listed ?? [];
    return {
      tableMissing: listed === undefined,
      live: rules.flatMap((r) =>
        r.comment && r.hostPort
          ? [{ tag: r.comment, proto: r.proto!, hostPort: r.hostPort, hostIp: r.hostIp }]
          : []
      ),
      deleteBatch: (drop) => nftDeleteBatch(rules, drop),
    };
  }
  const saved = iptSaved();
  return {
    live: saved.rules.flatMap((rule) => {
      const tag = iptRuleComment(rule), port = iptRulePort(rule);
      return tag && port ? [{ tag, ...port }] : [];
    }),
    deleteBatch: (drop) => iptDeleteBatch(saved, drop),
    saved,
  };
}

function safeReadDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* gone */ }
}

// ---- nft: the index of skiff's DNAT rules -------------------------------------------------------

/**
 * nft only: skiff's DNAT rules on this host as skiff put them in, with the handles nft gave them
 * (`nft -e -a` echoes them), so publishing and unpublishing need no listing (each `nft` process
 * costs 3-5 ms here). It lives in /run beside the kernel's rules (a reboot clears both) and is only
 * read and written under HOST_LOCK. Whenever the rules may have changed behind it (a sweep by
 * listing, the table made anew: its handles start again from 1, so an old handle could name
 * another container's rule) it is dropped, and the next publish builds it again from one listing.
 */
interface NftIndex {
  rules: Record<string, { ports: Omit<LivePort, "tag">[]; handles: number[] }>;
}
/** Per network namespace (its inode): another namespace has other rules under the same names. */
const nftIndexPath = () => {
  let ns = "host";
  try {
    ns = String(Deno.statSync("/proc/self/ns/net").ino);
  } catch { /* no procfs */ }
  return `/run/skiff/nft-rules-${ns}.json`;
};

function readNftIndex(): NftIndex | undefined {
  try {
    const index = JSON.parse(Deno.readTextFileSync(nftIndexPath())) as NftIndex;
    return typeof index?.rules === "object" && index.rules !== null ? index : undefined;
  } catch {
    return undefined;
  }
}

function writeNftIndex(index: NftIndex): void {
  Deno.mkdirSync("/run/skiff", { recursive: true, mode: 0o700 });
  writeJsonAtomic(nftIndexPath(), index, 0o600, false);
}

function dropNftIndex(): void {
  try {
    Deno.removeSync(nftIndexPath());
  } catch { /* none */ }
}

/** The index from a listing of the ports chain (undefined when the table is not there). */
function nftIndexFromListing(): NftIndex | undefined {
  const listed = nftListPorts();
  if (!listed) return undefined;
  const index: NftIndex = { rules: {} };
  for (const r of listed) {
    if (!r.comment) continue;
    const entry = index.rules[r.comment] ??= { ports: [], handles: [] };
    entry.handles.push(r.handle);
    if (r.hostPort && r.proto) entry.ports.push({ proto: r.proto, hostPort: r.hostPort, hostIp: r.hostIp });
  }
  return index;
}

/** The handles of the rules an `nft -e -a` batch added, in order. */
function echoedHandles(out: string): number[] {
  return out.split("\n").filter((l) => l.startsWith("add rule ")).map((l) =>
    Number(/# handle (\d+)/.exec(l)?.[1])
  )
    .filter((h) => Number.isInteger(h) && h > 0);
}

const deleteByHandles = (handles: number[]) =>
  handles.map((h) => `delete rule ip ${NFT_TABLE} ports handle ${h}\n`).join("");

// ---- the allocation ---------------------------------------------------------------------------

const HOST_LOCK = "/run/skiff/nat.lock";

/** The ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), docker's default when unreadable. */
export function ephemeralRange(): [number, number] {
  try {
    const [a, b] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/).map(
      Number,
    );
    if (a > 0 && b >= a && b <= 65535) return [a, b];
  } catch { /* no procfs */ }
  return [32768, 60999];
}

const overlaps = (a: string | undefined, b: string) =>
  a === undefined || a === "0.0.0.0" || a === "" || b === "0.0.0.0" || b === "" || a === b;

/**
 * Sockets bound to the host ports this process published, per container: docker 28 keeps one per
 * published port while the container runs, so another process cannot bind the port (it would
 * succeed and never see a packet: the DNAT comes first). The publishing process (the foreground
 * run, or the supervisor of a detached container) lives as long as the container; the sockets are
 * closed with the container's "ports" release in this process (unpublishPorts), or with it.
 */
const heldPorts = new Map<string, { close(): void }[]>();

/** Closes the sockets held for a container's ports (idempotent). */
function releaseHeldPorts(id: string): void {
  for (const socket of heldPorts.get(id) ?? []) {
    try {
      socket.close();
    } catch { /* closed */ }
  }
  heldPorts.delete(id);
}

/**
 * Why the host port cannot be had: "allocated" (skiff holds it), "in use" (another socket). A free
 * port's socket is kept in `hold` (the caller keeps it for the container's life or closes it).
 */
function portProblem(
  proto: string,
  hostIp: string,
  port: number,
  taken: { proto: string; hostPort: number; hostIp?: string }[],
  hold: { close(): void }[],
): "allocated" | "in use" | undefined {
  if (taken.some((t) => t.proto === proto && t.hostPort === port && overlaps(t.hostIp, hostIp))) {
    return "allocated";
  }
  const ip = hostIp || "0.0.0.0";
  if (proto === "udp") {
    const fd = udpPortBind(ip, port);
    if (fd === undefined) return "in use";
    hold.push({ close: () => close(fd) });
    return undefined;
  }
  try {
    hold.push(Deno.listen({ hostname: ip, port, transport: "tcp" }));
    return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) return "in use";
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new SkiffError(
        `failed to bind host port for ${ip}:${port}/${proto}: cannot assign requested address`,
      );
    }
    // every published port is held open (see "Held ports"): a huge range meets the fd limit
    if (/os error 24\b/.test(String((e as Error)?.message))) {
      throw new SkiffError(
        `failed to bind host port for ${ip}:${port}/${proto}: too many open files (every published port is held open: publish fewer ports or raise the open file limit)`,
      );
    }
    throw e;
  }
}

export interface PublishContext {
  root: StateRoot;
  id: string;
  /** The container's name, as docker names its endpoint in the error. */
  name: string;
  /** The endpoint's id, shown in docker's error beside the name (the container's id when absent). */
  endpointId?: string;
  containerIp: string;
  network: NatNetwork;
  /** The host end of the container's veth (a port of the bridge): hairpin mode goes on for it. */
  hostInterface?: string;
  requests: PublishRequest[];
}

/** docker 28's wording: "failed to set up container networking: driver failed programming …". */
function programmingError(ctx: PublishContext, detail: string): SkiffError {
  return new SkiffError(
    `failed to set up container networking: driver failed programming external connectivity on endpoint ${ctx.name} (${
      ctx.endpointId ?? ctx.id
    }): ${detail}`,
    125,
    { kind: "conflict" },
  );
}

/** Host ports for every request: the asked ones checked, the others picked from the ephemeral range. */
function allocate(
  ctx: PublishContext,
  file: PortsFile,
  taken: LivePort[],
  hold: { close(): void }[],
): PortMapping[] {
  const made: PortMapping[] = [];
  const held = (): LivePort[] => [
    ...taken,
    ...Object.entries(file.containers).flatMap(([id, list]) =>
      list.map((a) => ({ tag: id, proto: a.proto, hostPort: a.hostPort, hostIp: a.hostIp }))
    ),
    ...made.map((m) => ({ tag: ctx.id, proto: m.proto, hostPort: m.hostPort, hostIp: m.hostIp })),
  ];
  const [low, high] = ephemeralRange();
  for (const r of ctx.requests) {
    const hostIp = r.hostIp || "0.0.0.0";
    const target = (port: number) => `${hostIp}:${port}:${ctx.containerIp}:${r.containerPort}/${r.proto}`;
    if (r.hostPortFirst !== 0 && r.hostPortFirst === r.hostPortLast) {
      const problem = portProblem(r.proto, hostIp, r.hostPortFirst, held(), hold);
      if (problem === "allocated") {
        throw programmingError(
          ctx,
          `Bind for ${hostIp}:${r.hostPortFirst} failed: port is already allocated`,
        );
      }
      if (problem === "in use") {
        throw programmingError(
          ctx,
          `failed to bind host port for ${target(r.hostPortFirst)}: address already in use`,
        );
      }
      made.push({ proto: r.proto, hostIp, hostPort: r.hostPortFirst, containerPort: r.containerPort });
      continue;
    }
    // a range to pick from: the given one from its start, else the ephemeral one round from `next`
    const [first, last] = r.hostPortFirst ? [r.hostPortFirst, r.hostPortLast] : [low, high];
    const start = r.hostPortFirst ? first : Math.min(Math.max(file.next[r.proto] ?? low, low), high);
    let chosen: number | undefined;
    for (let i = 0; i <= last - first; i++) {
      const port = first + ((start - first + i) % (last - first + 1));
      if (!portProblem(r.proto, hostIp, port, held(), hold)) {
        chosen = port;
        break;
      }
    }
    if (chosen === undefined) {
      throw programmingError(
        ctx,
        r.hostPortFirst
          ? `Bind for ${hostIp}:${first}-${last} failed: port is already allocated`
          : `all ports are allocated`,
      );
    }
    if (!r.hostPortFirst) file.next[r.proto] = chosen === high ? low : chosen + 1;
    made.push({ proto: r.proto, hostIp, hostPort: chosen, containerPort: r.containerPort });
  }
  return made;
}

function writeSetting(path: string, value: string): void {
  try {
    if (Deno.readTextFileSync(path).trim() === value) return;
  } catch { /* absent: the write says */ }
  Deno.writeTextFileSync(path, value);
}

const routeLocalnet = (bridge: string) => `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`;

/** Forwarding on: the bridge's traffic is routed. */
const forwarding = () => writeSetting("/proc/sys/net/ipv4/ip_forward", "1");

/** The bridge's interface index: a bridge made anew (after a reboot, or by hand) has a new one. */
function bridgeIndex(bridge: string): string | undefined {
  try {
    return Deno.readTextFileSync(`/sys/class/net/${bridge}/ifindex`).trim();
  } catch {
    return undefined;
  }
}

/** Where the NAT of a bridge incarnation is noted as in place, per tool (/run goes with a reboot). */
const natMarker = (fw: Firewall, bridge: string) => `/run/skiff/nat-${fw}-${bridge}`;

/**
 * What the marker holds: the bridge's ifindex and the rules' version, so a bridge whose NAT went in
 * before the loopback drop (version 2) gets its rules again from the next start.
 */
const markerText = (index: string) => `${index} v2`;

/**
 * Notes the network's NAT as in place, and makes 127.0.0.1 routable to the bridge (the DNAT of
 * 127.0.0.1:P needs it, with the masquerade of 127.0.0.0/8).
 */
function markNetworkNat(fw: Firewall, network: NatNetwork): void {
  writeSetting(routeLocalnet(network.bridge), "1");
  const index = bridgeIndex(network.bridge);
  if (index === undefined) return;
  Deno.mkdirSync("/run/skiff", { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(natMarker(fw, network.bridge), markerText(index));
}

function networkNatMarked(fw: Firewall, network: NatNetwork): boolean {
  try {
    const index = bridgeIndex(network.bridge);
    return index !== undefined &&
      Deno.readTextFileSync(natMarker(fw, network.bridge)) === markerText(index) &&
      Deno.readTextFileSync(routeLocalnet(network.bridge)).trim() === "1";
  } catch {
    return false;
  }
}

/**
 * The nft batch of a publish when the index is there: the container's leftover rules (a crashed
 * earlier start) out by handle, its DNAT rules in, their handles noted. When nft refuses (the table
 * flushed by hand, a handle gone), the index is dropped and the batch made again from a listing.
 */
function publishIndexed(
  index: NftIndex,
  tag: string,
  network: NatNetwork,
  endpoint: Parameters<typeof nftRulesBatch>[0],
  mappings: PortMapping[],
): void {
  const rules = nftRulesBatch(endpoint);
  let out: string;
  try {
    out = run("nft", ["-e", "-a", deleteByHandles(index.rules[tag]?.handles ?? []) + rules]);
  } catch {
    dropNftIndex();
    const listed = nftListPorts();
    const stale = nftDeleteBatch(listed ?? [], (t) => t === tag);
    if (listed) run("nft", [stale + rules]);
    else run("nft", [nftNetworkBatch(network) + rules]);
    const rebuilt = nftIndexFromListing();
    if (rebuilt) writeNftIndex(rebuilt);
    return;
  }
  const ports = mappings.map((m) => ({
    proto: m.proto,
    hostPort: m.hostPort,
    ...(m.hostIp === "0.0.0.0" ? {} : { hostIp: m.hostIp }),
  }));
  index.rules[tag] = { ports, handles: echoedHandles(out) };
  writeNftIndex(index);
}

/**
 * Publishes a starting container's ports and makes sure its network's NAT is in place: one host-wide
 * critical section that picks and checks the host ports, records them, and applies the rules in one
 * batch. Returns the mappings made (NetworkSettings.Ports). Throws docker's errors; nothing is left
 * behind when it does.
 */
export function publishPorts(ctx: PublishContext): PortMapping[] {
  const fw = requireFirewall();
  const { root, id } = ctx;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ctx.network.bridge)) {
    throw new SkiffError(`bad bridge name ${ctx.network.bridge}`);
  }
  forwarding();
  // with bridge-nf-call-iptables the DNAT of the container's own published port sends the frame
  // back out of the port it came in by: the bridge drops that unless the port is in hairpin mode
  if (ctx.requests.length && ctx.hostInterface && /^[A-Za-z0-9_.-]{1,15}$/.test(ctx.hostInterface)) {
    try {
      Deno.writeTextFileSync(`/sys/class/net/${ctx.hostInterface}/brport/hairpin_mode`, "1");
    } catch { /* not a bridge port: nothing to hairpin */ }
  }
  ensureNetworkNat(root, ctx.network);
  return withLockSync(HOST_LOCK, () => {
    const path = portsFile(root);
    const file = readJsonOr<PortsFile>(path, { containers: {}, next: {} });
    file.containers ??= {};
    file.next ??= {};
    const tag = ruleTag(root.path, id);
    // a restart: what this container held before is its own again
    delete file.containers[id];
    // nft: the index knows every root's ports (one listing builds it when it is not there)
    const index = fw === "nft" ? readNftIndex() ?? nftIndexFromListing() : undefined;
    const snap = index ? undefined : snapshot(fw);
    const live = index
      ? Object.entries(index.rules).flatMap(([t, e]) => e.ports.map((p) => ({ tag: t, ...p })))
      : snap!.live;
    const hold: { close(): void }[] = [];
    const closeHeld = () => hold.forEach((s) => s.close());
    let mappings: PortMapping[];
    try {
      mappings = allocate(ctx, file, live.filter((p) => p.tag !== tag), hold);
    } catch (e) {
      closeHeld();
      throw e;
    }
    file.holders ??= {};
    delete file.holders[id];
    if (mappings.length) {
      file.containers[id] = mappings.map((m) => ({ proto: m.proto, hostIp: m.hostIp, hostPort: m.hostPort }));
      file.holders[id] = { pid: Deno.pid, start: processStartTime(Deno.pid) };
    }
    Deno.mkdirSync(join(root.path, "network"), { recursive: true, mode: 0o700 });
    writeJsonAtomic(path, file, 0o600, false);
    const endpoint = { tag, containerIp: ctx.containerIp, network: ctx.network, mappings };
    try {
      // one call: leftovers of a crashed earlier start out, the rules in (for nft only the DNAT
      // rules: the table is there since ensureNetworkNat; made again if it was flushed by hand)
      if (index) publishIndexed(index, tag, ctx.network, endpoint, mappings);
      else if (fw === "iptables") {
        iptablesRestore(snap!.deleteBatch((t) => t === tag) + iptSetupBatch(snap!.saved!, endpoint));
      } else {
        // no table: made anew with the rules, and the index from what is there now
        run("nft", [nftNetworkBatch(ctx.network) + nftRulesBatch(endpoint)]);
        dropNftIndex();
        const rebuilt = nftIndexFromListing();
        if (rebuilt) writeNftIndex(rebuilt);
      }
      markNetworkNat(fw, ctx.network);
    } catch (e) {
      delete file.containers[id];
      delete file.holders[id];
      writeJsonAtomic(path, file, 0o600, false);
      closeHeld();
      throw e;
    }
    releaseHeldPorts(id);
    heldPorts.set(id, hold);
    return mappings;
  });
}

function removeRules(fw: Firewall, _root: StateRoot, drop: (tag: string) => boolean): void {
  const batch = snapshot(fw).deleteBatch(drop);
  if (!batch) return;
  if (fw === "nft") run("nft", [batch]);
  else iptablesRestore(batch);
}

/** nft: a container's rules out by the handles the index has; by a listing when it has none or nft refuses. */
function unpublishIndexed(root: StateRoot, tag: string): void {
  const index = readNftIndex();
  const entry = index?.rules[tag];
  if (index && entry) {
    try {
      if (entry.handles.length) run("nft", [deleteByHandles(entry.handles)]);
      delete index.rules[tag];
      writeNftIndex(index);
      return;
    } catch {
      dropNftIndex(); // the rules changed behind it
    }
  }
  removeRules("nft", root, (t) => t === tag);
}

/**
 * Removes a container's rules and frees its host ports (idempotent: nothing published, nothing
 * done, for the price of one small read). The release of the "ports" resource, on every path a
 * run ends. Rules exist only while the bookkeeping names the container: they are written after it
 * and removed before it.
 */
export function unpublishPorts(root: StateRoot, id: string): void {
  releaseHeldPorts(id);
  if (!peekPorts(root)?.containers?.[id]) return;
  const path = portsFile(root);
  const tag = ruleTag(root.path, id);
  const fw = firewall();
  withLockSync(HOST_LOCK, () => {
    if (fw === "nft") unpublishIndexed(root, tag);
    else if (fw) removeRules(fw, root, (t) => t === tag);
    const file = readJsonOr<PortsFile | undefined>(path, undefined);
    if (file?.containers?.[id]) {
      delete file.containers[id];
      delete file.holders?.[id];
      writeJsonAtomic(path, file, 0o600, false);
    }
  });
}

/**
 * The reconcile step: rules and allocations of this state root whose container does not run
 * (`alive(id)` false) and whose publishing skiff is gone too (a start in progress is not swept).
 * `everything`: every rule of the root, whatever the bookkeeping says (the tests' leak check).
 * Rules of other roots are never touched. Returns the containers swept.
 */
export function sweepPorts(root: StateRoot, alive: (id: string) => boolean, everything = false): string[] {
  const stale = (file: PortsFile | undefined) => staleHolders(file, alive, everything);
  if (!everything && !stale(peekPorts(root)).length) return [];
  const fw = firewall();
  const key = rootKey(root.path);
  const gone = new Set<string>();
  withLockSync(HOST_LOCK, () => {
    const path = portsFile(root);
    const file = readJsonOr<PortsFile | undefined>(path, undefined);
    const doomed = new Set(stale(file));
    if (fw === "nft") dropNftIndex(); // rules go by a listing: the next publish lists again
    if (fw) {
      removeRules(fw, root, (tag) => {
        const parsed = parseTag(tag);
        if (!parsed || parsed.rootKey !== key || !(everything || doomed.has(parsed.id))) return false;
        gone.add(parsed.id);
        return true;
      });
    }
    if (!file?.containers || !doomed.size) return;
    for (const id of doomed) {
      delete file.containers[id];
      delete file.holders?.[id];
      gone.add(id);
    }
    writeJsonAtomic(path, file, 0o600, false);
  });
  return [...gone];
}

/**
 * A network's NAT (its way out, and what 127.0.0.1 and hairpin need) without ports: applied once
 * per bridge (see markNetworkNat), so a run on the bridge that publishes nothing pays one small
 * read here, not an nft call.
 */
export function ensureNetworkNat(_root: StateRoot, network: NatNetwork): void {
  const fw = requireFirewall();
  if (networkNatMarked(fw, network)) return;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(network.bridge)) {
    throw new SkiffError(`bad bridge name ${network.bridge}`);
  }
  forwarding();
  withLockSync(HOST_LOCK, () => {
    // once per bridge: the entries of bridges that are gone go in the same call
    const exists = (bridge: string) => bridgeIndex(bridge) !== undefined;
    if (fw === "nft") {
      const listed = new Deno.Command("nft", {
        args: ["-j", "list", "table", "ip", NFT_TABLE],
        stdout: "piped",
        stderr: "null",
      })
        .outputSync();
      const stale = listed.success
        ? nftStaleNetworksBatch(parseNftNetworks(new TextDecoder().decode(listed.stdout)), exists)
        : "";
      run("nft", [stale + nftNetworkBatch(network)]);
      dropNftIndex(); // the table may be new: its handles start again
    } else {
      const saved = iptSaved();
      const stale = iptDeleteBatch(saved, (tag) => tag.startsWith("skiff-net:") && !exists(tag.slice(10)));
      iptablesRestore(stale + iptNetworkBatch(saved, network));
      loopbackDrop(network, exists);
    }
    forwardAccept(network, exists);
    markNetworkNat(fw, network);
    for (const entry of safeReadDir("/run/skiff")) {
      const m = /^nat-(?:nft|iptables)-(.+)$/.exec(entry);
      if (m && !exists(m[1])) removeQuietly(`/run/skiff/${entry}`);
    }
  });
}

/**
 * The bridge's ACCEPT rules in iptables' filter FORWARD (nat_plan.ts iptForwardBatch), whichever
 * tool does the NAT: a FORWARD policy of DROP would drop its traffic otherwise. The rules of
 * bridges that are gone go in the same call. Nothing without iptables (no such chain to pass).
 */
function forwardAccept(network: NatNetwork, exists: (bridge: string) => boolean, internal = false): void {
  if (!onPath("iptables-save") || !onPath("iptables-restore")) return;
  const saved = parseIptablesSave(run("iptables-save", ["-t", "filter"]), "filter");
  const stale = iptDeleteBatch(
    saved,
    (tag) => tag.startsWith("skiff-net:") && tag !== `skiff-net:${network.bridge}` && !exists(tag.slice(10)),
    "filter",
  );
  const batch = stale + iptForwardBatch(saved, network, internal);
  if (batch) iptablesRestore(batch);
}

/**
 * iptables: the bridge's drop of loopback destinations in the raw table (nat_plan.ts iptRawBatch;
 * nft has it in skiff's table), with the rules of bridges that are gone.
 */
function loopbackDrop(network: NatNetwork, exists: (bridge: string) => boolean): void {
  const saved = parseIptablesSave(run("iptables-save", ["-t", "raw"]), "raw");
  const stale = iptDeleteBatch(
    saved,
    (tag) => tag.startsWith("skiff-net:") && tag !== `skiff-net:${network.bridge}` && !exists(tag.slice(10)),
    "raw",
  );
  const batch = stale + iptRawBatch(saved, network);
  if (batch) iptablesRestore(batch);
}

/**
 * An --internal network's FORWARD rules (between its containers only; it has no NAT): once per
 * bridge, noted as the NAT is (`/run/skiff/fwd-<bridge>` with the bridge's ifindex).
 */
export function ensureInternalForward(network: NatNetwork): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(network.bridge)) {
    throw new SkiffError(`bad bridge name ${network.bridge}`);
  }
  const marker = `/run/skiff/fwd-${network.bridge}`;
  const index = bridgeIndex(network.bridge);
  try {
    if (index !== undefined && Deno.readTextFileSync(marker) === index) return;
  } catch { /* not yet */ }
  withLockSync(HOST_LOCK, () => {
    forwardAccept(network, (bridge) => bridgeIndex(bridge) !== undefined, true);
    if (index === undefined) return;
    Deno.mkdirSync("/run/skiff", { recursive: true, mode: 0o700 });
    Deno.writeTextFileSync(marker, index);
  });
}

/** Removes an --internal network's FORWARD rules. */
export function removeInternalForward(network: NatNetwork): void {
  if (!onPath("iptables-save") || !onPath("iptables-restore")) return;
  withLockSync(HOST_LOCK, () => {
    removeQuietly(`/run/skiff/fwd-${network.bridge}`);
    try {
      const saved = parseIptablesSave(run("iptables-save", ["-t", "filter"]), "filter");
      const batch = iptDeleteBatch(saved, (tag) => tag === `skiff-net:${network.bridge}`, "filter");
      if (batch) iptablesRestore(batch);
    } catch { /* no filter table */ }
  });
}

/**
 * Removes a network's NAT (its containers' rules are gone with them), through the firewall in use or
 * the one named (the bridge's collector removes both backends' entries: runs may have used either).
 */
export function removeNetworkNat(network: NatNetwork, fw: Firewall | undefined = firewall()): void {
  if (!fw) return;
  withLockSync(HOST_LOCK, () => {
    try {
      Deno.removeSync(natMarker(fw, network.bridge));
    } catch { /* not marked */ }
    if (fw === "nft") {
      try {
        run("nft", [nftNetworkRemoveBatch(network)]);
      } catch { /* not there */ }
    } else {
      const batch = iptNetworkRemoveBatch(iptSaved(), network);
      if (batch) iptablesRestore(batch);
      try {
        const raw = parseIptablesSave(run("iptables-save", ["-t", "raw"]), "raw");
        const drop = iptDeleteBatch(raw, (tag) => tag === `skiff-net:${network.bridge}`, "raw");
        if (drop) iptablesRestore(drop);
      } catch { /* no raw table */ }
    }
    if (onPath("iptables-save") && onPath("iptables-restore")) {
      try {
        const saved = parseIptablesSave(run("iptables-save", ["-t", "filter"]), "filter");
        const batch = iptDeleteBatch(saved, (tag) => tag === `skiff-net:${network.bridge}`, "filter");
        if (batch) iptablesRestore(batch);
      } catch { /* no filter table */ }
    }
  });
}

/**
 * Deletes skiff's nft table once no bridge is in its set (the default bridge's collector, gc.ts): its
 * base chains are made again with the next bridge's NAT. iptables' empty SKIFF chains stay.
 */
export function dropTableIfUnused(): void {
  if (firewall() !== "nft") return;
  withLockSync(HOST_LOCK, () => {
    let listed: string;
    try {
      listed = run("nft", ["-j", "list", "set", "ip", NFT_TABLE, "bridges"]);
    } catch {
      return; // no table (or no set): nothing to drop
    }
    const elems = (JSON.parse(listed).nftables as { set?: { elem?: unknown[] } }[])
      .find((o) => o.set)?.set?.elem ?? [];
    if (elems.length) return;
    try {
      run("nft", [`delete table ip ${NFT_TABLE}`]);
    } catch { /* gone meanwhile */ }
  });
}

/** The tags of skiff's live DNAT rules, through the firewall in use. */
export function liveRuleTags(): string[] {
  const fw = firewall();
  if (!fw) return [];
  return snapshot(fw).live.map((p) => p.tag);
}

/** The tags of skiff's DNAT rules in nft's table and in iptables' chains, whichever exist (leak checks). */
export function allRuleTags(): string[] {
  const tags: string[] = [];
  if (onPath("nft")) tags.push(...snapshot("nft").live.map((p) => p.tag));
  if (onPath("iptables-save")) {
    try {
      tags.push(...snapshot("iptables").live.map((p) => p.tag));
    } catch { /* no nat table */ }
  }
  return tags;
}
