// skiff volume create/ls/inspect/rm/prune, the in-use check against container Mounts, `rm -v`,
// and the engine API the runtime uses for -v (ensureVolume, anonymousVolume, and copyup.ts's
// copyUpIfEmpty from an image's layers).

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type TestRoot, withBusybox, withRoot } from "./helpers.ts";
import { StateRoot } from "../lib/state/root.ts";
import { findContainer, updateContainerSync } from "../lib/state/containers.ts";
import { anonymousVolume, ensureVolume, removeAnonymousVolumes } from "../lib/volume/store.ts";
import { copyUpIfEmpty } from "../lib/volume/copyup.ts";
import { lsetxattr } from "../ffi/libc.ts";

/** Records that container `name` mounts the volumes (what `run -v` will write). */
function attach(root: TestRoot, name: string, volumes: string[]): void {
  const state = new StateRoot(root.path);
  const record = findContainer(state, name);
  updateContainerSync(state, record.Id, (r) => {
    r.Mounts = volumes.map((v) => ({
      Type: "volume",
      Name: v,
      Source: join(root.path, "volumes", v, "_data"),
      Destination: `/mnt/${v}`,
      Driver: "local",
      Mode: "z",
      RW: true,
      Propagation: "",
    }));
  });
}

Deno.test("volume create/ls/inspect/rm: docker's output and errors", async () => {
  await withRoot(async (root) => {
    assert.equal(await root.ok(["volume", "create", "data", "--label", "team=a"]), "data\n");
    // creating it again returns the same volume
    assert.equal(await root.ok(["volume", "create", "data"]), "data\n");
    const anon = (await root.ok(["volume", "create"])).trim();
    assert.match(anon, /^[0-9a-f]{64}$/);

    // sorted by name, as docker lists them: the random name may sort either side of "data"
    const sorted = [anon, "data"].sort();
    assert.equal(
      await root.ok(["volume", "ls"]),
      `DRIVER    VOLUME NAME\n${sorted.map((n) => `local     ${n}\n`).join("")}`,
    );
    assert.equal(await root.ok(["volume", "ls", "-q", "--filter", "label=team=a"]), "data\n");
    assert.equal(await root.ok(["volume", "ls", "-q", "-f", "name=dat"]), "data\n");
    assert.equal(
      await root.ok(["volume", "ls", "--format", "{{.Name}}:{{.Labels}}", "-f", "label=team"]),
      "data:team=a\n",
    );

    const [v] = JSON.parse(await root.ok(["volume", "inspect", "data"]));
    assert.deepEqual(Object.keys(v), [
      "CreatedAt",
      "Driver",
      "Labels",
      "Mountpoint",
      "Name",
      "Options",
      "Scope",
    ]);
    assert.equal(v.Driver, "local");
    assert.equal(v.Scope, "local");
    assert.deepEqual(v.Labels, { team: "a" });
    assert.equal(v.Mountpoint, join(root.path, "volumes/data/_data"));
    assert.ok(Deno.statSync(v.Mountpoint).isDirectory);
    assert.equal(await root.ok(["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data"]), "data local\n");
    const missing = await root.skiff(["volume", "inspect", "nope"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "Error: No such volume: nope\n");

    const bad = await root.skiff(["volume", "create", "a/b"]);
    assert.equal(bad.code, 1); // docker: "Error response from daemon: create a/b: …", exit 1
    assert.match(bad.stderr, /includes invalid characters for a local volume name/);

    assert.equal(await root.ok(["volume", "rm", "data", anon]), `data\n${anon}\n`);
    const gone = await root.skiff(["volume", "rm", "data"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no such volume/);
    assert.equal((await root.skiff(["volume", "rm", "-f", "data"])).code, 0);
    assert.equal(await root.ok(["volume", "ls", "-q"]), "");
    // nothing half-made is left in the volumes dir
    assert.deepEqual([...Deno.readDirSync(join(root.path, "volumes"))], []);
  });
});

Deno.test("volume rm/prune refuse a volume a container uses; rm -v removes anonymous volumes", async () => {
  await withBusybox(async (root) => {
    await root.ok(["volume", "create", "named"]);
    await root.ok(["volume", "create", "spare"]);
    const state = new StateRoot(root.path);
    const anon = await anonymousVolume(state);
    const loose = (await anonymousVolume(state)).name;
    await root.ok(["run", "--name", "user", "busybox", "true"]);
    attach(root, "user", ["named", anon.name]);
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "user"])).trim();

    const inUse = await root.skiff(["volume", "rm", "named"]);
    assert.equal(inUse.code, 1);
    assert.equal(inUse.stderr, `skiff: remove named: volume is in use - [${id}]\n`);
    assert.equal((await root.skiff(["volume", "rm", "-f", "named"])).code, 1, "-f does not override in use");

    assert.equal(await root.ok(["volume", "ls", "-q", "-f", "dangling=true"]), `${loose}\nspare\n`);

    // prune without -a: only unused anonymous volumes
    const pruned = await root.ok(["volume", "prune", "-f"]);
    assert.equal(pruned, `Deleted Volumes:\n${loose}\n\nTotal reclaimed space: 0B\n`);
    // -a: every unused one, with its size
    Deno.writeTextFileSync(join(root.path, "volumes/spare/_data/f"), "12345");
    assert.equal(
      await root.ok(["volume", "prune", "-f", "-a"]),
      "Deleted Volumes:\nspare\n\nTotal reclaimed space: 5B\n",
    );
    const declined = await root.skiff(["volume", "prune"], { stdin: "n\n" });
    assert.match(declined.stdout, /WARNING! This will remove anonymous local volumes/);

    // rm -v: the anonymous volume goes with the container, the named one stays
    assert.equal(await root.ok(["rm", "-v", "user"]), "user\n");
    assert.equal(await root.ok(["volume", "ls", "-q"]), "named\n");
    await root.ok(["volume", "rm", "named"]);
  });
});

