// Published and exposed ports: docker's `-p`, `-P` and `--expose` specs parsed into what docker
// stores (HostConfig.PortBindings, HostConfig.PublishAllPorts, Config.ExposedPorts), the bindings a
// start must make, and docker's ways of showing them (inspect NetworkSettings.Ports, the PORTS
// column of ps, `skiff port`). Pure: no state, no kernel; lib/network/nat.ts applies them.
//
// The parsing follows docker's go-connections nat.ParsePortSpec and the CLI's --expose handling,
// with their error wording (the CLI reports them with exit 125 before anything is created).

import { ClientCheckError, SkiffError } from "../errors.ts";

export type Proto = "tcp" | "udp" | "sctp";

/** One HostConfig.PortBindings / NetworkSettings.Ports entry. */
export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** "80/tcp" → its bindings (PortBindings: as asked; NetworkSettings.Ports: as made, null = exposed only). */
export type PortMap = Record<string, PortBinding[] | null>;

/** What the publish flags give a container (stored as docker stores them). */
export interface PortSettings {
  /** Config.ExposedPorts: "80/tcp" → {} (the image's are merged at create). */
  exposedPorts: Record<string, Record<string, never>>;
  /** HostConfig.PortBindings. */
  portBindings: PortMap;
  /** HostConfig.PublishAllPorts (-P). */
  publishAll: boolean;
}

/** One port to publish at start: a container port and where on the host (port 0: any free one). */
export interface PublishRequest {
  proto: Proto;
  containerPort: number;
  /** "" or "0.0.0.0": every address of the host. */
  hostIp: string;
  /** First and last acceptable host port; 0-0 = one from the ephemeral range. */
  hostPortFirst: number;
  hostPortLast: number;
}

/** A port that is published: a host address and port forwarded to a container port. */
export interface PortMapping {
  proto: Proto;
  /** "0.0.0.0" for every address. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

const bad = (message: string) => new ClientCheckError(message);

/** Go's strconv.ParseUint(s, 10, 16), with its error text; undefined when it fails. */
function parseUint16(text: string): { value?: number; error?: string } {
  if (!/^[0-9]+$/.test(text)) return { error: `strconv.ParseUint: parsing "${text}": invalid syntax` };
  const value = Number(text);
  if (value > 65535) return { error: `strconv.ParseUint: parsing "${text}": value out of range` };
  return { value };
}

/** nat.ParsePortRange: "80" or "80-90"; throws the inner error text. */
function parsePortRange(text: string): [number, number] {
  if (text === "") throw new Error("empty string specified for ports");
  if (!text.includes("-")) {
    const p = parseUint16(text);
    if (p.error) throw new Error(p.error);
    return [p.value!, p.value!];
  }
  const [a, b] = text.split("-");
  const start = parseUint16(a);
  if (start.error) throw new Error(start.error);
  const end = parseUint16(b);
  if (end.error) throw new Error(end.error);
  if (end.value! < start.value!) throw new Error(`invalid range specified for port: ${text}`);
  return [start.value!, end.value!];
}

/** nat.SplitProtoPort: "80/udp" → ["udp", "80"]; no proto → tcp. */
function splitProtoPort(raw: string): [string, string] {
  const parts = raw.split("/");
  if (raw.length === 0 || parts.length === 0 || parts[0].length === 0) return ["", ""];
  if (parts.length === 1) return ["tcp", raw];
  if (parts[1].length === 0) return ["tcp", parts[0]];
  return [parts[1], parts[0]];
}

/** [IP:][HOSTPORT:]CONTAINERPORT: the IP may itself hold colons (IPv6 in brackets). */
function splitParts(raw: string): [string, string, string] {
  const parts = raw.split(":");
  const n = parts.length;
  const containerPort = parts[n - 1];
  switch (n) {
    case 1:
      return ["", "", containerPort];
    case 2:
      return ["", parts[0], containerPort];
    case 3:
      return [parts[0], parts[1], containerPort];
    default:
      return [parts.slice(0, n - 2).join(":"), parts[n - 2], containerPort];
  }
}

export function isIPv4(text: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255 && !(o.length > 1 && o.startsWith("0")));
}

