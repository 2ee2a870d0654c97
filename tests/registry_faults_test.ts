// Pulls through a fault-injecting proxy (Deno.serve on 127.0.0.1 in front of a real registry):
// dropped connections mid-blob, 500, 429 with Retry-After, flipped bytes, a registry that never
// answers. Each pull either succeeds with the right content or fails cleanly, committing nothing.
// Also: multi-platform indexes, and a large (chunked) push.

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withRoot } from "./helpers.ts";
import {
  buildImage,
  type BuiltImage,
  putManifest,
  sha256,
  skopeoInspectRaw,
  skopeoPush,
  type TestRegistry,
  withRegistry,
} from "./registry_harness.ts";

interface Faults {
  /** Blob GETs (full or ranged) cut after this many bytes, this many times. */
  dropBlob?: { times: number; afterBytes: number };
  /** First N requests whose path matches answer 500. */
  error500?: { times: number; path: RegExp };
  /** First N requests whose path matches answer 429 with Retry-After. */
  tooMany?: { times: number; path: RegExp; retryAfter: string };
  /** Flip one byte in the body of this many layer-sized (>100 kB) blob GETs (Infinity: all). */
  flipBlob?: number;
  /** Never answer anything. */
  hang?: boolean;
  /** Blob GETs that stop sending (connection open) after this many bytes, this many times. */
  stallBlob?: { times: number; afterBytes: number };
  /** GETs of these paths (manifests, the config) cut after this many bytes, this many times. */
  dropBody?: { times: number; path: RegExp; afterBytes: number }[];
}

/** A body that ends in a dropped connection after `afterBytes` (the response says its full length). */
function cutAfter(body: ReadableStream<Uint8Array>, afterBytes: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (sent + value.length > afterBytes) {
        controller.enqueue(value.subarray(0, Math.max(0, afterBytes - sent)));
        reader.cancel().catch(() => {});
        controller.error(new Error("injected connection drop"));
        return;
      }
      sent += value.length;
      controller.enqueue(value);
    },
    cancel() {
      reader.cancel().catch(() => {});
    },
  });
}

interface Proxy {
  host: string;
  log: { method: string; path: string; range: string | null; status: number }[];
  stop(): Promise<void>;
}

