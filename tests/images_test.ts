// Images on disk: import, load (docker-archive and OCI layout), images, tag, rmi, and the store API
// that run and inspect use.

import assert from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar, MAIN, type RunResult, type TestRoot, withRoot } from "./helpers.ts";
import { type TarWriteEntry, writeTar } from "../lib/image/tar.ts";
import { StateRoot } from "../lib/state/root.ts";
import { ImageStore } from "../lib/image/store.ts";
import { createContainer, removeContainerDir } from "../lib/state/containers.ts";
import type { ContainerRecord } from "../lib/state/types.ts";
import { NotFoundError } from "../lib/errors.ts";

const names = (dir: string) => {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
};

/** Runs skiff with binary stdin. */
async function skiffWithInput(root: TestRoot, args: string[], input: Uint8Array): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
const hex = (digest: string) => digest.slice(7);
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

interface BuiltImage {
  /** The archive (a tar of the layout). */
  tar: Uint8Array<ArrayBuffer>;
  configDigest: string;
  diffIds: string[];
}

/** An OCI image layout tarball with the given layers (each a list of tar entries). */
async function ociLayout(
  layers: TarWriteEntry[][],
  opts: { name?: string; gzipLayers?: boolean; corrupt?: "layer" | "config" } = {},
): Promise<BuiltImage> {
  const blobs: TarWriteEntry[] = [];
  const layerDescs = [];
  const diffIds: string[] = [];
  for (const entries of layers) {
    const plain = writeTar(entries);
    diffIds.push(await sha256(plain));
    const blob = opts.gzipLayers ? await gzip(plain) : plain;
    const digest = await sha256(blob);
    const stored = opts.corrupt === "layer" ? blob.slice() : blob;
    if (opts.corrupt === "layer") stored[stored.length - 600] ^= 0xff;
    blobs.push({ name: `blobs/sha256/${hex(digest)}`, data: stored });
    layerDescs.push({
      mediaType: `application/vnd.oci.image.layer.v1.tar${opts.gzipLayers ? "+gzip" : ""}`,
      digest,
      size: blob.length,
    });
  }
  const config = enc({
    architecture: "amd64",
    os: "linux",
    created: "2024-01-02T03:04:05Z",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: diffIds },
  });
  const configDigest = await sha256(config);
  blobs.push({
    name: `blobs/sha256/${hex(configDigest)}`,
    data: opts.corrupt === "config" ? enc({ tampered: true }) : config,
  });
  const manifest = enc({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: layerDescs,
  });
  const manifestDigest = await sha256(manifest);
  blobs.push({ name: `blobs/sha256/${hex(manifestDigest)}`, data: manifest });
  const index = {
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: manifestDigest,
      size: manifest.length,
      ...(opts.name ? { annotations: { "io.containerd.image.name": opts.name } } : {}),
    }],
  };
  const tar = writeTar([
    { name: "oci-layout", data: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    { name: "index.json", data: JSON.stringify(index) },
    ...blobs,
  ]);
  return { tar, configDigest, diffIds };
}

/** A legacy docker-archive (`docker save` before v25): <id>/layer.tar, <config>.json, manifest.json. */
async function dockerArchive(
  layers: TarWriteEntry[][],
  repoTags: string[],
  opts: { wrongDiffId?: boolean } = {},
): Promise<BuiltImage> {
  const members: TarWriteEntry[] = [];
  const diffIds: string[] = [];
  const layerPaths: string[] = [];
  for (const [i, entries] of layers.entries()) {
    const plain = writeTar(entries);
    diffIds.push(await sha256(plain));
    const dir = `${"0".repeat(63)}${i}`;
    members.push({ name: `${dir}/`, type: "dir" }, { name: `${dir}/layer.tar`, data: plain });
    layerPaths.push(`${dir}/layer.tar`);
  }
  // a wrong last diff_id: the first layer unpacks fine and must be rolled back
  const listed = opts.wrongDiffId
    ? diffIds.map((d, i) => (i === diffIds.length - 1 ? `sha256:${"e".repeat(64)}` : d))
    : diffIds;
  const config = enc({
    architecture: "amd64",
    os: "linux",
    created: "2023-05-06T07:08:09Z",
    config: { Env: ["PATH=/bin"] },
    rootfs: { type: "layers", diff_ids: listed },
  });
  const configDigest = await sha256(config);
  members.push({ name: `${hex(configDigest)}.json`, data: config });
  members.push({
    name: "manifest.json",
    data: JSON.stringify([{ Config: `${hex(configDigest)}.json`, RepoTags: repoTags, Layers: layerPaths }]),
  });
  return { tar: writeTar(members), configDigest, diffIds };
}

