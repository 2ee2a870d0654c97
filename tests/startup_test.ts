// Start-up guards: what the hot verbs load, and the cgroup shortcuts `run` relies on (a parent made
// only when missing, destroy of an exited container without kill/procs reads), against the real
// cgroupfs with real processes.

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cgroupDriver, type CgroupLimits } from "../lib/cgroups/mod.ts";
import { createV1 } from "../lib/cgroups/v1.ts";
import { BUSYBOX, withBusybox } from "./helpers.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const V1 = cgroupDriver() === "v1";
const NO_LIMITS: CgroupLimits = {
  memory: 0,
  memorySwap: 0,
  nanoCpus: 0,
  cpuShares: 0,
  cpusetCpus: "",
  cpusetMems: "",
  blkioWeight: 0,
  cpuPeriod: 0,
  cpuQuota: 0,
  memoryReservation: 0,
  oomKillDisable: false,
  privileged: false,
};

/**
 * The node:, npm: and jsr: imports reachable from a file, statically or through import()
 * (deno info's graph), not following the imports listed in `skip`.
 */
async function heavyImports(entry: string, skip: string[] = []): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(REPO, entry)],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map<string, { dependencies?: { specifier: string; code?: { specifier: string } }[] }>(
    info.modules.map((m: { specifier: string }) => [m.specifier, m]),
  );
  const heavy: string[] = [];
  const seen = new Set<string>();
  const walk = (specifier: string) => {
    if (seen.has(specifier)) return;
    seen.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (skip.includes(dep.specifier)) continue;
      const name = `${specifier.replace(`file://${REPO}`, "")} -> ${dep.specifier}`;
      if (/^(node:|npm:|jsr:)/.test(dep.specifier) || dep.specifier === "zod") heavy.push(name);
      else if (dep.code?.specifier) walk(dep.code.specifier);
    }
  };
  walk(info.roots[0]);
  return heavy;
}

// node: built-ins load Deno's Node compatibility layer (~8-10 ms of CPU), npm: modules their
// packages: neither belongs on the path of a verb people run all the time
for (const verb of ["run", "ps", "images", "inspect", "rm"]) {
  Deno.test(`start-up: skiff ${verb} imports no node:, npm: or jsr: module`, async () => {
    // run imports the registry client (./pull.ts) only for an image it does not have, and the
    // seccomp profile validator (zod) only for --security-opt seccomp=FILE
    assert.deepEqual(await heavyImports(`lib/cli/${verb}.ts`, ["./pull.ts", "../seccomp/profile.ts"]), []);
  });
}

Deno.test("start-up: skiff version reads only main.ts's own imports (verbs load lazily)", async () => {
  const strace = await new Deno.Command("sh", { args: ["-c", "command -v strace"] }).output();
  if (strace.code !== 0) return; // strace is an optional tool here
  const log = await Deno.makeTempFile({ prefix: "skiff-startup-" });
  try {
    const out = await new Deno.Command("strace", {
      args: [
        "-f",
        "-e",
        "trace=openat",
        "-o",
        log,
        Deno.execPath(),
        "run",
        "-A",
        join(REPO, "main.ts"),
        "version",
      ],
      cwd: REPO,
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(out.code, 0);
    const opened = new Set(
      [...Deno.readTextFileSync(log).matchAll(/"([^"]+\.ts)"/g)].map((m) => m[1])
        .filter((p) => p.startsWith(REPO)),
    );
    // before lazy-dynamic-imports: every verb's graph (~120 files)
    assert.ok(opened.size <= 12, `version opened ${opened.size} source files: ${[...opened].join(" ")}`);
    assert.ok(!opened.has(join(REPO, "lib/cli/run.ts")));
  } finally {
    Deno.removeSync(log);
  }
});

Deno.test({
  name: "start-up: a v1 group under a missing parent makes the parent with the host's cpuset",
  ignore: !V1,
  fn: () => {
    const parent = `skiff-startup-${crypto.randomUUID().slice(0, 8)}`;
    const child = new Deno.Command(BUSYBOX, { args: ["sleep", "30"] }).spawn();
    const cg = createV1(parent, "c1", NO_LIMITS, false);
    try {
      cg.addProcess(child.pid);
      const groups = Deno.readTextFileSync(`/proc/${child.pid}/cgroup`);
      assert.ok(groups.includes(`/${parent}/c1`), groups);
      const cpus = (dir: string) => Deno.readTextFileSync(join(dir, "cpuset.cpus")).trim();
      assert.equal(cpus(`/sys/fs/cgroup/cpuset/${parent}`), cpus("/sys/fs/cgroup/cpuset"));
      assert.equal(cpus(`/sys/fs/cgroup/cpuset/${parent}/c1`), cpus("/sys/fs/cgroup/cpuset"));
      // a second group finds the parent in place
      createV1(parent, "c2", NO_LIMITS, false).destroy();
    } finally {
      // destroy with a live process: no shortcut, the process is killed
      cg.destroy();
      for (const mount of Deno.readDirSync("/sys/fs/cgroup")) {
        try {
          Deno.removeSync(`/sys/fs/cgroup/${mount.name}/${parent}`);
        } catch { /* not a hierarchy of ours */ }
      }
    }
    return child.status.then((status) => {
      assert.equal(status.signal, "SIGKILL");
      const left = [...Deno.readDirSync("/sys/fs/cgroup")].filter((m) => {
        try {
          Deno.statSync(`/sys/fs/cgroup/${m.name}/${parent}`);
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(left, []);
    });
  },
});

Deno.test("start-up: run --rm leaves no cgroup, container or lock behind, and still sees the exit code", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(root.containerIds(), []);
    assert.deepEqual(
      [...Deno.readDirSync(join(root.path, "locks"))].filter((e) => e.name.startsWith("ctr-")),
      [],
    );
  });
});
