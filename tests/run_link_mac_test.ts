// run/create --mac-address and --link (legacy links) as root against the real kernel, on skiff's
// default bridge (the veth's address as the kernel shows it, /etc/hosts, the environment, inspect),
// and where the docker peer runs, the same commands on docker 20.10 for its words, codes and formats.
//
// Nothing here sends traffic: names are checked in the containers' /etc/hosts, addresses in /sys.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { dedupeEnv, linkEnv, parseLink, userLinkAliases } from "../lib/network/links.ts";
import { hostsFile } from "../lib/network/mode.ts";

const hex = (n: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");

async function inspect(root: TestRoot, ref: string) {
  return JSON.parse(await root.ok(["inspect", ref]))[0];
}

/** The container's /etc/hosts lines after docker's six. */
async function hostsTail(root: TestRoot, ref: string): Promise<string[]> {
  const text = await root.ok(["exec", ref, "cat", "/etc/hosts"]);
  return text.trimEnd().split("\n").slice(6);
}

const macOf = (ip: string) =>
  "02:42:" + ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join(":");

// ---- pure ----

Deno.test("--link: docker's parsing, skiff's alias check", () => {
  assert.deepEqual(parseLink("web"), { name: "web", alias: "web" });
  assert.deepEqual(parseLink("/web"), { name: "web", alias: "web" });
  assert.deepEqual(parseLink("web:db-1"), { name: "web", alias: "db-1" });
  assert.deepEqual(parseLink("web:/x"), { name: "web", alias: "x" });
  // the form HostConfig.Links shows
  assert.deepEqual(parseLink("/web:/par/x"), { name: "web", alias: "x" });
  assert.equal(parseLink("web:"), undefined); // docker registers nothing for it
  assert.throws(() => parseLink(""), { message: "empty string specified for links" });
  assert.throws(() => parseLink("web:a:b"), { message: "bad format for links: web:a:b" });
  // an alias is a field of an /etc/hosts line: docker takes these, skiff does not
  for (const alias of ["bad alias", "x\n6.6.6.6 victim", "x#y", "a/b", "-x", "x\t"]) {
    assert.throws(() => parseLink(`web:${alias}`), /invalid link alias/, JSON.stringify(alias));
  }
});

Deno.test("--link: the variables as docker 20.10 gives them (captured from the peer)", () => {
  // docker run -d --name lrange --expose 6379-6381 --expose 53/udp --expose 8080/udp --expose 8080/tcp
  //   --expose 9000/sctp -e A=1 -e HOME=/x -e B=two=2 localhost/bb sleep 60
  // docker run --rm --link lrange:db-1 localhost/bb env   (between PATH/HOSTNAME and HOME)
  const docker20 = `DB_1_PORT=udp://172.17.0.2:53
DB_1_PORT_6379_TCP_START=tcp://172.17.0.2:6379
DB_1_PORT_6379_TCP_ADDR=172.17.0.2
DB_1_PORT_6379_TCP_PROTO=tcp
DB_1_PORT_6379_TCP_PORT_START=6379
DB_1_PORT_6379_TCP_END=tcp://172.17.0.2:6381
DB_1_PORT_6379_TCP_PORT_END=6381
DB_1_PORT_53_UDP=udp://172.17.0.2:53
DB_1_PORT_53_UDP_ADDR=172.17.0.2
DB_1_PORT_53_UDP_PORT=53
DB_1_PORT_53_UDP_PROTO=udp
DB_1_PORT_6379_TCP=tcp://172.17.0.2:6379
DB_1_PORT_6379_TCP_PORT=6379
DB_1_PORT_6380_TCP=tcp://172.17.0.2:6380
DB_1_PORT_6380_TCP_ADDR=172.17.0.2
DB_1_PORT_6380_TCP_PORT=6380
DB_1_PORT_6380_TCP_PROTO=tcp
DB_1_PORT_6381_TCP=tcp://172.17.0.2:6381
DB_1_PORT_6381_TCP_ADDR=172.17.0.2
DB_1_PORT_6381_TCP_PORT=6381
DB_1_PORT_6381_TCP_PROTO=tcp
DB_1_PORT_8080_TCP=tcp://172.17.0.2:8080
DB_1_PORT_8080_TCP_ADDR=172.17.0.2
DB_1_PORT_8080_TCP_PORT=8080
DB_1_PORT_8080_TCP_PROTO=tcp
DB_1_PORT_8080_UDP=udp://172.17.0.2:8080
DB_1_PORT_8080_UDP_ADDR=172.17.0.2
DB_1_PORT_8080_UDP_PORT=8080
DB_1_PORT_8080_UDP_PROTO=udp
DB_1_PORT_9000_SCTP=sctp://172.17.0.2:9000
DB_1_PORT_9000_SCTP_ADDR=172.17.0.2
DB_1_PORT_9000_SCTP_PORT=9000
DB_1_PORT_9000_SCTP_PROTO=sctp
DB_1_NAME=/nervous_tesla/db-1
DB_1_ENV_A=1
DB_1_ENV_B=two=2`;
  const env = linkEnv({
    alias: "db-1",
    fullName: "/nervous_tesla/db-1",
    ip: "172.17.0.2",
    env: ["A=1", "HOME=/x", "B=two=2", "PATH=/usr/bin"],
    // in no particular order (docker's map)
    ports: ["8080/udp", "6381/tcp", "9000/sctp", "53/udp", "6379/tcp", "8080/tcp", "6380/tcp"],
  });
  assert.deepEqual(dedupeEnv(env), docker20.split("\n"));
  // no ports: the name and the environment only
  assert.deepEqual(linkEnv({ alias: "x", fullName: "/p/x", ip: "10.0.0.2", env: ["K=v"], ports: [] }), [
    "X_NAME=/p/x",
    "X_ENV_K=v",
  ]);
});

Deno.test("--link: /etc/hosts lines and user-network aliases, pure", () => {
  assert.equal(
    hostsFile(["h1:1.2.3.4"], { ip: "10.89.0.3", hostname: "me" }, [
      { ip: "10.89.0.2", names: ["x", "f781470fd3d3", "web"] },
    ]).split("\n").slice(6).join("\n"),
    "1.2.3.4\th1\n10.89.0.2\tx f781470fd3d3 web\n10.89.0.3\tme\n",
  );
  const id = "ab".repeat(32);
  const names = ["w3", id.slice(0, 12), "www"];
  assert.deepEqual(userLinkAliases(["w3:x", "foo:bar", "www:y", "/w3:/p/z", `${id}:full`], names, id), [
    "x",
    "y",
    "z",
    "full",
  ]);
  // a record changed by hand gives no field that could end the line
  assert.deepEqual(userLinkAliases(["w3:a b", "w3:a\nb", "w3:#"], names, id), []);
});

// ---- --mac-address ----

Deno.test("--mac-address: eth0 gets it; inspect shows it as docker; without it docker's MAC from the address", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--rm",
      "--mac-address",
      "02:42:ac:11:ff:01",
      "busybox",
      "cat",
      "/sys/class/net/eth0/address",
    ]);
    assert.equal(out, "02:42:ac:11:ff:01\n");
    // docker's other spellings; Config.MacAddress keeps what was given
    await root.ok([
      "run",
      "-d",
      "--name",
      "mm",
      "--mac-address",
      "02-42-AC-11-FF-02",
      "busybox",
      "sleep",
      "60",
    ]);
    assert.equal(await root.ok(["exec", "mm", "cat", "/sys/class/net/eth0/address"]), "02:42:ac:11:ff:02\n");
    const m = await inspect(root, "mm");
    assert.equal(m.Config.MacAddress, "02-42-AC-11-FF-02");
    assert.equal(m.NetworkSettings.MacAddress, "02:42:ac:11:ff:02");
    assert.equal(m.NetworkSettings.Networks.bridge.MacAddress, "02:42:ac:11:ff:02");
    // docker's Config field order: after Entrypoint, before OnBuild
    const keys = Object.keys(m.Config);
    assert.equal(keys.indexOf("MacAddress"), keys.indexOf("Entrypoint") + 1);
    // an 8-byte address (Go's ParseMAC takes it): the interface has its first 6 bytes, as in docker
    const long = await root.ok([
      "run",
      "--rm",
      "--mac-address",
      "0242.ac11.ff03.0001",
      "busybox",
      "cat",
      "/sys/class/net/eth0/address",
    ]);
    assert.equal(long, "02:42:ac:11:ff:03\n");
    // without the flag: absent from the JSON (docker's omitempty), "" to a template, MAC from the IP
    await root.ok(["run", "-d", "--name", "dd", "busybox", "sleep", "60"]);
    const d = await inspect(root, "dd");
    assert.equal("MacAddress" in d.Config, false);
    assert.equal(await root.ok(["inspect", "-f", "{{.Config.MacAddress}}", "dd"]), "\n");
    assert.equal(d.NetworkSettings.MacAddress, macOf(d.NetworkSettings.IPAddress));
    assert.equal(
      await root.ok(["exec", "dd", "cat", "/sys/class/net/eth0/address"]),
      `${macOf(d.NetworkSettings.IPAddress)}\n`,
    );
    // created, not started: the flag is kept, no endpoint has it yet
    await root.ok(["create", "--name", "cc", "--mac-address", "02:42:ac:11:ff:04", "busybox", "true"]);
    const c = await inspect(root, "cc");
    assert.deepEqual(
      [c.Config.MacAddress, c.NetworkSettings.MacAddress, c.NetworkSettings.Networks.bridge.MacAddress],
      ["02:42:ac:11:ff:04", "", ""],
    );
    // a restart gives it again (the address is the container's, not the lease's)
    await root.ok(["restart", "-t", "0", "mm"]);
    assert.equal(await root.ok(["exec", "mm", "cat", "/sys/class/net/eth0/address"]), "02:42:ac:11:ff:02\n");
  });
});