const BASE: TarWriteEntry[] = [
  { name: "bin/", type: "dir" },
  { name: "bin/tool", data: "#!/bin/sh\necho base\n", mode: 0o755 },
  { name: "etc/", type: "dir" },
  { name: "etc/os-release", data: "ID=skiff\n" },
];
const TOP_A: TarWriteEntry[] = [{ name: "app/", type: "dir" }, { name: "app/a.txt", data: "a" }];
const TOP_B: TarWriteEntry[] = [{ name: "etc/.wh.os-release" }, { name: "app/b.txt", data: "bb" }];

function assertStoreEmpty(root: TestRoot): void {
  for (const d of ["layers", "images", "tmp", "blobs/sha256"]) {
    assert.deepEqual(names(join(root.path, d)), [], `${d} is not empty`);
  }
  let tags = {};
  try {
    tags = JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json")));
  } catch { /* never written */ }
  assert.deepEqual(tags, {});
}

Deno.test("import: a file, stdin and gzip stdin; prints the image id", () =>
  withRoot(async (root) => {
    const tar = await busyboxTar();
    const id = (await root.ok(["import", tar, "busybox:latest"])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const plain = Deno.readFileSync(tar);
    const fromStdin = await skiffWithInput(root, ["import", "-", "bb:stdin"], plain);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    const fromGzip = await skiffWithInput(
      root,
      ["image", "import", "-", "docker.io/library/bb:gz"],
      await gzip(plain),
    );
    assert.equal(fromGzip.code, 0, fromGzip.stderr);
    // three images, one shared layer (same diffID)
    assert.equal(names(join(root.path, "layers")).length, 1);
    assert.equal(names(join(root.path, "images")).length, 3);
    const store = new ImageStore(new StateRoot(root.path));
    const image = store.resolve("bb:gz");
    assert.deepEqual(image.repoTags, ["bb:gz"]);
    assert.equal(image.layers.length, 1);
    const dirs = store.layerDirs(image);
    assert.equal(dirs.length, 1);
    assert.ok(Deno.statSync(join(dirs[0], "bin/busybox")).isFile);
    assert.equal(Deno.statSync(join(dirs[0], "bin/busybox")).mode! & 0o777, 0o755);
  }));

Deno.test("import: -c and -m set config and history; bad input changes nothing", () =>
  withRoot(async (root) => {
    const tar = await busyboxTar();
    await root.ok([
      "import",
      "-c",
      'CMD ["/bin/sh","-c","echo hi"]',
      "--change",
      "ENV FOO=bar BAZ=qux",
      "-c",
      "WORKDIR /tmp",
      "-m",
      "hello",
      tar,
      "withcfg",
    ]);
    const image = new ImageStore(new StateRoot(root.path)).resolve("withcfg");
    assert.deepEqual(image.config.config?.Cmd, ["/bin/sh", "-c", "echo hi"]);
    assert.deepEqual(image.config.config?.Env, ["FOO=bar", "BAZ=qux"]);
    assert.equal(image.config.config?.WorkingDir, "/tmp");
    assert.equal(image.config.history?.[0].comment, "hello");

    await withRoot(async (clean) => {
      for (
        const [args, message] of [
          [["import", "/nonexistent.tar"], /no such file/],
          [["import", tar, "Bad:Name"], /invalid reference format/],
          [["import", "-c", "RUN echo", tar], /RUN is not a valid change command/],
          [["import"], /requires at least 1 and at most 2 arguments/],
        ] as const
      ) {
        const r = await clean.skiff([...args]);
        // docker 20.10: 1 for each (the missing argument too)
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split("\n").length, 1);
      }
      const notTar = await skiffWithInput(clean, ["import", "-"], new TextEncoder().encode("x".repeat(2000)));
      assert.equal(notTar.code, 1);
      assert.match(notTar.stderr, /not a tar archive/);
      assertStoreEmpty(clean);
    });
  }));

