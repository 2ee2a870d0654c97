// NAT rules against the real kernel, before and apart from skiff's own bridge: the test builds a
// bridge with two "container" network namespaces and an "outside host" namespace (with `ip`, only
// here), runs busybox httpd and a UDP echo in one of them, and publishes their ports with
// lib/network/nat.ts, through nft and through iptables. Traffic goes only to 127.0.0.1 and to
// addresses of the namespaces and links the test made.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { StateRoot } from "../lib/state/root.ts";
import {
  firewall,
  liveRuleTags,
  NO_FIREWALL,
  publishPorts,
  removeNetworkNat,
  requireFirewall,
  sweepPorts,
  unpublishPorts,
} from "../lib/network/nat.ts";
import { ruleTag } from "../lib/network/nat_plan.ts";
import { SkiffError } from "../lib/errors.ts";
import { BUSYBOX, withRoot } from "./helpers.ts";

const PEER = fileURLToPath(new URL("./net_peer.ts", import.meta.url));

function onPath(name: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

async function sh(script: string, check = true): Promise<{ code: number; out: string; err: string }> {
  const out = await new Deno.Command("bash", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .output();
  const res = {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
  if (check && res.code !== 0) throw new Error(`${script}\nexit ${res.code}: ${res.err}`);
  return res;
}

/** A bridge with two container namespaces, and an outside host on a veth of its own. */
class Lab {
  readonly n = 10 + Math.floor(Math.random() * 240);
  readonly tag = `${Deno.pid % 10000}${this.n}`.slice(-6);
  readonly bridge = `snb${this.tag}`;
  readonly subnet = `10.231.${this.n}.0/24`;
  readonly gateway = `10.231.${this.n}.1`;
  readonly c1 = `10.231.${this.n}.2`;
  readonly c2 = `10.231.${this.n}.3`;
  /** The host's own address on the link to the outside host, and the outside host's. */
  readonly hostIp = `10.232.${this.n}.1`;
  readonly outsideIp = `10.232.${this.n}.2`;
  readonly ns = { c1: `snc1-${this.tag}`, c2: `snc2-${this.tag}`, out: `sno-${this.tag}` };
  readonly veth = { c1: `snv1${this.tag}`, c2: `snv2${this.tag}`, out: `snvo${this.tag}` };
  private procs: Deno.ChildProcess[] = [];
  private www = Deno.makeTempDirSync({ prefix: "skiff-nat-www-" });

  async up(): Promise<void> {
    const { ns, veth, bridge } = this;
    await sh(`set -e
      ip link add ${bridge} type bridge && ip addr add ${this.gateway}/24 dev ${bridge} && ip link set ${bridge} up
      for c in c1 c2; do :; done
      ip netns add ${ns.c1}; ip netns add ${ns.c2}; ip netns add ${ns.out}
      ip link add ${veth.c1} type veth peer name eth0 netns ${ns.c1}
      ip link add ${veth.c2} type veth peer name eth0 netns ${ns.c2}
      ip link add ${veth.out} type veth peer name eth0 netns ${ns.out}
      ip link set ${veth.c1} master ${bridge} up; ip link set ${veth.c2} master ${bridge} up
      ip -n ${ns.c1} addr add ${this.c1}/24 dev eth0; ip -n ${ns.c2} addr add ${this.c2}/24 dev eth0
      for n in ${ns.c1} ${ns.c2}; do ip -n $n link set eth0 up; ip -n $n link set lo up; ip -n $n route add default via ${this.gateway}; done
      ip addr add ${this.hostIp}/24 dev ${veth.out}; ip link set ${veth.out} up
      ip -n ${ns.out} addr add ${this.outsideIp}/24 dev eth0; ip -n ${ns.out} link set eth0 up; ip -n ${ns.out} link set lo up`);
    Deno.writeTextFileSync(`${this.www}/index.html`, "hello from c1\n");
    this.spawn(ns.c1, [BUSYBOX, "httpd", "-f", "-p", "80", "-h", this.www]);
    this.spawn(ns.c1, [Deno.execPath(), "run", "-A", "--unstable-net", PEER, "udp-echo", "53"]);
    this.spawn(ns.out, [Deno.execPath(), "run", "-A", "--unstable-net", PEER, "tcp-whoami", "7000"]);
    // the peers are up once they answer from inside their namespaces
    await this.until(async () => (await this.curl(ns.c1, `http://127.0.0.1:80/`)).includes("hello"));
    await this.until(async () =>
      (await sh(`ip netns exec ${ns.out} ${BUSYBOX} nc 127.0.0.1 7000`, false)).code === 0
    );
    await this.until(async () => (await this.udp(ns.c1, "127.0.0.1", 53, "up")) === "up");
  }

  private spawn(netns: string, cmd: string[]): void {
    this.procs.push(
      new Deno.Command("ip", { args: ["netns", "exec", netns, ...cmd], stdout: "null", stderr: "null" })
        .spawn(),
    );
  }

  async until(fn: () => Promise<boolean>, ms = 10000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > end) throw new Error("timed out waiting for a peer");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** An HTTP GET from a namespace (undefined: the host); "" when it fails. */
  async curl(netns: string | undefined, url: string): Promise<string> {
    const pre = netns ? `ip netns exec ${netns} ` : "";
    return (await sh(`${pre}curl -s --max-time 3 ${url}`, false)).out;
  }

  async udp(netns: string | undefined, host: string, port: number, text: string): Promise<string> {
    const pre = netns ? `ip netns exec ${netns} ` : "";
    return (await sh(
      `${pre}${Deno.execPath()} run -A --unstable-net ${PEER} udp-send ${host} ${port} ${text}`,
      false,
    ))
      .out.trim();
  }

  async down(): Promise<void> {
    for (const p of this.procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
    }
    await sh(
      `ip netns del ${this.ns.c1}; ip netns del ${this.ns.c2}; ip netns del ${this.ns.out}; ip link del ${this.bridge}; ip link del ${this.veth.out}`,
      false,
    );
    Deno.removeSync(this.www, { recursive: true });
  }
}

const ID1 = "1".repeat(64), ID2 = "2".repeat(64);
const hasTools = onPath("ip") && onPath("curl");

/**
 * A PATH whose iptables tools are the legacy backend's (skiff runs whatever `iptables-restore` the
 * host has: this is how a host set to legacy looks to it).
 */
function legacyPath(): string | undefined {
  if (!onPath("iptables-legacy-restore") || !onPath("iptables-legacy-save")) return undefined;
  const dir = Deno.makeTempDirSync({ prefix: "skiff-legacy-" });
  for (const tool of ["iptables", "iptables-save", "iptables-restore"]) {
    Deno.symlinkSync(
      tool === "iptables"
        ? "/usr/sbin/iptables-legacy"
        : `/usr/sbin/${tool.replace("iptables", "iptables-legacy")}`,
      `${dir}/${tool}`,
    );
  }
  return dir;
}

for (const fw of ["nft", "iptables", "iptables-legacy"] as const) {
  Deno.test({
    name:
      `nat (${fw}): a published port answers on 127.0.0.1, the host's address, from outside, from another container and to itself; udp; outbound masquerade; rules go with the container`,
    ignore: !hasTools ||
      !onPath(fw === "nft" ? "nft" : fw === "iptables" ? "iptables-restore" : "iptables-legacy-restore"),
    fn: async () => {
      Deno.env.set("SKIFF_FIREWALL", fw === "nft" ? "nft" : "iptables");
      const path = Deno.env.get("PATH")!;
      const legacy = fw === "iptables-legacy" ? legacyPath() : undefined;
      if (legacy) Deno.env.set("PATH", `${legacy}:${path}`);
      const lab = new Lab();
      try {
        await withRoot(async (testRoot) => {
          const root = new StateRoot(testRoot.path);
          await lab.up();
          const network = { bridge: lab.bridge, subnet: lab.subnet };
          const t0 = performance.now();
          const made = publishPorts({
            root,
            id: ID1,
            name: "web",
            containerIp: lab.c1,
            network,
            hostInterface: lab.veth.c1,
            requests: [
              { proto: "tcp", containerPort: 80, hostIp: "", hostPortFirst: 0, hostPortLast: 0 },
              { proto: "udp", containerPort: 53, hostIp: "127.0.0.1", hostPortFirst: 0, hostPortLast: 0 },
            ],
          });
          const setupMs = performance.now() - t0;
          const [tcp, udp] = made;
          const [low, high] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(
            /\s+/,
          )
            .map(Number);
          for (const m of made) assert.ok(m.hostPort >= low && m.hostPort <= high, `ephemeral ${m.hostPort}`);
          assert.equal(tcp.hostIp, "0.0.0.0");
          assert.equal(udp.hostIp, "127.0.0.1");

          const url = (ip: string) => `http://${ip}:${tcp.hostPort}/`;
          if (Deno.env.get("NAT_DEBUG")) {
            console.log(
              (await sh(
                'iptables-save -t nat; nft list table ip skiff; sysctl -a 2>/dev/null | grep route_localnet | grep -v " = 0"',
                false,
              )).out,
              made,
            );
          }
          assert.equal(await lab.curl(undefined, url("127.0.0.1")), "hello from c1\n", "127.0.0.1");
          assert.equal(
            await lab.curl(undefined, url(lab.hostIp)),
            "hello from c1\n",
            "the host's own address",
          );
          assert.equal(
            await lab.curl(lab.ns.out, url(lab.hostIp)),
            "hello from c1\n",
            "from the outside host",
          );
          assert.equal(
            await lab.curl(lab.ns.c2, url(lab.hostIp)),
            "hello from c1\n",
            "from another container",
          );
          assert.equal(await lab.curl(lab.ns.c1, url(lab.hostIp)), "hello from c1\n", "hairpin");
          assert.equal(await lab.udp(undefined, "127.0.0.1", udp.hostPort, "ping"), "ping", "udp echo");
          // the outside host sees the host's address, not the container's
          const seen = await sh(`ip netns exec ${lab.ns.c1} ${BUSYBOX} nc ${lab.outsideIp} 7000`);
          assert.equal(seen.out.trim(), lab.hostIp, "outbound masquerade");

          // taken ports: by a container of skiff's (any root), by another process
          const taken = (hostIp: string, port: number, proto: "tcp" | "udp" = "tcp") => () =>
            publishPorts({
              root,
              id: ID2,
              name: "second",
              containerIp: lab.c2,
              network,
              requests: [{ proto, containerPort: 80, hostIp, hostPortFirst: port, hostPortLast: port }],
            });
          assert.throws(taken("", tcp.hostPort), (e: unknown) => {
            assert.ok(e instanceof SkiffError);
            assert.equal(
              e.message,
              `failed to set up container networking: driver failed programming external connectivity on endpoint second (${ID2}): Bind for 0.0.0.0:${tcp.hostPort} failed: port is already allocated`,
            );
            assert.equal(e.exitCode, 125);
            return true;
          });
          assert.throws(
            taken("127.0.0.1", tcp.hostPort),
            /Bind for 127\.0\.0\.1:\d+ failed: port is already allocated/,
          );
          const squatter = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const held = (squatter.addr as Deno.NetAddr).port;
          try {
            assert.throws(
              taken("127.0.0.1", held),
              new RegExp(
                `failed to bind host port for 127\\.0\\.0\\.1:${held}:${
                  lab.c2.replaceAll(".", "\\.")
                }:80/tcp: address already in use$`,
              ),
            );
          } finally {
            squatter.close();
          }
          // nothing of the refused ones is left
          assert.deepEqual(liveRuleTags().filter((t) => t === ruleTag(root.path, ID2)), []);

          // a second container beside it; a crash leaves its rules: the sweep of this root takes them
          const second = publishPorts({
            root,
            id: ID2,
            name: "second",
            containerIp: lab.c2,
            network,
            requests: [{
              proto: "tcp",
              containerPort: 80,
              hostIp: "127.0.0.1",
              hostPortFirst: 0,
              hostPortLast: 0,
            }],
          });
          assert.notEqual(second[0].hostPort, tcp.hostPort);
          // while the skiff that published lives, its start is in progress: not swept
          assert.deepEqual(sweepPorts(root, (id) => id === ID1), []);
          const portsJson = `${root.path}/network/ports.json`;
          const book = JSON.parse(Deno.readTextFileSync(portsJson));
          book.holders[ID2] = { pid: 2 ** 22 + 1 }; // a pid that cannot exist: the publisher died
          Deno.writeTextFileSync(portsJson, JSON.stringify(book));
          assert.deepEqual(sweepPorts(root, (id) => id === ID1), [ID2]);
          assert.ok(!liveRuleTags().includes(ruleTag(root.path, ID2)));
          assert.ok(liveRuleTags().includes(ruleTag(root.path, ID1)));

          const t1 = performance.now();
          unpublishPorts(root, ID1);
          const teardownMs = performance.now() - t1;
          assert.ok(!liveRuleTags().includes(ruleTag(root.path, ID1)));
          assert.equal(await lab.curl(undefined, url("127.0.0.1")), "", "no answer once unpublished");
          unpublishPorts(root, ID1); // idempotent
          removeNetworkNat(network);
          console.log(`${fw}: publish ${setupMs.toFixed(1)} ms, unpublish ${teardownMs.toFixed(1)} ms`);
        });
      } finally {
        await lab.down();
        Deno.env.delete("SKIFF_FIREWALL");
        Deno.env.set("PATH", path);
        if (legacy) {
          Deno.removeSync(legacy, { recursive: true });
          // the host is not legacy: take skiff's empty legacy chains out again (-X fails if in use)
          await sh(
            `L="iptables-legacy -t nat"; $L -D PREROUTING -m addrtype --dst-type LOCAL -j SKIFF; ` +
              `$L -D OUTPUT -m addrtype --dst-type LOCAL -j SKIFF; $L -D POSTROUTING -j SKIFF-POSTROUTING; ` +
              `$L -X SKIFF; $L -X SKIFF-POSTROUTING`,
            false,
          );
        }
      }
    },
  });
}

Deno.test("nat: with neither nft nor iptables a bridge's NAT fails with one line saying what to install", () => {
  const path = Deno.env.get("PATH")!;
  const empty = Deno.makeTempDirSync({ prefix: "skiff-nopath-" });
  Deno.env.set("PATH", empty);
  try {
    assert.equal(firewall(), undefined);
    assert.throws(() => requireFirewall(), (e: unknown) => {
      assert.ok(e instanceof SkiffError);
      assert.equal(e.message, NO_FIREWALL);
      assert.ok(!e.message.includes("\n"));
      assert.equal(e.exitCode, 125);
      return true;
    });
  } finally {
    Deno.env.set("PATH", path);
    Deno.removeSync(empty);
  }
  assert.notEqual(firewall(), undefined);
});
