// Symlink-swap races against the init stage's mount targets, written as the attack that must fail.
// The init stage works with the host's "/" as its root until pivot_root; a second container that
// shares a volume exchanges a directory in it with a symlink to a host directory
// (renameat2(RENAME_EXCHANGE) in a tight loop) while the test starts containers that mount
// something at or below that directory. Nothing may be created on the host (the host directory
// stays empty), no mount may appear below it in the host's mountinfo, and each run either succeeds
// with its mount inside the container or fails with one line and exit 125.
//
// Hit rates on the code before the fix (13f7818; SKIFF_RACE_MEASURE=1, two runs of this file, this
// machine, 2 vCPU shared with other helpers' test runs, 2026-12-06), runs that reached the host or
// lost a mount, first test (open_tree path) / second test (legacy path; the old code has one path):
//   -v other:/a/bI/c   9 and 3 of 25 / 5 and 1 of 10  (directories made in the host directories; the
//                      old code also refused 10-14 of 25 with ENOENT)
//   -v other:/a/bI    14 and 10 of 25 / 6 and 3 of 10  (the bind went onto the host path: missing inside)
//   --tmpfs /a/bI/c   25 of 25, always: the old code mounted every --tmpfs before the volumes, so the
//                      volume at /a hid it (docker sorts them together by depth)
//   -v FILE:/a/bI/f    3 of 25 (rounds 25 then) and 6 of 40 / 4 and 5 of 16  (empty files made on the host)
// The new code: 0 of every one (a run that sees the swap may refuse with one line, exit 125).
// SKIFF_RACE_ROUNDS=N multiplies the rounds; SKIFF_RACE_MEASURE=1 counts without failing.

import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { compileStatic, EXCHANGE_LOOP_C } from "./cprog.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";

const SCALE = Number(Deno.env.get("SKIFF_RACE_ROUNDS") ?? "1");
const rounds = (n: number) => Math.max(1, Math.round(n * SCALE));
const MEASURE = Deno.env.get("SKIFF_RACE_MEASURE") === "1";

/** Pairs the attacker swaps: /w/bI (a directory) and /w/xI (a symlink to the host directory hostI). */
const PAIRS = 8;

interface Fixture {
  root: TestRoot;
  /** host directories host0..host7 (one per pair: no two swaps lead to one place), all in hostTmp */
  hostDirs: string[];
  /** the test's host temp dir: nothing may be created or mounted in it */
  hostTmp: string;
  /** a host file bound into the victims */
  hostFile: string;
}

