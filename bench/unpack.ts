// Layer unpack benchmark: skiff's unpacker (`skiff import` of a gzip layer into a temp root) against
// GNU `tar -xzf` of the same file. Wall time and peak RSS (from /usr/bin/time -v), median of N runs.
//
//   deno run -A bench/unpack.ts [--runs 5] [--layer PATH (reuse or keep the generated layer)]
//                               [--dir DIR (where to unpack, e.g. /dev/shm to leave the disk out)]
//
// The layer: ~6000 entries (directories, ~5900 small files 0.5–16 KB, 24 large files of 1–3 MB,
// symlinks, hardlinks), part random (incompressible) and part text, ≥ 50 MB gzip.

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const args = Deno.args;
const runs = Number(args[args.indexOf("--runs") + 1] || 5) || 5;

/** Deterministic pseudo-random bytes (xorshift), so every run measures the same layer. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return (buf: Uint8Array) => {
    const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    return buf;
  };
}

const WORDS = "the quick brown fox jumps over a lazy dog while skiff unpacks layers fast and safely".split(
  " ",
);

function textBytes(n: number, rand: (b: Uint8Array) => Uint8Array): Uint8Array {
  const picks = rand(new Uint8Array(Math.ceil(n / 4) * 4));
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = WORDS[picks[i % picks.length] % WORDS.length] + (i % 13 === 12 ? "\n" : " ");
    parts.push(w);
    len += w.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, n);
}

async function makeLayer(dir: string): Promise<{ path: string; entries: number; bytes: number }> {
  const src = join(dir, "src");
  const rand = prng(42);
  let entries = 0, bytes = 0;
  const sizes = new Uint32Array(6000);
  rand(new Uint8Array(sizes.buffer));
  for (let d = 0; d < 60; d++) {
    const sub = join(src, `usr/lib/pkg${d}`, d % 3 ? "share" : "bin");
    Deno.mkdirSync(sub, { recursive: true });
    entries += 2;
    for (let f = 0; f < 98; f++) {
      const n = 512 + (sizes[d * 100 + f] % 16_000);
      // two thirds text (compresses ~4x), one third random
      const data = f % 3 === 0
        ? rand(new Uint8Array(Math.ceil(n / 4) * 4)).subarray(0, n)
        : textBytes(n, rand);
      const path = join(sub, `file${f}.dat`);
      Deno.writeFileSync(path, data, { mode: f % 7 === 0 ? 0o755 : 0o644 });
      entries++;
      bytes += n;
    }
    Deno.symlinkSync("file0.dat", join(sub, "link0"));
    Deno.linkSync(join(sub, "file1.dat"), join(sub, "hard1"));
    entries += 2;
  }
  const big = join(src, "opt/big");
  Deno.mkdirSync(big, { recursive: true });
  for (let i = 0; i < 24; i++) {
    const n = (1 + (i % 3)) * 1024 * 1024;
    const half = Math.floor(n / 2);
    const data = new Uint8Array(n);
    data.set(rand(new Uint8Array(half)), 0);
    data.set(textBytes(n - half, rand), half);
    Deno.writeFileSync(join(big, `blob${i}.bin`), data);
    entries++;
    bytes += n;
  }
  const path = join(dir, "layer.tar.gz");
  const out = await new Deno.Command("tar", { args: ["-C", src, "-czf", path, "."] }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  Deno.removeSync(src, { recursive: true });
  return { path, entries, bytes };
}

interface Sample {
  seconds: number;
  /** user + system CPU seconds, children included (GNU tar's gzip). */
  cpu: number;
  maxRssKb: number;
}

/** Runs a command under /usr/bin/time -v; returns wall time and peak RSS. */
async function timed(cmd: string[]): Promise<Sample> {
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-v", ...cmd],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const report = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${report}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(report)!;
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(report)![1]);
  const user = Number(/User time \(seconds\): ([\d.]+)/.exec(report)![1]);
  const system = Number(/System time \(seconds\): ([\d.]+)/.exec(report)![1]);
  return { seconds, cpu: user + system, maxRssKb };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const tmpBase = args.includes("--dir") ? args[args.indexOf("--dir") + 1] : undefined;
  const work = await Deno.makeTempDir({ prefix: "skiff-bench-unpack-", dir: tmpBase });
  try {
    const keep = args.includes("--layer") ? args[args.indexOf("--layer") + 1] : undefined;
    const layer = keep && exists(keep) ? { path: keep, entries: NaN, bytes: NaN } : await makeLayer(work);
    if (keep && !exists(keep)) Deno.copyFileSync(layer.path, keep);
    const gzBytes = Deno.statSync(layer.path).size;
    console.log(
      `layer: ${layer.entries} entries, ${(layer.bytes / 1e6).toFixed(1)} MB of file data, ` +
        `${(gzBytes / 1e6).toFixed(1)} MB gzip`,
    );
    const deno = Deno.execPath();
    const skiff: Sample[] = [], gnu: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const root = join(work, `root${i}`);
      Deno.mkdirSync(root);
      skiff.push(
        await timed([deno, "run", "-A", MAIN, "--root", root, "import", layer.path, "bench:latest"]),
      );
      Deno.removeSync(root, { recursive: true });
      const dest = join(work, `tar${i}`);
      Deno.mkdirSync(dest);
      gnu.push(await timed(["tar", "-xzf", layer.path, "-C", dest]));
      Deno.removeSync(dest, { recursive: true });
    }
    const s = median(skiff.map((x) => x.seconds)), g = median(gnu.map((x) => x.seconds));
    const fmt = (xs: Sample[]) =>
      `median ${median(xs.map((x) => x.seconds)).toFixed(3)} s wall, ${
        median(xs.map((x) => x.cpu)).toFixed(2)
      } s CPU, peak RSS ${(median(xs.map((x) => x.maxRssKb)) / 1024).toFixed(0)} MB  (runs: ${
        xs.map((x) => x.seconds.toFixed(2)).join(" ")
      })`;
    console.log(`skiff import : ${fmt(skiff)}`);
    console.log(`GNU tar -xzf : ${fmt(gnu)}`);
    console.log(`ratio skiff/tar: ${(s / g).toFixed(2)}x (target <= 1.20x)`);
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}

if (import.meta.main) await main();
