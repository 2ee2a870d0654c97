// rtnetlink messages, built and parsed as bytes (no I/O here: rtnl.ts sends them). Layouts are the
// kernel's uapi structs (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, veth.h), little-endian
// on every architecture skiff runs on (x86-64, arm64); tests/netlink_unit_test.ts checks them
// against bytes captured from iproute2 talking to this kernel (attributes in iproute2's order).

import { parseMac } from "./mode.ts";

export const NLMSG = { ERROR: 2, DONE: 3 } as const;
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  NEWROUTE: 24,
  GETROUTE: 26,
} as const;
export const NLM_F = { REQUEST: 1, ACK: 4, DUMP: 0x300, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400 } as const;
export const IFLA = {
  ADDRESS: 1,
  IFNAME: 3,
  MASTER: 10,
  LINKINFO: 18,
  NET_NS_PID: 19,
  AF_SPEC: 26,
  NET_NS_FD: 28,
} as const;
const AF_INET6 = 10, IFLA_INET6_ADDR_GEN_MODE = 8, IN6_ADDR_GEN_MODE_NONE = 1;
export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
export const VETH_INFO_PEER = 1;
export const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
export const RTA = { DST: 1, OIF: 4, GATEWAY: 5 } as const;
export const IFF_UP = 1;
const AF_UNSPEC = 0, AF_INET = 2;
const RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RT_SCOPE_UNIVERSE = 0, RTN_UNICAST = 1;
const NLMSG_HDRLEN = 16;

const align4 = (n: number) => (n + 3) & ~3;
const encoder = new TextEncoder();

/** One attribute: type and payload (bytes, or nested attributes). */
export interface Attr {
  type: number;
  value: Uint8Array | Attr[];
}

export const u32Attr = (type: number, value: number): Attr => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value, true);
  return { type, value: b };
};
/** A NUL-terminated string attribute (IFLA_IFNAME). */
export const stringAttr = (type: number, value: string): Attr => ({
  type,
  value: encoder.encode(value + "\0"),
});
export const bytesAttr = (type: number, value: Uint8Array): Attr => ({ type, value });
/** A string attribute without the NUL, as iproute2 sends IFLA_INFO_KIND (the kernel takes both). */
const kindAttr = (kind: string): Attr => ({ type: IFLA_INFO.KIND, value: encoder.encode(kind) });

function attrsLength(attrs: Attr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(4 + payloadLength(a));
  return n;
}
const payloadLength = (a: Attr) => (a.value instanceof Uint8Array ? a.value.length : attrsLength(a.value));

function writeAttrs(view: DataView, bytes: Uint8Array, offset: number, attrs: Attr[]): number {
  for (const a of attrs) {
    const len = 4 + payloadLength(a);
    view.setUint16(offset, len, true);
    view.setUint16(offset + 2, a.type, true);
    if (a.value instanceof Uint8Array) bytes.set(a.value, offset + 4);
    else writeAttrs(view, bytes, offset + 4, a.value);
    offset += align4(len);
  }
  return offset;
}

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(index = 0, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[0] = AF_UNSPEC;
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** A whole message: nlmsghdr, the fixed header of its family, its attributes. */
export function message(
  type: number,
  flags: number,
  seq: number,
  header: Uint8Array,
  attrs: Attr[] = [],
): Uint8Array<ArrayBuffer> {
  const length = NLMSG_HDRLEN + align4(header.length) + attrsLength(attrs);
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, type, true);
  view.setUint16(6, flags, true);
  view.setUint32(8, seq, true);
  view.setUint32(12, 0, true); // port id: the kernel's
  bytes.set(header, NLMSG_HDRLEN);
  writeAttrs(view, bytes, NLMSG_HDRLEN + align4(header.length), attrs);
  return bytes;
}

const REQUEST_ACK = NLM_F.REQUEST | NLM_F.ACK;
const CREATE_NEW = REQUEST_ACK | NLM_F.CREATE | NLM_F.EXCL;

/** IPv4 dotted quad → 4 bytes. */
export function ipv4Bytes(address: string): Uint8Array {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return new Uint8Array(parts);
}

/** An Ethernet address's length. */
export const ETH_ALEN = 6;

