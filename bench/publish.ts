// Throughput of a published port, side by side with podman and docker (when set up, see
// bench/run_latency.ts): each engine runs busybox httpd with `-p 127.0.0.1:PORT:80` on its default
// bridge, serving one file of SIZE (sparse, on a bind of the host's /tmp, so it comes from the page
// cache alike for all); curl on the host GETs it through the published port. Rounds interleave the
// engines (skiff, podman, docker, skiff, …); the figure is the median of the rounds' MB/s.
// skiff: kernel DNAT (nft); podman 4.3: kernel DNAT (netavark); docker 20.10: docker-proxy.
//
//   deno run -A bench/publish.ts [--only skiff,podman,docker] [--rounds 5] [--size-mb 1024]

import { join } from "node:path";
import { parseArgs } from "node:util";
import { machineLine, markdownTable, median, readEnvFile, run } from "./lib.ts";
import { peerClis } from "./memory.ts";
import { PEER_ENV_FILE, skiffArgv } from "./run_latency.ts";

const PEER_IMAGE = "localhost/bb:latest";
const SKIFF_IMAGE = "bench/busybox:latest";

interface Engine {
  name: string;
  cli: string[];
  env?: Record<string, string>;
  image: string;
  port: number;
  id?: string;
  cleanup?(): Promise<void>;
}

/** A free loopback TCP port (bound and let go: the engine takes it next). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function curl(url: string, out = "/dev/null"): Promise<{ ok: boolean; bytesPerSec: number }> {
  const r = await run([
    "curl",
    "-s",
    "--max-time",
    "120",
    "-o",
    out,
    "-w",
    "%{http_code} %{speed_download}",
    url,
  ]);
  const [code, speed] = r.stdout.trim().split(" ");
  return { ok: r.code === 0 && code === "200", bytesPerSec: Number(speed) };
}

async function start(engine: Engine, www: string): Promise<void> {
  const out = await run([
    ...engine.cli,
    "run",
    "-d",
    "-p",
    `127.0.0.1:${engine.port}:80`,
    "-v",
    `${www}:/www:ro`,
    engine.image,
    "httpd",
    "-f",
    "-p",
    "80",
    "-h",
    "/www",
  ], engine.env);
  if (out.code !== 0) throw new Error(`${engine.name} run -d: ${out.stderr.trim().split("\n").pop()}`);
  engine.id = out.stdout.trim();
  const end = Date.now() + 20000;
  while (!(await curl(`http://127.0.0.1:${engine.port}/small`)).ok) {
    if (Date.now() > end) throw new Error(`${engine.name}: httpd did not answer on ${engine.port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function engines(only: string[]): Promise<Engine[]> {
  const wanted = (n: string) => only.length === 0 || only.includes(n);
  const env = readEnvFile(PEER_ENV_FILE) ?? {};
  const out: Engine[] = [];
  if (wanted("skiff")) {
    const work = await Deno.makeTempDir({ prefix: "skiff-bench-publish-" });
    const root = join(work, "root");
    await Deno.mkdir(root);
    const cli = [...skiffArgv().argv, "--root", root];
    const tar = env.PEER_ROOTFS_TAR ?? "";
    const imported = tar ? await run([...cli, "import", tar, SKIFF_IMAGE]) : undefined;
    if (!imported || imported.code !== 0) {
      console.log(
        `skiff: skipped (needs the peers' rootfs tar: ${imported?.stderr.trim() ?? PEER_ENV_FILE})`,
      );
    } else {
      out.push({
        name: "skiff",
        cli,
        image: SKIFF_IMAGE,
        port: 0,
        cleanup: () => Deno.remove(work, { recursive: true }).catch(() => {}),
      });
    }
  }
  for (const [name, cli, penv] of peerClis(env)) {
    if (!wanted(name)) continue;
    if (!cli) {
      console.log(`${name}: skipped (not set up: ${PEER_ENV_FILE})`);
      continue;
    }
    out.push({ name, cli, env: penv, image: PEER_IMAGE, port: 0 });
  }
  return out;
}

export interface PublishFigure {
  engine: string;
  mbPerSec: number;
  rounds: number[];
}

export async function measurePublish(
  only: string[],
  rounds: number,
  sizeMb: number,
): Promise<PublishFigure[]> {
  const www = await Deno.makeTempDir({ prefix: "skiff-bench-www-" });
  await Deno.chmod(www, 0o755);
  Deno.writeTextFileSync(join(www, "small"), "ok\n");
  const big = await Deno.open(join(www, "big"), { write: true, create: true });
  await big.truncate(sizeMb * 1024 * 1024); // sparse: zeros from the page cache, no disk
  big.close();
  await Deno.chmod(join(www, "big"), 0o644);
  await Deno.chmod(join(www, "small"), 0o644);
  const all = await engines(only);
  const speeds = new Map(all.map((e) => [e.name, [] as number[]]));
  const running: Engine[] = [];
  try {
    for (const engine of all) {
      try {
        engine.port = freePort();
        await start(engine, www);
        await curl(`http://127.0.0.1:${engine.port}/big`); // warm-up: not counted
        running.push(engine);
      } catch (e) {
        console.log(`${engine.name}: skipped (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    for (let r = 0; r < rounds; r++) {
      const line: string[] = [];
      for (const engine of running) {
        const got = await curl(`http://127.0.0.1:${engine.port}/big`);
        if (!got.ok) {
          line.push(`${engine.name} failed`);
          continue;
        }
        const mbs = got.bytesPerSec / 1e6;
        speeds.get(engine.name)!.push(mbs);
        line.push(`${engine.name} ${mbs.toFixed(0)} MB/s`);
      }
      console.log(`round ${r + 1}: ${line.join(", ")}`);
    }
  } finally {
    for (const engine of running) await run([...engine.cli, "rm", "-f", engine.id!], engine.env);
    for (const engine of all) await engine.cleanup?.();
    await Deno.remove(www, { recursive: true }).catch(() => {});
  }
  return running.filter((e) => speeds.get(e.name)!.length).map((e) => ({
    engine: e.name,
    mbPerSec: median(speeds.get(e.name)!),
    rounds: speeds.get(e.name)!,
  }));
}

export function publishMarkdown(figures: PublishFigure[], rounds: number, sizeMb: number): string {
  const base = figures.find((f) => f.engine === "skiff");
  const how: Record<string, string> = {
    skiff: "kernel DNAT (nft)",
    podman: "kernel DNAT (netavark)",
    docker: "docker-proxy (userland)",
  };
  return [
    machineLine(),
    "",
    `GET of ${sizeMb} MiB from busybox httpd through \`-p 127.0.0.1:PORT:80\`, curl on the host; ` +
    `median of ${rounds} interleaved rounds.`,
    "",
    markdownTable(
      ["engine", "MB/s", "skiff ÷ engine", "forwarding"],
      figures.map((f) => [
        f.engine,
        f.mbPerSec.toFixed(0),
        base && f !== base ? `${(base.mbPerSec / f.mbPerSec).toFixed(2)}×` : "",
        how[f.engine] ?? "",
      ]),
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string", default: "" },
      rounds: { type: "string", default: "5" },
      "size-mb": { type: "string", default: "1024" },
    },
  });
  const rounds = Number(values.rounds), size = Number(values["size-mb"]);
  const figures = await measurePublish(String(values.only).split(",").filter(Boolean), rounds, size);
  console.log(`\n${publishMarkdown(figures, rounds, size)}`);
}
