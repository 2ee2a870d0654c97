// `exec CTR true` latency, side by side in one run: skiff vs podman vs docker (peers from
// ../shared/peers/setup-peers.sh, env in /tmp/peers/env.sh; absent ones are skipped). Each engine
// gets one busybox container running `sleep`, started before and removed after the timing.
//
//   deno run -A bench/exec.ts [--runs 20] [--warmup 3] [--no-hyperfine | --interleave]
//                             [--only skiff,podman,docker] [--before DIR]
// --before DIR: also time the skiff of another checkout as "skiff-before" (see bench/run_latency.ts)

import { join } from "node:path";
import { type Contender, markdownTable, measure, ms, pairedRatio, readEnvFile, run, which } from "./lib.ts";
import { beforeArgv, parseLatencyArgs, PEER_ENV_FILE, skiffArgv } from "./run_latency.ts";

const PEER_IMAGE = "localhost/bb:latest";
const SKIFF_IMAGE = "bench/busybox:latest";
const NAME = "bench-exec";

interface Engine {
  contender: Contender;
  stop(): Promise<void>;
}

async function busyboxTar(dir: string, peerEnv: Record<string, string>): Promise<string> {
  const peerTar = peerEnv.PEER_ROOTFS_TAR;
  if (peerTar && (await Deno.stat(peerTar).catch(() => null))?.isFile) return peerTar;
  const rootfs = join(dir, "rootfs");
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"]) {
    await Deno.mkdir(join(rootfs, d), { recursive: true });
  }
  await Deno.copyFile("/bin/busybox", join(rootfs, "bin/busybox"));
  for (const applet of ["sh", "sleep", "true"]) await Deno.symlink("busybox", join(rootfs, "bin", applet));
  await Deno.writeTextFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  const tar = join(dir, "busybox.tar");
  const out = await run(["tar", "-C", rootfs, "-cf", tar, "."]);
  if (out.code !== 0) throw new Error(`tar: ${out.stderr.trim()}`);
  return tar;
}

/** A foreground `skiff run` stays in the background as a child of this script (no supervisor involved). */
async function startSkiff(
  work: string,
  peerEnv: Record<string, string>,
  skiff = skiffArgv().argv,
  name = "skiff",
): Promise<Engine> {
  const root = join(work, `root-${name}`);
  await Deno.mkdir(root, { mode: 0o700 });
  const base = [...skiff, "--root", root];
  const imported = await run([...base, "import", await busyboxTar(work, peerEnv), SKIFF_IMAGE]);
  if (imported.code !== 0) throw new Error(`skiff import: ${imported.stderr.trim()}`);
  const child = new Deno.Command(base[0], {
    args: [...base.slice(1), "run", "--name", NAME, SKIFF_IMAGE, "sleep", "100000"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    await run([...base, "rm", "-f", NAME]);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
  };
  for (let i = 0; i < 200; i++) {
    const state = await run([...base, "inspect", "-f", "{{.State.Running}}", NAME]);
    if (state.stdout.trim() === "true") {
      return { contender: { name, argv: [...base, "exec", NAME, "true"] }, stop };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error("skiff: the container did not start");
}

async function startPeer(name: string, cli: string[], env?: Record<string, string>): Promise<Engine> {
  await run([...cli, "rm", "-f", NAME], env);
  const started = await run([
    ...cli,
    "run",
    "-d",
    "--name",
    NAME,
    "--network",
    "none",
    PEER_IMAGE,
    "sleep",
    "100000",
  ], env);
  if (started.code !== 0) {
    throw new Error(`exits ${started.code}: ${started.stderr.trim().split("\n")[0]}`);
  }
  return {
    contender: { name, argv: [...cli, "exec", NAME, "true"], env },
    stop: async () => void await run([...cli, "rm", "-f", NAME], env),
  };
}

if (import.meta.main) {
  const opts = parseLatencyArgs(Deno.args);
  const wanted = (name: string) => opts.only.length === 0 || opts.only.includes(name);
  const peerEnv = readEnvFile(PEER_ENV_FILE) ?? {};
  const work = await Deno.makeTempDir({ prefix: "skiff-bench-exec-" });
  const engines: Engine[] = [];
  const skipped: string[] = [];
  const tryStart = async (name: string, start: () => Promise<Engine>) => {
    try {
      engines.push(await start());
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message}`);
    }
  };
  try {
    if (wanted("skiff")) await tryStart("skiff", () => startSkiff(work, peerEnv));
    const before = opts.before;
    if (before) {
      await tryStart("skiff-before", () => startSkiff(work, peerEnv, beforeArgv(before), "skiff-before"));
    }
    if (wanted("podman")) {
      if (!peerEnv.CONTAINERS_CONF || !which("podman")) skipped.push(`podman: not set up (${PEER_ENV_FILE})`);
      else {
        await tryStart("podman", () =>
          startPeer("podman", ["podman"], {
            CONTAINERS_CONF: peerEnv.CONTAINERS_CONF,
            CONTAINERS_STORAGE_CONF: peerEnv.CONTAINERS_STORAGE_CONF,
          }));
      }
    }
    if (wanted("docker")) {
      if (!peerEnv.PEER_DOCKER) skipped.push(`docker: no engine (${PEER_ENV_FILE})`);
      else await tryStart("docker", () => startPeer("docker", peerEnv.PEER_DOCKER.split(/\s+/)));
    }
    for (const s of skipped) console.log(`skip ${s}`);
    const timings = await measure(engines.map((e) => e.contender), opts);
    const skiff = timings.find((t) => t.name === "skiff");
    console.log(
      markdownTable(
        ["engine", "`exec CTR true` median", "mean ± σ", "skiff / engine (paired when interleaved)"],
        timings.map((t) => [
          t.name,
          ms(t.median),
          `${ms(t.mean)} ± ${ms(t.stddev)}`,
          skiff ? (pairedRatio(skiff, t) ?? skiff.median / t.median).toFixed(2) : "",
        ]),
      ),
    );
  } finally {
    for (const e of engines) await e.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
