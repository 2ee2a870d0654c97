// A host whose filter FORWARD policy is DROP (docker sets it so): skiff's bridges still forward,
// through skiff's own chain SKIFF-FORWARD jumped to from iptables' FORWARD (lib/network/nat_plan.ts).
//
// The host's own policy is never touched: skiff runs in a network namespace the test makes ("the
// host", with FORWARD DROP), with sysfs remounted for it in a private mount namespace (the cgroup
// mounts stay as they are), and an "outside host" namespace linked to it by a veth. Traffic goes
// only between these namespaces.

import assert from "node:assert/strict";
import { join } from "node:path";
import { BUSYBOX, MAIN, withBusybox } from "./helpers.ts";
import { iptDeleteBatch, iptForwardBatch, parseIptablesSave } from "../lib/network/nat_plan.ts";

Deno.test("iptForwardBatch: the chain, the jump and a bridge's rules once; removed by tag (pure)", () => {
  const empty = parseIptablesSave("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", "filter");
  const batch = iptForwardBatch(empty, { bridge: "br-x", subnet: "10.1.0.0/24" });
  assert.equal(
    batch,
    [
      "*filter",
      ":SKIFF-FORWARD - [0:0]",
      "-I FORWARD 1 -j SKIFF-FORWARD",
      "-A SKIFF-FORWARD -o br-x -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment skiff-net:br-x -j ACCEPT",
      "-A SKIFF-FORWARD -o br-x -m conntrack --ctstate DNAT -m comment --comment skiff-net:br-x -j ACCEPT",
      "-A SKIFF-FORWARD -i br-x -m comment --comment skiff-net:br-x -j ACCEPT",
      "COMMIT",
      "",
    ].join("\n"),
  );
  // as iptables-save prints it back: nothing more to do for that bridge, another one only its rules
  const saved = parseIptablesSave(
    "*filter\n:FORWARD DROP [0:0]\n:SKIFF-FORWARD - [0:0]\n-A FORWARD -j SKIFF-FORWARD\n" +
      '-A SKIFF-FORWARD -i br-x -m comment --comment "skiff-net:br-x" -j ACCEPT\nCOMMIT\n',
    "filter",
  );
  assert.equal(iptForwardBatch(saved, { bridge: "br-x", subnet: "10.1.0.0/24" }), "");
  assert.ok(!iptForwardBatch(saved, { bridge: "br-y", subnet: "10.2.0.0/24" }).includes("FORWARD 1"));
  assert.equal(
    iptDeleteBatch(saved, (t) => t === "skiff-net:br-x", "filter"),
    '*filter\n-D SKIFF-FORWARD -i br-x -m comment --comment "skiff-net:br-x" -j ACCEPT\nCOMMIT\n',
  );
  assert.throws(() => iptForwardBatch(empty, { bridge: "x;y", subnet: "10.1.0.0/24" }));
});

const hex = () => crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0").slice(0, 5);

async function sh(script: string, check = true): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (check && out.code !== 0) throw new Error(`${script}: exit ${out.code}: ${text}`);
  return { code: out.code, out: text };
}

/** A shell line that GETs a path with busybox nc (its wget is not used: it needs no resolver here). */
const httpGet = (ip: string, port: number, path: string) =>
  `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} ${port}`;

const hasTool = (name: string) => {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
};

