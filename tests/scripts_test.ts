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
