// rtnetlink message layouts and the IPAM's arithmetic, without root.
//
// The expected bytes were captured once from iproute2 6.1.0 on this project's kernel (6.18), inside
// a throwaway `unshare -n`: `strace -e trace=sendmsg -e write=3 ip link add ...` and so on for each
// request below (the `ip` command is in each test's name). The sequence number (bytes 8-11) is
// iproute2's clock-based one; the comparison zeroes it on both sides. tests/network_test.ts then
// checks the same builders against the kernel itself (links, addresses, routes as `ip` shows them).

import assert from "node:assert/strict";
import * as nl from "../lib/network/netlink.ts";
import { intToIp, ipToInt, macForIp, nextFree, parseBip, vethName } from "../lib/network/ipam.ts";
import {
  checkMacForMode,
  endpointMac,
  formatMac,
  macAddressFlag,
  parseMac,
  parseNetworkMode,
} from "../lib/network/mode.ts";
import { cidrsOverlap } from "../lib/network/bridge.ts";

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
/** The message as hex with its sequence number zeroed. */
function normalized(bytes: Uint8Array): string {
  const copy = bytes.slice();
  copy.fill(0, 8, 12);
  return hex(copy);
}
const captured = (h: string) => normalized(new Uint8Array(h.match(/../g)!.map((b) => parseInt(b, 16))));

Deno.test("netlink: ip link set dev lo up", () => {
  assert.equal(
    normalized(nl.setLinkUp(7, 1)),
    captured("2000000010000500e677156b0000000000000000010000000100000001000000"),
  );
});

Deno.test("netlink: ip link add name skt0 up type bridge", () => {
  assert.equal(
    normalized(nl.newBridge(7, "skt0")),
    captured(
      "3c00000010000506e677156b000000000000000000000000010000000100000009000300736b743000000000100012000a0001006272696467650000",
    ),
  );
});

Deno.test("netlink: ip link add vethab master skt0 up type veth peer name eth0 address 02:42:0a:59:00:02 netns PID", () => {
  const message = nl.newVethPair(7, {
    hostName: "vethab",
    master: 2,
    peerName: "eth0",
    peerMac: "02:42:0a:59:00:02",
    peerNetns: { pid: 4292 },
  });
  assert.equal(
    normalized(message),
    captured(
      "7800000010000506e677156b000000000000000000000000010000000100000008000a00020000000b00030076657468616200004400120008000100766574683800020034000100000000000000000000000000000000000a00010002420a590002000008001300c4100000090003006574683000000000",
    ),
  );
  // skiff passes the namespace as an fd: the same layout with IFLA_NET_NS_FD (28) in its place
  const byFd = nl.newVethPair(7, {
    ...{ hostName: "vethab", master: 2, peerName: "eth0" },
    peerMac: "02:42:0a:59:00:02",
    peerNetns: { fd: 9 },
  });
  assert.equal(byFd.length, message.length);
  const attrs = nl.parseAttrs(byFd.subarray(16), 16);
  assert.deepEqual([...attrs.keys()], [nl.IFLA.MASTER, nl.IFLA.IFNAME, nl.IFLA.LINKINFO]);
  assert.ok(hex(byFd).includes("08001c0009000000"), "IFLA_NET_NS_FD 9 in the peer");
});

Deno.test("netlink: ip link add vethab master skt0 up type veth peer name eth0 address 02:42:ac:11:ff:01 netns PID (--mac-address)", () => {
  // captured as above; the address is the peer's IFLA_ADDRESS (type 1, 6 bytes, padded to 4)
  const message = nl.newVethPair(7, {
    hostName: "vethab",
    master: 2,
    peerName: "eth0",
    peerMac: "02:42:ac:11:ff:01",
    peerNetns: { pid: 1001 },
  });
  assert.equal(
    normalized(message),
    captured(
      "78000000100005062642166b000000000000000000000000010000000100000008000a00020000000b00030076657468" +
        "616200004400120008000100766574683800020034000100000000000000000000000000000000000a0001000242ac11ff01000008001300e9030000090003006574683000000000",
    ),
  );
  assert.ok(hex(message).includes("0a00010002" + "42ac11ff010000"), "IFLA_ADDRESS 02:42:ac:11:ff:01");
  // docker's spellings of the flag reach the kernel as the same 6 bytes
  for (const spelling of ["02-42-AC-11-FF-01", "0242.ac11.ff01", "02:42:AC:11:FF:01"]) {
    assert.equal(
      hex(
        nl.newVethPair(7, {
          hostName: "vethab",
          master: 2,
          peerName: "eth0",
          peerMac: spelling,
          peerNetns: { pid: 1001 },
        }),
      ),
      hex(message),
    );
  }
});

