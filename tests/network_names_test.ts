// Name resolution on user-defined networks (lib/network/names.ts) and the endpoint options of
// run/create (--ip, --network-alias) as root against the real kernel.
//
// Traffic goes only between containers of the test's own networks (subnets of 10.216.0.0/16 and
// 10.217.0.0/16 on bridges the test's root made), never to the host's or anyone else's addresses; the
// default-bridge case only checks that a name does not resolve (nothing is sent).

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";
import { memberHostsFile, memberNames } from "../lib/network/names.ts";

const third = () => crypto.getRandomValues(new Uint8Array(1))[0];

async function inspect(root: TestRoot, ref: string) {
  return JSON.parse(await root.ok(["inspect", ref]))[0];
}

/** Whether `name` resolves inside `ctr` (busybox ping resolves through /etc/hosts, then DNS). */
async function resolves(root: TestRoot, ctr: string, name: string): Promise<boolean> {
  const r = await root.skiff(["exec", ctr, "ping", "-c", "1", "-W", "2", name]);
  if (r.code !== 0) assert.match(r.stderr + r.stdout, /bad address/, `${ctr} → ${name}: ${r.stderr}`);
  return r.code === 0;
}

Deno.test("names: members' lines, pure", () => {
  const names = memberNames(
    { Id: "0123456789abcdef".repeat(4), Name: "/web", NetworkAliases: { net: ["www", "web"] } },
    "net",
  );
  assert.deepEqual(names, ["web", "0123456789ab", "www"]);
  assert.equal(
    memberHostsFile(["h:10.0.0.9"], { ip: "10.1.0.2", hostname: "me" }, [{ ip: "10.1.0.3", names }]).split(
      "\n",
    ).slice(-4).join("\n"),
    "10.0.0.9\th\n10.1.0.2\tme\n10.1.0.3\tweb 0123456789ab www\n",
  );
});

Deno.test("user network: containers resolve each other by name, alias and short id; it follows start, stop, rename, rm", async () => {
  await withBusybox(async (root) => {
    const prefix = `10.216.${third()}`;
    await root.ok(["network", "create", "--subnet", `${prefix}.0/24`, "names"]);
    const a = (await root.ok([
      "run",
      "-d",
      "--name",
      "aa",
      "--network",
      "names",
      "--network-alias",
      "web",
      "--net-alias",
      "www",
      "busybox",
      "sleep",
      "120",
    ])).trim();
    await root.ok(["run", "-d", "--name", "bb", "--network", "names", "busybox", "sleep", "120"]);
    assert.ok(await resolves(root, "bb", "aa"));
    assert.ok(await resolves(root, "bb", "web"));
    assert.ok(await resolves(root, "bb", "www"));
    assert.ok(await resolves(root, "bb", a.slice(0, 12)));
    // a late joiner: the members that started before it find it too
    await root.ok(["run", "-d", "--name", "cc", "--network", "names", "busybox", "sleep", "120"]);
    assert.ok(await resolves(root, "aa", "cc"));
    assert.ok(await resolves(root, "cc", "bb"));

    const ep = (await inspect(root, "aa")).NetworkSettings.Networks.names;
    assert.deepEqual(ep.Aliases, ["web", "www"]);
    assert.deepEqual(ep.DNSNames, ["aa", "web", "www", a.slice(0, 12)]);
    assert.equal(ep.IPAMConfig, null);

    // rename: the new name resolves, the old one no more
    await root.ok(["rename", "cc", "c2"]);
    assert.ok(await resolves(root, "aa", "c2"));
    assert.ok(!(await resolves(root, "aa", "cc")));

    // stop and start
    await root.ok(["stop", "-t", "0", "bb"]);
    assert.ok(!(await resolves(root, "aa", "bb")));
    await root.ok(["start", "bb"]);
    assert.ok(await resolves(root, "aa", "bb"));
    assert.ok(await resolves(root, "bb", "web"));

    // rm -f: its names go from the others' files
    await root.ok(["rm", "-f", "aa"]);
    assert.ok(!(await resolves(root, "bb", "web")));
    assert.ok(!(await resolves(root, "c2", "aa")));
    // the host's resolvers stay the container's resolvers (names outside the network go there)
    const resolv = await root.ok(["exec", "bb", "cat", "/etc/resolv.conf"]);
    assert.equal(
      resolv,
      Deno.readTextFileSync(join(root.path, "containers", (await inspect(root, "bb")).Id, "resolv.conf")),
    );
    assert.ok(!/127\.0\.0\.11/.test(resolv));
    await root.ok(["rm", "-f", "bb", "c2"]);

    // the default bridge has no name resolution (docker's): nothing is sent, the name is unknown
    await root.ok(["run", "-d", "--name", "d1", "busybox", "sleep", "60"]);
    await root.ok(["run", "-d", "--name", "d2", "busybox", "sleep", "60"]);
    assert.ok(!(await resolves(root, "d2", "d1")));
    await root.ok(["rm", "-f", "d1", "d2"]);
    await root.ok(["network", "rm", "names"]);
  });
});

