// `skiff run` with docker's resource flags, end to end: the limits reach the container's cgroups
// and the kernel enforces them; bad values are refused before anything is created.

import assert from "node:assert/strict";
import { join } from "node:path";
import { cgroupDriver, hostCpusetCpus, parseCpuList } from "../lib/cgroups/mod.ts";
import { hostSupport } from "../lib/cgroups/support.ts";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";

const V1 = cgroupDriver() === "v1";
/** What this host's kernel offers: the tests assert docker's behaviour either way. */
const HOST = hostSupport();
const WEIGHT_DISCARDED =
  "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
const SWAP_DISCARDED =
  "WARNING: Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.";
const MiB = 1024 * 1024;
const read = (path: string) => Deno.readTextFileSync(path).trim();

/** The container's cgroup file for a controller (v1: per hierarchy; v2: one directory). */
function cgroupFile(id: string, controller: string, file: string): string {
  return V1 ? `/sys/fs/cgroup/${controller}/skiff/${id}/${file}` : `/sys/fs/cgroup/skiff/${id}/${file}`;
}

/**
 * Runs `skiff run -i ... sh -c 'echo ready; read _'` and calls inspect(id) while the container
 * is up; then lets it exit. Returns the exit code and stderr.
 */
async function whileRunning(
  root: TestRoot,
  flags: string[],
  inspect: (id: string) => void | Promise<void>,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "--root",
      root.path,
      "run",
      "-i",
      ...flags,
      "busybox",
      "sh",
      "-c",
      "echo ready; read _",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  try {
    let seen = "";
    while (!seen.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the container ended before it was ready: ${await stderr}`);
      seen += value;
    }
    const [id] = root.containerIds();
    assert.ok(id, "no container recorded");
    await inspect(id);
  } finally {
    await writer.write(new TextEncoder().encode("go\n")).catch(() => {});
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    clearTimeout(timer);
  }
  const status = await child.status;
  return { code: status.code, stderr: await stderr };
}

function containerRecord(root: TestRoot, id: string) {
  return JSON.parse(Deno.readTextFileSync(join(root.path, "containers", id, "container.json")));
}

Deno.test("run limits: over --memory the container is OOM-killed: exit 137, OOMKilled true", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff([
      "run",
      "--name",
      "hog",
      "--memory",
      "32m",
      "busybox",
      "sh",
      "-c",
      "tail /dev/zero",
    ]);
    assert.equal(r.code, 137, r.stderr);
    const state = await root.ok(["inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"]);
    assert.equal(state.trim(), "true 137");
    const [id] = root.containerIds();
    assert.equal(containerRecord(root, id).State.OOMKilled, true);
  });
});

Deno.test("run limits: within --memory there is no OOM", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--name",
      "fits",
      "--memory",
      "32m",
      "busybox",
      "sh",
      "-c",
      "head -c 8m /dev/zero | wc -c",
    ]);
    assert.equal(out.trim(), String(8 * MiB));
    const state = await root.ok(["inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "fits"]);
    assert.equal(state.trim(), "false 0");
  });
});

Deno.test("run limits: --pids-limit stops a fork bomb", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff([
      "run",
      "--rm",
      "--pids-limit",
      "10",
      "--cgroupns", // the host's cgroup paths (a v2 host's default is a namespace of its own: "0::/")
      "host",
      "busybox",
      "sh",
      "-c",
      "cat /proc/self/cgroup; for i in $(seq 50); do sleep 30 >/dev/null 2>&1 & done; echo forked",
    ]);
    assert.match(r.stderr, /can't fork|Resource temporarily unavailable/, r.stderr);
    assert.deepEqual(root.containerIds(), []);
    // the sleeps that did fork were killed with the container: its cgroups are gone
    const [id] = idsInCgroupText(r.stdout);
    assert.ok(id, r.stdout);
    assert.deepEqual(leftoverCgroups(id), []);
  });
});

Deno.test("run limits: --cpuset-cpus is the affinity the container sees", async () => {
  const lastCpu = Math.max(...parseCpuList(hostCpusetCpus()));
  await withBusybox(async (root) => {
    for (const cpu of new Set([0, lastCpu])) {
      const out = await root.ok([
        "run",
        "--rm",
        "--cpuset-cpus",
        String(cpu),
        "busybox",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
      ]);
      assert.equal(out.trim().split(/\s+/)[1], String(cpu));
    }
  });
});

Deno.test("run limits: the flags reach the container's cgroup files", async () => {
  await withBusybox(async (root) => {
    const flags = ["--cpus", "0.5", "--memory", "64m", "--cpu-shares", "512", "--pids-limit", "33"];
    const r = await whileRunning(root, flags, (id) => {
      if (V1) {
        assert.equal(read(cgroupFile(id, "cpu", "cpu.cfs_quota_us")), "50000");
        assert.equal(read(cgroupFile(id, "cpu", "cpu.cfs_period_us")), "100000");
        assert.equal(read(cgroupFile(id, "cpu", "cpu.shares")), "512");
        assert.equal(read(cgroupFile(id, "memory", "memory.limit_in_bytes")), String(64 * MiB));
        if (HOST.swapLimit) {
          assert.equal(read(cgroupFile(id, "memory", "memory.memsw.limit_in_bytes")), String(128 * MiB));
        }
      } else {
        assert.equal(read(cgroupFile(id, "cpu", "cpu.max")), "50000 100000");
        assert.equal(read(cgroupFile(id, "memory", "memory.max")), String(64 * MiB));
      }
      assert.equal(read(cgroupFile(id, "pids", "pids.max")), "33");
      // the container's processes are in it
      assert.equal(read(cgroupFile(id, "pids", "pids.current")), "1");
    });
    assert.equal(r.code, 0, r.stderr);
    // without swap accounting docker limits memory only, and says so
    assert.equal(r.stderr, HOST.swapLimit ? "" : `${SWAP_DISCARDED}\n`);
  });
});

Deno.test("run limits: --blkio-weight is applied where the kernel has a weight, else discarded as docker does", async () => {
  await withBusybox(async (root) => {
    const weightFile = V1
      ? ["blkio", "blkio.weight", "blkio.bfq.weight"]
      : ["io", "io.bfq.weight", "io.weight"];
    const r = await whileRunning(root, ["--name", "ww", "--blkio-weight", "300"], (id) => {
      const files = weightFile.slice(1).map((f) => cgroupFile(id, weightFile[0], f)).filter((f) => {
        try {
          return Deno.statSync(f).isFile;
        } catch {
          return false;
        }
      });
      assert.equal(files.length > 0, HOST.blkioWeight, `weight files: ${files}`);
      if (HOST.blkioWeight) assert.match(read(files[0]), /(^|\s)(300|2020)$/m); // io.weight: 300 converted
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, HOST.blkioWeight ? "" : `${WEIGHT_DISCARDED}\n`);
    assert.equal(
      await root.ok(["inspect", "-f", "{{.HostConfig.BlkioWeight}}", "ww"]),
      HOST.blkioWeight ? "300\n" : "0\n",
    );

    // run -d (the supervisor creates it): the same warning, then the id
    const detached = await root.skiff(["run", "-d", "--blkio-weight", "300", "busybox", "true"]);
    assert.equal(detached.code, 0, detached.stderr);
    assert.equal(detached.stderr, HOST.blkioWeight ? "" : `${WEIGHT_DISCARDED}\n`);
    assert.match(detached.stdout, /^[0-9a-f]{64}\n$/);
    // docker discards the weight before its range check: 5 runs where there is no weight to set
    const low = await root.skiff(["run", "--rm", "--blkio-weight", "5", "busybox", "true"]);
    if (HOST.blkioWeight) {
      assert.equal(low.code, 125);
      assert.equal(low.stderr, "skiff: Range of blkio weight is from 10 to 1000\n");
    } else {
      assert.equal(low.code, 0, low.stderr);
      assert.equal(low.stderr, `${WEIGHT_DISCARDED}\n`);
    }
  });
});

Deno.test("run limits: devices outside docker's list cannot be opened, unless --privileged", async () => {
  await withBusybox(async (root) => {
    // loop0 (b 7:0) and kmsg (c 1:11): the container may create the nodes (mknod is allowed) but not open them
    const script = "mknod /tmp/blk b 7 0 && mknod /tmp/kmsg c 1 11 && " +
      "for n in /tmp/blk /tmp/kmsg /dev/null; do (: < $n) && echo opened $n; done; true";
    const plain = await root.skiff(["run", "--rm", "busybox", "sh", "-c", script]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.trim(), "opened /dev/null");
    assert.equal(plain.stderr.match(/Operation not permitted/g)?.length, 2, plain.stderr);
    const privileged = await root.skiff(["run", "--rm", "--privileged", "busybox", "sh", "-c", script]);
    assert.equal(privileged.stdout.trim().split("\n").length, 3, privileged.stdout + privileged.stderr);
  });
});

const refused: [string[], RegExp][] = [
  [["--memory", "12q"], /^skiff: invalid argument "12q" for "-m, --memory" flag: invalid size: '12q'/],
  [["--cpus", "-1"], /^skiff: Range of CPUs is from 0\.01 to \d+\.00, as there are only \d+ CPUs available$/],
  [["--cpuset-cpus", "99"], /^skiff: Requested CPUs are not available - requested 99, available: /],
  [["--memory", "4m"], /^skiff: Minimum memory limit allowed is 6MB$/],
  // without swap accounting docker discards the swap limit before this check (and runs)
  ...(HOST.swapLimit
    ? [[["--memory", "32m", "--memory-swap", "16m"], /^skiff: Minimum memoryswap limit should be larger/] as [
      string[],
      RegExp,
    ]]
    : []),
];
for (const [flags, message] of refused) {
  Deno.test(`run limits: ${flags.join(" ")} is refused with exit 125 and nothing created`, async () => {
    await withBusybox(async (root) => {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stdout, "");
      assert.deepEqual(root.containerIds(), []);
    });
  });
}

/** Container ids named in a /proc/self/cgroup printed from inside (even --rm ones). */
const idsInCgroupText = (
  text: string,
) => [...new Set([...text.matchAll(/\/skiff\/([0-9a-f]{64})$/gm)].map((m) => m[1]))];

/** cgroup directories of a container left in any hierarchy. */
function leftoverCgroups(id: string): string[] {
  const found: string[] = [];
  for (const e of Deno.readDirSync("/sys/fs/cgroup")) {
    for (const dir of [join("/sys/fs/cgroup", e.name, "skiff", id), join("/sys/fs/cgroup/skiff", id)]) {
      try {
        if (Deno.statSync(dir).isDirectory) found.push(dir);
      } catch { /* absent: good */ }
    }
  }
  return found;
}

Deno.test("run limits: containers with limits started in parallel all run and leave no cgroup", async () => {
  await withBusybox(async (root) => {
    const runs = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        root.skiff([
          "run",
          "--rm",
          "--memory",
          "32m",
          "--pids-limit",
          "20",
          "--cpus",
          "0.5",
          "--cgroupns",
          "host",
          "busybox",
          "sh",
          "-c",
          `echo c${i}; cat /proc/self/cgroup`,
        ])
      ),
    );
    const ids = new Set<string>();
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split("\n")[0], `c${i}`);
      const [id] = idsInCgroupText(r.stdout);
      assert.ok(id, `no skiff cgroup in:\n${r.stdout}`);
      ids.add(id);
    });
    assert.equal(ids.size, 4);
    assert.deepEqual(root.containerIds(), []);
    for (const id of ids) assert.deepEqual(leftoverCgroups(id), []);
  });
});