async function withAttacker(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const xchg = await compileStatic("exchange-loop", EXCHANGE_LOOP_C);
  const tmp = await Deno.makeTempDir({ prefix: "skiff-mount-race-" });
  try {
    const hostDirs = Array.from({ length: PAIRS }, (_, i) => join(tmp, `host${i}`));
    hostDirs.forEach((dir) => Deno.mkdirSync(dir));
    const hostFile = join(tmp, "file");
    Deno.writeTextFileSync(hostFile, "bound file\n");
    await withBusybox(async (root) => {
      await root.ok(["volume", "create", "shared"]);
      // /w/bI directories, /w/xI symlinks to host directories: exchanged in a tight loop (two
      // swappers: one alone is often off the CPU while the victim sets up)
      await root.ok([
        "run",
        "-d",
        "--name",
        "attacker",
        "-v",
        "shared:/w",
        "-v",
        `${dirname(xchg)}:/attack:ro`,
        "busybox",
        "sh",
        "-c",
        `for i in $(seq 0 ${PAIRS - 1}); do mkdir /w/b$i && ln -s ${tmp}/host$i /w/x$i; done && ` +
        `(/attack/${basename(xchg)} /w ${PAIRS} b x &) && exec /attack/${basename(xchg)} /w ${PAIRS} b x`,
      ]);
      for (
        let i = 0;
        i < 100 && !(await root.skiff(["exec", "attacker", "ls", `/w/x${PAIRS - 1}`])).stdout;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await fn({ root, hostDirs, hostTmp: tmp, hostFile });
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Mount points (field 5) of the host's mountinfo that lie in `dir`. */
function hostMountsUnder(dir: string): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Empties the host directory again (so each run counts on its own); true when it was empty. */
function hostDirClean(dir: string): boolean {
  let clean = true;
  for (const e of Deno.readDirSync(dir)) {
    clean = false;
    Deno.removeSync(join(dir, e.name), { recursive: true });
  }
  return clean;
}

interface Variant {
  what: string;
  /** the victim's mount flags (the volume shared is mounted at /a by every victim) */
  flags: (fx: Fixture) => string[];
  /** a line of the container's /proc/self/mountinfo that is one of these mounts */
  isOurs: (fields: string[], fx: Fixture) => boolean;
  /** runs relative to the others (the old code hit this one less often) */
  weight?: number;
}

const each = (flag: (i: number) => string[]) => Array.from({ length: PAIRS }, (_, i) => flag(i)).flat();
const otherVolume = (fields: string[]) => fields[3]?.endsWith("/volumes/other/_data") ?? false;
const VARIANTS: Variant[] = [
  {
    what: "-v other:/a/bI/c (the target's parent swapped)",
    flags: () => each((i) => ["-v", `other:/a/b${i}/c`]),
    isOurs: otherVolume,
  },
  {
    what: "-v other:/a/bI (the target itself swapped)",
    flags: () => each((i) => ["-v", `other:/a/b${i}`]),
    isOurs: otherVolume,
  },
  {
    what: "--tmpfs /a/bI/c",
    flags: () => each((i) => ["--tmpfs", `/a/b${i}/c:size=2200k`]),
    isOurs: (fields) => fields.includes("tmpfs") && fields.at(-1)!.includes("size=2200k"),
  },
  {
    what: "-v FILE:/a/bI/f (a file bind)",
    flags: (fx) => each((i) => ["-v", `${fx.hostFile}:/a/b${i}/f:ro`]),
    isOurs: (fields, fx) => fields[3] === fx.hostFile,
    weight: 1.6,
  },
];

/**
 * How many of our mounts the container sees: lines of its mountinfo that are ours and that no
 * later mount covers (a mount at the same point or above it hides it).
 */
function visibleMounts(mountinfo: string, variant: Variant, fx: Fixture): number {
  const lines = mountinfo.trim().split("\n").map((l) => l.split(" "));
  return lines.filter((fields, i) =>
    variant.isOurs(fields, fx) &&
    !lines.slice(i + 1).some((later) => fields[4] === later[4] || fields[4].startsWith(`${later[4]}/`))
  ).length;
}

/**
 * Empties the swapped directories of the shared volume (from the host side): what an earlier run
 * created there would let the next run find its target instead of creating it.
 */
function emptyPairs(fx: Fixture): void {
  const data = join(fx.root.path, "volumes/shared/_data");
  for (const e of Deno.readDirSync(data)) {
    if (!e.isDirectory) continue;
    try {
      for (const inner of Deno.readDirSync(join(data, e.name))) {
        Deno.removeSync(join(data, e.name, inner.name), { recursive: true });
      }
    } catch { /* swapped meanwhile: emptied next time */ }
  }
}

/** One victim run: its outcome, and whether the host was reached. */
async function victim(
  fx: Fixture,
  variant: Variant,
  env?: Record<string, string>,
): Promise<{ reached: string[]; failed: boolean }> {
  emptyPairs(fx);
  const r = await fx.root.skiff([
    "run",
    "--rm",
    "-v",
    "shared:/a",
    ...variant.flags(fx),
    "busybox",
    "cat",
    "/proc/self/mountinfo",
  ], { env });
  const reached: string[] = [];
  if (!fx.hostDirs.map(hostDirClean).every(Boolean)) {
    reached.push("a file or directory was created in a host directory");
  }
  const mounts = hostMountsUnder(fx.hostTmp);
  if (mounts.length) reached.push(`host mounts: ${mounts.join(", ")}`);
  if (r.code === 0) {
    const seen = visibleMounts(r.stdout, variant, fx);
    if (seen !== PAIRS) reached.push(`the container sees ${seen} of its ${PAIRS} mounts`);
    return { reached, failed: false };
  }
  // a refusal is allowed: one line, docker's exit code for a failed setup
  const lines = r.stderr.trim().split("\n");
  if (!MEASURE) {
    assert.equal(r.code, 125, `${variant.what}: exit ${r.code}: ${r.stderr}`);
    assert.equal(lines.length, 1, `${variant.what}: not one line: ${r.stderr}`);
  }
  return { reached, failed: true };
}

async function attack(fx: Fixture, n: number, env?: Record<string, string>): Promise<void> {
  for (const variant of VARIANTS) {
    const runs = Math.round(n * (variant.weight ?? 1));
    let hits = 0, failed = 0;
    const seen = new Set<string>();
    const start = Date.now();
    for (let i = 0; i < runs; i++) {
      const r = await victim(fx, variant, env);
      if (r.reached.length) hits++;
      if (r.failed) failed++;
      r.reached.forEach((what) => seen.add(what));
    }
    console.log(
      `${variant.what}: ${hits} of ${runs} runs reached the host or lost the mount, ${failed} refused, ${
        Date.now() - start
      } ms${seen.size ? ` (${[...seen].join("; ")})` : ""}`,
    );
    if (!MEASURE) assert.equal(hits, 0, `${variant.what}: ${[...seen].join("; ")}`);
  }
  assert.deepEqual(hostMountsUnder(fx.hostTmp), []);
}

Deno.test("race: mount targets stay inside the container while a container sharing the volume swaps", async () => {
  await withAttacker((fx) => attack(fx, rounds(25)));
});

Deno.test("race: the same on the path for kernels without open_tree (mount(2) through /proc/self/fd)", async () => {
  await withAttacker((fx) => attack(fx, rounds(10), { SKIFF_MOUNT_API: "legacy" }));
});
