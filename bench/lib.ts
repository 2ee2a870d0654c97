// Helpers shared by the benchmarks: timing commands (hyperfine when installed, else a built-in
// loop), finding tools and peers, and printing results as a markdown table for the README.

import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

export const REPO = dirname(dirname(fromFileUrl(import.meta.url)));

/** One command to time. argv[0] is looked up on PATH; env is added to the current environment. */
export interface Contender {
  name: string;
  argv: string[];
  env?: Record<string, string>;
}

export interface Timing {
  name: string;
  command: string;
  /** seconds */
  median: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  runs: number;
  /** seconds of each run in order; with --interleave, run i of every contender is from round i */
  times?: number[];
}

/**
 * The median over rounds of a's time ÷ b's time in the same round: the paired ratio the brief asks
 * for (drift in the machine's speed falls on both of a pair); undefined unless both were interleaved.
 */
export function pairedRatio(a: Timing, b: Timing): number | undefined {
  if (!a.times || !b.times || a.times.length !== b.times.length || !a.times.length) return undefined;
  return median(a.times.map((t, i) => t / b.times![i]));
}

export interface MeasureOptions {
  runs: number;
  warmup: number;
  /** false: never use hyperfine even when it is installed */
  hyperfine: boolean;
  /**
   * Built-in loop, round-robin: one run of each contender per round, so load from elsewhere on a
   * shared machine falls on all of them alike (hyperfine runs each command's series in one block).
   */
  interleave?: boolean;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function stddev(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
}

/** Full path of an executable on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  if (cmd.includes("/")) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isExecutable(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Reads `export K=V` / `export K="V"` lines (the peers' env.sh) without running a shell. */
export function readEnvFile(path: string): Record<string, string> | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
    if (!m) continue;
    let value = m[2].trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    env[m[1]] = value;
  }
  return env;
}

export interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(argv: string[], env?: Record<string, string>): Promise<RunOutput> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** Quotes one word for hyperfine's (shell-like) command splitting. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(argv: string[]): string {
  return argv.map(quote).join(" ");
}

/**
 * Times every contender in one go. hyperfine runs them one after another with `-N` (no shell), so
 * all figures come from the same minutes on the same machine.
 */
export async function measure(contenders: Contender[], opts: MeasureOptions): Promise<Timing[]> {
  if (contenders.length === 0) return [];
  const hyperfine = opts.hyperfine && !opts.interleave ? which("hyperfine") : undefined;
  return hyperfine
    ? await measureHyperfine(hyperfine, contenders, opts)
    : await measureLoop(contenders, opts);
}

async function measureHyperfine(hyperfine: string, contenders: Contender[], opts: MeasureOptions) {
  const dir = await Deno.makeTempDir({ prefix: "bench-hyperfine-" });
  try {
    const json = join(dir, "out.json");
    const args = ["-N", "-w", String(opts.warmup), "-r", String(opts.runs), "--export-json", json];
    // hyperfine has one environment for all commands: merge them (peer variables do not collide)
    const env: Record<string, string> = {};
    for (const c of contenders) {
      Object.assign(env, c.env ?? {});
      args.push("-n", c.name, commandLine(c.argv));
    }
    const child = new Deno.Command(hyperfine, {
      args,
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    });
    const status = await child.output();
    if (!status.success) throw new Error(`hyperfine exited ${status.code}`);
    const report = JSON.parse(await Deno.readTextFile(json)) as {
      results: {
        command: string;
        mean: number;
        stddev: number;
        median: number;
        min: number;
        max: number;
        times: number[];
      }[];
    };
    return report.results.map((r, i): Timing => ({
      name: contenders[i].name,
      command: commandLine(contenders[i].argv),
      median: r.median,
      mean: r.mean,
      stddev: r.stddev ?? 0,
      min: r.min,
      max: r.max,
      runs: r.times.length,
    }));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function measureLoop(contenders: Contender[], opts: MeasureOptions): Promise<Timing[]> {
  const times = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  const once = async (c: Contender) => {
    const t0 = performance.now();
    const out = await run(c.argv, c.env);
    const t = (performance.now() - t0) / 1000;
    if (out.code !== 0) throw new Error(`${c.name}: exited ${out.code}: ${out.stderr.trim()}`);
    return t;
  };
  if (opts.interleave) {
    for (let i = 0; i < opts.warmup; i++) for (const c of contenders) await once(c);
    for (let i = 0; i < opts.runs; i++) for (const c of contenders) times.get(c)!.push(await once(c));
  } else {
    for (const c of contenders) {
      for (let i = 0; i < opts.warmup; i++) await once(c);
      for (let i = 0; i < opts.runs; i++) times.get(c)!.push(await once(c));
    }
  }
  return contenders.map((c): Timing => {
    const ts = times.get(c)!;
    const mean = ts.reduce((a, b) => a + b, 0) / ts.length;
    console.log(`  ${c.name.padEnd(14)} median ${ms(median(ts))} (${ts.length} runs)`);
    return {
      name: c.name,
      command: commandLine(c.argv),
      median: median(ts),
      mean,
      stddev: stddev(ts),
      min: Math.min(...ts),
      max: Math.max(...ts),
      runs: ts.length,
      times: opts.interleave ? ts : undefined,
    };
  });
}

export function ms(seconds: number): string {
  return `${(seconds * 1000).toFixed(seconds < 0.1 ? 1 : 0)} ms`;
}

export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** A one-line description of the machine, printed above the tables. */
export function machineLine(): string {
  let cpu = "";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "";
  } catch { /* not Linux */ }
  return `${navigator.hardwareConcurrency} CPUs ${
    cpu ? `(${cpu.trim()})` : ""
  }, Linux ${Deno.osRelease()}, ` +
    `Deno ${Deno.version.deno}, ${new Date().toISOString().slice(0, 16)}Z`;
}