Deno.test("--mac-address: docker's refusals and what the kernel refuses; --network none keeps it unused", async () => {
  await withBusybox(async (root) => {
    for (const bad of ["zz", "2:42:ac:11:ff:1", "02:42:ac:11:ff"]) {
      for (const verb of ["run", "create"]) {
        const r = await root.skiff([verb, "--rm", "--mac-address", bad, "busybox", "true"]);
        assert.equal(r.code, 125, `${verb} ${bad}: ${r.stderr}`);
        assert.equal(r.stderr, `skiff: ${bad} is not a valid mac address\n`);
      }
    }
    // no interface of its own to give it: run 125, create 1 (docker's daemon refusal)
    for (const mode of ["host", "container:other"]) {
      if (mode !== "host") await root.ok(["run", "-d", "--name", "other", "busybox", "sleep", "60"]);
      const r = await root.skiff([
        "run",
        "--rm",
        "--network",
        mode,
        "--mac-address",
        "02:42:ac:11:ff:01",
        "busybox",
        "true",
      ]);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stderr, "skiff: conflicting options: mac-address and the network mode\n");
      const c = await root.skiff([
        "create",
        "--network",
        mode,
        "--mac-address",
        "02:42:ac:11:ff:01",
        "busybox",
        "true",
      ]);
      assert.equal(c.code, 1, c.stderr);
    }
    // none: taken and kept, lo only
    const none = await root.ok([
      "run",
      "--name",
      "nn",
      "--network",
      "none",
      "--mac-address",
      "02:42:ac:11:ff:01",
      "busybox",
      "ls",
      "/sys/class/net",
    ]);
    assert.equal(none, "lo\n");
    assert.equal(await root.ok(["inspect", "-f", "{{.Config.MacAddress}}", "nn"]), "02:42:ac:11:ff:01\n");
    // a multicast or all-zero address: created, but the kernel refuses it at start, nothing left
    const before = root.containerIds().length;
    for (const mac of ["01:42:ac:11:ff:01", "00:00:00:00:00:00"]) {
      const r = await root.skiff(["run", "--rm", "--mac-address", mac, "busybox", "true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`MAC to "${mac}": cannot assign requested address\n$`));
    }
    assert.equal(root.containerIds().length, before);
    await root.ok(["create", "--name", "mc", "--mac-address", "01:42:ac:11:ff:01", "busybox", "true"]);
    const start = await root.skiff(["start", "mc"]);
    assert.equal(start.code, 1, start.stderr);
    assert.match(start.stderr, /cannot assign requested address/);
    assert.equal(await root.ok(["inspect", "-f", "{{.State.Running}}", "mc"]), "false\n");
    const leases = JSON.parse(Deno.readTextFileSync(join(root.path, "network", "bridge.json"))).Leases;
    const mc = (await inspect(root, "mc")).Id;
    assert.equal(Object.values(leases).some((l) => (l as { Container: string }).Container === mc), false);
  });
});

// ---- --link ----

Deno.test("--link: /etc/hosts line, environment and inspect as docker's", async () => {
  await withBusybox(async (root) => {
    await root.ok([
      "run",
      "-d",
      "--name",
      "web",
      "--expose",
      "80",
      "--expose",
      "53/udp",
      "-e",
      "FOO=bar",
      "-e",
      "WEIRD=a b$HOME",
      "busybox",
      "sleep",
      "60",
    ]);
    const web = await inspect(root, "web");
    const ip = web.NetworkSettings.IPAddress, id12 = web.Id.slice(0, 12);
    await root.ok([
      "run",
      "-d",
      "--name",
      "par",
      "--link",
      "web:al",
      "--link",
      "web",
      "busybox",
      "sleep",
      "60",
    ]);
    const own = (await inspect(root, "par")).NetworkSettings.IPAddress;
    // docker's order: the links, then its own line; the alias, the hostname, the name unless it is the alias
    assert.deepEqual(await hostsTail(root, "par"), [
      `${ip}\tal ${id12} web`,
      `${ip}\tweb ${id12}`,
      `${own}\t${(await inspect(root, "par")).Id.slice(0, 12)}`,
    ]);
    const env = (await root.ok(["exec", "par", "env"])).trimEnd().split("\n");
    const al = env.filter((e) => e.startsWith("AL_"));
    assert.deepEqual(al, [
      `AL_PORT=udp://${ip}:53`,
      `AL_PORT_53_UDP=udp://${ip}:53`,
      `AL_PORT_53_UDP_ADDR=${ip}`,
      "AL_PORT_53_UDP_PORT=53",
      "AL_PORT_53_UDP_PROTO=udp",
      `AL_PORT_80_TCP=tcp://${ip}:80`,
      `AL_PORT_80_TCP_ADDR=${ip}`,
      "AL_PORT_80_TCP_PORT=80",
      "AL_PORT_80_TCP_PROTO=tcp",
      "AL_NAME=/par/al",
      "AL_ENV_FOO=bar",
      "AL_ENV_WEIRD=a b$HOME",
    ]);
    assert.ok(env.includes("WEB_NAME=/par/web"));
    // the container's own process has them too (not only exec's), after PATH and HOSTNAME
    const environ = (await root.ok(["exec", "par", "cat", "/proc/1/environ"])).split("\0");
    assert.match(environ[0], /^PATH=/);
    assert.deepEqual(environ.slice(1, 3), [
      `HOSTNAME=${(await inspect(root, "par")).Id.slice(0, 12)}`,
      `AL_PORT=udp://${ip}:53`,
    ]);
    assert.ok(environ.includes("AL_ENV_WEIRD=a b$HOME"));
    const par = await inspect(root, "par");
    assert.deepEqual(par.HostConfig.Links, ["/web:/par/al", "/web:/par/web"]);
    assert.equal(par.NetworkSettings.Networks.bridge.Links, null);
    assert.equal(par.Config.Env.some((e: string) => e.startsWith("AL_")), false); // computed at start
    assert.equal("LinkedContainers" in par, false); // skiff's bookkeeping stays out of inspect
    // -e wins over a link's variable, in its place (docker's ReplaceOrAppendEnvValues)
    const mine = await root.ok(["run", "--rm", "--link", "web:x", "-e", "X_NAME=mine", "busybox", "env"]);
    const lines = mine.trimEnd().split("\n");
    assert.ok(lines.indexOf("X_NAME=mine") > lines.indexOf("X_PORT_80_TCP_PROTO=tcp"));
    assert.ok(lines.indexOf("X_NAME=mine") < lines.indexOf("X_ENV_FOO=bar"));
    // a renamed linked container shows and resolves under its new name at the next start
    await root.ok(["rename", "web", "www"]);
    assert.deepEqual((await inspect(root, "par")).HostConfig.Links, ["/www:/par/al", "/www:/par/web"]);
    await root.ok(["restart", "-t", "0", "par"]);
    assert.deepEqual((await hostsTail(root, "par")).slice(0, 2), [
      `${ip}\tal ${id12} www`,
      `${ip}\tweb ${id12} www`,
    ]);
    // a link through a container that joined another's namespace is a link to that one
    await root.ok(["run", "-d", "--name", "joined", "--network", "container:www", "busybox", "sleep", "60"]);
    const j = await root.ok([
      "run",
      "--rm",
      "--link",
      "joined:j",
      "busybox",
      "sh",
      "-c",
      "tail -2 /etc/hosts",
    ]);
    assert.equal(j.split("\n")[0], `${ip}\tj ${id12} www`);
  });
});

Deno.test("--link: docker's refusals (words, exit codes), nothing made", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "-d", "--name", "web", "busybox", "sleep", "60"]);
    await root.ok(["create", "--name", "stopped", "busybox", "true"]);
    await root.ok(["run", "-d", "--name", "hostnet", "--network", "host", "busybox", "sleep", "60"]);
    await root.ok(["run", "-d", "--name", "nonet", "--network", "none", "busybox", "sleep", "60"]);
    const ids = root.containerIds().length;
    const cases: [string[], number, number, string][] = [
      [["--link", "nosuch:x"], 125, 1, "could not get container for nosuch: No such container: nosuch"],
      [["--link", ":x"], 125, 1, `could not get container for : invalid name or ID supplied: ""`],
      [
        ["--link", "hostnet:x"],
        125,
        1,
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
      ],
      [
        ["--network", "host", "--link", "web:x"],
        125,
        125,
        "links are only supported for user-defined networks",
      ],
      [
        ["--network", "none", "--link", "web:x"],
        125,
        125,
        "links are only supported for user-defined networks",
      ],
      [
        ["--network", "container:web", "--link", "web:x"],
        125,
        125,
        "links are only supported for user-defined networks",
      ],
    ];
    for (const [flags, runCode, createCode, words] of cases) {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assert.deepEqual([r.code, r.stderr], [runCode, `skiff: ${words}\n`], flags.join(" "));
      const c = await root.skiff(["create", ...flags, "busybox", "true"]);
      assert.deepEqual([c.code, c.stderr], [createCode, `skiff: ${words}\n`], flags.join(" "));
    }
    for (
      const [value, why] of [["", "empty string specified for links"], [
        "web:a:b",
        "bad format for links: web:a:b",
      ]]
    ) {
      const r = await root.skiff(["create", "--link", value, "busybox", "true"]);
      assert.equal(r.code, 125);
      assert.match(r.stderr, new RegExp(`^skiff: invalid argument "${value}" for "--link" flag: ${why}`));
    }
    assert.equal(root.containerIds().length, ids);
    // at start: a linked container that does not run, or not on the default bridge
    const stopped = await root.skiff([
      "run",
      "--rm",
      "--name",
      "p1",
      "--link",
      "stopped:x",
      "busybox",
      "true",
    ]);
    assert.deepEqual([stopped.code, stopped.stderr], [
      125,
      "skiff: Cannot link to a non running container: /stopped AS /p1/x\n",
    ]);
    const none = await root.skiff(["run", "--rm", "--link", "nonet:x", "busybox", "true"]);
    assert.deepEqual([none.code, none.stderr], [
      125,
      "skiff: Cannot link to /nonet, as it does not belong to the default network\n",
    ]);
    assert.equal(root.containerIds().length, ids);
    await root.ok(["create", "--name", "p2", "--link", "stopped:x", "busybox", "true"]);
    const start = await root.skiff(["start", "p2"]);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^skiff: Cannot link to a non running container: \/stopped AS \/p2\/x\n/);
    // `NAME:` (an empty alias): docker registers nothing
    await root.ok(["create", "--name", "p3", "--link", "web:", "busybox", "true"]);
    assert.equal((await inspect(root, "p3")).HostConfig.Links, null);
    // the same alias twice: the first link is kept, as docker keeps it
    await root.ok(["create", "--name", "p4", "--link", "web:x", "--link", "stopped:x", "busybox", "true"]);
    assert.deepEqual((await inspect(root, "p4")).HostConfig.Links, ["/web:/p4/x"]);
  });
});