function startProxy(upstream: string, faults: Faults): Proxy {
  const log: Proxy["log"] = [];
  const hangs: (() => void)[] = [];
  const proxyHost = () => `127.0.0.1:${server.addr.port}`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const entry = { method: req.method, path: url.pathname, range: req.headers.get("range"), status: 0 };
    log.push(entry);
    if (faults.hang) {
      await new Promise<void>((resolve) => hangs.push(resolve));
      return new Response("late", { status: 503 });
    }
    if (faults.error500 && faults.error500.times > 0 && faults.error500.path.test(url.pathname)) {
      faults.error500.times--;
      entry.status = 500;
      return new Response("boom", { status: 500 });
    }
    if (faults.tooMany && faults.tooMany.times > 0 && faults.tooMany.path.test(url.pathname)) {
      faults.tooMany.times--;
      entry.status = 429;
      return new Response("slow down", {
        status: 429,
        headers: { "Retry-After": faults.tooMany.retryAfter },
      });
    }
    const headers = new Headers(req.headers);
    headers.delete("host");
    const res = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
    });
    entry.status = res.status;
    const cut = req.method === "GET" && res.ok && res.body
      ? faults.dropBody?.find((d) =>
        d.times > 0 && d.path.test(url.pathname) && Number(res.headers.get("content-length")) > d.afterBytes
      )
      : undefined;
    if (cut) {
      cut.times--;
      return new Response(cutAfter(res.body!, cut.afterBytes), { status: res.status, headers: res.headers });
    }
    const isBlob = req.method === "GET" && url.pathname.includes("/blobs/sha256:") && res.body &&
      (res.status === 200 || res.status === 206);
    if (!isBlob) {
      // upload sessions name the registry's own address: keep them coming through the proxy
      const out = new Headers(res.headers);
      const location = out.get("location");
      if (location) out.set("location", location.replace(upstream, proxyHost()));
      return new Response(res.body, { status: res.status, headers: out });
    }
    // only bodies long enough for the fault count against its budget
    const length = Number(res.headers.get("content-length"));
    const drop = faults.dropBlob && faults.dropBlob.times > 0 && length > faults.dropBlob.afterBytes
      ? faults.dropBlob
      : undefined;
    if (drop) drop.times--;
    const stall = faults.stallBlob && faults.stallBlob.times > 0 && length > faults.stallBlob.afterBytes
      ? faults.stallBlob
      : undefined;
    if (stall) stall.times--;
    const flip = (faults.flipBlob ?? 0) > 0 && length > 100_000;
    if (flip) faults.flipBlob! -= 1;
    let sent = 0;
    let flipped = false;
    const reader = res.body!.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        let chunk = value;
        if (flip && !flipped && sent + chunk.length > 600) {
          chunk = chunk.slice();
          const at = Math.max(0, 600 - sent);
          chunk[at] ^= 0xff;
          flipped = true;
        }
        if (stall && sent + chunk.length > stall.afterBytes) {
          controller.enqueue(chunk.subarray(0, Math.max(0, stall.afterBytes - sent)));
          reader.cancel().catch(() => {});
          await new Promise<void>((resolve) => hangs.push(resolve)); // until the proxy stops
          controller.close();
          return;
        }
        if (drop && sent + chunk.length > drop.afterBytes) {
          controller.enqueue(chunk.subarray(0, Math.max(0, drop.afterBytes - sent)));
          reader.cancel().catch(() => {});
          controller.error(new Error("injected connection drop"));
          return;
        }
        sent += chunk.length;
        controller.enqueue(chunk);
      },
      cancel() {
        reader.cancel().catch(() => {});
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    log,
    stop: async () => {
      for (const h of hangs) h();
      await server.shutdown();
    },
  };
}

async function withProxy(registry: TestRegistry, faults: Faults, fn: (p: Proxy) => Promise<void>) {
  const proxy = startProxy(registry.host, faults);
  try {
    await fn(proxy);
  } finally {
    await proxy.stop();
  }
}

