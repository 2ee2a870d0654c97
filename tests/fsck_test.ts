// system check: corrupt blobs, incomplete layers, broken images and dangling tags are reported (exit
// 1) and --repair removes them; a pull killed at any moment leaves nothing that check rejects, and
// the next pull completes.

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withBusybox, withRoot } from "./helpers.ts";
import { buildImage, skopeoPush, withRegistry } from "./registry_harness.ts";

const imageOf = async (root: TestRoot, ref: string) =>
  JSON.parse(
    Deno.readTextFileSync(
      join(
        root.path,
        "images",
        `${(await root.ok(["inspect", "--format", "{{.Id}}", ref])).trim().slice(7)}.json`,
      ),
    ),
  );

Deno.test("system check: a clean store passes; fsck is the same verb", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["system", "check"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^checked \d+ blobs, 1 layers, 1 images, 1 tags, 0 containers, 0 volumes: no problems\n$/,
    );
    assert.equal((await root.skiff(["system", "fsck"])).code, 0);
    assert.equal((await root.skiff(["system", "bogus"])).code, 125);
  });
});

Deno.test("system check: corrupt blob → image reported, exit 1; --repair removes both, check passes", async () => {
  await withBusybox(async (root) => {
    const record = await imageOf(root, "busybox");
    const blob = join(root.path, "blobs", "sha256", record.layers[0].blobDigest.slice(7));
    const bytes = Deno.readFileSync(blob);
    bytes[1000] ^= 0xff;
    Deno.writeFileSync(blob, bytes);
    const r = await root.skiff(["system", "check"]);
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split("\n");
    assert.match(
      lines[0],
      new RegExp(`^blob ${record.layers[0].blobDigest}: content hashes to sha256:[0-9a-f]{64}$`),
    );
    assert.match(
      lines[1],
      new RegExp(`^image ${record.id}: blob ${record.layers[0].blobDigest} is corrupt$`),
    );
    assert.match(lines[2], /2 problems$/);
    const fixed = await root.skiff(["system", "check", "--repair"]);
    assert.equal(fixed.code, 0);
    assert.match(fixed.stdout, /removed blob /);
    assert.match(fixed.stdout, new RegExp(`removed image ${record.id}`));
    assert.match(fixed.stdout, /removed tag busybox:latest/);
    assert.equal((await root.skiff(["system", "check"])).code, 0);
    assert.equal((await root.ok(["images", "-q"])).trim(), "");
  });
});

Deno.test("system check: incomplete layer, bad layer.json, missing layer, tag to nowhere", async () => {
  await withBusybox(async (root) => {
    const record = await imageOf(root, "busybox");
    Deno.mkdirSync(join(root.path, "layers", "aa".repeat(32), "diff"), { recursive: true });
    const tags = JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json")));
    tags["ghost:1"] = `sha256:${"bb".repeat(32)}`;
    Deno.writeTextFileSync(join(root.path, "repositories.json"), JSON.stringify(tags));
    // the image's only layer loses its layer.json: the image is broken too
    Deno.removeSync(join(root.path, "layers", record.layers[0].chainId.slice(7), "layer.json"));
    const r = await root.skiff(["system", "check"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`layer sha256:${"aa".repeat(32)}: incomplete: no layer.json`));
    assert.match(
      r.stdout,
      new RegExp(`image ${record.id}: layer 1 \\(${record.layers[0].chainId}\\) is corrupt`),
    );
    assert.match(r.stdout, /tag ghost:1: points to missing image/);
    assert.equal((await root.skiff(["system", "check", "--repair"])).code, 0);
    const after = await root.skiff(["system", "check"]);
    assert.equal(after.code, 0, after.stdout);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json"))), {});
  });
});

Deno.test("kill -9 of pull at several moments: check passes every time, the next pull completes", async () => {
  const img = await buildImage({ name: "killed", extraLayers: [new Uint8Array(0)].map(() => bigTar()) });
  try {
    await withRegistry("open", async (registry) => {
      await skopeoPush(registry, img.layout, "test/killed:1");
      const ref = `${registry.host}/test/killed:1`;
      await withRoot(async (root) => {
        const outcomes: string[] = [];
        for (const delay of [60, 150, 250, 350, 450, 550, 650, 750, 900]) {
          const child = new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", MAIN, "--root", root.path, "pull", "-q", ref],
            stdout: "null",
            stderr: "null",
          }).spawn();
          await new Promise((r) => setTimeout(r, delay));
          try {
            child.kill("SIGKILL");
          } catch { /* finished already */ }
          const status = await child.status;
          outcomes.push(`${delay}ms:${status.signal ?? status.code}`);
          const check = await root.skiff(["system", "check"]);
          assert.equal(check.code, 0, `after a kill at ${delay} ms: ${check.stdout}`);
          const pulled = await root.skiff(["pull", "-q", ref]);
          assert.equal(pulled.code, 0, pulled.stderr);
          assert.equal((await root.skiff(["system", "check"])).code, 0);
          assert.equal((await root.ok(["run", "--rm", ref, "cat", "/skiff-image"])).trim(), "killed amd64");
          await root.ok(["rmi", ref]);
          await root.ok(["image", "prune", "-f"]);
        }
        console.log(`kill points: ${outcomes.join(" ")}`);
        assert.ok(outcomes.some((o) => o.endsWith("SIGKILL")), "at least one pull was killed mid-way");
      });
    });
  } finally {
    Deno.removeSync(img.dir, { recursive: true });
  }
});

/** A layer of ~8 MB of pseudo-random data (slow enough to download and unpack to be killed in). */
function bigTar(): Uint8Array {
  const size = 8 << 20;
  const data = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x & 0xff;
    data[i + 1] = (x >> 8) & 0xff;
  }
  const header = new Uint8Array(512);
  const enc = new TextEncoder();
  header.set(enc.encode("big.bin"), 0);
  header.set(enc.encode("0000644\0"), 100);
  header.set(enc.encode("0000000\0"), 108);
  header.set(enc.encode("0000000\0"), 116);
  header.set(enc.encode(size.toString(8).padStart(11, "0") + "\0"), 124);
  header.set(enc.encode("00000000000\0"), 136);
  header.fill(0x20, 148, 156);
  header[156] = 0x30;
  header.set(enc.encode("ustar\u000000"), 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  const out = new Uint8Array(512 + size + 1024);
  out.set(header, 0);
  out.set(data, 512);
  return out;
}