Deno.test("--link: every start reads the linked container again; refused while it is stopped; rm -l", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "-d", "--name", "web", "--expose", "80", "busybox", "sleep", "60"]);
    await root.ok(["run", "-d", "--name", "par", "--link", "web:x", "busybox", "sleep", "60"]);
    const ipA = (await inspect(root, "web")).NetworkSettings.IPAddress;
    assert.match((await hostsTail(root, "par"))[0], new RegExp(`^${ipA}\tx `));
    // the addresses are handed out one after the other: a restart gives another
    await root.ok(["restart", "-t", "0", "web"]);
    const ipB = (await inspect(root, "web")).NetworkSettings.IPAddress;
    assert.notEqual(ipB, ipA);
    // docker 20.10 leaves a running parent's file as it was until the parent starts again
    assert.match((await hostsTail(root, "par"))[0], new RegExp(`^${ipA}\tx `));
    await root.ok(["restart", "-t", "0", "par"]);
    assert.match((await hostsTail(root, "par"))[0], new RegExp(`^${ipB}\tx `));
    assert.ok((await root.ok(["exec", "par", "env"])).includes(`X_PORT_80_TCP=tcp://${ipB}:80\n`));
    // the linked container stopped: exec and a start are refused (docker's), nothing is left of it
    await root.ok(["stop", "-t", "0", "web"]);
    const exec = await root.skiff(["exec", "par", "true"]);
    assert.deepEqual([exec.code, exec.stderr], [
      1,
      "skiff: Cannot link to a non running container: /web AS /par/x\n",
    ]);
    await root.ok(["stop", "-t", "0", "par"]);
    const start = await root.skiff(["start", "par"]);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^skiff: Cannot link to a non running container: \/web AS \/par\/x\n/);
    const par = await inspect(root, "par");
    assert.equal(par.State.Running, false);
    const leases = JSON.parse(Deno.readTextFileSync(join(root.path, "network", "bridge.json"))).Leases;
    assert.equal(Object.values(leases).some((l) => (l as { Container: string }).Container === par.Id), false);
    await root.ok(["start", "web"]);
    await root.ok(["start", "par"]);
    // rm -l: the link goes from the record and from the running container's /etc/hosts
    const rm = await root.skiff(["rm", "-l", "/par/x"]);
    assert.deepEqual([rm.code, rm.stdout], [0, "/par/x\n"]);
    assert.equal((await inspect(root, "par")).HostConfig.Links, null);
    assert.equal((await hostsTail(root, "par")).length, 1); // its own line only
    assert.equal((await root.ok(["exec", "par", "env"])).includes("X_"), false);
    assert.equal((await inspect(root, "web")).State.Running, true); // the linked container stays
    const refusals: [string, string][] = [
      ["/par/x", "No such container: par/x"],
      ["par/nosuch", "No such container: par/nosuch"],
      ["/nosuch/x", "No such container: nosuch/x"],
      ["par", "Conflict, cannot remove the default link name of the container"],
      ["nosuch", "No such container: nosuch"],
    ];
    for (const [ref, words] of refusals) {
      const r = await root.skiff(["rm", "-l", ref]);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, "", `skiff: ${words}\n`], ref);
    }
    // a removed linked container: the parent keeps the link (docker's) and cannot start
    await root.ok(["run", "-d", "--name", "p2", "--link", "web:y", "busybox", "sleep", "60"]);
    await root.ok(["rm", "-f", "web"]);
    assert.deepEqual((await inspect(root, "p2")).HostConfig.Links, ["/web:/p2/y"]);
    await root.ok(["stop", "-t", "0", "p2"]);
    const gone = await root.skiff(["start", "p2"]);
    assert.match(gone.stderr, /^skiff: Cannot link to a non running container: \/web AS \/p2\/y\n/);
  });
});

