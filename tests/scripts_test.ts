// The project scripts: the machine leak check that scripts/test.sh (and so CI) relies on must see
// each kind of leak and stop seeing it once it is gone; install.sh must be a quick no-op when
// everything is installed; the scripts/skiff wrapper must run skiff from source.

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { withRoot } from "./helpers.ts";

const SCRIPTS = fromFileUrl(new URL("../scripts/", import.meta.url));

async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

async function leaks(): Promise<string[]> {
  const r = await sh("bash", [join(SCRIPTS, "leakcheck.sh")]);
  assert.equal(r.code, 0, r.err);
  return r.out.split("\n").filter(Boolean);
}

const suffix = () => Math.random().toString(36).slice(2, 8);

Deno.test("leakcheck.sh reports a mount under a test root until it is unmounted", async () => {
  await withRoot(async (root) => {
    const probe = join(root.path, "probe");
    Deno.mkdirSync(probe);
    const mount = await sh("mount", ["-t", "tmpfs", "skiff-probe", probe]);
    assert.equal(mount.code, 0, mount.err);
    try {
      assert.ok((await leaks()).some((l) => l.startsWith(`mount ${probe} `)), "mount not reported");
    } finally {
      await sh("umount", [probe]);
    }
    assert.ok(!(await leaks()).some((l) => l.includes(probe)), "mount still reported after umount");
  });
});

Deno.test("leakcheck.sh reports a process whose command line names a test root", async () => {
  await withRoot(async (root) => {
    // sleep's argv[0] carries the root path, as a container process started for a test would
    const child = new Deno.Command("bash", {
      args: ["-c", `exec -a "${root.path}/sleeper" sleep 30`],
      stdin: "null",
    }).spawn();
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.ok((await leaks()).some((l) => l.startsWith(`process ${child.pid}:`)), "process not reported");
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.ok(!(await leaks()).some((l) => l.startsWith(`process ${child.pid}:`)), "reported after exit");
  });
});

Deno.test("leakcheck.sh reports skiff network links and nft tables", async () => {
  await withRoot(async () => {
    const link = `skiffprb${suffix()}`;
    const table = `skiff_probe_${suffix()}`;
    assert.equal((await sh("ip", ["link", "add", link, "type", "veth", "peer", "name", `${link}p`])).code, 0);
    const nft = await sh("nft", ["add", "table", "inet", table]);
    try {
      const found = await leaks();
      assert.ok(found.includes(`link ${link}`), `link not reported: ${found}`);
      if (nft.code === 0) {
        assert.ok(found.includes(`nft table inet ${table}`), `table not reported: ${found}`);
      }
    } finally {
      await sh("ip", ["link", "del", link]);
      if (nft.code === 0) await sh("nft", ["delete", "table", "inet", table]);
    }
    const after = await leaks();
    assert.ok(!after.some((l) => l.includes(link) || l.includes(table)), `still reported: ${after}`);
  });
});

Deno.test("leakcheck.sh reports NAT rules of removed containers and set entries of removed bridges", async () => {
  const hasNft = (await sh("nft", ["--version"]).catch(() => ({ code: 1 }))).code === 0;
  const hasIpt = (await sh("iptables-save", ["--version"]).catch(() => ({ code: 1 }))).code === 0;
  await withRoot(async () => {
    const tag = `skiff:0badc0de:${
      suffix().padEnd(6, "0").repeat(11).slice(0, 64).replace(/[^0-9a-f]/g, "e")
    }`;
    const bridge = `sknprb${suffix()}`.slice(0, 15);
    const undo: string[][] = [];
    try {
      if (hasNft) {
        const batch =
          `add table ip skiff\nadd set ip skiff bridges { type ifname; }\nadd chain ip skiff ports\n` +
          `add element ip skiff bridges { "${bridge}" }\n` +
          `add rule ip skiff ports tcp dport 9 dnat to 10.255.255.2:9 comment "${tag}"\n`;
        assert.equal((await sh("nft", [batch])).code, 0);
      }
      if (hasIpt) {
        const rule = [
          "-t",
          "nat",
          "-A",
          "SKIFF",
          "-p",
          "tcp",
          "--dport",
          "9",
          "-m",
          "comment",
          "--comment",
          tag,
        ];
        await sh("iptables", ["-t", "nat", "-N", "SKIFF"]); // exists already: fine
        assert.equal(
          (await sh("iptables", [...rule, "-j", "DNAT", "--to-destination", "10.255.255.2:9"])).code,
          0,
        );
        undo.push([
          "iptables",
          ...rule.map((a) => (a === "-A" ? "-D" : a)),
          "-j",
          "DNAT",
          "--to-destination",
          "10.255.255.2:9",
        ]);
      }
      const found = await leaks();
      if (hasNft) {
        assert.ok(
          found.includes(`nft rule of a removed container: ${tag}`),
          `nft rule not reported: ${found}`,
        );
        assert.ok(
          found.includes(`nft set element of a removed bridge: ${bridge}`),
          `element not reported: ${found}`,
        );
      }
      if (hasIpt) {
        assert.ok(
          found.includes(`iptables rule of a removed container: ${tag}`),
          `iptables rule not reported: ${found}`,
        );
      }
    } finally {
      for (const [cmd, ...args] of undo) await sh(cmd, args);
      if (hasNft) {
        const listed = await sh("nft", ["-a", "list", "chain", "ip", "skiff", "ports"]);
        const handle = listed.out.split("\n").find((l) => l.includes(tag))?.match(/handle (\d+)/)?.[1];
        if (handle) await sh("nft", ["delete", "rule", "ip", "skiff", "ports", "handle", handle]);
        await sh("nft", [`delete element ip skiff bridges { "${bridge}" }`]);
      }
    }
    const after = await leaks();
    assert.ok(!after.some((l) => l.includes(tag) || l.includes(bridge)), `still reported: ${after}`);
  });
});

Deno.test("leakcheck.sh reports a child cgroup under a skiff parent", async () => {
  await withRoot(async () => {
    const parent = "/sys/fs/cgroup/pids/skiff";
    let madeParent = false;
    try {
      Deno.mkdirSync(parent);
      madeParent = true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const probe = join(parent, `probe-${suffix()}`);
    Deno.mkdirSync(probe);
    try {
      assert.ok((await leaks()).includes(`cgroup ${probe}`), "cgroup not reported");
    } finally {
      Deno.removeSync(probe);
      if (madeParent) {
        try {
          Deno.removeSync(parent);
        } catch { /* a container of another test moved in meanwhile */ }
      }
    }
    assert.ok(!(await leaks()).includes(`cgroup ${probe}`));
  });
});

Deno.test("install.sh is a quick no-op when everything is installed", async () => {
  const t0 = performance.now();
  const r = await sh("bash", [join(SCRIPTS, "install.sh"), "--test"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /install\.sh: ready: deno 2\.9\.6 /);
  assert.doesNotMatch(r.out, /installing|apt-get install/, "a second run installed something");
  assert.ok(performance.now() - t0 < 10_000, "took longer than 10 s");
});

Deno.test("install.sh rejects an unknown option without doing anything", async () => {
  const r = await sh("bash", [join(SCRIPTS, "install.sh"), "--bogus"]);
  assert.equal(r.code, 2);
  assert.equal(r.err.trim(), "install.sh: unknown option: --bogus");
  assert.equal(r.out, "");
});

Deno.test("scripts/skiff runs skiff from source", async () => {
  const r = await sh(join(SCRIPTS, "skiff"), ["--version"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^skiff version \d+\.\d+\.\d+/);
});
