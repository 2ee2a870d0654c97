// Start-to-exit latency of a container that runs `true`, side by side in one run:
//   skiff run --rm IMG true   vs   runc run (OCI bundle, same busybox rootfs)
//   vs podman run --rm --network none   vs   docker run --rm --network none
// Peers come from ../shared/peers/setup-peers.sh (env in /tmp/peers/env.sh); absent ones are skipped.
//
//   deno run -A bench/run_latency.ts [--runs 20] [--warmup 3] [--no-hyperfine | --interleave]
//                                    [--only skiff,skiff-version,runc,podman,docker] [--before DIR]
// --before DIR: also time the skiff of another checkout (e.g. `git worktree add --detach DIR <commit>`)
//   as "skiff-before", with its own state root: a before/after figure from the same run as the peers
// --interleave: built-in loop, one run of each per round (fairer on a machine shared with other work)
// SKIFF_BUNDLE=DIR (every bench): time skiff from the bundle that `scripts/bundle.sh DIR` wrote;
// SKIFF_DIST=FILE: from a release file (scripts/dist.sh), as a server runs it

import { join } from "node:path";
import { parseArgs } from "node:util";
import { START_V8_FLAGS } from "../lib/runtime/self.ts";
import {
  commandLine,
  type Contender,
  machineLine,
  markdownTable,
  measure,
  type MeasureOptions,
  ms,
  pairedRatio,
  readEnvFile,
  REPO,
  run,
  type Timing,
  which,
} from "./lib.ts";

export const PEER_ENV_FILE = "/tmp/peers/env.sh";
const PEER_IMAGE = "localhost/bb:latest";
const SKIFF_IMAGE = "bench/busybox:latest";

export interface LatencyOptions extends MeasureOptions {
  /** contender names to keep; empty: all */
  only: string[];
  /** another checkout of skiff to time beside this one ("skiff-before") */
  before?: string;
}

/** skiff from another checkout (from source), for before/after figures. */
export function beforeArgv(dir: string): string[] {
  return [Deno.execPath(), "run", "-A", join(dir, "main.ts")];
}

export interface LatencyResult {
  timings: Timing[];
  skipped: { name: string; why: string }[];
  markdown: string;
}

/**
 * How to start skiff: the release file $SKIFF_DIST, the bundle in $SKIFF_BUNDLE (scripts/bundle.sh DIR) when set, else the compiled
 * binary when built, else from source with the running Deno (as scripts/skiff).
 */
export function skiffArgv(): { argv: string[]; how: string } {
  // a release file (scripts/dist.sh): what a server runs
  const dist = Deno.env.get("SKIFF_DIST");
  if (dist) return { argv: [dist], how: `the release file ${dist} (scripts/dist.sh)` };
  const bundle = Deno.env.get("SKIFF_BUNDLE");
  if (bundle) {
    return {
      argv: [
        Deno.execPath(),
        "run",
        "-A",
        "--no-config",
        "--unstable-lazy-dynamic-imports",
        START_V8_FLAGS,
        join(bundle, "main.js"),
      ],
      how: `the bundle in ${bundle} (scripts/bundle.sh)`,
    };
  }
  const compiled = join(REPO, "skiff");
  if (which(compiled)) return { argv: [compiled], how: "compiled ./skiff" };
  return {
    argv: [Deno.execPath(), "run", "-A", START_V8_FLAGS, join(REPO, "main.ts")],
    how: `from source (deno run -A ${START_V8_FLAGS} main.ts, as scripts/skiff)`,
  };
}

/** A busybox rootfs tarball: the peers' one when present (same bytes as theirs), else built here. */
async function busyboxRootfsTar(dir: string, peerEnv: Record<string, string>): Promise<string> {
  const peerTar = peerEnv.PEER_ROOTFS_TAR;
  if (peerTar && (await Deno.stat(peerTar).catch(() => null))?.isFile) return peerTar;
  const rootfs = join(dir, "rootfs");
  for (const d of ["bin", "etc", "tmp", "root", "proc", "sys", "dev"]) {
    await Deno.mkdir(join(rootfs, d), { recursive: true });
  }
  await Deno.copyFile("/bin/busybox", join(rootfs, "bin/busybox"));
  await Deno.chmod(join(rootfs, "bin/busybox"), 0o755);
  const applets = (await run(["/bin/busybox", "--list"])).stdout.split("\n").filter((a) =>
    a && a !== "busybox"
  );
  for (const a of applets) await Deno.symlink("busybox", join(rootfs, "bin", a));
  await Deno.writeTextFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await Deno.writeTextFile(join(rootfs, "etc/group"), "root:x:0:\n");
  const tar = join(dir, "busybox.tar");
  const out = await run(["tar", "-C", rootfs, "-cf", tar, "."]);
  if (out.code !== 0) throw new Error(`tar: ${out.stderr.trim()}`);
  return tar;
}