Deno.test("--link on a user network: the alias names that member in the linking container's /etc/hosts only", async () => {
  await withBusybox(async (root) => {
    const third = crypto.getRandomValues(new Uint8Array(1))[0];
    await root.ok(["network", "create", "--subnet", `10.218.${third}.0/24`, "un"]);
    // docker takes a link to a container that does not exist (yet): a name in its DNS
    await root.ok([
      "run",
      "-d",
      "--name",
      "pp",
      "--network",
      "un",
      "--link",
      "ww:x",
      "--link",
      "nosuch",
      "busybox",
      "sleep",
      "60",
    ]);
    await root.ok(["run", "-d", "--name", "ww", "--network", "un", "busybox", "sleep", "60"]);
    const w = await inspect(root, "ww"), p = await inspect(root, "pp");
    const ipW = w.NetworkSettings.Networks.un.IPAddress;
    const tail = await hostsTail(root, "pp");
    assert.ok(tail.includes(`${ipW}\tww ${w.Id.slice(0, 12)} x`), tail.join("|"));
    assert.equal((await hostsTail(root, "ww")).some((l) => l.split(/\s/).includes("x")), false);
    assert.deepEqual(p.NetworkSettings.Networks.un.Links, ["ww:x", "nosuch"]);
    assert.equal(p.HostConfig.Links, null);
    // the member leaves: its line (and the alias) goes
    await root.ok(["stop", "-t", "0", "ww"]);
    assert.equal((await hostsTail(root, "pp")).some((l) => l.includes(ipW)), false);
    await root.ok(["rm", "-f", "pp", "ww"]);
    await root.ok(["network", "rm", "un"]);
  });
});