/** "02:42:0a:59:00:02" → 6 bytes (an Ethernet address: what a veth takes). */
export function macBytes(mac: string): Uint8Array {
  const bytes = parseMac(mac);
  if (!bytes || bytes.length !== ETH_ALEN) throw new Error(`not a MAC: ${mac}`);
  return bytes;
}

/** RTM_NEWLINK: a bridge, created up (fails EEXIST when the name is taken). */
export function newBridge(seq: number, name: string): Uint8Array<ArrayBuffer> {
  return message(RTM.NEWLINK, CREATE_NEW, seq, ifinfomsg(0, IFF_UP, IFF_UP), [
    stringAttr(IFLA.IFNAME, name),
    { type: IFLA.LINKINFO, value: [kindAttr("bridge")] },
  ]);
}

export interface VethPair {
  /** The host end: its name, and the bridge's index it is enslaved to. */
  hostName: string;
  master: number;
  /** The other end: its name and MAC, created in the namespace an fd refers to (or a process is in). */
  peerName: string;
  peerMac: string;
  peerNetns: { fd: number } | { pid: number };
}

/**
 * RTM_NEWLINK: a veth pair in one message: the host end up on the bridge, the peer (down) in the
 * container's namespace with its name and MAC (veth_newlink configures the peer from its own
 * ifinfomsg and attributes).
 */
export function newVethPair(seq: number, pair: VethPair): Uint8Array<ArrayBuffer> {
  const peer = new Uint8Array(16 + attrsLength(peerAttrs(pair)));
  // not up: veth_open of a peer whose pair is not linked yet fails ENOTCONN; it is set up from inside
  peer.set(ifinfomsg());
  writeAttrs(new DataView(peer.buffer), peer, 16, peerAttrs(pair));
  return message(RTM.NEWLINK, CREATE_NEW, seq, ifinfomsg(0, IFF_UP, IFF_UP), [
    u32Attr(IFLA.MASTER, pair.master),
    stringAttr(IFLA.IFNAME, pair.hostName),
    {
      type: IFLA.LINKINFO,
      value: [
        kindAttr("veth"),
        { type: IFLA_INFO.DATA, value: [bytesAttr(VETH_INFO_PEER, peer)] },
      ],
    },
  ]);
}

function peerAttrs(pair: VethPair): Attr[] {
  const ns = pair.peerNetns;
  return [
    bytesAttr(IFLA.ADDRESS, macBytes(pair.peerMac)),
    "fd" in ns ? u32Attr(IFLA.NET_NS_FD, ns.fd) : u32Attr(IFLA.NET_NS_PID, ns.pid),
    stringAttr(IFLA.IFNAME, pair.peerName),
  ];
}

/** RTM_NEWLINK on an existing link: sets IFF_UP. */
export function setLinkUp(seq: number, index: number): Uint8Array<ArrayBuffer> {
  return message(RTM.NEWLINK, REQUEST_ACK, seq, ifinfomsg(index, IFF_UP, IFF_UP));
}

/**
 * RTM_NEWLINK on an existing link (down): no IPv6 link-local address (addr_gen_mode none; the kernel
 * refuses IFLA_AF_SPEC at creation). The bridge network is IPv4 only, as docker's default one
 * (docker disables IPv6 on such an eth0).
 */
export function noIpv6LinkLocal(seq: number, index: number): Uint8Array<ArrayBuffer> {
  return message(RTM.NEWLINK, REQUEST_ACK, seq, ifinfomsg(index), [{
    type: IFLA.AF_SPEC,
    value: [{
      type: AF_INET6,
      value: [bytesAttr(IFLA_INET6_ADDR_GEN_MODE, new Uint8Array([IN6_ADDR_GEN_MODE_NONE]))],
    }],
  }]);
}

/** RTM_DELLINK by name (deleting one end of a veth pair deletes both). */
export function deleteLink(seq: number, name: string): Uint8Array<ArrayBuffer> {
  return message(RTM.DELLINK, REQUEST_ACK, seq, ifinfomsg(), [stringAttr(IFLA.IFNAME, name)]);
}

/** RTM_GETLINK of one link by name: answered with an RTM_NEWLINK (its index) or ENODEV. */
export function getLink(seq: number, name: string): Uint8Array<ArrayBuffer> {
  return message(RTM.GETLINK, REQUEST_ACK, seq, ifinfomsg(), [stringAttr(IFLA.IFNAME, name)]);
}

