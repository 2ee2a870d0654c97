// `run/create --volumes-from CONTAINER[:MODE]`: another container's binds and volumes at their
// destinations, as docker's daemon copies them (read-only with `:ro`, a -v at the same destination in
// their place, an empty volume given the image's files), docker's refusals, `rm -v` keeping a volume
// another container still uses; the attack: an image whose destination is a symlink out of its root.

import * as assert from "node:assert/strict";
import { join } from "node:path";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { runDetached } from "./detach_helpers.ts";

type Mount = { Type: string; Name?: string; Source: string; Destination: string; Mode: string; RW: boolean };

async function mounts(root: TestRoot, name: string): Promise<Mount[]> {
  const out = await root.ok(["inspect", "-f", "{{json .Mounts}}", name]);
  return (JSON.parse(out) as Mount[]).sort((a, b) => a.Destination.localeCompare(b.Destination));
}

function volumeNames(root: TestRoot): string[] {
  try {
    return [...Deno.readDirSync(join(root.path, "volumes"))].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return [];
  }
}

Deno.test("--volumes-from: binds and volumes of another container, :ro, and a -v in their place", async () => {
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir"), other = join(root.path, "other");
    Deno.mkdirSync(host);
    Deno.mkdirSync(other);
    Deno.writeTextFileSync(join(other, "which"), "other\n");
    // never started: its volumes exist from its creation
    await root.ok([
      "create",
      "--name",
      "src",
      "-v",
      "/data",
      "-v",
      "named:/named",
      "-v",
      `${host}:/hb:ro`,
      "busybox",
      "true",
    ]);
    const srcMounts = await mounts(root, "src");
    assert.equal(srcMounts.length, 3);

    // everything, each with its own RW; the writes land in the source's volume and bind
    const rw = await root.skiff([
      "run",
      "--rm",
      "--volumes-from",
      "src",
      "busybox",
      "sh",
      "-c",
      "echo d > /data/f && echo n > /named/g && cat /data/f /named/g; echo x > /hb/f",
    ]);
    assert.equal(rw.code, 1, rw.stderr);
    assert.equal(rw.stdout, "d\nn\n");
    assert.match(rw.stderr, /can't create \/hb\/f: Read-only file system/);

    // :ro: all read-only; a -v at /named takes that one's place (read-write)
    await root.ok([
      "create",
      "--name",
      "user",
      "--volumes-from",
      "src:ro",
      "-v",
      `${other}:/named`,
      "busybox",
      "sh",
      "-c",
      "cat /data/f /named/which; echo y > /named/new; echo z > /data/f",
    ]);
    const user = await mounts(root, "user");
    assert.deepEqual(user.map((m) => [m.Destination, m.Type, m.RW, m.Mode]), [
      ["/data", "volume", false, ""],
      ["/hb", "bind", false, ""],
      ["/named", "bind", true, ""],
    ]);
    assert.equal(user[0].Name, srcMounts[0].Name, "the same anonymous volume");
    assert.equal(
      await root.ok(["inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "user"]),
      '["src:ro"]\n',
    );
    const ro = await root.skiff(["start", "-a", "user"]);
    assert.equal(ro.code, 1);
    assert.equal(ro.stdout, "d\nother\n");
    assert.match(ro.stderr, /can't create \/data\/f: Read-only file system/);
    assert.equal(Deno.readTextFileSync(join(other, "new")), "y\n");

    // run -d: the supervisor makes the container the same way
    const id = await runDetached(root, ["--volumes-from", "src", "busybox", "cat", "/data/f"]);
    assert.equal((await root.ok(["wait", id])).trim(), "0");
    assert.equal(await root.ok(["logs", id]), "d\n");

    // rm -v of a user keeps the volume its source still has; the source's rm -v then removes it
    const before = volumeNames(root).sort();
    await root.ok(["rm", "-v", "user", id]);
    assert.deepEqual(volumeNames(root).sort(), before);
    await root.ok(["rm", "-v", "src"]);
    assert.deepEqual(volumeNames(root), ["named"]);
  });
});

Deno.test("--volumes-from: the new container's image files are never copied into an inherited volume", async () => {
  await withBusybox(async (root) => {
    // docker 20.10 (checked with its peer: an image with files at /data, a source with an empty
    // volume there): CopyData is false for volumes-from, so a `:ro` user cannot fill it either.
    // The source's own create would fill it (docker copies at create): nocopy keeps it empty
    await root.ok(["create", "--name", "src", "-v", "srcvol:/etc:nocopy", "busybox", "true"]);
    for (const spec of ["src", "src:ro"]) {
      const listing = await root.ok(["run", "--rm", "--volumes-from", spec, "busybox", "ls", "-A", "/etc"]);
      assert.doesNotMatch(listing, /passwd/, spec);
    }
    const [volume] = (await mounts(root, "src")).map((m) => m.Source);
    assert.deepEqual([...Deno.readDirSync(volume)].map((e) => e.name).filter((n) => n === "passwd"), []);
  });
});

Deno.test("--volumes-from: docker's refusals change nothing (create 1, run 125)", async () => {
  await withBusybox(async (root) => {
    await root.ok(["create", "--name", "src", "-v", "/data", "busybox", "true"]);
    const volumes = volumeNames(root).sort();
    const cases: [string, string][] = [
      ["nosuch", "No such container: nosuch"],
      ["src:bogus", "invalid mode: bogus"],
      ["", "volumes-from specification cannot be an empty string"],
      ["src:nocopy", "invalid mode: nocopy"],
      ["src:shared", "invalid mode: shared"],
      ["src:rw:ro", "invalid mode: rw:ro"],
      ["src:ro,rw", "invalid mode: ro,rw"],
    ];
    for (const [spec, words] of cases) {
      for (const [verb, code] of [["create", 1], ["run", 125]] as const) {
        const args = verb === "run" ? ["run", "--rm"] : ["create"];
        const r = await root.skiff([...args, "-v", "/more", "--volumes-from", spec, "busybox", "true"]);
        assert.equal(r.code, code, `${verb} ${spec}: ${r.stderr}`);
        assert.equal(r.stderr, `skiff: ${words}\n`);
      }
    }
    assert.equal(root.containerIds().length, 1);
    assert.deepEqual(volumeNames(root).sort(), volumes);
    // modes docker takes
    for (const spec of ["src:rw", "src:ro,z", "src:Z", "src:"]) {
      await root.ok(["run", "--rm", "--volumes-from", spec, "busybox", "true"]);
    }
  });
});

Deno.test("attack: an image whose inherited destination is a symlink out of its root", async () => {
  await withBusybox(async (root) => {
    const host = join(root.path, "host-target");
    Deno.mkdirSync(host);
    await root.ok([
      "run",
      "--name",
      "mk",
      "--network",
      "none",
      "busybox",
      "ln",
      "-s",
      `../../../../../..${host}`,
      "/data",
    ]);
    await root.ok(["commit", "mk", "hostile:link"]);
    await root.ok(["rm", "mk"]);
    await root.ok(["create", "--name", "src", "-v", "/data", "busybox", "true"]);
    const r = await root.skiff([
      "run",
      "--rm",
      "--network",
      "none",
      "--volumes-from",
      "src",
      "hostile:link",
      "sh",
      "-c",
      "echo pwned > /data/x; cat /data/x",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pwned\n");
    // the volume went where the symlink leads inside the container's root, never onto the host's path
    assert.deepEqual([...Deno.readDirSync(host)], []);
    const [volume] = (await mounts(root, "src")).map((m) => m.Source);
    assert.equal(Deno.readTextFileSync(join(volume, "x")), "pwned\n");
  });
});

// docker where the peer runs (/tmp/peers/env.sh): the same mounts, read-only flags and modes
Deno.test("docker gives the same mounts for --volumes-from (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir");
    Deno.mkdirSync(host);
    const shape = (list: Mount[]) =>
      list.map((m) => [m.Destination, m.Type, m.RW, m.Mode]).sort((a, b) =>
        String(a[0]).localeCompare(String(b[0]))
      );
    const name = `skiff-vf-${Deno.pid}`;
    const src = ["-v", "/data", "-v", `${host}:/hb:ro`, "-v", `${host}:/rwb`];
    try {
      for (const mode of ["", ":ro"]) {
        const d1 = await docker(["create", "--name", `${name}-src`, ...src, "localhost/bb:latest", "true"]);
        assert.equal(d1.code, 0, d1.stderr);
        const d2 = await docker([
          "create",
          "--name",
          `${name}-user`,
          "--volumes-from",
          `${name}-src${mode}`,
          "localhost/bb:latest",
        ]);
        assert.equal(d2.code, 0, d2.stderr);
        const di = await docker(["inspect", "-f", "{{json .Mounts}}", `${name}-user`]);
        await docker(["rm", "-v", `${name}-user`, `${name}-src`]);
        await root.ok(["create", "--name", "src", ...src, "busybox", "true"]);
        await root.ok(["create", "--name", "user", "--volumes-from", `src${mode}`, "busybox", "true"]);
        assert.deepEqual(shape(await mounts(root, "user")), shape(JSON.parse(di.stdout)), `mode '${mode}'`);
        await root.ok(["rm", "-v", "user", "src"]);
      }
    } finally {
      await docker(["rm", "-f", "-v", `${name}-user`, `${name}-src`]);
    }
  });
});