let imagePromise: Promise<BuiltImage> | undefined;
function bigImage(): Promise<BuiltImage> {
  // a layer of 3 MiB of random bytes: large enough that a drop lands mid-body
  imagePromise ??= (async () => {
    const random = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
    const dir = await Deno.makeTempDir({ prefix: "skiff-rand-" });
    try {
      Deno.writeFileSync(join(dir, "random.bin"), random);
      const tar = await new Deno.Command("tar", {
        args: ["-C", dir, "-cf", "-", "random.bin"],
        stdout: "piped",
      })
        .output();
      const img = await buildImage({ name: "faults", extraLayers: [tar.stdout] });
      globalThis.addEventListener("unload", () => Deno.removeSync(img.dir, { recursive: true }));
      return img;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return imagePromise;
}

function images(root: TestRoot): string[] {
  return [...Deno.readDirSync(join(root.path, "images"))].map((e) => e.name);
}

function assertNothingCommitted(root: TestRoot) {
  deepStrictEqual(images(root), []);
  deepStrictEqual([...Deno.readDirSync(join(root.path, "tmp"))], []);
}

async function assertRuns(root: TestRoot, ref: string) {
  const r = await root.skiff([
    "run",
    "--rm",
    ref,
    "sh",
    "-c",
    "cat /skiff-image; wc -c < /random.bin | tr -d ' '",
  ]);
  strictEqual(r.code, 0, r.stderr);
  strictEqual(r.stdout, `faults amd64\n${3 * 1024 * 1024}\n`);
}

Deno.test("faults: connections dropped mid-blob are resumed with Range", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/drop:1");
    await withProxy(registry, { dropBlob: { times: 2, afterBytes: 200_000 } }, async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/drop:1`;
        const r = await root.skiff(["pull", ref], { env: { SKIFF_MAX_CONCURRENT_DOWNLOADS: "1" } });
        strictEqual(r.code, 0, r.stderr);
        ok(
          proxy.log.some((e) => e.range?.startsWith("bytes=") && e.status === 206),
          JSON.stringify(proxy.log),
        );
        strictEqual(images(root).length, 1);
        await assertRuns(root, ref);
      });
    });
  });
});

// Finding 12: before, a connection dropped in the middle of the config blob (or of a manifest or an
// index) failed the pull with "error reading a body from connection" and exit 125, every time.
Deno.test("faults: a connection dropped mid-config and mid-manifest is retried; always dropped: exit 1, one line", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/body:1");
    const once = (): Faults => ({
      dropBody: [
        { times: 1, path: /\/manifests\//, afterBytes: 100 },
        { times: 1, path: new RegExp(`/blobs/${img.configDigest}$`), afterBytes: 100 },
      ],
    });
    await withProxy(registry, once(), async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/body:1`;
        const r = await root.skiff(["pull", ref]);
        strictEqual(r.code, 0, r.stderr);
        const gets = (re: RegExp) => proxy.log.filter((e) => e.method === "GET" && re.test(e.path)).length;
        strictEqual(gets(/\/manifests\//), 2, JSON.stringify(proxy.log));
        strictEqual(gets(new RegExp(`/blobs/${img.configDigest}$`)), 2, JSON.stringify(proxy.log));
        await assertRuns(root, ref);
      });
    });
    for (const path of [/\/manifests\//, new RegExp(`/blobs/${img.configDigest}$`)]) {
      await withProxy(registry, { dropBody: [{ times: Infinity, path, afterBytes: 100 }] }, async (proxy) => {
        await withRoot(async (root) => {
          const r = await root.skiff(["pull", `${proxy.host}/f/body:1`], {
            env: { SKIFF_REGISTRY_RETRIES: "2" },
          });
          strictEqual(r.code, 1, r.stderr);
          strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
          match(
            r.stderr,
            /^skiff: GET \/v2\/f\/body\/(manifests|blobs)\/\S+: error reading a body from connection/,
          );
          // the first try and two retries
          strictEqual(proxy.log.filter((e) => e.method === "GET" && path.test(e.path)).length, 3);
          assertNothingCommitted(root);
        });
      });
    }
  });
});

Deno.test("faults: a blob download that stalls times out and resumes", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/stall:1");
    await withProxy(registry, { stallBlob: { times: 1, afterBytes: 300_000 } }, async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/stall:1`;
        const r = await root.skiff(["pull", "-q", ref], {
          env: { SKIFF_REGISTRY_TIMEOUT: "1", SKIFF_MAX_CONCURRENT_DOWNLOADS: "1" },
        });
        strictEqual(r.code, 0, r.stderr);
        ok(proxy.log.some((e) => e.range === "bytes=300000-"), JSON.stringify(proxy.log));
        await assertRuns(root, ref);
      });
    });
  });
});

Deno.test("faults: 500 and 429 (Retry-After) are retried", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/retry:1");
    const faults: Faults = {
      error500: { times: 2, path: /\/manifests\// },
      tooMany: { times: 1, path: /\/blobs\//, retryAfter: "1" },
    };
    await withProxy(registry, faults, async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/retry:1`;
        const t0 = performance.now();
        const r = await root.skiff(["pull", ref]);
        const elapsed = performance.now() - t0;
        strictEqual(r.code, 0, r.stderr);
        strictEqual(proxy.log.filter((e) => e.status === 500).length, 2);
        strictEqual(proxy.log.filter((e) => e.status === 429).length, 1);
        ok(elapsed >= 1000, `Retry-After: 1 was honoured (${elapsed} ms)`);
        await assertRuns(root, ref);
      });
    });
  });
});

