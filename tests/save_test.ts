// save: a docker-archive + OCI layout that skiff load (and skopeo) read back to the same image.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox, withRoot } from "./helpers.ts";
import { TarReader } from "../lib/image/tar.ts";

/** The archive's members: name → bytes. */
function members(path: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const reader = new TarReader((e) => {
    if (e.type !== "file") return undefined;
    const chunks: Uint8Array[] = [];
    return {
      data: (c) => void chunks.push(c.slice()),
      end: () => void out.set(e.name, new Uint8Array(chunks.flatMap((c) => [...c]))),
    };
  });
  reader.push(Deno.readFileSync(path));
  reader.finish();
  return out;
}

async function sha256(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const imageId = async (root: TestRoot, ref: string) =>
  (await root.ok(["inspect", "--format", "{{.Id}}", ref])).trim();

Deno.test("save -o: docker-archive and OCI layout, layers named by diffID, load gives the same id", async () => {
  await withBusybox(async (root) => {
    const id = await imageId(root, "busybox");
    const out = join(root.path, "bb.tar");
    const r = await root.skiff(["save", "-o", out, "busybox"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    const files = members(out);
    const manifest = JSON.parse(new TextDecoder().decode(files.get("manifest.json")!));
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0].RepoTags, ["busybox:latest"]);
    assert.equal(manifest[0].Config, `blobs/sha256/${id.slice(7)}`);
    const config = JSON.parse(new TextDecoder().decode(files.get(manifest[0].Config)!));
    assert.equal(await sha256(files.get(manifest[0].Config)!), id);
    assert.equal(manifest[0].Layers.length, config.rootfs.diff_ids.length);
    for (const [i, layer] of manifest[0].Layers.entries()) {
      assert.equal(await sha256(files.get(layer)!), config.rootfs.diff_ids[i]);
    }
    const index = JSON.parse(new TextDecoder().decode(files.get("index.json")!));
    assert.equal(
      index.manifests[0].annotations["io.containerd.image.name"],
      "docker.io/library/busybox:latest",
    );
    assert.ok(files.has("oci-layout"));
    assert.ok(files.has("repositories"));

    await root.ok(["rmi", "busybox"]);
    assert.equal((await root.ok(["images", "-q"])).trim(), "");
    const loaded = await root.ok(["load", "-i", out]);
    assert.equal(loaded.trim(), "Loaded image: busybox:latest");
    assert.equal(await imageId(root, "busybox"), id);
    assert.equal((await root.ok(["run", "--rm", "busybox", "echo", "ok"])).trim(), "ok");
  });
});

Deno.test("save to a pipe; several images; an id saves every tag", async () => {
  await withBusybox(async (root) => {
    await root.ok(["tag", "busybox", "other:v1"]);
    const id = await imageId(root, "busybox");
    const out = join(root.path, "piped.tar");
    const sh = await new Deno.Command("sh", {
      args: [
        "-c",
        `"$0" run -A "$1" --root "$2" save "$3" > "$4"`,
        Deno.execPath(),
        join(Deno.cwd(), "main.ts"),
        root.path,
        id,
        out,
      ],
    }).output();
    assert.equal(sh.code, 0, new TextDecoder().decode(sh.stderr));
    const manifest = JSON.parse(new TextDecoder().decode(members(out).get("manifest.json")!));
    assert.deepEqual(manifest[0].RepoTags, ["busybox:latest", "other:v1"]);
    // a name saves only that tag
    await root.ok(["save", "-o", out, "other:v1", "busybox"]);
    const two = JSON.parse(new TextDecoder().decode(members(out).get("manifest.json")!));
    assert.equal(two.length, 1, "the same image named twice is saved once");
    assert.deepEqual(two[0].RepoTags.sort(), ["busybox:latest", "other:v1"]);
  });
});

Deno.test("save of a missing image: exit 1, one line, no file", async () => {
  await withBusybox(async (root) => {
    const out = join(root.path, "none.tar");
    const r = await root.skiff(["save", "-o", out, "busybox", "nosuch:tag"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), "skiff: No such image: nosuch:tag");
    assert.throws(() => Deno.statSync(out));
    assert.deepEqual(
      [...Deno.readDirSync(root.path)].map((e) => e.name).filter((n) => n.includes(".tmp")),
      [],
    );
    const nodir = await root.skiff(["save", "-o", "/nonexistent-dir/x.tar", "busybox"]);
    assert.equal(nodir.code, 1); // docker 20.10: "failed to save image: invalid output path: …", exit 1
    assert.equal(
      nodir.stderr.trim(),
      'skiff: failed to save image: invalid output path: directory "/nonexistent-dir" does not exist',
    );
    const none = await root.skiff(["save", "-o", out]);
    assert.equal(none.code, 1); // docker's CLI: 1 for a wrong number of arguments
  });
});

Deno.test("skopeo reads skiff's archive; skiff loads skopeo's oci-archive (gzip layers) and saves it again", async () => {
  const skopeo = await new Deno.Command("skopeo", { args: ["--version"] }).output().catch(() => undefined);
  if (!skopeo?.success) {
    console.log("skopeo is not installed: skipped");
    return;
  }
  await withBusybox(async (root) => {
    const id = await imageId(root, "busybox");
    const saved = join(root.path, "bb.tar");
    const oci = join(root.path, "bb-oci.tar");
    await root.ok(["save", "-o", saved, "busybox"]);
    const copy = await new Deno.Command("skopeo", {
      args: [
        "copy",
        "-q",
        "--dest-compress",
        `docker-archive:${saved}`,
        `oci-archive:${oci}:example.com/bb:v2`,
      ],
    }).output();
    assert.equal(copy.code, 0, new TextDecoder().decode(copy.stderr));
    await root.ok(["rmi", "busybox"]);
    const loaded = await root.ok(["load", "-i", oci]);
    assert.match(loaded, /Loaded image: example\.com\/bb:v2/);
    // skopeo re-serializes the config (another id) but the layers are the same
    const layersOf = async (ref: string) =>
      (await root.ok(["inspect", "--format", "{{json .RootFS.Layers}}", ref])).trim();
    assert.notEqual(id, "");
    const ociId = await imageId(root, "example.com/bb:v2");
    // the stored blobs are gzip now: save gunzips them back to the diffID
    const again = join(root.path, "again.tar");
    await root.ok(["save", "-o", again, "example.com/bb:v2"]);
    const diffIds = await layersOf("example.com/bb:v2");
    await root.ok(["rmi", "example.com/bb:v2"]);
    await root.ok(["load", "-i", again]);
    assert.equal(await imageId(root, "example.com/bb:v2"), ociId);
    assert.equal(await layersOf("example.com/bb:v2"), diffIds);
  });
});

Deno.test("import keeps its tar as a blob (gzip or not), so save works on imported images", async () => {
  await withRoot(async (root) => {
    const src = join(root.path, "rootfs");
    Deno.mkdirSync(join(src, "etc"), { recursive: true });
    Deno.writeTextFileSync(join(src, "etc/hello"), "hi\n");
    const tgz = join(root.path, "r.tgz");
    assert.ok((await new Deno.Command("tar", { args: ["-C", src, "-czf", tgz, "."] }).output()).success);
    await root.ok(["import", tgz, "gz:1"]);
    const record = JSON.parse(await root.ok(["inspect", "gz:1"]))[0];
    const out = join(root.path, "gz.tar");
    await root.ok(["save", "-o", out, "gz:1"]);
    const files = members(out);
    const manifest = JSON.parse(new TextDecoder().decode(files.get("manifest.json")!));
    assert.equal(await sha256(files.get(manifest[0].Layers[0])!), record.RootFS.Layers[0]);
  });
});