for (const tool of ["nft", "iptables"] as const) {
  Deno.test({
    name:
      `FORWARD policy DROP (NAT through ${tool}): published port, way out and container to container still flow`,
    ignore: !hasTool("iptables-restore") || !hasTool(tool === "nft" ? "nft" : "iptables-restore"),
    fn: async () => {
      const id = hex();
      const host = `skfh${id}`, outside = `skfo${id}`, veth = `skfv${id}`, bridge = `skfb${id}`;
      const third = crypto.getRandomValues(new Uint8Array(1))[0];
      const link = `10.218.${third}`, subnet = `10.219.${third}`;
      const www = await Deno.makeTempDir({ prefix: "skiff-fwd-" });
      let server: Deno.ChildProcess | undefined;
      try {
        await sh(`set -e; ip netns add ${host}; ip netns add ${outside}
          ip link add ${veth} type veth peer name eth0 netns ${outside}
          ip link set ${veth} netns ${host}
          ip -n ${host} link set lo up; ip -n ${host} addr add ${link}.1/30 dev ${veth}; ip -n ${host} link set ${veth} up
          ip -n ${outside} link set lo up; ip -n ${outside} addr add ${link}.2/30 dev eth0; ip -n ${outside} link set eth0 up
          ip netns exec ${host} iptables -P FORWARD DROP`);
        Deno.writeTextFileSync(join(www, "outside"), "from outside\n");
        server = new Deno.Command("ip", {
          args: ["netns", "exec", outside, BUSYBOX, "httpd", "-f", "-p", "7000", "-h", www],
          stdout: "null",
          stderr: "null",
        }).spawn();
        await withBusybox(async (root) => {
          Deno.writeTextFileSync(
            join(root.path, "daemon.json"),
            JSON.stringify({ bridge, bip: `${subnet}.1/24` }),
          );
          // skiff inside the "host" namespace, with a sysfs of that namespace for /sys/class/net
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
              env: { SKIFF_FIREWALL: tool },
            }).output();
            const dec = new TextDecoder();
            return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
          };
          const ok = async (args: string[]) => {
            const r = await skiff(args);
            assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
            return r.stdout;
          };
          try {
            await ok([
              "run",
              "-d",
              "--name",
              "web",
              "-p",
              "8080:80",
              "busybox",
              "httpd",
              "-f",
              "-p",
              "80",
              "-h",
              "/etc",
            ]);
            await ok(["run", "-d", "--name", "peer", "busybox", "sleep", "60"]);
            const webIp = (await ok(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])).trim();
            // the outside host → the host's address → DNAT → forwarded into the bridge
            let got = "";
            for (let i = 0; i < 10 && !got.includes("localhost"); i++) {
              got =
                (await sh(`ip netns exec ${outside} curl -s --max-time 2 http://${link}.1:8080/hosts`, false))
                  .out;
              if (!got.includes("localhost")) await new Promise((r) => setTimeout(r, 100));
            }
            assert.match(got, /localhost/, "published port from outside");
            // the way out: a container reaches the outside host through the host (forwarded, masqueraded)
            const out = await ok(["exec", "peer", "sh", "-c", httpGet(`${link}.2`, 7000, "/outside")]);
            assert.match(out, /from outside/);
            // container to container across the bridge (bridge-nf-call-iptables sends it through FORWARD)
            const between = await ok(["exec", "peer", "sh", "-c", httpGet(webIp, 80, "/hosts")]);
            assert.match(between, /localhost/);
            // an --internal network: its containers still reach each other
            await ok(["network", "create", "--internal", "--subnet", `10.220.${third}.0/24`, "inner"]);
            await ok([
              "run",
              "-d",
              "--name",
              "i1",
              "--network",
              "inner",
              "busybox",
              "httpd",
              "-f",
              "-p",
              "80",
              "-h",
              "/etc",
            ]);
            await ok(["run", "-d", "--name", "i2", "--network", "inner", "busybox", "sleep", "60"]);
            const inner = await skiff(["exec", "i2", "sh", "-c", httpGet("i1", 80, "/hosts")]);
            assert.match(inner.stdout, /localhost/, `internal network: ${inner.code} ${inner.stderr}`);
            // skiff's chain is jumped to from FORWARD; the policy stays the host's
            const rules = (await sh(`ip netns exec ${host} iptables -S FORWARD`)).out;
            assert.match(rules, /^-P FORWARD DROP$/m);
            assert.match(rules, /^-A FORWARD -j SKIFF-FORWARD$/m);
          } finally {
            await skiff(["rm", "-f", "web", "peer", "i1", "i2"]);
            await skiff(["network", "rm", "inner"]);
          }
          // the internal network's rule went with `network rm` (the default bridge's stay, as docker's)
          const left = (await sh(`ip netns exec ${host} iptables -S ${"SKIFF-FORWARD"}`)).out;
          assert.ok(!/-i (br-[0-9a-f]+) -o \1 /.test(left), left);
          assert.match(left, new RegExp(`-i ${bridge} `));
        });
      } finally {
        try {
          server?.kill("SIGKILL");
          await server?.status;
        } catch { /* gone */ }
        await sh(`ip netns del ${host}; ip netns del ${outside}`, false);
        await Deno.remove(www, { recursive: true });
        await sh(`rm -f /run/skiff/nat-*-${bridge}`, false);
      }
    },
  });
}