/** Go's net.ParseIP, enough of it: dotted IPv4, or IPv6 (with :: and an IPv4 tail). */
export function isIP(text: string): boolean {
  if (isIPv4(text)) return true;
  if (!text.includes(":") || !/^[0-9a-fA-F:.]+$/.test(text)) return false;
  let groups = text.split(":");
  const tail = groups[groups.length - 1];
  let extra = 0;
  if (tail.includes(".")) {
    if (!isIPv4(tail)) return false;
    groups = groups.slice(0, -1);
    groups.push("0");
    extra = 1; // an IPv4 tail is two groups
  }
  const double = text.indexOf("::");
  if (double !== -1 && text.indexOf("::", double + 1) !== -1) return false;
  const filled = groups.filter((g) => g !== "");
  if (!filled.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const count = filled.length + extra;
  return double !== -1 ? count <= 7 : count === 8 && groups.every((g) => g !== "");
}

const PROTOS = new Set(["tcp", "udp", "sctp"]);

/** One `-p` spec as docker's nat.ParsePortSpec: its (container port, binding) pairs. */
export function parsePortSpec(raw: string): { port: string; binding: PortBinding }[] {
  let [ip, hostPort, containerPort] = splitParts(raw);
  let proto: string;
  [proto, containerPort] = splitProtoPort(containerPort);
  if (ip !== "" && ip[0] === "[") {
    // [::1]: Go's SplitHostPort(ip + ":") takes the brackets off
    const m = /^\[([^\[\]]*)\]$/.exec(ip);
    if (!m) throw bad(`invalid IP address ${ip}: address ${ip}:: missing port in address`);
    ip = m[1];
  }
  if (ip !== "" && !isIP(ip)) throw bad(`invalid IP address: ${ip}`);
  if (containerPort === "") throw bad(`no port specified: ${raw}<empty>`);
  let start: number, end: number;
  try {
    [start, end] = parsePortRange(containerPort);
  } catch {
    throw bad(`invalid containerPort: ${containerPort}`);
  }
  let hostStart = 0, hostEnd = 0;
  if (hostPort !== "") {
    try {
      [hostStart, hostEnd] = parsePortRange(hostPort);
    } catch {
      throw bad(`invalid hostPort: ${hostPort}`);
    }
  }
  // a host range with one container port: publish it on any free port of that range
  if (hostPort !== "" && end - start !== hostEnd - hostStart && end !== start) {
    throw bad(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
  }
  if (!PROTOS.has(proto.toLowerCase())) throw bad(`invalid proto: ${proto}`);
  const out: { port: string; binding: PortBinding }[] = [];
  for (let i = 0; i <= end - start; i++) {
    let host = hostPort === "" ? "" : String(hostStart + i);
    if (start === end && hostStart !== hostEnd) host = `${hostStart}-${hostEnd}`;
    out.push({ port: `${start + i}/${proto.toLowerCase()}`, binding: { HostIp: ip, HostPort: host } });
  }
  return out;
}

/** `--expose PORT[/PROTO]` or a range: the container ports it adds. */
export function parseExpose(raw: string): string[] {
  if (raw.includes(":")) throw bad(`invalid port format for --expose: ${raw}`);
  const [proto, port] = splitProtoPort(raw);
  let start: number, end: number;
  try {
    [start, end] = parsePortRange(port);
  } catch (e) {
    throw bad(`invalid range format for --expose: ${raw}, error: ${(e as Error).message}`);
  }
  if (!PROTOS.has(proto.toLowerCase())) throw bad(`invalid proto: ${proto}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto.toLowerCase()}`);
  return out;
}

/**
 * docker's long form `--publish target=80,published=8080,protocol=udp,host_ip=…` (the CLI turns it
 * into the short one before parsing).
 */
function standardNotation(raw: string): string {
  if (!raw.includes("=")) return raw;
  const fields: Record<string, string> = {};
  for (const part of raw.split(",")) {
    const eq = part.indexOf("=");
    if (eq === -1) throw bad(`invalid field '${part}' must be a key=value pair`);
    const key = part.slice(0, eq).trim().toLowerCase(), value = part.slice(eq + 1).trim();
    if (!["target", "published", "protocol", "mode", "host_ip"].includes(key)) {
      throw bad(`invalid field key ${key}`);
    }
    fields[key] = value;
  }
  if (!fields.target) throw bad('missing mandatory field "target"');
  const ip = fields.host_ip
    ? (fields.host_ip.includes(":") ? `[${fields.host_ip}]` : fields.host_ip) + ":"
    : "";
  const published = fields.published ?? "";
  return `${ip}${published || ip ? published + ":" : ""}${fields.target}/${fields.protocol || "tcp"}`;
}

/** -p, -P and --expose of a run request, as docker stores them. */
export function portSettings(publish: string[], publishAll: boolean, expose: string[]): PortSettings {
  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: PortMap = {};
  for (const raw of publish) {
    for (const { port, binding } of parsePortSpec(standardNotation(raw))) {
      exposedPorts[port] = {};
      (portBindings[port] ??= []).push(binding);
    }
  }
  for (const raw of expose) for (const port of parseExpose(raw)) exposedPorts[port] = {};
  return { exposedPorts, portBindings, publishAll };
}

/**
 * What docker's daemon says of ports in a network mode: an error for `container:NAME` (the
 * namespace is another container's), a warning for `host` (nothing to publish: the ports are the
 * host's already). Returns the warnings.
 */
export function checkPortsForMode(mode: string, ports: PortSettings | undefined): string[] {
  const published = Object.keys(ports?.portBindings ?? {}).length > 0 || (ports?.publishAll ?? false);
  if (mode.startsWith("container:")) {
    if (published) {
      throw new SkiffError("conflicting options: port publishing and the container type network mode");
    }
    if (Object.keys(ports?.exposedPorts ?? {}).length) {
      throw new SkiffError("conflicting options: port exposing and the container type network mode");
    }
  }
  if (mode === "host" && Object.keys(ports?.portBindings ?? {}).length) {
    return ["Published ports are discarded when using host network mode"];
  }
  return [];
}

/** A port key as docker stores it ("80/tcp"): anything else never reaches a rule. */
const PORT_KEY = /^([1-9]\d{0,4})\/(tcp|udp|sctp)$/;

/**
 * An image's exposed port key as keys: an image's config is its author's input (docker's builder
 * stores "8000-8002/tcp" as three keys, skiff's as one), so a range is expanded and anything that
 * is not a port is refused before it could reach a rule's text.
 */
function exposedKeys(key: string): string[] {
  const m = /^(\d{1,5})-(\d{1,5})\/(tcp|udp|sctp)$/.exec(key);
  if (!m) return [key];
  const [first, last] = [Number(m[1]), Number(m[2])];
  if (first < 1 || last > 65535 || last < first) throw new SkiffError(`invalid containerPort: ${key}`);
  return Array.from({ length: last - first + 1 }, (_, i) => `${first + i}/${m[3]}`);
}

/** "80/tcp" → [80, "tcp"]. */
export function splitPortKey(key: string): [number, Proto] {
  const [port, proto] = key.split("/");
  return [Number(port), (proto || "tcp") as Proto];
}

const portOrder = (a: string, b: string) => {
  const [pa, ta] = splitPortKey(a), [pb, tb] = splitPortKey(b);
  return pa - pb || ta.localeCompare(tb);
};

/**
 * What a start must publish: every binding of PortBindings, and with -P every exposed port that
 * has none (on a free host port, every address), in port order.
 */
export function publishRequests(
  portBindings: PortMap | undefined | null,
  exposedPorts: Record<string, unknown> | undefined | null,
  publishAll: boolean,
): PublishRequest[] {
  const out: PublishRequest[] = [];
  const bindings = portBindings ?? {};
  const keys = new Set(Object.keys(bindings));
  if (publishAll) {
    for (const k of Object.keys(exposedPorts ?? {})) for (const p of exposedKeys(k)) keys.add(p);
  }
  for (const key of [...keys].sort(portOrder)) {
    const valid = PORT_KEY.exec(key);
    if (!valid || Number(valid[1]) > 65535) throw new SkiffError(`invalid containerPort: ${key}`);
    const [containerPort, proto] = splitPortKey(key);
    const list = bindings[key]?.length ? bindings[key]! : [{ HostIp: "", HostPort: "" }];
    for (const b of list) {
      let first = 0, last = 0;
      if (b.HostPort !== "") [first, last] = parsePortRange(b.HostPort);
      out.push({ proto, containerPort, hostIp: b.HostIp, hostPortFirst: first, hostPortLast: last });
    }
  }
  return out;
}

/** Only IPv4 is published: an IPv6 host address cannot be forwarded to the container's IPv4 one. */
export function checkPublishable(requests: PublishRequest[]): void {
  for (const r of requests) {
    if (r.hostIp !== "" && !isIPv4(r.hostIp)) {
      throw new SkiffError(
        `publishing on the IPv6 address ${r.hostIp} is not supported: skiff's networks are IPv4 only`,
      );
    }
    if (r.proto === "sctp") throw new SkiffError("publishing sctp ports is not supported");
  }
}

/** NetworkSettings.Ports of a running container: the made mappings, exposed-only ports as null. */
export function networkPorts(
  exposedPorts: Record<string, unknown> | undefined | null,
  made: PortMapping[],
): PortMap {
  const out: PortMap = {};
  const keys = new Set([
    ...Object.keys(exposedPorts ?? {}),
    ...made.map((m) => `${m.containerPort}/${m.proto}`),
  ]);
  for (const key of [...keys].sort(portOrder)) {
    const bindings = made.filter((m) => `${m.containerPort}/${m.proto}` === key)
      .map((m) => ({ HostIp: m.hostIp, HostPort: String(m.hostPort) }));
    out[key] = bindings.length ? bindings : null;
  }
  return out;
}

/**
 * NetworkSettings.Ports of a container: `published` is set (maybe empty) while it runs with an
 * endpoint of its own on a bridge; a stopped container, or one without such an endpoint, has none.
 */
export function runningPorts(
  running: boolean,
  exposedPorts: Record<string, unknown> | undefined | null,
  published: PortMapping[] | undefined,
): PortMap {
  if (!running || published === undefined) return {};
  return networkPorts(exposedPorts, published);
}

/** Go's net.JoinHostPort. */
const joinHostPort = (ip: string, port: string | number) =>
  ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;

interface ListedPort {
  ip: string;
  privatePort: number;
  publicPort: number;
  type: string;
}

/** docker's PORTS column (api/types DisplayablePorts): consecutive ports grouped, mappings after. */
export function displayablePorts(ports: PortMap | undefined | null): string {
  const listed: ListedPort[] = [];
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    const [privatePort, type] = splitPortKey(key);
    if (!bindings?.length) listed.push({ ip: "", privatePort, publicPort: 0, type });
    else {
      for (const b of bindings) {
        listed.push({ ip: b.HostIp, privatePort, publicPort: Number(b.HostPort) || 0, type });
      }
    }
  }
  listed.sort((a, b) =>
    a.privatePort - b.privatePort || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) ||
    a.publicPort - b.publicPort ||
    (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)
  );
  const groups = new Map<string, { first: number; last: number }>();
  const order: string[] = [];
  const result: string[] = [];
  const hostMappings: string[] = [];
  for (const p of listed) {
    let key = p.type;
    if (p.ip !== "") {
      if (p.publicPort !== p.privatePort) {
        hostMappings.push(`${joinHostPort(p.ip, p.publicPort)}->${p.privatePort}/${p.type}`);
        continue;
      }
      key = `${p.ip}/${p.type}`;
    }
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: p.privatePort, last: p.privatePort });
      order.push(key);
      continue;
    }
    if (p.privatePort === group.last + 1) {
      group.last = p.privatePort;
      continue;
    }
    result.push(formGroup(key, group.first, group.last));
    groups.set(key, { first: p.privatePort, last: p.privatePort });
  }
  for (const key of order) result.push(formGroup(key, groups.get(key)!.first, groups.get(key)!.last));
  return [...result, ...hostMappings].join(", ");
}

