// What a running container costs in memory beyond its own processes: the process each engine keeps
// per container while it runs (skiff: the `skiff run` parent that waits for it; podman: conmon;
// docker: containerd-shim), measured from /proc/<pid>/smaps_rollup with one container running.
//
//   deno run -A bench/memory.ts [--only skiff,podman,docker] [--samples 3]

import { join } from "node:path";
import { parseArgs } from "node:util";
import { markdownTable, median, readEnvFile, run, which } from "./lib.ts";
import { PEER_ENV_FILE, skiffArgv } from "./run_latency.ts";

const PEER_IMAGE = "localhost/bb:latest";
const SETTLE_MS = 1500;

export interface MemoryFigure {
  engine: string;
  process: string;
  /** kB, medians over the samples */
  rss: number;
  pss: number;
  privateKb: number;
}

interface Sample {
  rss: number;
  pss: number;
  privateKb: number;
}

/** Rss, Pss and private memory (kB) of one process. */
export function smaps(pid: number): Sample {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  return {
    rss: field("Rss"),
    pss: field("Pss"),
    privateKb: field("Private_Clean") + field("Private_Dirty"),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parentPid(pid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/status`).match(/^PPid:\s+(\d+)/m)?.[1] ?? 0);
}

function processName(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
}

async function skiffSample(skiff: string[], root: string, image: string): Promise<Sample> {
  const name = `mem-${crypto.randomUUID().slice(0, 8)}`;
  const child = new Deno.Command(skiff[0], {
    args: [...skiff.slice(1), "--root", root, "run", "--rm", "--name", name, image, "sleep", "60"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await sleep(SETTLE_MS);
    return smaps(child.pid);
  } finally {
    await run([...skiff, "--root", root, "rm", "-f", name]);
    const status = await child.output();
    if (status.code !== 137 && status.code !== 0) {
      console.log(`skiff run exited ${status.code}: ${new TextDecoder().decode(status.stderr).trim()}`);
    }
  }
}

/** A detached peer container; `monitor` maps the container's pid to the engine's per-container process. */
async function peerSample(
  engine: string[],
  env: Record<string, string> | undefined,
): Promise<Sample & { comm: string }> {
  const started = await run([...engine, "run", "-d", "--network", "none", PEER_IMAGE, "sleep", "60"], env);
  if (started.code !== 0) throw new Error(started.stderr.trim());
  const id = started.stdout.trim();
  try {
    await sleep(SETTLE_MS);
    const pid = Number((await run([...engine, "inspect", "-f", "{{.State.Pid}}", id], env)).stdout.trim());
    const monitor = parentPid(pid); // conmon / containerd-shim: the container's parent
    return { ...smaps(monitor), comm: processName(monitor) };
  } finally {
    await run([...engine, "rm", "-f", id], env);
  }
}

function summarize(engine: string, process: string, samples: Sample[]): MemoryFigure {
  return {
    engine,
    process,
    rss: median(samples.map((s) => s.rss)),
    pss: median(samples.map((s) => s.pss)),
    privateKb: median(samples.map((s) => s.privateKb)),
  };
}

/** podman and docker as the peers' env.sh sets them up: [name, CLI argv or undefined, env]. */
export function peerClis(
  peerEnv: Record<string, string>,
): [string, string[] | undefined, Record<string, string> | undefined][] {
  return [
    [
      "podman",
      peerEnv.CONTAINERS_CONF && which("podman") ? ["podman"] : undefined,
      { CONTAINERS_CONF: peerEnv.CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: peerEnv.CONTAINERS_STORAGE_CONF },
    ],
    ["docker", peerEnv.PEER_DOCKER?.split(/\s+/), undefined],
  ];
}

export async function measureMemory(only: string[], samples: number): Promise<MemoryFigure[]> {
  const wanted = (n: string) => only.length === 0 || only.includes(n);
  const peerEnv = readEnvFile(PEER_ENV_FILE) ?? {};
  const figures: MemoryFigure[] = [];
  if (wanted("skiff")) {
    const skiff = skiffArgv().argv;
    const work = await Deno.makeTempDir({ prefix: "skiff-bench-mem-" });
    try {
      const root = join(work, "root");
      await Deno.mkdir(root);
      const tar = peerEnv.PEER_ROOTFS_TAR;
      if (!tar) console.log(`skiff: skipped (needs the peers' rootfs tar, ${PEER_ENV_FILE})`);
      else {
        const imported = await run([...skiff, "--root", root, "import", tar, "mem/busybox:latest"]);
        if (imported.code !== 0) console.log(`skiff: skipped (import failed: ${imported.stderr.trim()})`);
        else {
          const s: Sample[] = [];
          for (let i = 0; i < samples; i++) s.push(await skiffSample(skiff, root, "mem/busybox:latest"));
          figures.push(summarize("skiff", "`skiff run` (Deno)", s));
        }
      }
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  }
  for (const [engine, argv, env] of peerClis(peerEnv)) {
    if (!wanted(engine)) continue;
    if (!argv) {
      console.log(`${engine}: skipped (not set up: ${PEER_ENV_FILE})`);
      continue;
    }
    try {
      const s: (Sample & { comm: string })[] = [];
      for (let i = 0; i < samples; i++) s.push(await peerSample(argv, env));
      figures.push(summarize(engine, `\`${s[0].comm}\``, s));
    } catch (e) {
      console.log(`${engine}: skipped (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return figures;
}

export function memoryMarkdown(figures: MemoryFigure[], samples: number): string {
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  return [
    `One \`sleep\` container running; the engine's per-container process, median of ${samples} samples ` +
    `(/proc/PID/smaps_rollup).`,
    "",
    markdownTable(
      ["engine", "process kept per container", "RSS", "PSS", "private"],
      figures.map((f) => [f.engine, f.process, mb(f.rss), mb(f.pss), mb(f.privateKb)]),
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { only: { type: "string", default: "" }, samples: { type: "string", default: "3" } },
  });
  const samples = Number(values.samples);
  const figures = await measureMemory(String(values.only).split(",").filter(Boolean), samples);
  console.log(`\n${memoryMarkdown(figures, samples)}`);
}