Deno.test("--link: what the linked container's image controls reaches the environment only", async () => {
  await withBusybox(async (root) => {
    // values and names the linked container chose: a newline with a hosts line after it, a '#', a '='
    const evil = "x\n6.6.6.6 victim\n";
    await root.ok([
      "run",
      "-d",
      "--name",
      "web",
      "-h",
      "host#name",
      "-e",
      `EVIL=${evil}`,
      "-e",
      "A$(touch${IFS}/tmp/pwned)=1",
      "busybox",
      "sleep",
      "60",
    ]);
    const ip = (await inspect(root, "web")).NetworkSettings.IPAddress;
    await root.ok(["run", "-d", "--name", "par", "--link", "web:x", "busybox", "sleep", "60"]);
    const hosts = await root.ok(["exec", "par", "cat", "/etc/hosts"]);
    assert.equal(hosts.includes("victim"), false);
    assert.equal(hosts.includes("#"), false); // a hostname with '#' is left out of the line, not commented
    assert.equal((await hostsTail(root, "par"))[0], `${ip}\tx web`);
    // the value arrives whole in the environment, and nothing ran it
    const environ = (await root.ok(["exec", "par", "cat", "/proc/1/environ"])).split("\0");
    assert.ok(environ.includes(`X_ENV_EVIL=${evil}`));
    assert.ok(environ.includes("X_ENV_A$(touch${IFS}/tmp/pwned)=1"));
    assert.equal((await root.skiff(["exec", "par", "ls", "/tmp/pwned"])).code, 1);
    // an alias that would add a line is refused before anything is made
    const ids = root.containerIds().length;
    const r = await root.skiff(["run", "--rm", "--link", "web:x\n6.6.6.6 victim", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /invalid link alias/);
    assert.equal(root.containerIds().length, ids);
  });
});

// ---- against docker ----

Deno.test("docker gives the same lines, variables, words and codes (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  const img = "localhost/bb:latest";
  const web = `lmweb-${hex(3)}`, par = `lmpar-${hex(3)}`;
  const made: string[] = [];
  try {
    // --mac-address
    const mac = await docker([
      "run",
      "--rm",
      "--mac-address",
      "02:42:ac:11:ff:01",
      img,
      "cat",
      "/sys/class/net/eth0/address",
    ]);
    assert.equal(mac.stdout, "02:42:ac:11:ff:01\n");
    for (const verb of ["run", "create"]) {
      const bad = await docker([verb, "--rm", "--mac-address", "zz", img, "true"]);
      assert.equal(bad.code, 125);
      assert.match(bad.stderr, /zz is not a valid mac address/);
    }
    const host = await docker(["create", "--network", "host", "--mac-address", "02:42:ac:11:ff:01", img]);
    assert.equal(host.code, 1);
    assert.match(host.stderr, /conflicting options: mac-address and the network mode/);
    const multicast = await docker(["run", "--rm", "--mac-address", "01:42:ac:11:ff:01", img, "true"]);
    assert.equal(multicast.code, 125);
    assert.match(multicast.stderr, /MAC to \\?"01:42:ac:11:ff:01\\?": cannot assign requested address/);
    // --link
    made.push(web);
    await docker([
      "run",
      "-d",
      "--name",
      web,
      "--expose",
      "80",
      "--expose",
      "53/udp",
      "-e",
      "FOO=bar",
      img,
      "sleep",
      "60",
    ]);
    const ip = (await docker(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", web])).stdout.trim();
    const id12 = (await docker(["inspect", "-f", "{{.Id}}", web])).stdout.trim().slice(0, 12);
    made.push(par);
    await docker(["run", "-d", "--name", par, "--link", `${web}:al`, img, "sleep", "60"]);
    const hosts = (await docker(["exec", par, "cat", "/etc/hosts"])).stdout.trimEnd().split("\n");
    assert.equal(hosts[6], `${ip}\tal ${id12} ${web}`);
    const env = (await docker(["exec", par, "env"])).stdout.trimEnd().split("\n").filter((e) =>
      e.startsWith("AL_")
    );
    assert.deepEqual(env, [
      `AL_PORT=udp://${ip}:53`,
      `AL_PORT_53_UDP=udp://${ip}:53`,
      `AL_PORT_53_UDP_ADDR=${ip}`,
      "AL_PORT_53_UDP_PORT=53",
      "AL_PORT_53_UDP_PROTO=udp",
      `AL_PORT_80_TCP=tcp://${ip}:80`,
      `AL_PORT_80_TCP_ADDR=${ip}`,
      "AL_PORT_80_TCP_PORT=80",
      "AL_PORT_80_TCP_PROTO=tcp",
      `AL_NAME=/${par}/al`,
      "AL_ENV_FOO=bar",
    ]);
    assert.equal(
      (await docker(["inspect", "-f", "{{json .HostConfig.Links}}", par])).stdout,
      `["/${web}:/${par}/al"]\n`,
    );
    const missing = await docker(["create", "--link", "nosuch-lm:x", img]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /could not get container for nosuch-lm: No such container: nosuch-lm/);
    for (const mode of ["host", "none"]) {
      const r = await docker(["create", "--network", mode, "--link", `${web}:x`, img]);
      assert.equal(r.code, 125);
      assert.match(r.stderr, /links are only supported for user-defined networks/);
    }
    const rm = await docker(["rm", "-l", `/${par}/al`]);
    assert.deepEqual([rm.code, rm.stdout], [0, `/${par}/al\n`]);
    assert.equal((await docker(["inspect", "-f", "{{json .HostConfig.Links}}", par])).stdout, "null\n");
    const def = await docker(["rm", "-l", par]);
    assert.equal(def.code, 1);
    assert.match(def.stderr, /Conflict, cannot remove the default link name of the container/);
  } finally {
    if (made.length) await docker(["rm", "-f", ...made]);
  }
});