/** docker's formGroup (an IPv6 key splits at its first "/" only, as docker's does). */
function formGroup(key: string, first: number, last: number): string {
  const parts = key.split("/");
  let type = parts[0], ip = "";
  if (parts.length > 1) {
    ip = parts[0];
    type = parts[1];
  }
  let group = String(first);
  if (first !== last) group = `${group}-${last}`;
  if (ip !== "") group = `${ip}:${group}->${group}`;
  return `${group}/${type}`;
}

/** Go's sortorder.NaturalLess: digit runs compare as numbers. */
function naturalLess(a: string, b: string): number {
  const re = /(\d+|\D+)/g;
  const pa = a.match(re) ?? [], pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i], y = pb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x), dy = /^\d/.test(y);
    if (dx && dy) return Number(x) - Number(y) || x.length - y.length;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The lines `docker port CONTAINER [PORT[/PROTO]]` prints; throws docker's errors. */
export function portCommandLines(ports: PortMap | undefined | null, name: string, wanted?: string): string[] {
  const out: string[] = [];
  if (wanted !== undefined) {
    const slash = wanted.indexOf("/");
    const port = slash === -1 ? wanted : wanted.slice(0, slash);
    const proto = slash === -1 || wanted.slice(slash + 1) === "" ? "tcp" : wanted.slice(slash + 1);
    const parsed = parseUint16(port);
    if (parsed.error) throw new SkiffError(`invalid port (${port}): ${parsed.error}`, 1);
    const frontends = ports?.[`${port}/${proto}`];
    if (!frontends?.length) {
      throw new SkiffError(`No public port '${port}/${proto}' published for ${name}`, 1);
    }
    for (const f of frontends) out.push(joinHostPort(f.HostIp, f.HostPort));
  } else {
    for (const [from, frontends] of Object.entries(ports ?? {})) {
      for (const f of frontends ?? []) out.push(`${from} -> ${joinHostPort(f.HostIp, f.HostPort)}`);
    }
  }
  return out.sort(naturalLess);
}