Deno.test("--mac-address: Go's net.ParseMAC forms, inspect's spelling, what a veth takes", () => {
  const ok: [string, string][] = [
    ["02:42:ac:11:ff:01", "02:42:ac:11:ff:01"],
    ["02-42-AC-11-FF-01", "02:42:ac:11:ff:01"],
    ["0242.ac11.ff01", "02:42:ac:11:ff:01"],
    ["02:42:ac:11:ff:01:00:01", "02:42:ac:11:ff:01:00:01"],
    ["0242.ac11.ff01.0001", "02:42:ac:11:ff:01:00:01"],
    [Array(20).fill("0a").join(":"), Array(20).fill("0a").join(":")],
  ];
  for (const [text, shown] of ok) {
    assert.equal(formatMac(parseMac(text)!), shown, text);
    assert.equal(macAddressFlag(text), text); // kept as given (Config.MacAddress)
  }
  for (
    const bad of [
      "zz",
      "2:42:ac:11:ff:1",
      "02:42:ac:11:ff",
      "02:42:ac:11:ff:01:02",
      "02:42-ac:11:ff:01",
      "0242ac11ff01",
      "02:42:ac:11:ff:0g",
      "02:42:ac:11:ff:01\n",
      " 02:42:ac:11:ff:01",
    ]
  ) {
    assert.equal(parseMac(bad), undefined, bad);
    assert.throws(() => macAddressFlag(bad), { message: `${bad} is not a valid mac address` });
  }
  assert.equal(macAddressFlag(""), undefined);
  assert.equal(macAddressFlag(undefined), undefined);
  // an 8-byte address: inspect shows it whole, the veth gets its first 6 bytes (docker's outcome)
  assert.deepEqual(endpointMac("02-42-AC-11-FF-01-00-01", "02:42:0a:59:00:02"), {
    shown: "02:42:ac:11:ff:01:00:01",
    link: "02:42:ac:11:ff:01",
  });
  assert.deepEqual(endpointMac(undefined, "02:42:0a:59:00:02"), {
    shown: "02:42:0a:59:00:02",
    link: "02:42:0a:59:00:02",
  });
  assert.throws(() => nl.macBytes("02:42:ac:11:ff:01:00:01"), /not a MAC/); // never sent whole
  // where the container has no interface of its own to give it
  assert.throws(
    () => checkMacForMode("host", "02:42:ac:11:ff:01"),
    /conflicting options: mac-address and the network mode/,
  );
  assert.throws(() => checkMacForMode("container:web", "02:42:ac:11:ff:01"), /conflicting options/);
  checkMacForMode("none", "02:42:ac:11:ff:01");
  checkMacForMode("bridge", "02:42:ac:11:ff:01");
  checkMacForMode("host", undefined);
});

Deno.test("netlink: ip link set dev skt0 addrgenmode none", () => {
  assert.equal(
    normalized(nl.noIpv6LinkLocal(7, 2)),
    captured(
      "3000000010000500e677156b000000000000000002000000000000000000000010001a000c000a000500080001000000",
    ),
  );
});

Deno.test("netlink: ip addr add 10.89.0.2/16 dev skt0", () => {
  assert.equal(
    normalized(nl.newAddress(7, 2, "10.89.0.2", 16)),
    captured("2800000014000506e677156b000000000210000002000000080002000a590002080001000a590002"),
  );
  // replace: NLM_F_REQUEST|ACK|CREATE|REPLACE (0x505), as `ip addr replace`
  const replace = nl.newAddress(7, 2, "10.89.0.2", 16, true);
  assert.equal(new DataView(replace.buffer).getUint16(6, true), 0x505);
});

