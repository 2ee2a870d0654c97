// Networking, side by side with podman (netavark, aardvark-dns) and docker (when set up, see
// bench/run_latency.ts), engines interleaved round by round as bench/lifecycle.ts does:
//   - `run --rm IMAGE true` on each engine's default bridge: wall time of the whole command;
//   - 20 × `run -d --network NET IMAGE sleep 600` at once on a user network, until the last one's
//     name resolves in the first container and the first one's in the last (busybox ping through
//     the engine's own resolution: skiff's /etc/hosts, podman's aardvark-dns, docker's 127.0.0.11).
// Every container and network the bench makes is removed again, the peers' too.
//
//   deno run -A bench/network.ts [--only skiff,podman,docker] [--rounds 15] [--group-rounds 3] [--count 20]

import { join } from "node:path";
import { parseArgs } from "node:util";
import { machineLine, markdownTable, median, readEnvFile, run } from "./lib.ts";
import { peerClis } from "./memory.ts";
import { PEER_ENV_FILE, skiffArgv } from "./run_latency.ts";

const PEER_IMAGE = "localhost/bb:latest";
const SKIFF_IMAGE = "bench/busybox:latest";
const WARMUP = 2;

interface Engine {
  name: string;
  cli: string[];
  env?: Record<string, string>;
  image: string;
  cleanup?(): Promise<void>;
}

async function engines(only: string[]): Promise<Engine[]> {
  const wanted = (n: string) => only.length === 0 || only.includes(n);
  const env = readEnvFile(PEER_ENV_FILE) ?? {};
  const out: Engine[] = [];
  if (wanted("skiff")) {
    const work = await Deno.makeTempDir({ prefix: "skiff-bench-net-" });
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
    const probe = await run([...cli, "run", "--rm", PEER_IMAGE, "true"], penv);
    if (probe.code !== 0) {
      console.log(`${name}: skipped (${probe.stderr.trim().split("\n").pop()})`);
      continue;
    }
    out.push({ name, cli, env: penv, image: PEER_IMAGE });
  }
  return out;
}

async function ok(engine: Engine, args: string[]): Promise<string> {
  const r = await run([...engine.cli, ...args], engine.env);
  if (r.code !== 0) throw new Error(`${engine.name} ${args.join(" ")}: ${r.stderr.trim().split("\n").pop()}`);
  return r.stdout;
}

async function timedRunRm(engine: Engine): Promise<number> {
  const start = performance.now();
  await ok(engine, ["run", "--rm", engine.image, "true"]);
  return performance.now() - start;
}

/** 20 started at once on NET, then until names resolve both ways: seconds. */
async function group(engine: Engine, net: string, count: number, round: number): Promise<number> {
  const names = Array.from({ length: count }, (_, i) => `bnet${round}x${i}`);
  const start = performance.now();
  try {
    await Promise.all(
      names.map((n) =>
        ok(engine, ["run", "-d", "--name", n, "--network", net, engine.image, "sleep", "600"])
      ),
    );
    const resolves = async (from: string, name: string) =>
      (await run([...engine.cli, "exec", from, "ping", "-c", "1", "-W", "1", name], engine.env)).code === 0;
    for (let i = 0; i < 200; i++) {
      if (await resolves(names[0], names[count - 1]) && await resolves(names[count - 1], names[0])) {
        return (performance.now() - start) / 1000;
      }
    }
    throw new Error("names never resolved");
  } finally {
    for (let i = 0; i < names.length; i += 25) {
      await run([...engine.cli, "rm", "-f", ...names.slice(i, i + 25)], engine.env);
    }
  }
}

export async function measureNetwork(only: string[], rounds: number, groupRounds: number, count: number) {
  const all = await engines(only);
  const runRm = new Map(all.map((e) => [e.name, [] as number[]]));
  const groups = new Map(all.map((e) => [e.name, [] as number[]]));
  const failed = new Set<string>();
  const net = `benchnet${crypto.getRandomValues(new Uint16Array(1))[0].toString(16)}`;
  try {
    for (const e of all) {
      for (let i = 0; i < WARMUP; i++) await timedRunRm(e).catch(() => {});
    }
    for (let r = 0; r < rounds; r++) {
      const line: string[] = [];
      for (const e of all) {
        if (failed.has(e.name)) continue;
        try {
          const t = await timedRunRm(e);
          runRm.get(e.name)!.push(t);
          line.push(`${e.name} ${t.toFixed(0)} ms`);
        } catch (err) {
          failed.add(e.name);
          console.log(`${e.name}: failed (${(err as Error).message})`);
        }
      }
      console.log(`run --rm round ${r + 1}: ${line.join(", ")}`);
    }
    for (const e of all) {
      if (!failed.has(e.name)) {
        await ok(e, ["network", "create", net]).catch((err) => console.log(err.message));
      }
    }
    for (let r = 0; r < groupRounds; r++) {
      const line: string[] = [];
      for (const e of all) {
        if (failed.has(e.name)) continue;
        try {
          const t = await group(e, net, count, r);
          groups.get(e.name)!.push(t);
          line.push(`${e.name} ${t.toFixed(2)} s`);
        } catch (err) {
          console.log(`${e.name}: group failed (${(err as Error).message})`);
        }
      }
      console.log(`${count} × run -d on a user network, names ready, round ${r + 1}: ${line.join(", ")}`);
    }
  } finally {
    for (const e of all) {
      await run([...e.cli, "network", "rm", net], e.env);
      await e.cleanup?.();
    }
  }
  return all.map((e) => ({
    engine: e.name,
    runRm: runRm.get(e.name)!.length ? median(runRm.get(e.name)!) : NaN,
    group: groups.get(e.name)!.length ? median(groups.get(e.name)!) : NaN,
  }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string", default: "" },
      rounds: { type: "string", default: "15" },
      "group-rounds": { type: "string", default: "3" },
      count: { type: "string", default: "20" },
    },
  });
  const rounds = Number(values.rounds),
    groupRounds = Number(values["group-rounds"]),
    count = Number(values.count);
  const figures = await measureNetwork(
    String(values.only).split(",").filter(Boolean),
    rounds,
    groupRounds,
    count,
  );
  const skiff = figures.find((f) => f.engine === "skiff");
  const ratio = (
    a: number,
    b: number,
  ) => (skiff && Number.isFinite(a) && Number.isFinite(b) ? ` (skiff ${(a / b).toFixed(2)}×)` : "");
  console.log(
    `\n${machineLine()}\n\nmedians; run --rm: ${rounds} rounds after ${WARMUP} warm-ups; ${count} at once: ${groupRounds} rounds\n\n` +
      markdownTable(
        [
          "engine",
          "`run --rm IMG true` (default bridge)",
          `${count} × \`run -d\` on a user network, names ready`,
        ],
        figures.map((f) => [
          f.engine,
          `${f.runRm.toFixed(0)} ms${f === skiff ? "" : ratio(skiff?.runRm ?? NaN, f.runRm)}`,
          `${f.group.toFixed(2)} s${f === skiff ? "" : ratio(skiff?.group ?? NaN, f.group)}`,
        ]),
      ),
  );
}