Deno.test("load: OCI layout (hand-made, gzip layers), layer chain and whiteouts", () =>
  withRoot(async (root) => {
    const built = await ociLayout([BASE, TOP_B], { name: "docker.io/library/two:layers", gzipLayers: true });
    const r = await skiffWithInput(root, ["load"], built.tar);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "Loaded image: two:layers\n");
    const store = new ImageStore(new StateRoot(root.path));
    const image = store.resolve("two:layers");
    assert.equal(image.id, built.configDigest);
    assert.deepEqual(image.layers.map((l) => l.diffId), built.diffIds);
    assert.equal(image.layers[0].chainId, built.diffIds[0]);
    const chain1 = await sha256(new TextEncoder().encode(`${built.diffIds[0]} ${built.diffIds[1]}`));
    assert.equal(image.layers[1].chainId, chain1);
    const [top, base] = store.layerDirs(image);
    assert.equal(Deno.readTextFileSync(join(base, "etc/os-release")), "ID=skiff\n");
    assert.ok(Deno.lstatSync(join(top, "etc/os-release")).isCharDevice);
    assert.equal(Deno.readTextFileSync(join(top, "app/b.txt")), "bb");
    // config, manifest and both layer blobs are kept, verified
    assert.equal(names(join(root.path, "blobs/sha256")).length, 4);
    assert.ok(names(join(root.path, "blobs/sha256")).includes(hex(built.configDigest)));
    assert.deepEqual(names(join(root.path, "tmp")), []);
  }));

Deno.test("load: docker-archive (legacy layout, gzip-compressed archive, -i and -q)", () =>
  withRoot(async (root) => {
    const built = await dockerArchive([BASE, TOP_A], ["app:1", "docker.io/library/app:2"]);
    const path = await Deno.makeTempFile({ suffix: ".tar.gz" });
    try {
      Deno.writeFileSync(path, await gzip(built.tar));
      const out = await root.ok(["load", "-q", "-i", path]);
      assert.equal(out, "Loaded image: app:1\nLoaded image: app:2\n");
    } finally {
      await Deno.remove(path);
    }
    const image = new ImageStore(new StateRoot(root.path)).resolve("app:2");
    assert.equal(image.id, built.configDigest);
    // loading another image under the same tag moves it, and docker says so
    const other = await dockerArchive([TOP_B], ["app:2"]);
    const moved = await skiffWithInput(root, ["load"], other.tar);
    assert.equal(
      moved.stdout,
      `The image app:2 already exists, renaming the old one with ID ${built.configDigest} to empty string\n` +
        "Loaded image: app:2\n",
    );
    await root.ok(["rmi", "app:2"]);
    assert.deepEqual(image.repoTags, ["app:1", "app:2"]);
    assert.equal(image.created, "2023-05-06T07:08:09Z");
    assert.equal(image.size, BASE.concat(TOP_A).reduce((n, e) => n + String(e.data ?? "").length, 0));
  }));

