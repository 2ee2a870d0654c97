// Pull benchmark: a >=100 MB image of five layers (busybox, many small files, one large random
// file, medium files, semi-compressible data), made here and pushed to a docker-registry this
// script starts on 127.0.0.1. Times a cold pull until the image is ready to run, for skiff and the
// peers installed here (podman, docker via /tmp/peers/env.sh; skopeo copy to an OCI dir, which only
// downloads and verifies), then a second pull with everything present.
//
// A row "floor" times `tar -xzf` of the layer blobs (local files, all at once, into tmpfs): what
// unpacking alone costs on this machine with the system's C tools.
//
//   deno run -A bench/pull.ts [--runs 3] [--warm-runs 10] [--settle 65] [--only skiff,skopeo,floor,podman,docker]

import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { median, readEnvFile, which } from "./lib.ts";
import { PEER_ENV_FILE } from "./run_latency.ts";
import { busyboxTar, MAIN } from "../tests/helpers.ts";
import { startRegistry } from "../tests/registry_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "warm-runs": { type: "string", default: "10" },
    settle: { type: "string", default: "65" },
    only: { type: "string" },
  },
});
const RUNS = Number(values.runs);
const WARM_RUNS = Number(values["warm-runs"]);
const SETTLE_S = Number(values.settle);
const only = values.only?.split(",");
const wanted = (name: string) => !only || only.includes(name);

const sha256 = (d: Uint8Array) => `sha256:${createHash("sha256").update(d).digest("hex")}`;

/** Deterministic pseudo-random bytes (xorshift), so every run of the bench builds the same image. */
function pseudoRandom(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const view = new Uint32Array(out.buffer, 0, size >> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < view.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[i] = x >>> 0;
  }
  return out;
}

async function tarDir(fill: (dir: string) => void): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-bench-layer-" });
  try {
    fill(dir);
    const out = await new Deno.Command("tar", {
      args: ["--sort=name", "--mtime=2020-01-01", "--owner=0", "--group=0", "-C", dir, "-cf", "-", "."],
      stdout: "piped",
    }).output();
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export async function buildBenchImage(): Promise<
  { layout: string; dir: string; compressed: number; unpacked: number; layerBlobs: string[] }
> {
  const layers: Uint8Array[] = [
    Deno.readFileSync(await busyboxTar()),
    // 3000 small text files in 30 dirs (~24 MB, compresses well)
    await tarDir((d) => {
      for (let i = 0; i < 3000; i++) {
        const sub = join(d, "small", `d${i % 30}`);
        Deno.mkdirSync(sub, { recursive: true });
        Deno.writeTextFileSync(
          join(sub, `f${i}.txt`),
          `line ${i} of a small file\n`.repeat(300 + (i % 17) * 20),
        );
      }
    }),
    // one 40 MB incompressible file
    await tarDir((d) => Deno.writeFileSync(join(d, "large.bin"), pseudoRandom(40 * 1024 * 1024, 7))),
    // 400 medium files of 64 KB, half random, half repetitive (~26 MB)
    await tarDir((d) => {
      Deno.mkdirSync(join(d, "medium"));
      for (let i = 0; i < 400; i++) {
        const data = i % 2
          ? pseudoRandom(64 * 1024, i + 1)
          : new TextEncoder().encode("abcdefgh".repeat(8192));
        Deno.writeFileSync(join(d, "medium", `m${i}.dat`), data);
      }
    }),
    // 20 MB of hex text: compresses about 2:1
    await tarDir((d) => {
      const raw = pseudoRandom(10 * 1024 * 1024, 99);
      Deno.writeTextFileSync(
        join(d, "data.hex"),
        Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join(""),
      );
    }),
  ];
  const dir = await Deno.makeTempDir({ prefix: "skiff-bench-oci-" });
  Deno.mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const put = (data: Uint8Array) => {
    const digest = sha256(data);
    Deno.writeFileSync(join(dir, "blobs/sha256", digest.slice(7)), data);
    return digest;
  };
  const descs = layers.map((tar) => {
    const gz = gzipSync(tar);
    return {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: put(gz),
      size: gz.length,
      diffId: sha256(tar),
      unpacked: tar.length,
    };
  });
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["sh"] },
    rootfs: { type: "layers", diff_ids: descs.map((l) => l.diffId) },
  }));
  const configDigest = put(config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: descs.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  }));
  const manifestDigest = put(manifest);
  Deno.writeTextFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  Deno.writeTextFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: manifestDigest,
        size: manifest.length,
        annotations: { "org.opencontainers.image.ref.name": "bench" },
      }],
    }),
  );
  return {
    layout: `oci:${dir}:bench`,
    dir,
    compressed: descs.reduce((a, l) => a + l.size, 0),
    unpacked: descs.reduce((a, l) => a + l.unpacked, 0),
    layerBlobs: descs.map((l) => join(dir, "blobs/sha256", l.digest.slice(7))),
  };
}