Deno.test("--ip and --network-alias: docker's errors off user networks; the address asked for", async () => {
  await withBusybox(async (root) => {
    const prefix = `10.217.${third()}`;
    await root.ok(["network", "create", "--subnet", `${prefix}.0/24`, "fixed"]);
    for (
      const [args, message] of [
        [["--ip", `${prefix}.9`], /user specified IP address is supported on user defined networks only/],
        [
          ["--network-alias", "x"],
          /network-scoped alias is supported only for containers in user defined networks/,
        ],
        [["--network", "fixed", "--ip", "10.1.2"], /invalid argument "10.1.2" for "--ip" flag/],
      ] as const
    ) {
      const r = await root.skiff(["create", ...args, "busybox", "true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.deepEqual(root.containerIds(), []);

    await root.ok([
      "run",
      "-d",
      "--name",
      "ff",
      "--network",
      "fixed",
      "--ip",
      `${prefix}.77`,
      "busybox",
      "sleep",
      "60",
    ]);
    const ep = (await inspect(root, "ff")).NetworkSettings.Networks.fixed;
    assert.equal(ep.IPAddress, `${prefix}.77`);
    assert.deepEqual(ep.IPAMConfig, { IPv4Address: `${prefix}.77` });
    const addr = await root.ok(["exec", "ff", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert.match(addr, new RegExp(`inet ${prefix.replaceAll(".", "\\.")}\\.77/24`));
    // the same address again: docker's IPAM error, the container not started
    const taken = await root.skiff([
      "run",
      "--rm",
      "--network",
      "fixed",
      "--ip",
      `${prefix}.77`,
      "busybox",
      "true",
    ]);
    assert.equal(taken.code, 125);
    assert.match(taken.stderr, /Address already in use/);
    const outside = await root.skiff([
      "run",
      "--rm",
      "--network",
      "fixed",
      "--ip",
      "10.9.9.9",
      "busybox",
      "true",
    ]);
    assert.equal(outside.code, 125);
    assert.match(
      outside.stderr,
      /Invalid address 10\.9\.9\.9: It does not belong to any of this network's subnets/,
    );
    await root.ok(["rm", "-f", "ff"]);
    await root.ok(["network", "rm", "fixed"]);
  });
});

Deno.test("network connect/disconnect: a second interface, its lease and names; released on disconnect and stop", async () => {
  await withBusybox(async (root) => {
    const p1 = `10.216.${third()}`, p2 = `10.217.${third()}`;
    await root.ok(["network", "create", "--subnet", `${p1}.0/24`, "front"]);
    await root.ok(["network", "create", "--subnet", `${p2}.0/24`, "back"]);
    await root.ok(["run", "-d", "--name", "app", "--network", "front", "busybox", "sleep", "120"]);
    await root.ok(["run", "-d", "--name", "db", "--network", "back", "busybox", "sleep", "120"]);
    assert.ok(!(await resolves(root, "app", "db")));

    await root.ok(["network", "connect", "--alias", "api", "--ip", `${p2}.50`, "back", "app"]);
    const addr = await root.ok(["exec", "app", "ip", "-4", "-o", "addr"]);
    assert.match(addr, new RegExp(`eth1\\s+inet ${p2.replaceAll(".", "\\.")}\\.50/24`));
    assert.ok(await resolves(root, "app", "db"));
    assert.ok(await resolves(root, "db", "app"));
    assert.ok(await resolves(root, "db", "api"));
    // the default route stays the first network's
    const routes = await root.ok(["exec", "app", "ip", "route"]);
    assert.match(routes, new RegExp(`^default via ${p1.replaceAll(".", "\\.")}\\.1 dev eth0`, "m"));
    const nets = (await inspect(root, "app")).NetworkSettings.Networks;
    assert.deepEqual(Object.keys(nets).sort(), ["back", "front"]);
    assert.equal(nets.back.IPAddress, `${p2}.50`);
    assert.deepEqual(nets.back.Aliases, ["api"]);
    assert.deepEqual(nets.back.IPAMConfig, { IPv4Address: `${p2}.50` });
    const members = JSON.parse(await root.ok(["network", "inspect", "-f", "{{json .Containers}}", "back"]));
    const shown = members[(await inspect(root, "app")).Id];
    assert.equal(shown.IPv4Address, `${p2}.50/24`);
    assert.equal(shown.MacAddress, nets.back.MacAddress);
    assert.equal(shown.EndpointID, nets.back.EndpointID);

    // errors: docker's words, exit 1, nothing changed
    for (
      const [args, message] of [
        [["network", "connect", "back", "app"], /endpoint with name app already exists in network back/],
        [["network", "connect", "nonet", "app"], /network nonet not found/],
        [["network", "connect", "back", "nosuch"], /No such container: nosuch/],
        [["network", "disconnect", "front", "db"], /is not connected to network front/],
        [["network", "disconnect", "-f", "front", "nosuch"], /endpoint nosuch not found/],
        [
          ["network", "connect", "--ip", "10.1.1.1", "bridge", "db"],
          /user specified IP address is supported on user defined networks only/,
        ],
      ] as const
    ) {
      const r = await root.skiff([...args]);
      assert.notEqual(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }

    await root.ok(["network", "disconnect", "back", "app"]);
    assert.ok(!(await resolves(root, "db", "app")));
    assert.ok(!(await resolves(root, "app", "db")));
    const after = await root.ok(["exec", "app", "ip", "-o", "link"]);
    assert.ok(!/eth1/.test(after), after);
    assert.deepEqual(Object.keys((await inspect(root, "app")).NetworkSettings.Networks), ["front"]);
    const back = JSON.parse(
      Deno.readTextFileSync(
        join(
          root.path,
          "network",
          `${(JSON.parse(await root.ok(["network", "inspect", "back"])))[0].Id}.json`,
        ),
      ),
    );
    assert.deepEqual(Object.values(back.Leases).map((l) => (l as { Container: string }).Container), [
      (await inspect(root, "db")).Id,
    ]);

    // connected again, then stopped: the lease goes with the container's others
    await root.ok(["network", "connect", "back", "app"]);
    assert.ok(await resolves(root, "db", "app"));
    await root.ok(["stop", "-t", "0", "app"]);
    assert.ok(!(await resolves(root, "db", "app")));
    // the connection is kept (docker's): shown while stopped, joined again at the next start
    assert.deepEqual(Object.keys((await inspect(root, "app")).NetworkSettings.Networks).sort(), [
      "back",
      "front",
    ]);
    assert.equal((await inspect(root, "app")).NetworkSettings.Networks.back.IPAddress, "");
    await root.ok(["start", "app"]);
    assert.ok(await resolves(root, "db", "app"));
    assert.match(await root.ok(["exec", "app", "ip", "-o", "link"]), /eth1/);
    // a stopped container: disconnect and connect only change what its next start joins
    await root.ok(["stop", "-t", "0", "app"]);
    await root.ok(["network", "disconnect", "back", "app"]);
    await root.ok(["start", "app"]);
    assert.ok(!(await resolves(root, "db", "app")));
    await root.ok(["stop", "-t", "0", "app"]);
    await root.ok(["network", "connect", "--alias", "late", "back", "app"]);
    await root.ok(["start", "app"]);
    assert.ok(await resolves(root, "db", "late"));
    await root.ok(["rm", "-f", "app", "db"]);
    await root.ok(["network", "rm", "front", "back"]);
  });
});

Deno.test("names: a member whose skiff was killed (kill -9) leaves the others' files at the next command", async () => {
  await withBusybox(async (root) => {
    const prefix = `10.216.${third()}`;
    await root.ok(["network", "create", "--subnet", `${prefix}.0/24`, "crash"]);
    await root.ok(["run", "-d", "--name", "stay", "--network", "crash", "busybox", "sleep", "120"]);
    // a foreground run: its skiff holds the lease; killed with its container, nothing releases it
    const fg = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--root",
        root.path,
        "run",
        "--name",
        "gone",
        "--network",
        "crash",
        "busybox",
        "sleep",
        "120",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let seen = false;
      for (let i = 0; i < 100 && !seen; i++) {
        seen = (await root.skiff(["exec", "stay", "ping", "-c", "1", "-W", "1", "gone"])).code === 0;
        if (!seen) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen, "gone resolves while it runs");
      const pid = (await inspect(root, "gone")).State.Pid;
      fg.kill("SIGKILL");
      await fg.status;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone with its skiff */ }
      for (let i = 0; i < 50; i++) {
        try {
          Deno.readTextFileSync(`/proc/${pid}/stat`);
          await new Promise((r) => setTimeout(r, 50));
        } catch {
          break;
        }
      }
      // the next listing sweeps the dead lease and takes its name out of the survivors' files
      await root.ok(["ps", "-a"]);
      assert.ok(!(await resolves(root, "stay", "gone")));
      const hosts = await root.ok(["exec", "stay", "cat", "/etc/hosts"]);
      assert.ok(!/\tgone\b/.test(hosts), hosts);
    } finally {
      try {
        fg.kill("SIGKILL");
        await fg.status;
      } catch { /* already */ }
    }
    await root.ok(["rm", "-f", "stay", "gone"]);
    await root.ok(["network", "rm", "crash"]);
  });
});

Deno.test("user network: names outside it go to the host's resolvers (here a resolver of the test's own)", async () => {
  const tag = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0").slice(0, 5);
  const ns = `skdns${tag}`, veth = `skdv${tag}`, n = third();
  const dnsIp = `10.223.${n}.2`;
  const resolv = await Deno.makeTempFile({ prefix: "skiff-resolv-" });
  const sh = async (script: string) =>
    (await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" }).output()).code;
  let peer: Deno.ChildProcess | undefined;
  try {
    assert.equal(
      await sh(`set -e; ip netns add ${ns}; ip link add ${veth} type veth peer name eth0 netns ${ns}
        ip addr add 10.223.${n}.1/24 dev ${veth}; ip link set ${veth} up
        ip -n ${ns} addr add ${dnsIp}/24 dev eth0; ip -n ${ns} link set eth0 up; ip -n ${ns} link set lo up`),
      0,
    );
    peer = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "-A",
        "--unstable-net",
        fileURLToPath(new URL("./network_dns_peer.ts", import.meta.url)),
        dnsIp,
        "outside.skiff.test",
        "10.9.8.7",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let up = false;
    for (let i = 0; i < 50 && !up; i++) {
      up =
        await sh(`ip netns exec ${ns} busybox nslookup outside.skiff.test ${dnsIp} | grep -q 10.9.8.7`) === 0;
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(up, "the test's resolver answers");
    // the host's resolv.conf as this run of skiff sees it: the test's resolver
    Deno.writeTextFileSync(resolv, `nameserver ${dnsIp}\n`);
    await withBusybox(async (root) => {
      await root.ok(["network", "create", "--subnet", `10.216.${third()}.0/24`, "ext"]);
      const run = await new Deno.Command("unshare", {
        args: [
          "-m",
          "--propagation",
          "private",
          "sh",
          "-c",
          'mount --bind "$0" /etc/resolv.conf && exec "$@"',
          resolv,
          Deno.execPath(),
          "run",
          "-A",
          MAIN,
          "--root",
          root.path,
          "run",
          "-d",
          "--name",
          "qq",
          "--network",
          "ext",
          "busybox",
          "sleep",
          "60",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      await root.ok(["run", "-d", "--name", "rr", "--network", "ext", "busybox", "sleep", "60"]);
      const looked = await root.skiff(["exec", "qq", "nslookup", "outside.skiff.test"]);
      assert.match(looked.stdout, /10\.9\.8\.7/, looked.stdout + looked.stderr);
      // a member's name still comes from the network, not from that resolver
      assert.ok(await resolves(root, "qq", "rr"));
      await root.ok(["rm", "-f", "qq", "rr"]);
      await root.ok(["network", "rm", "ext"]);
    });
  } finally {
    try {
      peer?.kill("SIGKILL");
      await peer?.status;
    } catch { /* gone */ }
    await sh(`ip netns del ${ns}; ip link del ${veth}`);
    await Deno.remove(resolv).catch(() => {});
  }
});

Deno.test("names: 8 containers started at once on a user network each list the 7 others", async () => {
  await withBusybox(async (root) => {
    await root.ok(["network", "create", "--subnet", `10.217.${third()}.0/24`, "crowd"]);
    const names = Array.from({ length: 8 }, (_, i) => `m${i}`);
    await Promise.all(
      names.map((n) => root.ok(["run", "-d", "--name", n, "--network", "crowd", "busybox", "sleep", "60"])),
    );
    for (const n of names) {
      const hosts = await root.ok(["exec", n, "cat", "/etc/hosts"]);
      const listed = hosts.split("\n").map((l) => l.split(/\s+/)[1]).filter((x) => names.includes(x));
      assert.deepEqual(listed.sort(), names.filter((o) => o !== n).sort(), `${n}:\n${hosts}`);
    }
    await root.ok(["rm", "-f", ...names]);
    await root.ok(["network", "rm", "crowd"]);
  });
});