Deno.test("load: skopeo's docker-archive and OCI archives of busybox", () =>
  withRoot(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-skopeo-" });
    try {
      const gz = join(dir, "layer.tar.gz");
      Deno.writeFileSync(gz, await gzip(Deno.readFileSync(await busyboxTar())));
      for (
        const dest of [
          `docker-archive:${dir}/d.tar:sk/busybox:docker`,
          `oci-archive:${dir}/o.tar:sk/busybox:oci`,
        ]
      ) {
        const out = await new Deno.Command("skopeo", { args: ["copy", "-q", `tarball:${gz}`, dest] })
          .output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      }
      assert.equal(await root.ok(["load", "-i", join(dir, "d.tar")]), "Loaded image: sk/busybox:docker\n");
      assert.equal(await root.ok(["load", "-i", join(dir, "o.tar")]), "Loaded image: sk/busybox:oci\n");
      const store = new ImageStore(new StateRoot(root.path));
      assert.equal(store.resolve("sk/busybox:docker").id, store.resolve("sk/busybox:oci").id);
      assert.equal(names(join(root.path, "layers")).length, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("load: an untagged OCI image prints its id", () =>
  withRoot(async (root) => {
    const built = await ociLayout([BASE]);
    const r = await skiffWithInput(root, ["load"], built.tar);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Loaded image ID: ${built.configDigest}\n`);
    const lines = (await root.ok(["images"])).trim().split("\n");
    assert.match(lines[1], /^<none>\s+<none>\s+[0-9a-f]{12}\s/);
  }));

Deno.test("load: corrupt blobs and wrong diffIDs are refused with nothing stored", () =>
  withRoot(async (root) => {
    const cases: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
      [
        "corrupt layer",
        (await ociLayout([BASE, TOP_A], { name: "x:1", corrupt: "layer" })).tar,
        /does not match/,
      ],
      ["corrupt config", (await ociLayout([BASE], { name: "x:1", corrupt: "config" })).tar, /does not match/],
      ["wrong diffID", (await dockerArchive([BASE, TOP_A], ["x:1"], { wrongDiffId: true })).tar, /mismatch/],
      ["not an image", writeTar([{ name: "hello", data: "x" }]), /no manifest.json/],
    ];
    for (const [what, tar, message] of cases) {
      const r = await skiffWithInput(root, ["load"], tar);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`); // docker 20.10: "Error processing tar file…", exit 1
      assert.match(r.stderr, message, what);
      assert.equal(r.stderr.trim().split("\n").length, 1, what);
      assertStoreEmpty(root);
    }
  }));

Deno.test("images: docker's columns, -q, --no-trunc, -a, REPOSITORY[:TAG] filter", () =>
  withRoot(async (root) => {
    const a = await dockerArchive([BASE], ["alpha:1.0"]);
    const b = await ociLayout([BASE, TOP_A], { name: "example.com/team/beta:2" });
    assert.equal((await skiffWithInput(root, ["load"], a.tar)).code, 0);
    assert.equal((await skiffWithInput(root, ["load"], b.tar)).code, 0);
    await root.ok(["tag", "alpha:1.0", "alpha:latest"]);
    const out = await root.ok(["images"]);
    const lines = out.trimEnd().split("\n");
    // widths: max(10, widest + 3) for every column but the last
    const header = "REPOSITORY".padEnd(24) + "TAG".padEnd(10) + "IMAGE ID".padEnd(15) + "CREATED".padEnd(14) +
      "SIZE";
    assert.equal(lines[0], header);
    const idA = hex(a.configDigest).slice(0, 12), idB = hex(b.configDigest).slice(0, 12);
    const row = (repo: string, tag: string, id: string) =>
      new RegExp(
        `^${repo.padEnd(24).replaceAll(".", "\\.")}${
          tag.padEnd(10)
        }${id}   \\d+ (years|months) ago\\s+\\d+B$`,
      );
    // newest first: beta (2024) before alpha (2023)
    assert.match(lines[1], row("example.com/team/beta", "2", idB));
    assert.match(lines[2], row("alpha", "1.0", idA));
    assert.match(lines[3], row("alpha", "latest", idA));
    assert.equal(lines.length, 4);
    assert.equal(await root.ok(["images", "-q"]), `${idB}\n${idA}\n${idA}\n`);
    assert.equal(await root.ok(["images", "-aq"]), `${idB}\n${idA}\n${idA}\n`);
    assert.equal(await root.ok(["images", "-q", "--no-trunc", "alpha:latest"]), `${a.configDigest}\n`);
    assert.equal(await root.ok(["images", "-q", "docker.io/library/alpha"]), `${idA}\n${idA}\n`);
    assert.equal(await root.ok(["images", "-q", "example.com/*/beta"]), `${idB}\n`);
    assert.equal(await root.ok(["images", "-q", "nothing"]), "");
    const noTrunc = (await root.ok(["images", "--no-trunc"])).split("\n")[1];
    assert.ok(noTrunc.includes(b.configDigest));
    // --format (docker's ImageContext fields) and --filter
    assert.equal(
      await root.ok(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]),
      `example.com/team/beta:2 ${idB}\nalpha:1.0 ${idA}\nalpha:latest ${idA}\n`,
    );
    assert.equal(await root.ok(["images", "--format", "table {{.Tag}}", "alpha"]), "TAG\n1.0\nlatest\n");
    assert.equal(await root.ok(["images", "-q", "--filter", "reference=alpha:l*"]), `${idA}\n`);
    assert.equal(await root.ok(["images", "-q", "-f", "dangling=true"]), "");
    assert.equal(await root.ok(["images", "-q", "-f", "before=example.com/team/beta:2"]), `${idA}\n${idA}\n`);
    const bad = await root.skiff(["images", "--format", "{{.Nope"]);
    assert.equal(bad.code, 1); // docker 20.10: "template parsing error: …", exit 1
    assert.match(bad.stderr, /template parsing error/);
    const badFilter = await root.skiff(["images", "-f", "color=red"]);
    assert.equal(badFilter.code, 125);
    assert.match(badFilter.stderr, /invalid filter 'color'/);
  }));

Deno.test("tag: moves tags, refuses bad names and unknown sources", () =>
  withRoot(async (root) => {
    const a = await dockerArchive([BASE], ["one:latest"]);
    const b = await dockerArchive([TOP_A], ["two:latest"]);
    await skiffWithInput(root, ["load"], a.tar);
    await skiffWithInput(root, ["load"], b.tar);
    await root.ok(["tag", "one", "shared:v1"]);
    const store = new ImageStore(new StateRoot(root.path));
    assert.equal(store.resolve("shared:v1").id, a.configDigest);
    await root.ok(["tag", hex(b.configDigest).slice(0, 8), "shared:v1"]);
    assert.equal(store.resolve("shared:v1").id, b.configDigest);
    assert.deepEqual(store.resolve("one").repoTags, ["one:latest"]);
    let r = await root.skiff(["tag", "missing", "x"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such image: missing:latest/);
    r = await root.skiff(["tag", "one", "UPPER"]);
    assert.equal(r.code, 1); // docker 20.10: "Error parsing reference: …", exit 1
    assert.match(r.stderr, /repository name \(library\/UPPER\) must be lowercase/);
    r = await root.skiff(["tag", "one"]);
    assert.equal(r.code, 1); // docker's CLI: 1 for a wrong number of arguments
    assert.match(r.stderr, /requires exactly 2 arguments/);
  }));

Deno.test("store: resolve by name variants, ids and prefixes; NotFoundError wording", () =>
  withRoot(async (root) => {
    const built = await dockerArchive([BASE], ["busybox:latest"]);
    await skiffWithInput(root, ["load"], built.tar);
    const store = new ImageStore(new StateRoot(root.path));
    for (
      const ref of [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        "library/busybox",
        built.configDigest,
        hex(built.configDigest),
        hex(built.configDigest).slice(0, 12),
        built.configDigest.slice(0, 20),
      ]
    ) {
      assert.equal(store.resolve(ref).id, built.configDigest, ref);
    }
    assert.equal(store.list().length, 1);
    assert.throws(
      () => store.resolve("busybox:1.36"),
      (e: unknown) =>
        e instanceof NotFoundError && e.message === "Unable to find image 'busybox:1.36' locally",
    );
    assert.throws(
      () => store.resolve("docker.io/library/nope"),
      (e: unknown) =>
        e instanceof NotFoundError && e.message === "Unable to find image 'nope:latest' locally",
    );
  }));

/** A stopped container record that uses `imageId`, as the runtime would write it. */
async function fakeContainer(root: TestRoot, imageId: string, lowerDirs: string[]): Promise<ContainerRecord> {
  return await createContainer(new StateRoot(root.path), undefined, (id, name) => ({
    Id: id,
    Name: `/${name}`,
    Image: imageId,
    Created: new Date().toISOString(),
    Path: "/bin/sh",
    Args: [],
    State: { Status: "exited", Running: false, Pid: 0 } as ContainerRecord["State"],
    LowerDirs: lowerDirs,
  } as unknown as ContainerRecord));
}

Deno.test("rmi: untag vs delete, refused while a container uses the image, -f", () =>
  withRoot(async (root) => {
    const built = await ociLayout([BASE, TOP_A], { name: "app:v1" });
    await skiffWithInput(root, ["load"], built.tar);
    await root.ok(["tag", "app:v1", "app:v2"]);
    const id12 = hex(built.configDigest).slice(0, 12);

    // by id with two tags: refused without -f
    let r = await root.skiff(["rmi", id12]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `conflict: unable to delete ${id12} \\(must be forced\\) - image is referenced in multiple repositories`,
      ),
    );
    // by name with another tag left: only untags
    assert.equal(await root.ok(["rmi", "app:v2"]), "Untagged: app:v2\n");

    const store = new ImageStore(new StateRoot(root.path));
    const container = await fakeContainer(root, built.configDigest, store.layerDirs(store.resolve("app:v1")));
    try {
      r = await root.skiff(["rmi", "app:v1"]);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr.trim(),
        `skiff: conflict: unable to remove repository reference "app:v1" (must force) - container ${
          container.Id.slice(0, 12)
        } is using its referenced image ${id12}`,
      );
      r = await root.skiff(["rmi", id12]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /image is being used by stopped container/);
      assert.equal(names(join(root.path, "images")).length, 1);

      // forced: the image goes, the container's layers stay
      const out = await root.ok(["rmi", "-f", "app:v1"]);
      assert.equal(out, `Untagged: app:v1\nDeleted: ${built.configDigest}\n`);
      assert.deepEqual(names(join(root.path, "images")), []);
      assert.equal(names(join(root.path, "layers")).length, 2);
      r = await root.skiff(["rmi", "app:v1", "nope"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No such image: app:v1/);
      assert.match(r.stderr, /No such image: nope:latest/);
    } finally {
      removeContainerDir(new StateRoot(root.path), container.Id);
    }
  }));

Deno.test("rmi: layers shared by two images stay until the last user is gone; blobs too", () =>
  withRoot(async (root) => {
    const one = await ociLayout([BASE, TOP_A], { name: "one:latest" });
    const two = await ociLayout([BASE, TOP_B], { name: "two:latest", gzipLayers: true });
    await skiffWithInput(root, ["load"], one.tar);
    await skiffWithInput(root, ["load"], two.tar);
    assert.equal(names(join(root.path, "layers")).length, 3, "the base layer is shared");
    const out = await root.ok(["rmi", "one"]);
    const lines = out.trim().split("\n");
    assert.deepEqual(lines.slice(0, 2), ["Untagged: one:latest", `Deleted: ${one.configDigest}`]);
    assert.equal(lines.length, 3, "only the top layer of one is deleted");
    assert.equal(names(join(root.path, "layers")).length, 2);
    const store = new ImageStore(new StateRoot(root.path));
    for (const dir of store.layerDirs(store.resolve("two"))) assert.ok(Deno.statSync(dir).isDirectory);
    await root.ok(["rmi", "two:latest"]);
    assertStoreEmpty(root);
  }));

Deno.test("import: two imports of the same layer at once both succeed and share it", () =>
  withRoot(async (root) => {
    const tar = await busyboxTar();
    const results = await Promise.all([
      root.skiff(["import", tar, "same:1"]),
      root.skiff(["import", tar, "same:2"]),
      root.skiff(["import", tar, "same:3"]),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(names(join(root.path, "layers")).length, 1);
    assert.deepEqual(names(join(root.path, "tmp")), []);
    const tags = JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json")));
    assert.deepEqual(Object.keys(tags), ["same:1", "same:2", "same:3"]);
  }));

Deno.test("import: a killed unpack leaves no layer; its temp dir is swept next time", () =>
  withRoot(async (root) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "--root", root.path, "import", "-", "killed"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    // a layer that never ends: the unpack is in progress when the process dies
    await writer.write(
      writeTar([{ name: "part", data: new Uint8Array(1 << 20) }], { endMarker: false }).subarray(0, 600_000),
    );
    const deadline = Date.now() + 10_000;
    while (names(join(root.path, "tmp")).length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(names(join(root.path, "tmp")).length, 1, "the unpack never started");
    child.kill("SIGKILL");
    await child.status;
    await writer.close().catch(() => {});
    assert.deepEqual(names(join(root.path, "layers")), []);
    assert.equal(names(join(root.path, "tmp")).length, 1);
    await root.ok(["import", await busyboxTar(), "next"]);
    assert.deepEqual(names(join(root.path, "tmp")), []);
    assert.equal(names(join(root.path, "layers")).length, 1);
  }));

Deno.test("rmi and images with repo digests (pulled images): digest rows, untag by digest", () =>
  withRoot(async (root) => {
    const built = await ociLayout([BASE], { name: "app:v1" });
    await skiffWithInput(root, ["load"], built.tar);
    const store = new ImageStore(new StateRoot(root.path));
    const image = store.resolve("app:v1");
    const digest = `sha256:${"d".repeat(64)}`;
    await store.commitImage({ ...image, repoDigests: [`app@${digest}`] }, []);
    assert.equal(store.resolve(`app@${digest}`).id, image.id);
    assert.match(
      (await root.ok(["images", "--digests"])).split("\n")[1],
      new RegExp(`^app\\s+v1\\s+${digest}\\s`),
    );
    // the last tag goes: its digest reference goes with it, then the image
    assert.equal(
      await root.ok(["rmi", "app:v1"]),
      `Untagged: app:v1\nUntagged: app@${digest}\nDeleted: ${built.configDigest}\nDeleted: ${
        image.layers[0].chainId
      }\n`,
    );
    // an image known only by digest: listed as "app <none>", removed by its digest reference
    const untagged = await ociLayout([BASE]);
    await skiffWithInput(root, ["load"], untagged.tar);
    const bare = store.resolve(untagged.configDigest);
    await store.commitImage({ ...bare, repoDigests: [`app@${digest}`] }, []);
    assert.match((await root.ok(["images"])).split("\n")[1], /^app\s+<none>\s+[0-9a-f]{12}\s/);
    assert.equal(
      await root.ok(["rmi", `app@${digest}`]),
      `Untagged: app@${digest}\nDeleted: ${untagged.configDigest}\nDeleted: ${bare.layers[0].chainId}\n`,
    );
    assertStoreEmpty(root);
  }));

Deno.test("import: from an http URL (served on 127.0.0.1), and a 404", () =>
  withRoot(async (root) => {
    const body = await gzip(Deno.readFileSync(await busyboxTar()));
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) =>
      new URL(req.url).pathname === "/rootfs.tar.gz"
        ? new Response(body)
        : new Response("nope", { status: 404, statusText: "Not Found" }));
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const id = (await root.ok(["import", `${base}/rootfs.tar.gz`, "fromurl"])).trim();
      assert.equal(new ImageStore(new StateRoot(root.path)).resolve("fromurl").id, id);
      const r = await root.skiff(["import", `${base}/missing.tar`, "nothing"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /404 Not Found/);
    } finally {
      await server.shutdown();
    }
  }));
