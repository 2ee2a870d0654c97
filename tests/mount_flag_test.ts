// `run --mount`: binds (read-only refuses writes), volumes, tmpfs with size and mode, and docker's
// refusals (exit 125, nothing created: no container, no volume, no host directory).

import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

function volumeNames(root: TestRoot): string[] {
  try {
    return [...Deno.readDirSync(join(root.path, "volumes"))].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return [];
  }
}

Deno.test("run --mount: bind read-only refuses writes, bind read-write writes through", async () => {
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir");
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(join(host, "in"), "from host\n");
    const ro = await root.skiff([
      "run",
      "--rm",
      "--mount",
      `type=bind,source=${host},target=/data,readonly`,
      "busybox",
      "sh",
      "-c",
      "cat /data/in; echo x > /data/new",
    ]);
    assert.notEqual(ro.code, 0);
    assert.equal(ro.stdout, "from host\n");
    assert.match(ro.stderr, /Read-only file system/);
    assert.throws(() => Deno.statSync(join(host, "new")));
    await root.ok([
      "run",
      "--rm",
      "--mount",
      `type=bind,src=${host},dst=/data,ro=false`,
      "busybox",
      "sh",
      "-c",
      "echo y > /data/new",
    ]);
    assert.equal(Deno.readTextFileSync(join(host, "new")), "y\n");
  });
});

Deno.test("run --mount: named volume (default type) outlives the container; tmpfs size and mode", async () => {
  await withBusybox(async (root) => {
    await root.ok([
      "run",
      "--rm",
      "--mount",
      "source=mvol,target=/v",
      "busybox",
      "sh",
      "-c",
      "echo kept > /v/f",
    ]);
    assert.deepEqual(volumeNames(root), ["mvol"]);
    assert.equal(
      await root.ok([
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mvol,dst=/v,volume-nocopy",
        "busybox",
        "cat",
        "/v/f",
      ]),
      "kept\n",
    );
    const tmpfs = await root.ok([
      "run",
      "--rm",
      "--mount",
      "type=tmpfs,destination=/scratch,tmpfs-size=2m,tmpfs-mode=1770",
      "busybox",
      "sh",
      "-c",
      "grep ' /scratch ' /proc/mounts; stat -c %a /scratch",
    ]);
    assert.match(tmpfs, /^tmpfs \/scratch tmpfs \S*size=2048k\S*/m);
    assert.match(tmpfs, /^1770$/m);
    await root.ok(["volume", "rm", "mvol"]);
  });
});

Deno.test("run --mount: bad input is refused with docker's wording, exit 125, nothing created", async () => {
  await withBusybox(async (root) => {
    const missing = join(root.path, "no-such-dir");
    const cases: [string, RegExp][] = [
      [
        `type=bind,src=${missing},dst=/x`,
        /invalid mount config for type "bind": bind source path does not exist: .*no-such-dir/,
      ],
      ["type=bind,dst=/x", /invalid mount config for type "bind": field Source must not be empty/],
      ["src=somevol", /invalid argument "src=somevol" for "--mount" flag: target is required/],
      ["type=nfs,dst=/x", /invalid argument .* for "--mount" flag: invalid mount type: nfs/],
      ["type=volume,dst=/x,bogus=1", /unexpected key 'bogus' in 'bogus=1'/],
      ["type=bind,src=/tmp,dst=/x,readonly=maybe", /invalid value for readonly: maybe/],
      ["type=bind,src=/tmp,dst=/x,tmpfs-size=1m", /cannot mix 'tmpfs-\*' options with mount type 'bind'/],
      ["type=tmpfs,dst=/x,tmpfs-mode=9", /strconv.ParseUint: parsing "9": invalid syntax/],
      [
        "type=tmpfs,src=/a,dst=/x",
        /invalid mount config for type "tmpfs": field Source must not be specified/,
      ],
      ["type=volume,src=v1,dst=relative", /mount path must be absolute/],
      ["type=volume,dst=/x,novalue", /invalid field 'novalue' must be a key=value pair/],
    ];
    for (const [spec, message] of cases) {
      // a named volume in front: it must not be created when a later --mount is refused
      const r = await root.skiff([
        "run",
        "--rm",
        "--mount",
        "src=early,dst=/early",
        "--mount",
        spec,
        "busybox",
        "true",
      ]);
      assert.equal(r.code, 125, spec);
      assert.match(r.stderr, message, spec);
      assert.equal(r.stderr.trim().split("\n").filter((l) => l.startsWith("skiff:")).length, 1, spec);
    }
    assert.deepEqual(root.containerIds(), []);
    assert.deepEqual(volumeNames(root), []);
    assert.throws(() => Deno.statSync(missing), "--mount never creates a bind source");
    // -v, unlike --mount, creates a missing host directory (docker's behaviour)
    await root.ok(["run", "--rm", "-v", `${missing}:/x`, "busybox", "true"]);
    assert.ok(Deno.statSync(missing).isDirectory);
  });
});