async function exec(argv: string[], env?: Record<string, string>): Promise<void> {
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), env, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
}

async function timed(argv: string[], env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  await exec(argv, env);
  return performance.now() - t0;
}

const have = (cmd: string) => which(cmd) !== undefined;

/**
 * Lets the disk forget the last round's deletions before the next cold pulls. ext4 without a
 * journal (these machines) skips inodes freed in the last 60 s (360 s while their inode-table block
 * is dirty) when it allocates, checking each in turn: right after a round removed its ~3,400 files
 * per engine, a create took up to 1 ms instead of 0.03 ms (perf: find_inode_bit → recently_deleted),
 * and which engine paid how much depended on which block groups its files had used. sync cleans
 * the blocks; the wait outlasts the 60 s.
 */
async function settle(): Promise<void> {
  if (SETTLE_S === 0) return;
  await new Deno.Command("sync").output();
  await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
}

interface Engine {
  name: string;
  note: string;
  /** One timed pull (ms). */
  pull(): Promise<number>;
  /** Takes the image out of the engine's store again. */
  remove(): Promise<void>;
  cleanup(): Promise<void>;
  /** Whether a second pull (everything present) means anything for this engine. */
  warm: boolean;
}

interface Result {
  name: string;
  cold: number[];
  warm: number[];
  note: string;
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

async function main() {
  console.log("building the bench image…");
  const image = await buildBenchImage();
  console.log(
    `image: 5 layers, ${(image.compressed / 1e6).toFixed(1)} MB compressed, ${
      (image.unpacked / 1e6).toFixed(1)
    } MB unpacked`,
  );
  const registry = await startRegistry("open");
  const results: Result[] = [];
  try {
    await exec([
      "skopeo",
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      image.layout,
      `docker://${registry.host}/bench/big:1`,
    ]);
    const ref = `${registry.host}/bench/big:1`;
    const env = readEnvFile(PEER_ENV_FILE);
    const docker = env?.PEER_DOCKER?.split(" ");
    const dockerUp = !!docker && have(docker[0]) &&
      (await exec([...docker, "info"]).then(() => true, () => false));

    // Every engine keeps one store for the whole bench and removes the image between cold pulls,
    // as a user's store would; the engines take turns in each round, so all of them meet the disk
    // in the same state. (On these machines a directory's place on the disk alone changes the cost
    // of creating its files up to 30-fold: skiff's pull took 5.07 s into a new dir under /tmp and
    // 1.51 s inside podman's store, in the same minute; 1000 creates took 0.87-1.10 s in new dirs
    // under /tmp and 0.37-0.40 s in podman's store.)
    const engines: Engine[] = [];
    let skiffRoot = "";
    if (wanted("skiff")) {
      // beside podman's store when it is set up: same parent directory, so the same place on disk
      const podmanRoot = env && have("podman")
        ? await new Deno.Command("podman", {
          args: ["info", "--format", "{{.Store.GraphRoot}}"],
          env,
          stdout: "piped",
          stderr: "null",
        })
          .output().then((o) => new TextDecoder().decode(o.stdout).trim(), () => "")
        : "";
      const root = skiffRoot = await Deno.makeTempDir({
        prefix: "skiff-bench-root-",
        ...(podmanRoot ? { dir: dirname(podmanRoot) } : {}),
      });
      console.log(`skiff store: ${root}${podmanRoot ? ` (podman's: ${podmanRoot})` : ""}`);
      const cli = [Deno.execPath(), "run", "-A", MAIN, "--root", root];
      engines.push({
        name: "skiff",
        note: "download + verify + unpack (runnable)",
        pull: () => timed([...cli, "pull", "-q", ref]),
        remove: () => exec([...cli, "rmi", ref]),
        cleanup: () => Deno.remove(root, { recursive: true }),
        warm: true,
      });
    }
    if (wanted("skopeo") && have("skopeo")) {
      let dir = "";
      engines.push({
        name: "skopeo copy",
        note: "download + verify to an OCI dir, no unpack",
        pull: async () => {
          dir = await Deno.makeTempDir({ prefix: "skiff-bench-skopeo-" });
          return timed([
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            `docker://${ref}`,
            `oci:${dir}:x`,
          ]);
        },
        remove: () => Deno.remove(dir, { recursive: true }),
        cleanup: () => Promise.resolve(),
        warm: false,
      });
    }
    if (wanted("floor") && have("tar") && have("gzip")) {
      // What unpacking alone costs here, with the system's C tools at their fastest: every layer's
      // blob, already local, through `tar -xzf` at once (one process each) into tmpfs. No download,
      // no digest, no blob kept, no disk: a floor under any engine that unpacks, beside skopeo,
      // which doesn't unpack at all. (On this disk tar would also pay for the last round's deletes.)
      const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
      const parent = shm ? "/dev/shm" : skiffRoot ? dirname(skiffRoot) : undefined;
      let dir = "";
      engines.push({
        name: "floor: tar -xzf",
        note: `local blobs, every layer at once, into ${
          shm ? "tmpfs" : "a temp dir"
        }; no download, no verify`,
        pull: async () => {
          dir = await Deno.makeTempDir({ prefix: "skiff-bench-floor-", ...(parent ? { dir: parent } : {}) });
          const t0 = performance.now();
          await Promise.all(image.layerBlobs.map(async (blob, n) => {
            await Deno.mkdir(join(dir, String(n)));
            await exec(["tar", "-xzf", blob, "-C", join(dir, String(n))]);
          }));
          return performance.now() - t0;
        },
        remove: () => Deno.remove(dir, { recursive: true }),
        cleanup: () => Promise.resolve(),
        warm: false,
      });
    }
    if (wanted("podman") && have("podman") && env) {
      engines.push({
        name: "podman",
        note: "",
        pull: () => timed(["podman", "pull", "-q", "--tls-verify=false", ref], env),
        remove: () => exec(["podman", "rmi", "-f", "--ignore", ref], env),
        cleanup: () => Promise.resolve(),
        warm: true,
      });
    } else if (wanted("podman")) {
      console.log("podman: not installed or peers not set up (/tmp/peers/env.sh): skipped");
    }
    if (wanted("docker") && dockerUp) {
      engines.push({
        name: "docker",
        note: "",
        pull: () => timed([...docker!, "pull", "-q", ref]),
        remove: () => exec([...docker!, "rmi", "-f", ref]).catch(() => {}),
        cleanup: () => Promise.resolve(),
        warm: true,
      });
    } else if (wanted("docker")) console.log("docker: no engine reachable through PEER_DOCKER: skipped");

    try {
      for (const e of engines) {
        if (e.name !== "skopeo copy" && !e.name.startsWith("floor")) await e.remove().catch(() => {});
        results.push({ name: e.name, cold: [], warm: [], note: e.note });
      }
      for (let i = 0; i < RUNS; i++) {
        await settle();
        for (const [n, e] of engines.entries()) {
          results[n].cold.push(await e.pull());
          if (i === RUNS - 1 && e.warm) {
            for (let j = 0; j < WARM_RUNS; j++) results[n].warm.push(await e.pull());
          }
        }
        for (const e of engines) await e.remove();
      }
    } finally {
      for (const e of engines) await e.cleanup().catch(() => {});
    }
  } finally {
    await registry.stop();
    await Deno.remove(image.dir, { recursive: true });
  }

  console.log(`\n| engine | cold pull (median of ${RUNS}) | second pull (median of ${WARM_RUNS}) | note |`);
  console.log("|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${fmt(median(r.cold))} | ${r.warm.length ? fmt(median(r.warm)) : "-"} | ${r.note} |`,
    );
  }
  console.log("");
  for (const r of results) console.log(`${r.name} cold runs in order: ${r.cold.map(fmt).join(", ")}`);
  const skiff = results.find((r) => r.name === "skiff");
  if (skiff) {
    console.log("");
    for (const r of results) {
      if (r === skiff) continue;
      const cold = median(skiff.cold) / median(r.cold);
      const warm = r.warm.length ? ` second pull ${(median(skiff.warm) / median(r.warm)).toFixed(2)}×` : "";
      console.log(`skiff / ${r.name}: cold ${cold.toFixed(2)}×${warm}`);
    }
  }
}

if (import.meta.main) await main();