Deno.test("volume engine: ensureVolume, copyUpIfEmpty from an image's layers, removeAnonymousVolumes", async () => {
  await withRoot(async (root) => {
    const state = new StateRoot(root.path);
    const first = await ensureVolume(state, "cache");
    assert.equal(first.created, true);
    assert.equal(first.mountpoint, join(root.path, "volumes/cache/_data"));
    assert.equal((await ensureVolume(state, "cache")).created, false);

    // two layers as the image store keeps them (top-most first), merged as overlayfs would
    const image = await Deno.makeTempDir({ prefix: "skiff-vol-image-" });
    const [upper, lower] = [join(image, "upper"), join(image, "lower")];
    try {
      Deno.mkdirSync(join(lower, "data/sub"), { recursive: true });
      Deno.writeTextFileSync(join(lower, "data/sub/f"), "from image");
      Deno.chownSync(join(lower, "data/sub/f"), 1000, 1000);
      Deno.symlinkSync("sub/f", join(lower, "data/link"));
      Deno.writeTextFileSync(join(lower, "data/gone"), "deleted above");
      Deno.mkdirSync(join(lower, "data/opq"));
      Deno.writeTextFileSync(join(lower, "data/opq/old"), "hidden above");
      Deno.mkdirSync(join(upper, "data/opq"), { recursive: true });
      Deno.writeTextFileSync(join(upper, "data/opq/new"), "replaced");
      lsetxattr(join(upper, "data/opq"), "trusted.overlay.opaque", new TextEncoder().encode("y"));
      const mknod = await new Deno.Command("mknod", { args: [join(upper, "data/gone"), "c", "0", "0"] })
        .output();
      assert.ok(mknod.success);
      Deno.writeTextFileSync(join(upper, "data/top"), "upper");
      Deno.chmodSync(join(upper, "data"), 0o750);
      // the destination through a link that climbs out of the image: resolved inside it
      Deno.symlinkSync("../../../../../../../../data", join(upper, "alias"));
      const layers = [upper, lower];
      assert.equal(await copyUpIfEmpty(first.mountpoint, layers, "/alias"), true);
      const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(names(first.mountpoint), ["link", "opq", "sub", "top"]);
      assert.deepEqual(names(join(first.mountpoint, "opq")), ["new"]);
      assert.equal(Deno.readTextFileSync(join(first.mountpoint, "sub/f")), "from image");
      assert.equal(Deno.statSync(join(first.mountpoint, "sub/f")).uid, 1000);
      assert.equal(Deno.readLinkSync(join(first.mountpoint, "link")), "sub/f");
      // the volume's root takes the top-most layer's directory's mode
      assert.equal(Deno.statSync(first.mountpoint).mode! & 0o777, 0o750);
      // not empty any more: a second copy-up does nothing
      Deno.removeSync(join(first.mountpoint, "link"));
      assert.equal(await copyUpIfEmpty(first.mountpoint, layers, "/data"), false);
      assert.ok(!existsSync(join(first.mountpoint, "link")));
      // nothing at the destination, a file there, a whiteout there: nothing to copy
      const empty = await ensureVolume(state, "empty");
      for (const path of ["/missing", "/data/top", "/data/gone", "/data/opq/old"]) {
        assert.equal(await copyUpIfEmpty(empty.mountpoint, layers, path), false, path);
      }
      assert.deepEqual(names(empty.mountpoint), []);
      await root.ok(["volume", "rm", "empty"]);
    } finally {
      await Deno.remove(image, { recursive: true });
    }
    const anon = await anonymousVolume(state);
    const removed = await removeAnonymousVolumes(state, {
      Id: "x",
      Mounts: [{
        Type: "volume",
        Name: anon.name,
        Source: anon.mountpoint,
        Destination: "/d",
        Mode: "",
        RW: true,
        Propagation: "",
      }, {
        Type: "volume",
        Name: "cache",
        Source: first.mountpoint,
        Destination: "/c",
        Mode: "",
        RW: true,
        Propagation: "",
      }],
    } as never);
    assert.deepEqual(removed, [anon.name]);
    assert.equal(await root.ok(["volume", "ls", "-q"]), "cache\n");
  });
});