Deno.test("netlink: ip route add default via 10.89.0.1 dev skt0", () => {
  assert.equal(
    normalized(nl.newDefaultRoute(7, "10.89.0.1", 2)),
    captured("2c00000018000506e677156b0000000002000000fe03000100000000080005000a5900010800040002000000"),
  );
});

Deno.test("netlink: RTM_DELLINK and RTM_GETLINK by name", () => {
  const del = nl.deleteLink(3, "veth0123456789a");
  const view = new DataView(del.buffer);
  assert.equal(view.getUint16(4, true), nl.RTM.DELLINK);
  assert.equal(view.getUint16(6, true), nl.NLM_F.REQUEST | nl.NLM_F.ACK);
  assert.equal(view.getUint32(0, true), del.length);
  assert.equal(del.length % 4, 0);
  const attrs = nl.parseAttrs(del.subarray(16), 16);
  assert.equal(new TextDecoder().decode(attrs.get(nl.IFLA.IFNAME)), "veth0123456789a\0");
  assert.equal(new DataView(nl.getLink(4, "x").buffer).getUint16(4, true), nl.RTM.GETLINK);
});

Deno.test("netlink: replies: ACK, error with errno, answers, truncation", () => {
  const reply = (type: number, seq: number, payload: number[]) => {
    const b = new Uint8Array(16 + payload.length);
    const v = new DataView(b.buffer);
    v.setUint32(0, b.length, true);
    v.setUint16(4, type, true);
    v.setUint32(8, seq, true);
    b.set(payload, 16);
    return b;
  };
  const errorPayload = (errno: number) => {
    const p = new Uint8Array(20);
    new DataView(p.buffer).setInt32(0, -errno, true);
    return [...p];
  };
  const ack = reply(nl.NLMSG.ERROR, 5, errorPayload(0));
  const eexist = reply(nl.NLMSG.ERROR, 6, errorPayload(17));
  const link = reply(nl.RTM.NEWLINK, 6, [...nl.ifinfomsg(42)]);
  const both = new Uint8Array([...link, ...eexist]);
  const parsed = nl.parseReplies(both);
  assert.deepEqual(parsed.map((r) => [r.type, r.seq]), [[nl.RTM.NEWLINK, 6], [nl.NLMSG.ERROR, 6]]);
  assert.equal(nl.linkIndex(parsed[0]), 42);
  assert.equal(nl.errorCode(parsed[1]), 17);
  assert.equal(nl.errorCode(nl.parseReplies(ack)[0]), 0);
  assert.throws(() => nl.parseReplies(ack.subarray(0, 20)), /truncated/);
});

Deno.test("netlink: bad addresses are refused before anything is sent", () => {
  assert.throws(() => nl.ipv4Bytes("10.89.0.256"), /not an IPv4 address/);
  assert.throws(() => nl.ipv4Bytes("10.89.0"), /not an IPv4 address/);
  assert.throws(() => nl.macBytes("02:42:0a:59:00"), /not a MAC/);
});

Deno.test("ipam: bip parsing, docker's MAC, the veth name", () => {
  assert.deepEqual(parseBip("10.89.0.1/16"), {
    cidr: "10.89.0.0/16",
    network: ipToInt("10.89.0.0"),
    prefixLen: 16,
    gateway: "10.89.0.1",
  });
  // a bare network takes its first address as the gateway; a host address is the gateway itself
  assert.equal(parseBip("10.90.0.0/24").gateway, "10.90.0.1");
  assert.equal(parseBip("192.168.7.200/24").gateway, "192.168.7.200");
  assert.equal(parseBip("192.168.7.200/24").cidr, "192.168.7.0/24");
  for (
    const bad of [
      "10.89.0.1",
      "10.89.0.1/33",
      "10.89.0.1/7",
      "10.89.0/16",
      "10.89.0.1/16/2",
      "10.89.0.300/16",
      "10.89.0.255/24",
    ]
  ) {
    assert.throws(() => parseBip(bad), /invalid bip/, bad);
  }
  assert.equal(macForIp("10.89.0.2"), "02:42:0a:59:00:02");
  assert.equal(macForIp("172.17.0.2"), "02:42:ac:11:00:02"); // docker's first container's MAC
  assert.equal(vethName("0123456789abcdef", "beef"), "veth0123456beef");
  assert.match(vethName("0123456789abcdef"), /^veth0123456[0-9a-f]{4}$/); // IFNAMSIZ - 1 characters
  assert.equal(intToIp(ipToInt("255.254.1.0")), "255.254.1.0");
});