Deno.test("faults: flipped bytes are caught; once is retried, always fails cleanly", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/flip:1");
    await withProxy(registry, { flipBlob: Infinity }, async (proxy) => {
      await withRoot(async (root) => {
        const r = await root.skiff(["pull", `${proxy.host}/f/flip:1`]);
        strictEqual(r.code, 1, r.stdout);
        match(r.stderr, /verification failed|invalid gzip data|invalid tar/);
        strictEqual(r.stderr.trim().split("\n").length, 1);
        assertNothingCommitted(root);
        // the corrupted (large) layers left no blob file and no layer dir; only the small one is there
        const blobs = [...Deno.readDirSync(join(root.path, "blobs/sha256"))].map((e) => e.name);
        for (const d of [img.layerDigests[0], img.layerDigests[2]]) ok(!blobs.includes(d.slice(7)));
        // nor the config or manifest of the image that failed
        ok(!blobs.includes(img.configDigest.slice(7)) && !blobs.includes(img.manifestDigest.slice(7)));
        ok([...Deno.readDirSync(join(root.path, "layers"))].length <= 1);
      });
    });
    await withProxy(registry, { flipBlob: 1 }, async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/flip:1`;
        const r = await root.skiff(["pull", ref], { env: { SKIFF_MAX_CONCURRENT_DOWNLOADS: "1" } });
        strictEqual(r.code, 0, r.stderr);
        ok(r.stdout.includes(": Retrying"), r.stdout);
        await assertRuns(root, ref);
      });
    });
  });
});

Deno.test("faults: a registry that never answers times out with a clear error", async () => {
  await withRegistry("open", async (registry) => {
    await withProxy(registry, { hang: true }, async (proxy) => {
      await withRoot(async (root) => {
        const t0 = performance.now();
        const r = await root.skiff(["pull", `${proxy.host}/f/hang:1`], {
          env: { SKIFF_REGISTRY_TIMEOUT: "1" },
        });
        strictEqual(r.code, 1);
        strictEqual(r.stderr, `skiff: ${proxy.host}: the registry did not answer within 1 s\n`);
        ok(performance.now() - t0 < 8000);
        assertNothingCommitted(root);
      });
    });
  });
});

Deno.test("faults: an image present and a registry that stops answering: the up-to-date check gives up", async () => {
  const img = await bigImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "f/later:1");
    const faults: Faults = {};
    await withProxy(registry, faults, async (proxy) => {
      await withRoot(async (root) => {
        const ref = `${proxy.host}/f/later:1`;
        await root.ok(["pull", "-q", ref]);
        const before = images(root);
        // the second pull's HEAD (the fast path, on a raw socket) meets a registry that never
        // answers: its own deadline ends it, then the full path times out as configured
        faults.hang = true;
        const t0 = performance.now();
        const r = await root.skiff(["pull", ref], { env: { SKIFF_REGISTRY_TIMEOUT: "1" } });
        strictEqual(r.code, 1);
        strictEqual(r.stderr, `skiff: ${proxy.host}: the registry did not answer within 1 s\n`);
        ok(performance.now() - t0 < 10_000);
        ok(
          proxy.log.some((e) => e.method === "HEAD" && e.path === "/v2/f/later/manifests/1"),
          "fast path asked",
        );
        deepStrictEqual(images(root), before);
        deepStrictEqual([...Deno.readDirSync(join(root.path, "tmp"))], []);
      });
    });
  });
});

Deno.test("platforms: an index resolves to the host's platform, --platform picks another", async () => {
  const amd = await buildImage({ name: "multi", architecture: "amd64" });
  const arm = await buildImage({ name: "multi", architecture: "arm64", variant: "v8" });
  try {
    await withRegistry("open", async (registry) => {
      await skopeoPush(registry, amd.layout, "multi:amd64");
      await skopeoPush(registry, arm.layout, "multi:arm64");
      const index = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [arm, amd].map((i) => ({
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: i.manifestDigest,
          size: i.manifestBytes.length,
          platform: i.platform,
        })),
      }));
      const indexDigest = await putManifest(
        registry,
        "multi",
        "latest",
        index,
        "application/vnd.oci.image.index.v1+json",
      );
      await withRoot(async (root) => {
        const ref = `${registry.host}/multi:latest`;
        const host = await root.skiff(["pull", ref]);
        strictEqual(host.code, 0, host.stderr);
        ok(host.stdout.includes(`Digest: ${indexDigest}`), host.stdout);
        const tags = () => JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json")));
        strictEqual(tags()[ref], amd.configDigest);
        const record = JSON.parse(
          Deno.readTextFileSync(join(root.path, "images", `${amd.configDigest.slice(7)}.json`)),
        );
        deepStrictEqual(record.repoDigests, [`${registry.host}/multi@${indexDigest}`]);
        strictEqual(record.manifestDigest, amd.manifestDigest);
        const run = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
        strictEqual(run.stdout, "multi amd64\n");

        const other = await root.skiff(["pull", "--platform", "linux/arm64", ref]);
        strictEqual(other.code, 0, other.stderr);
        strictEqual(tags()[ref], arm.configDigest);
        const armLayer = join(root.path, "images", `${arm.configDigest.slice(7)}.json`);
        strictEqual(JSON.parse(Deno.readTextFileSync(armLayer)).config.architecture, "arm64");

        const none = await root.skiff(["pull", "--platform", "linux/s390x", ref]);
        strictEqual(none.code, 1);
        strictEqual(
          none.stderr,
          "skiff: no matching manifest for linux/s390x in the manifest list entries\n",
        );

        // a single-platform image that is not the asked platform
        const mismatch = await root.skiff([
          "pull",
          "--platform",
          "linux/arm64",
          `${registry.host}/multi:amd64`,
        ]);
        strictEqual(mismatch.code, 1);
        match(
          mismatch.stderr,
          /does not match the specified platform: wanted linux\/arm64\/v8, actual: linux\/amd64/,
        );
      });
    });
  } finally {
    await Deno.remove(amd.dir, { recursive: true });
    await Deno.remove(arm.dir, { recursive: true });
  }
});

Deno.test("push: a blob larger than one chunk goes up in PATCH chunks, digests intact", async () => {
  // 20 MiB of random data: incompressible, so the gzip blob is larger than CHUNK_SIZE (8 MiB)
  const random = new Uint8Array(20 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
  const dir = await Deno.makeTempDir({ prefix: "skiff-rand-" });
  Deno.writeFileSync(join(dir, "big.bin"), random);
  const tar = await new Deno.Command("tar", { args: ["-C", dir, "-cf", "-", "big.bin"], stdout: "piped" })
    .output();
  await Deno.remove(dir, { recursive: true });
  const img = await buildImage({ name: "big", extraLayers: [tar.stdout] });
  try {
    await withRegistry("open", async (source) => {
      await withRegistry("open", async (dest) => {
        await skopeoPush(source, img.layout, "big:1");
        await withProxy(dest, {}, async (proxy) => {
          await withRoot(async (root) => {
            await root.ok(["pull", "-q", `${source.host}/big:1`]);
            await root.ok(["tag", `${source.host}/big:1`, `${proxy.host}/big:1`]);
            const r = await root.skiff(["push", `${proxy.host}/big:1`]);
            strictEqual(r.code, 0, r.stderr);
            ok(
              r.stdout.includes(`1: digest: ${img.manifestDigest} size: ${img.manifestBytes.length}`),
              r.stdout,
            );
            // 20 MiB in 8 MiB chunks: three PATCHes, then the PUT that commits the blob
            strictEqual(proxy.log.filter((e) => e.method === "PATCH").length, 3, JSON.stringify(proxy.log));
            ok(proxy.log.some((e) => e.method === "PUT" && e.path.includes("/blobs/uploads/")));
            const raw = await skopeoInspectRaw(dest, "big:1");
            deepStrictEqual(JSON.parse(raw), JSON.parse(new TextDecoder().decode(img.manifestBytes)));
          });
        });
        // the registry kept the big blob whole
        const big = img.layerDigests[2];
        const res = await fetch(`http://${dest.host}/v2/big/blobs/${big}`);
        const body = new Uint8Array(await res.arrayBuffer());
        strictEqual(sha256(body), big);
      });
    });
  } finally {
    await Deno.remove(img.dir, { recursive: true });
  }
});