/**
 * RTM_NEWADDR: an IPv4 address with its prefix on a link (IFA_LOCAL and IFA_ADDRESS as iproute2
 * sends them); `replace` makes it idempotent.
 */
export function newAddress(
  seq: number,
  index: number,
  address: string,
  prefixLen: number,
  replace = false,
): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(8); // struct ifaddrmsg
  header[0] = AF_INET;
  header[1] = prefixLen;
  header[3] = RT_SCOPE_UNIVERSE;
  new DataView(header.buffer).setUint32(4, index, true);
  const flags = replace ? REQUEST_ACK | NLM_F.CREATE | NLM_F.REPLACE : CREATE_NEW;
  const ip = ipv4Bytes(address);
  return message(RTM.NEWADDR, flags, seq, header, [bytesAttr(IFA.LOCAL, ip), bytesAttr(IFA.ADDRESS, ip)]);
}

/** RTM_NEWROUTE: the default IPv4 route via a gateway, out of a link, in the main table. */
export function newDefaultRoute(seq: number, gateway: string, index: number): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(12); // struct rtmsg
  header[0] = AF_INET;
  header[4] = RT_TABLE_MAIN;
  header[5] = RTPROT_BOOT;
  header[6] = RT_SCOPE_UNIVERSE;
  header[7] = RTN_UNICAST;
  return message(RTM.NEWROUTE, CREATE_NEW, seq, header, [
    bytesAttr(RTA.GATEWAY, ipv4Bytes(gateway)),
    u32Attr(RTA.OIF, index),
  ]);
}

/** RTM_GETROUTE dump of the IPv4 routes (answered with RTM_NEWROUTE messages, then NLMSG_DONE). */
export function dumpRoutes(seq: number): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(12);
  header[0] = AF_INET;
  return message(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP, seq, header);
}

export interface Route {
  /** "a.b.c.d/len"; "0.0.0.0/0" for a default route. */
  dst: string;
  table: number;
  /** The outgoing link's index (0 when the route has none, e.g. multipath). */
  oif: number;
}

/** An RTM_NEWROUTE answer of an IPv4 dump. */
export function parseRoute(reply: Reply): Route {
  const p = reply.payload;
  const attrs = parseAttrs(p, 12);
  const dst = attrs.get(RTA.DST);
  const table = attrs.get(RTA_TABLE);
  const oif = attrs.get(RTA.OIF);
  const u32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
  return {
    dst: `${dst ? [...dst].join(".") : "0.0.0.0"}/${p[1]}`,
    table: table ? u32(table) : p[4],
    oif: oif ? u32(oif) : 0,
  };
}
const RTA_TABLE = 15;
export const MAIN_TABLE = RT_TABLE_MAIN;

// ---- parsing ----

export interface Reply {
  type: number;
  flags: number;
  seq: number;
  /** The payload after nlmsghdr. */
  payload: Uint8Array;
}

/** Splits one received datagram into its messages. */
export function parseReplies(buf: Uint8Array): Reply[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Reply[] = [];
  for (let off = 0; off + NLMSG_HDRLEN <= buf.length;) {
    const len = view.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new Error(`truncated netlink message (${len} bytes)`);
    }
    out.push({
      type: view.getUint16(off + 4, true),
      flags: view.getUint16(off + 6, true),
      seq: view.getUint32(off + 8, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR's code: 0 is the ACK, else a positive errno. */
export function errorCode(reply: Reply): number {
  const view = new DataView(reply.payload.buffer, reply.payload.byteOffset, reply.payload.byteLength);
  return 0 - view.getInt32(0, true); // not -0 for the ACK
}

/** The attributes after a fixed header of `headerLength` bytes, as type → payload (top level only). */
export function parseAttrs(payload: Uint8Array, headerLength: number): Map<number, Uint8Array> {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let off = align4(headerLength); off + 4 <= payload.length;) {
    const len = view.getUint16(off, true);
    if (len < 4) break;
    out.set(view.getUint16(off + 2, true) & 0x3fff, payload.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** The link index of an RTM_NEWLINK reply (struct ifinfomsg's ifi_index). */
export function linkIndex(reply: Reply): number {
  return new DataView(reply.payload.buffer, reply.payload.byteOffset, reply.payload.byteLength).getInt32(
    4,
    true,
  );
}