Deno.test("ipam: sequential allocation skips network, gateway, broadcast and used; wraps; runs out", () => {
  const subnet = parseBip("10.9.9.1/29"); // .0 network, .1 gateway, .2-.6 hosts, .7 broadcast
  assert.equal(nextFree(subnet, new Set()), "10.9.9.2");
  assert.equal(nextFree(subnet, new Set(["10.9.9.2"])), "10.9.9.3");
  // after the last one handed out, even when a lower address is free again (not reused at once)
  assert.equal(nextFree(subnet, new Set(), "10.9.9.4"), "10.9.9.5");
  assert.equal(nextFree(subnet, new Set(["10.9.9.6"]), "10.9.9.5"), "10.9.9.2"); // wraps
  assert.equal(nextFree(parseBip("10.9.9.6/29"), new Set(), "10.9.9.5"), "10.9.9.1"); // gateway .6
  const full = new Set(["10.9.9.2", "10.9.9.3", "10.9.9.4", "10.9.9.5", "10.9.9.6"]);
  assert.equal(nextFree(subnet, full, "10.9.9.3"), undefined);
  // 30 at once from a /16: 30 distinct addresses
  const big = parseBip("10.89.0.1/16");
  const used = new Set<string>();
  let last: string | undefined;
  for (let i = 0; i < 30; i++) used.add(last = nextFree(big, used, last)!);
  assert.equal(used.size, 30);
  assert.ok(!used.has("10.89.0.1"));
});

Deno.test("network modes: docker's names, the default, user networks", () => {
  assert.equal(parseNetworkMode(undefined), "bridge");
  assert.equal(parseNetworkMode("default"), "bridge");
  assert.equal(parseNetworkMode("none"), "none");
  assert.equal(parseNetworkMode("host"), "host");
  assert.equal(parseNetworkMode("container:web"), "container:web");
  assert.throws(() => parseNetworkMode("container:"), /invalid container format container:<name\|id>/);
  // any other name is a user-defined network, checked against the root when the container is made
  assert.equal(parseNetworkMode("mynet"), "mynet");
});

Deno.test("routes: a dump's answer parsed; overlapping subnets found", () => {
  assert.equal(new DataView(nl.dumpRoutes(1).buffer).getUint16(6, true), 0x301); // REQUEST|DUMP
  // RTM_NEWROUTE 192.0.2.0/24 dev 2, table main, as the kernel answers a dump
  const payload = new Uint8Array([
    ...[2, 24, 0, 0, 254, 2, 253, 1, 0, 0, 0, 0], // rtmsg: AF_INET, /24, main, kernel, link, unicast
    ...[8, 0, 15, 0, 254, 0, 0, 0], // RTA_TABLE 254
    ...[8, 0, 1, 0, 192, 0, 2, 0], // RTA_DST
    ...[8, 0, 4, 0, 2, 0, 0, 0], // RTA_OIF 2
  ]);
  assert.deepEqual(nl.parseRoute({ type: nl.RTM.NEWROUTE, flags: 2, seq: 1, payload }), {
    dst: "192.0.2.0/24",
    table: nl.MAIN_TABLE,
    oif: 2,
  });
  assert.ok(cidrsOverlap("10.89.0.0/16", "10.89.3.0/24"));
  assert.ok(cidrsOverlap("10.0.0.0/8", "10.89.0.0/16"));
  assert.ok(!cidrsOverlap("10.89.0.0/16", "10.88.0.0/16"));
  assert.ok(!cidrsOverlap("172.17.0.0/16", "10.89.0.0/16"));
});