/** Runs each contender once; a contender that cannot run `true` is skipped with the reason. */
async function probe(c: Contender): Promise<string | undefined> {
  if (!which(c.argv[0])) return `${c.argv[0]} not installed`;
  const out = await run(c.argv, c.env);
  if (out.code !== 0) {
    return `exits ${out.code}: ${(out.stderr.trim().split("\n").pop() ?? "").slice(0, 160)}`;
  }
  return undefined;
}

export async function runLatency(opts: LatencyOptions): Promise<LatencyResult> {
  const peerEnv = readEnvFile(PEER_ENV_FILE) ?? {};
  const skipped: { name: string; why: string }[] = [];
  const wanted = (name: string) => opts.only.length === 0 || opts.only.includes(name);
  const work = await Deno.makeTempDir({ prefix: "skiff-bench-" });
  const skiffRoot = join(work, "root");
  const skiff = skiffArgv();
  await Deno.mkdir(skiffRoot, { mode: 0o700 });
  try {
    const contenders: Contender[] = [];
    if (wanted("skiff")) {
      const tar = await busyboxRootfsTar(work, peerEnv);
      const imported = await run([...skiff.argv, "--root", skiffRoot, "import", tar, SKIFF_IMAGE]);
      if (imported.code !== 0) {
        skipped.push({ name: "skiff", why: `import failed: ${imported.stderr.trim()}` });
      } else {
        contenders.push({
          name: "skiff",
          // no network, as the peers here (bench/network.ts compares the default bridges)
          argv: [...skiff.argv, "--root", skiffRoot, "run", "--rm", "--network", "none", SKIFF_IMAGE, "true"],
        });
      }
    }
    const beforeRoot = join(work, "root-before");
    if (opts.before) {
      await Deno.mkdir(beforeRoot, { mode: 0o700 });
      const before = beforeArgv(opts.before);
      const tar = await busyboxRootfsTar(work, peerEnv);
      const imported = await run([...before, "--root", beforeRoot, "import", tar, SKIFF_IMAGE]);
      if (imported.code !== 0) {
        skipped.push({ name: "skiff-before", why: `import failed: ${imported.stderr.trim()}` });
      } else {
        contenders.push({
          name: "skiff-before",
          argv: [...before, "--root", beforeRoot, "run", "--rm", "--network", "none", SKIFF_IMAGE, "true"],
        });
      }
    }
    // the fixed cost of starting skiff at all, for reading the figures above
    if (wanted("skiff-version")) {
      contenders.push({ name: "skiff-version", argv: [...skiff.argv, "--root", skiffRoot, "version"] });
    }
    if (wanted("runc")) {
      if (!peerEnv.PEER_BUNDLE) {
        skipped.push({ name: "runc", why: `no OCI bundle (${PEER_ENV_FILE} absent)` });
      } else {contenders.push({
          name: "runc",
          argv: ["runc", "run", "-b", peerEnv.PEER_BUNDLE, "bench-runc"],
        });}
    }
    if (wanted("podman")) {
      if (!peerEnv.CONTAINERS_CONF) {
        skipped.push({ name: "podman", why: `not set up (${PEER_ENV_FILE} absent)` });
      } else {
        contenders.push({
          name: "podman",
          argv: ["podman", "run", "--rm", "--network", "none", PEER_IMAGE, "true"],
          env: {
            CONTAINERS_CONF: peerEnv.CONTAINERS_CONF,
            CONTAINERS_STORAGE_CONF: peerEnv.CONTAINERS_STORAGE_CONF,
          },
        });
      }
    }
    if (wanted("docker")) {
      if (!peerEnv.PEER_DOCKER) skipped.push({ name: "docker", why: `no engine (${PEER_ENV_FILE} absent)` });
      else {
        contenders.push({
          name: "docker",
          argv: [...peerEnv.PEER_DOCKER.split(/\s+/), "run", "--rm", "--network", "none", PEER_IMAGE, "true"],
        });
      }
    }
    const runnable: Contender[] = [];
    for (const c of contenders) {
      const why = await probe(c);
      if (why) skipped.push({ name: c.name, why });
      else runnable.push(c);
    }
    for (const s of skipped) console.log(`skip ${s.name}: ${s.why}`);
    console.log(`timing ${runnable.map((c) => c.name).join(", ")} (skiff ${skiff.how})`);
    const timings = await measure(runnable, opts);
    return {
      timings,
      skipped,
      markdown: latencyMarkdown(timings, skipped, skiff.how, opts.interleave === true),
    };
  } finally {
    await cleanupSkiffRoot(skiff.argv, skiffRoot);
    if (opts.before) await cleanupSkiffRoot(beforeArgv(opts.before), join(work, "root-before"));
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Removes what the benchmark's containers left; refuses to delete a tree that still has mounts. */
async function cleanupSkiffRoot(skiff: string[], root: string): Promise<void> {
  let ids: string[] = [];
  try {
    ids = [...Deno.readDirSync(join(root, "containers"))].map((e) => e.name);
  } catch { /* no containers */ }
  if (ids.length) {
    console.log(`warning: ${ids.length} container(s) left by skiff run --rm; removing them`);
    await run([...skiff, "--root", root, "rm", "-f", ...ids]);
  }
  const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((l) => l.split(" ")[4]).filter((m) => m?.startsWith(root));
  if (mounts.length) throw new Error(`skiff left mounts under ${root}: ${mounts.join(", ")}`);
}

function latencyMarkdown(
  timings: Timing[],
  skipped: { name: string; why: string }[],
  skiffHow: string,
  interleaved: boolean,
): string {
  const skiff = timings.find((t) => t.name === "skiff");
  const rows = timings.map((t) => [
    t.name === "skiff-version" ? "`skiff version` (startup floor)" : `\`${shortCommand(t)}\``,
    ms(t.median),
    `${ms(t.min)} – ${ms(t.max)}`,
    skiff && t !== skiff && t.name !== "skiff-version" ? ratioText(skiff, t) : "",
  ]);
  const lines = [
    `Container start-to-exit, busybox \`true\`; ${machineLine()}; skiff ${skiffHow}; ` +
    `${timings[0]?.runs ?? 0} runs each${interleaved ? ", interleaved" : ""}.`,
    "",
    markdownTable(
      ["command", "median", "min – max", interleaved ? "skiff ÷ this (paired)" : "skiff ÷ this"],
      rows,
    ),
  ];
  if (skipped.length) {
    lines.push(
      "",
      `Not measured: ${skipped.map((s) => `${s.name} (${s.why})`).join("; ")}.`,
    );
  }
  return lines.join("\n");
}

/** The paired ratio (median of per-round ratios) when interleaved, else the ratio of medians. */
function ratioText(skiff: Timing, t: Timing): string {
  const paired = pairedRatio(skiff, t);
  return paired !== undefined ? `${paired.toFixed(2)}× (paired)` : `${(skiff.median / t.median).toFixed(2)}×`;
}

function shortCommand(t: Timing): string {
  switch (t.name) {
    case "skiff":
      return "skiff run --rm IMG true";
    case "skiff-before":
      return "skiff run --rm IMG true (before)";
    case "runc":
      return "runc run -b BUNDLE ID";
    case "podman":
      return "podman run --rm --network none IMG true";
    case "docker":
      return "docker run --rm --network none IMG true";
    default:
      return t.command;
  }
}

export function printRatios(timings: Timing[]): void {
  const skiff = timings.find((t) => t.name === "skiff");
  for (const t of timings) {
    console.log(`${t.name.padEnd(14)} median ${ms(t.median).padStart(9)}   ${t.command}`);
  }
  if (!skiff) return;
  for (const t of timings) {
    if (t === skiff || t.name === "skiff-version") continue;
    console.log(`skiff/${t.name}: ${ratioText(skiff, t)}`);
  }
}

export function parseLatencyArgs(args: string[]): LatencyOptions & Record<string, unknown> {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "20" },
      warmup: { type: "string", default: "3" },
      "no-hyperfine": { type: "boolean", default: false },
      interleave: { type: "boolean", default: false },
      only: { type: "string", default: "" },
      before: { type: "string" },
    },
    strict: false,
  });
  return {
    runs: Number(values.runs),
    warmup: Number(values.warmup),
    hyperfine: !values["no-hyperfine"],
    interleave: values.interleave === true,
    only: String(values.only).split(",").filter(Boolean),
    before: typeof values.before === "string" ? values.before : undefined,
  };
}

if (import.meta.main) {
  const result = await runLatency(parseLatencyArgs(Deno.args));
  printRatios(result.timings);
  console.log(`\n${result.markdown}`);
  console.log(`\n(${commandLine(["deno", "run", "-A", "bench/run_latency.ts", ...Deno.args])})`);
}
