// Detached containers, side by side with podman and docker (when set up, see bench/run_latency.ts):
//   - 50 `run -d IMAGE sleep` one after another, and 50 all at once: total time (median of rounds);
//   - host memory per idle detached container with 1 and with 20 running: the sum of the PSS
//     (/proc/PID/smaps_rollup) of every engine process kept for them, divided by the containers.
//     skiff: its supervisor (one per state root) and, with -t or -i, each container's holder;
//     podman: conmon per container; docker: the containerd-shim per container (dockerd and
//     containerd themselves are not counted).
// Every container the bench starts is removed again, the peers' too.
//
//   deno run -A bench/lifecycle.ts [--only skiff,podman,docker] [--rounds 3] [--count 50] [--tty]
// (--tty: every container with -t)

import { join } from "node:path";
import { parseArgs } from "node:util";
import { machineLine, markdownTable, median, readEnvFile, run } from "./lib.ts";
import { peerClis, smaps } from "./memory.ts";
import { PEER_ENV_FILE, skiffArgv } from "./run_latency.ts";

const PEER_IMAGE = "localhost/bb:latest";
const SKIFF_IMAGE = "bench/busybox:latest";
const SETTLE_MS = 1500;

interface Engine {
  name: string;
  /** argv prefix of the engine's CLI */
  cli: string[];
  env?: Record<string, string>;
  image: string;
  /** extra run flags (every engine here: no network) */
  runFlags: string[];
  /** Pids of the engine's processes attributable to these containers (ids as `run -d` printed). */
  keptPids(ids: string[]): Promise<number[]>;
  cleanup?(): Promise<void>;
}

export interface LifecycleFigures {
  engine: string;
  sequential: number;
  concurrent: number;
  /** kB of PSS per container with 1 and with 20 running */
  pssAt1: number;
  pssAt20: number;
  kept: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parentPid(pid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/status`).match(/^PPid:\s+(\d+)/m)?.[1] ?? 0);
}

/** The holders (lib/engine/holder.ts) the supervisor `pid` forked. */
function holderPids(supervisor: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (!Deno.readLinkSync(`/proc/${e.name}/exe`).startsWith("/memfd:skiff-holder")) continue;
      if (parentPid(Number(e.name)) === supervisor) out.push(Number(e.name));
    } catch { /* exited */ }
  }
  return out;
}

function supervisorPids(root: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (argv.includes("__supervisor") && argv.includes(root)) out.push(Number(e.name));
    } catch { /* exited */ }
  }
  return out;
}

async function startMany(
  engine: Engine,
  count: number,
  parallel: boolean,
): Promise<{ secs: number; ids: string[] }> {
  const one = async () => {
    const out = await run(
      [...engine.cli, "run", "-d", ...engine.runFlags, engine.image, "sleep", "600"],
      engine.env,
    );
    if (out.code !== 0) throw new Error(`${engine.name} run -d: ${out.stderr.trim().split("\n").pop()}`);
    return out.stdout.trim();
  };
  const start = performance.now();
  const ids: string[] = [];
  if (parallel) ids.push(...await Promise.all(Array.from({ length: count }, one)));
  else for (let i = 0; i < count; i++) ids.push(await one());
  return { secs: (performance.now() - start) / 1000, ids };
}

async function removeAll(engine: Engine, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 25) {
    await run([...engine.cli, "rm", "-f", ...ids.slice(i, i + 25)], engine.env);
  }
}

async function memoryPerContainer(engine: Engine, count: number): Promise<number> {
  const { ids } = await startMany(engine, count, false);
  try {
    await sleep(SETTLE_MS);
    const pids = await engine.keptPids(ids);
    return pids.reduce((sum, pid) => sum + smaps(pid).pss, 0) / count;
  } finally {
    await removeAll(engine, ids);
  }
}

async function peerPids(engine: Omit<Engine, "keptPids">, ids: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const id of ids) {
    const out = await run([...engine.cli, "inspect", "-f", "{{.State.Pid}}", id], engine.env);
    pids.push(parentPid(Number(out.stdout.trim()))); // conmon / containerd-shim
  }
  return [...new Set(pids)]; // a shim may serve several containers
}

async function engines(only: string[]): Promise<Engine[]> {
  const wanted = (n: string) => only.length === 0 || only.includes(n);
  const env = readEnvFile(PEER_ENV_FILE) ?? {};
  const out: Engine[] = [];
  if (wanted("skiff")) {
    const work = await Deno.makeTempDir({ prefix: "skiff-bench-life-" });
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
        runFlags: ["--network", "none"], // as the peers (bench/network.ts compares the bridges)
        keptPids: () => Promise.resolve(supervisorPids(root).flatMap((pid) => [pid, ...holderPids(pid)])),
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
    const probe = await run([...cli, "run", "--rm", "--network", "none", PEER_IMAGE, "true"], penv);
    if (probe.code !== 0) {
      console.log(`${name}: skipped (${probe.stderr.trim().split("\n").pop()})`);
      continue;
    }
    const engine = { name, cli, env: penv, image: PEER_IMAGE, runFlags: ["--network", "none"] };
    out.push({ ...engine, keptPids: (ids) => peerPids(engine, ids) });
  }
  return out;
}

export async function measureLifecycle(only: string[], rounds: number, count: number, tty = false) {
  const figures: LifecycleFigures[] = [];
  const all = await engines(only);
  if (tty) { for (const engine of all) engine.runFlags.push("-t"); }
  const times = new Map(all.map((e) => [e.name, { seq: [] as number[], par: [] as number[] }]));
  const failed = new Set<string>();
  try {
    // rounds interleave the engines (skiff, podman, docker, skiff, …): the machine's drift over
    // the minutes a run takes lands on every engine alike, not on whichever ran last
    for (let r = 0; r < rounds; r++) {
      const line: string[] = [];
      for (const engine of all) {
        if (failed.has(engine.name)) continue;
        try {
          for (const parallel of [false, true]) {
            const { secs, ids } = await startMany(engine, count, parallel);
            (parallel ? times.get(engine.name)!.par : times.get(engine.name)!.seq).push(secs);
            await removeAll(engine, ids);
          }
          const t = times.get(engine.name)!;
          line.push(`${engine.name} ${t.seq.at(-1)!.toFixed(2)}/${t.par.at(-1)!.toFixed(2)} s`);
        } catch (e) {
          failed.add(engine.name);
          console.log(`${engine.name}: failed (${e instanceof Error ? e.message : String(e)})`);
        }
      }
      console.log(`round ${r + 1} (one after another/all at once): ${line.join(", ")}`);
    }
    for (const engine of all) {
      if (failed.has(engine.name)) continue;
      try {
        const { seq, par } = times.get(engine.name)!;
        const at1: number[] = [];
        for (let r = 0; r < rounds; r++) at1.push(await memoryPerContainer(engine, 1));
        const at20 = await memoryPerContainer(engine, 20);
        const kept = engine.name === "skiff"
          ? "supervisor (one per root)"
          : engine.name === "podman"
          ? "conmon per container"
          : "containerd-shim per container";
        figures.push({
          engine: engine.name,
          sequential: median(seq),
          concurrent: median(par),
          pssAt1: median(at1),
          pssAt20: at20,
          kept,
        });
        console.log(
          `${engine.name}: ${count} sequential ${median(seq).toFixed(2)} s, all at once ${
            median(par).toFixed(2)
          } s; PSS/container ${(median(at1) / 1024).toFixed(2)} MB (1), ${(at20 / 1024).toFixed(2)} MB (20)`,
        );
      } catch (e) {
        console.log(`${engine.name}: failed (${e instanceof Error ? e.message : String(e)})`);
      }
    }
  } finally {
    for (const engine of all) await engine.cleanup?.();
  }
  return figures;
}

export function lifecycleMarkdown(figures: LifecycleFigures[], rounds: number, count: number): string {
  const base = figures.find((f) => f.engine === "skiff");
  const ratio = (f: LifecycleFigures, key: "sequential" | "concurrent") =>
    base && f !== base ? ` (skiff ${(base[key] / f[key]).toFixed(2)}×)` : "";
  const mb = (kb: number) => `${(kb / 1024).toFixed(2)} MB`;
  return [
    machineLine(),
    "",
    `${count} × \`run -d IMAGE sleep 600\`, median of ${rounds} rounds; memory: PSS of the engine's ` +
    `processes kept for idle detached containers, per container.`,
    "",
    markdownTable(
      [
        "engine",
        `${count} one after another`,
        `${count} all at once`,
        "PSS/ctr, 1 running",
        "PSS/ctr, 20 running",
        "kept",
      ],
      figures.map((f) => [
        f.engine,
        `${f.sequential.toFixed(2)} s${ratio(f, "sequential")}`,
        `${f.concurrent.toFixed(2)} s${ratio(f, "concurrent")}`,
        mb(f.pssAt1),
        mb(f.pssAt20),
        f.kept,
      ]),
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string", default: "" },
      rounds: { type: "string", default: "3" },
      tty: { type: "boolean", default: false },
      count: { type: "string", default: "50" },
    },
  });
  const rounds = Number(values.rounds), count = Number(values.count);
  const only = String(values.only).split(",").filter(Boolean);
  const figures = await measureLifecycle(only, rounds, count, values.tty);
  console.log(`\n${lifecycleMarkdown(figures, rounds, count)}`);
}
