// Unit-level tests of lib/cgroups against the real cgroupfs with real processes. Each test makes
// its own cgroup id and temp root; the cgroup is destroyed and checked for leaks even on failure.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cgroupDriver,
  type CgroupLimits,
  type ContainerCgroup,
  containerCgroupView,
  createCgroup,
  type DeviceRule,
  hostCpusetCpus,
  openCgroup,
  parseCpuList,
  parseDeviceCgroupRule,
} from "../lib/cgroups/mod.ts";
import { blkioToIoWeight, createV2, openV2, sharesToWeight } from "../lib/cgroups/v2.ts";
import { createV1, openV1 } from "../lib/cgroups/v1.ts";
import { assembleDeviceFilter, DEFAULT_ALLOWED_DEVICES, v1RuleLines } from "../lib/cgroups/devices.ts";
import { SkiffError } from "../lib/errors.ts";
import { discardUnsupported, type HostSupport, hostSupport, type Resources } from "../lib/cgroups/support.ts";
import { StateRoot } from "../lib/state/root.ts";
import { cgroupLimitsOf } from "../lib/cgroups/limits.ts";
import { NO_RESOURCE_LIMITS } from "../lib/state/types.ts";
import { makedev, mknod, S_IFBLK, S_IFCHR } from "../ffi/libc.ts";
import { BUSYBOX, findLeaks, withRoot } from "./helpers.ts";

const V1 = cgroupDriver() === "v1";
const MiB = 1024 * 1024;
const UNIFIED = "/sys/fs/cgroup/unified";
const hybrid = V1 && (() => {
  try {
    return Deno.statSync(join(UNIFIED, "cgroup.procs")).isFile;
  } catch {
    return false;
  }
})();

const read = (path: string) => Deno.readTextFileSync(path).trim();
const newId = () => `cgtest-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
/** Every directory named <id> under a skiff parent of any hierarchy. */
function cgroupDirsOf(id: string): string[] {
  const found: string[] = [];
  for (const e of Deno.readDirSync("/sys/fs/cgroup")) {
    for (const dir of [join("/sys/fs/cgroup", e.name, "skiff", id), join("/sys/fs/cgroup", "skiff", id)]) {
      try {
        if (Deno.statSync(dir).isDirectory) found.push(dir);
      } catch { /* absent */ }
    }
  }
  return [...new Set(found)];
}

/** A cgroup made by createCgroup for the test, destroyed afterwards; fails the test on a leak. */
async function withCgroup(
  limits: CgroupLimits,
  fn: (cg: ContainerCgroup, ctx: { id: string; root: StateRoot; tmp: string }) => Promise<void>,
): Promise<void> {
  await withRoot(async (testRoot) => {
    const root = new StateRoot(testRoot.path);
    const id = newId();
    let failure: unknown;
    try {
      await fn(createCgroup(root, id, limits, {}), { id, root, tmp: testRoot.path });
    } catch (e) {
      failure = e;
    }
    try {
      openCgroup(root, id, {}).destroy();
      const leaks = findLeaks(testRoot.path, [id]);
      assert.deepEqual(cgroupDirsOf(id), [], "cgroup directories left");
      assert.deepEqual(leaks.pids, [], "processes left");
    } catch (e) {
      failure ??= e;
    }
    if (failure) throw failure;
  });
}

interface Outcome {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a busybox shell script inside the cgroup: the shell is spawned, added to the cgroup, and only
 * then told (through stdin) to run the script, so everything it does is accounted there.
 */
async function runIn(
  cg: ContainerCgroup,
  script: string,
  timeoutMs = 20_000,
): Promise<Outcome & { pid: number }> {
  const child = new Deno.Command(BUSYBOX, {
    args: ["sh", "-c", `read _go; ${script}`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    cg.addProcess(child.pid);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      pid: child.pid,
      code: out.code,
      signal: out.signal,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

function dirOf(cg: ContainerCgroup, hierarchy: string): string {
  const dir = cg.paths.find((p) => p.startsWith(`/sys/fs/cgroup/${hierarchy}/`));
  assert.ok(dir, `no ${hierarchy} directory among ${cg.paths.join(", ")}`);
  return dir;
}

// ---- limits written and read back ----

// What this host's kernel offers (BFQ or CFQ for the weight, swap accounting, ...): the tests
// assert docker's behaviour either way.
const HOST = hostSupport();
const WEIGHT_DISCARDED =
  "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
const SWAP_DISCARDED =
  "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.";

Deno.test({ name: "cgroups: v1 limits are written to the controller files", ignore: !V1 }, async () => {
  const lastCpu = Math.max(...parseCpuList(hostCpusetCpus()));
  await withCgroup({
    memory: 64 * MiB,
    nanoCpus: 1.5e9,
    cpuShares: 512,
    cpusetCpus: String(lastCpu),
    pidsLimit: 20,
    privileged: false,
  }, async (cg, { id }) => {
    assert.equal(cg.driver, "v1");
    for (const c of ["memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"]) {
      assert.equal(dirOf(cg, c), `/sys/fs/cgroup/${c}/skiff/${id}`);
    }
    if (hybrid) assert.ok(cg.paths.includes(join(UNIFIED, "skiff", id)));
    for (const p of cg.paths) assert.ok(Deno.statSync(p).isDirectory);
    assert.equal(read(join(dirOf(cg, "memory"), "memory.limit_in_bytes")), String(64 * MiB));
    const memsw = join(dirOf(cg, "memory"), "memory.memsw.limit_in_bytes");
    // docker's default with only --memory: memory+swap = 2 × memory, where the kernel accounts swap
    if (HOST.swapLimit) assert.equal(read(memsw), String(128 * MiB));
    else assert.throws(() => Deno.statSync(memsw), Deno.errors.NotFound);
    assert.equal(read(join(dirOf(cg, "cpu"), "cpu.cfs_period_us")), "100000");
    assert.equal(read(join(dirOf(cg, "cpu"), "cpu.cfs_quota_us")), "150000");
    assert.equal(read(join(dirOf(cg, "cpu"), "cpu.shares")), "512");
    assert.equal(read(join(dirOf(cg, "cpuset"), "cpuset.cpus")), String(lastCpu));
    assert.equal(read(join(dirOf(cg, "cpuset"), "cpuset.mems")), read("/sys/fs/cgroup/cpuset/cpuset.mems"));
    assert.equal(read(join(dirOf(cg, "pids"), "pids.max")), "20");
    await Promise.resolve();
  });
});

Deno.test(
  { name: "cgroups: v1 blkio weight where the kernel has it, else docker's discard", ignore: !V1 },
  async () => {
    const weightFiles = ["blkio.weight", "blkio.bfq.weight"];
    const hasWeight = weightFiles.some((f) => {
      try {
        return Deno.statSync(join("/sys/fs/cgroup/blkio", f)).isFile;
      } catch {
        return false;
      }
    });
    assert.equal(HOST.blkioWeight, hasWeight);
    const resources: Partial<Resources> = { BlkioWeight: 300 };
    const warnings = discardUnsupported(resources, HOST);
    if (!hasWeight) {
      // no CFQ and no BFQ (e.g. mq-deadline only): docker warns, drops the weight and runs
      assert.deepEqual(warnings, [WEIGHT_DISCARDED]);
      assert.equal(resources.BlkioWeight, 0);
      return;
    }
    assert.deepEqual(warnings, []);
    assert.equal(resources.BlkioWeight, 300);
    await withCgroup({ blkioWeight: 300, privileged: false }, async (cg) => {
      const file = weightFiles.map((f) => join(dirOf(cg, "blkio"), f)).find((f) => {
        try {
          return Deno.statSync(f).isFile;
        } catch {
          return false;
        }
      })!;
      assert.match(read(file), /(^|\s)300$/m);
      await Promise.resolve();
    });
  },
);

Deno.test({ name: "cgroups: v1 explicit and unlimited memory-swap", ignore: !V1 }, async () => {
  if (!HOST.swapLimit) {
    // no swap accounting: docker runs with memory only (MemorySwap -1)
    const resources: Partial<Resources> = { Memory: 32 * MiB, MemorySwap: 48 * MiB };
    assert.deepEqual(discardUnsupported(resources, HOST), [SWAP_DISCARDED]);
    assert.equal(resources.MemorySwap, -1);
    await withCgroup({ memory: 32 * MiB, memorySwap: -1, privileged: false }, async (cg) => {
      assert.equal(read(join(dirOf(cg, "memory"), "memory.limit_in_bytes")), String(32 * MiB));
      await Promise.resolve();
    });
    return;
  }
  await withCgroup({ memory: 32 * MiB, memorySwap: 48 * MiB, privileged: false }, async (cg) => {
    assert.equal(read(join(dirOf(cg, "memory"), "memory.memsw.limit_in_bytes")), String(48 * MiB));
    await Promise.resolve();
  });
  await withCgroup({ memory: 32 * MiB, memorySwap: -1, privileged: false }, async (cg) => {
    const memsw = BigInt(read(join(dirOf(cg, "memory"), "memory.memsw.limit_in_bytes")));
    assert.ok(memsw > 1n << 60n, `memsw ${memsw} is not unlimited`);
    await Promise.resolve();
  });
});

Deno.test("cgroups: limits the host lacks are discarded with docker's warnings", () => {
  const none: HostSupport = {
    memoryLimit: false,
    swapLimit: false,
    memoryReservation: false,
    memorySwappiness: false,
    oomKillDisable: false,
    pidsLimit: false,
    cpuShares: false,
    cpuCfs: false,
    cpuset: false,
    blkioWeight: false,
    blkioWeightDevice: false,
    blkioReadBpsDevice: false,
    blkioWriteBpsDevice: false,
    blkioReadIOpsDevice: false,
    blkioWriteIOpsDevice: false,
  };
  const all: HostSupport = Object.fromEntries(
    Object.keys(none).map((k) => [k, true]),
  ) as unknown as HostSupport;
  const asked = (): Partial<Resources> => ({
    Memory: 64 * MiB,
    MemorySwap: 0,
    MemoryReservation: 32 * MiB,
    MemorySwappiness: 10,
    OomKillDisable: true,
    PidsLimit: 20,
    CpuShares: 512,
    CpuPeriod: 50000,
    CpuQuota: 25000,
    CpusetCpus: "0",
    BlkioWeight: 300,
  });
  const kept = asked();
  assert.deepEqual(discardUnsupported(kept, all), []);
  assert.deepEqual(kept, asked());

  const dropped = asked();
  assert.deepEqual(discardUnsupported(dropped, none), [
    "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
    "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
    "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
    "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
    "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
    "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
    "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
    "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
    WEIGHT_DISCARDED,
  ]);
  assert.deepEqual(dropped, {
    Memory: 0,
    MemorySwap: -1,
    MemoryReservation: 0,
    MemorySwappiness: null,
    OomKillDisable: false,
    PidsLimit: null,
    CpuShares: 0,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpusetCpus: "",
    CpusetMems: "",
    BlkioWeight: 0,
  });

  // memory without swap accounting: the memory limit stays, swap goes unlimited
  const swapless = { Memory: 64 * MiB, MemorySwap: 128 * MiB };
  assert.deepEqual(discardUnsupported(swapless, { ...all, swapLimit: false }), [SWAP_DISCARDED]);
  assert.deepEqual(swapless, { Memory: 64 * MiB, MemorySwap: -1 });
  // --oom-kill-disable without -m: docker's warning, the setting stays
  const oomOnly = { OomKillDisable: true };
  assert.deepEqual(discardUnsupported(oomOnly, all), [
    "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.",
  ]);
});

Deno.test({ name: "cgroups: v1 devices list is docker's default allow-list", ignore: !V1 }, async () => {
  await withCgroup({ privileged: false }, async (cg) => {
    const list = read(join(dirOf(cg, "devices"), "devices.list")).split("\n");
    assert.deepEqual(list, [
      "c *:* m",
      "b *:* m",
      "c 1:3 rwm",
      "c 1:5 rwm",
      "c 1:7 rwm",
      "c 1:8 rwm",
      "c 1:9 rwm",
      "c 5:0 rwm",
      "c 5:1 rwm",
      "c 5:2 rwm",
      "c 136:* rwm",
      "c 10:200 rwm",
    ]);
    await Promise.resolve();
  });
  await withCgroup({ privileged: true }, async (cg) => {
    assert.equal(read(join(dirOf(cg, "devices"), "devices.list")), "a *:* rwm");
    await Promise.resolve();
  });
});

// ---- processes ----

Deno.test("cgroups: addProcess puts a process in every hierarchy; destroy kills it and removes all", async () => {
  await withCgroup({ privileged: false, pidsLimit: 50 }, async (cg, { id, root }) => {
    const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
    try {
      cg.addProcess(child.pid);
      const lines = read(`/proc/${child.pid}/cgroup`).split("\n");
      for (const path of cg.paths) {
        const hierarchy = path.split("/")[4];
        const line = lines.find((l) =>
          hierarchy === "unified" || path.startsWith("/sys/fs/cgroup/skiff/")
            ? l.startsWith("0::")
            : l.split(":")[1].split(",").includes(hierarchy)
        );
        assert.equal(line?.split(":")[2], `/skiff/${id}`, `${path} in ${lines.join(" | ")}`);
      }
      assert.deepEqual(cg.pids(), [child.pid]);
      assert.equal(cg.oomKilled(), false);

      const start = performance.now();
      openCgroup(root, id, {}).destroy(); // as rm -f would: from a fresh handle
      const ms = performance.now() - start;
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      assert.deepEqual(cgroupDirsOf(id), []);
      assert.ok(ms < 2000, `destroy took ${ms} ms`);
      cg.destroy(); // idempotent
      assert.deepEqual(cg.pids(), []);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already dead */ }
    }
  });
});

Deno.test(
  { name: "cgroups: a fresh parent is created on demand, cpuset parent initialised", ignore: !V1 },
  async () => {
    const parent = `skiff-test-${crypto.randomUUID().slice(0, 8)}`;
    const id = newId();
    const parentDirs = () =>
      [...Deno.readDirSync("/sys/fs/cgroup")].map((e) => join("/sys/fs/cgroup", e.name, parent)).filter(
        (d) => {
          try {
            return Deno.statSync(d).isDirectory;
          } catch {
            return false;
          }
        },
      );
    try {
      const cg = createV1(parent, id, { privileged: false }, false);
      const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
      try {
        cg.addProcess(child.pid); // an uninitialised cpuset parent would make this fail (ENOSPC)
        const cpuset = "/sys/fs/cgroup/cpuset";
        assert.equal(read(join(cpuset, parent, "cpuset.cpus")), read(join(cpuset, "cpuset.cpus")));
        assert.equal(read(join(cpuset, parent, "cpuset.mems")), read(join(cpuset, "cpuset.mems")));
        assert.ok(parentDirs().length >= 8);
      } finally {
        openV1(parent, id, false).destroy();
        assert.equal((await child.status).signal, "SIGKILL");
      }
    } finally {
      for (const dir of parentDirs()) Deno.removeSync(dir);
    }
    assert.deepEqual(parentDirs(), []);
  },
);

Deno.test("cgroups: destroy of a never-created cgroup is a no-op", () => {
  openCgroup(new StateRoot("/nonexistent"), newId(), {}).destroy();
});

Deno.test({ name: "cgroups: destroy kills a frozen (paused) process", ignore: !V1 }, async () => {
  await withCgroup({ privileged: false }, async (cg, { id, root }) => {
    const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
    cg.addProcess(child.pid);
    const state = join(dirOf(cg, "freezer"), "freezer.state");
    Deno.writeTextFileSync(state, "FROZEN");
    openCgroup(root, id, {}).destroy();
    assert.equal((await child.status).signal, "SIGKILL");
  });
});

Deno.test("cgroups: a process over the memory limit is OOM-killed and oomKilled() says so", async () => {
  await withCgroup({ memory: 32 * MiB, memorySwap: 32 * MiB, privileged: false }, async (cg) => {
    // tail buffers a line that never ends: it grows until the OOM killer stops it
    const out = await runIn(cg, "exec tail /dev/zero");
    assert.equal(out.signal, "SIGKILL", `tail ended with ${out.code}/${out.signal}: ${out.stderr}`);
    assert.equal(cg.oomKilled(), true);
  });
});

Deno.test("cgroups: no OOM is reported for a process within its limit", async () => {
  await withCgroup({ memory: 32 * MiB, privileged: false }, async (cg) => {
    const out = await runIn(cg, "head -c 8m /dev/zero | wc -c");
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), String(8 * MiB));
    assert.equal(cg.oomKilled(), false);
  });
});

Deno.test("cgroups: the pids limit stops a fork bomb", async () => {
  await withCgroup({ pidsLimit: 10, privileged: false }, async (cg) => {
    const out = await runIn(cg, "for i in $(seq 50); do sleep 30 >/dev/null 2>&1 & done; echo forked");
    assert.match(out.stderr, /can't fork|Resource temporarily unavailable/, out.stderr);
    const pids = cg.pids();
    assert.ok(pids.length <= 10, `${pids.length} processes in a group limited to 10`);
    if (V1) assert.match(read(join(dirOf(cg, "pids"), "pids.events")), /^max [1-9]/);
  });
});

Deno.test("cgroups: the cpuset is the process's affinity", async () => {
  const lastCpu = Math.max(...parseCpuList(hostCpusetCpus()));
  await withCgroup({ cpusetCpus: String(lastCpu), privileged: false }, async (cg) => {
    const out = await runIn(cg, "grep Cpus_allowed_list /proc/self/status");
    assert.equal(out.stdout.trim().split(/\s+/)[1], String(lastCpu));
  });
});

/**
 * Nodes (made in the test's temp dir) of devices outside docker's allow-list that the host itself can
 * open: a block device (loop/zram) and /dev/kmsg (c 1:11).
 */
function deniedNodes(dir: string): { block: string; char: string } {
  const canOpen = (path: string) => {
    try {
      Deno.openSync(path, { read: true }).close();
      return true;
    } catch {
      return false;
    }
  };
  const hostBlock = ["/dev/loop0", "/dev/zram0", "/dev/vda", "/dev/sda"].find((d) => {
    try {
      return Deno.statSync(d).isBlockDevice && canOpen(d);
    } catch {
      return false;
    }
  });
  assert.ok(hostBlock, "no block device the host can open");
  const block = join(dir, "block"), char = join(dir, "kmsg");
  const rdev = Deno.statSync(hostBlock).rdev!;
  mknod(block, S_IFBLK | 0o600, makedev((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & ~0xff)));
  mknod(char, S_IFCHR | 0o600, makedev(1, 11));
  assert.ok(canOpen(block) && canOpen(char), "the host cannot open the test's device nodes");
  return { block, char };
}

/** Opens each node from the shell (no read: kmsg would block); a subshell, as a failed redirection of `:` ends the shell. */
const openScript = (nodes: string[]) => nodes.map((n) => `(: < ${n}) && echo opened ${n}`).join("; ");

Deno.test("cgroups: the default devices list denies other devices and allows /dev/null", async () => {
  await withCgroup({ privileged: false }, async (cg, { tmp }) => {
    const { block, char } = deniedNodes(tmp);
    const out = await runIn(
      cg,
      `${openScript([block, char, "/dev/null", "/dev/zero"])}; head -c 3 /dev/urandom | wc -c`,
    );
    assert.equal(out.stderr.match(/Operation not permitted/g)?.length, 2, out.stderr);
    assert.deepEqual(out.stdout.trim().split("\n"), ["opened /dev/null", "opened /dev/zero", "3"]);
  });
});

Deno.test("cgroups: privileged allows every device", async () => {
  await withCgroup({ privileged: true }, async (cg, { tmp }) => {
    const { block, char } = deniedNodes(tmp);
    const out = await runIn(cg, openScript([block, char]));
    assert.deepEqual(out.stdout.trim().split("\n"), [`opened ${block}`, `opened ${char}`], out.stderr);
  });
});

/** Starts a gated busybox script in the cgroup without waiting for it (see runIn). */
async function startIn(cg: ContainerCgroup, script: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(BUSYBOX, {
    args: ["sh", "-c", `read _go; ${script}`],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  cg.addProcess(child.pid);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("go\n"));
  await writer.close();
  return child;
}

async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const readOr = (path: string) => {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
};

/** freeze() stops a counting loop, thaw() lets it go on, destroy() kills it even when frozen. */
async function checkFreeze(cg: ContainerCgroup, tmp: string, destroy: () => void): Promise<void> {
  const counter = join(tmp, "counter");
  const child = await startIn(cg, `i=0; while :; do i=$((i+1)); echo $i > ${counter}; done`);
  try {
    await until(() => readOr(counter) !== "", "the counter to start");
    assert.equal(cg.frozen(), false);
    cg.freeze();
    assert.equal(cg.frozen(), true);
    const before = readOr(counter);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(readOr(counter), before, "a frozen process kept counting");
    cg.thaw();
    assert.equal(cg.frozen(), false);
    await until(() => readOr(counter) !== before, "the thawed counter to move on");
    cg.freeze();
    destroy();
    assert.equal((await child.status).signal, "SIGKILL");
  } finally {
    try {
      child.kill("SIGKILL");
      await child.status;
    } catch { /* already reaped */ }
  }
}

Deno.test("cgroups: freeze and thaw (pause/unpause)", async () => {
  await withCgroup({ privileged: false }, async (cg, { tmp, root, id }) => {
    await checkFreeze(cg, tmp, () => openCgroup(root, id, {}).destroy());
  });
});

Deno.test("cgroups: stats count memory, cpu time and pids", async () => {
  await withCgroup({ memory: 64 * MiB, privileged: false }, async (cg, { tmp }) => {
    const ready = join(tmp, "ready");
    const child = await startIn(
      cg,
      `x=$(head -c 12m /dev/zero | tr '\\0' a); i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; ` +
        `sleep 30 & echo > ${ready}; wait`,
    );
    try {
      await until(() => {
        try {
          return Deno.statSync(ready).isFile;
        } catch {
          return false;
        }
      }, "the script to be ready");
      const stats = cg.stats();
      assert.ok(stats.memoryUsage >= 12 * MiB, `memory usage ${stats.memoryUsage}`);
      assert.ok(stats.memoryUsage < 64 * MiB, `memory usage ${stats.memoryUsage}`);
      if (V1) assert.equal(stats.memoryLimit, 64 * MiB);
      if (V1) assert.ok(stats.cpuNanos > 1e7, `cpu ${stats.cpuNanos} ns`);
      if (V1) assert.equal(stats.pids, 2); // sh and its sleep
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  });
  await withCgroup({ privileged: false }, async (cg) => {
    assert.equal(cg.stats().memoryLimit, 0); // unlimited
    await Promise.resolve();
  });
});

Deno.test({
  name: "cgroups: the container view shows the container's own limits at /sys/fs/cgroup",
  ignore: !V1,
}, async () => {
  await withCgroup({ memory: 48 * MiB, nanoCpus: 5e8, privileged: false }, async (_cg, { root, id, tmp }) => {
    const view = containerCgroupView(root, id, {});
    assert.ok(view.binds.some((b) => b.target === "/sys/fs/cgroup/memory"));
    // build the view below a stand-in container root, in a private mount namespace (util-linux
    // unshare makes the mounts private, and they vanish with it)
    const r = join(tmp, "rootfs");
    const script = [
      "set -e",
      `mkdir -p ${r}/sys/fs/cgroup`,
      `mount -t tmpfs -o mode=755 tmpfs ${r}/sys/fs/cgroup`,
      ...view.binds.map((b) => `mkdir -p ${r}${b.target} && mount --bind -o ro ${b.source} ${r}${b.target}`),
      ...view.symlinks.map((l) => `ln -s ${l.target} ${r}${l.link}`),
      `cd ${r}`,
      "cat sys/fs/cgroup/memory/memory.limit_in_bytes sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ].join("\n");
    const out = await new Deno.Command("unshare", {
      args: ["-m", "sh", "-c", script],
      stderr: "piped",
      stdout: "piped",
    })
      .output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    assert.deepEqual(dec.decode(out.stdout).trim().split("\n"), [String(48 * MiB), "50000"]);
  });
});

// ---- impossible values ----

const refusals: [string, Partial<CgroupLimits>, RegExp][] = [
  [
    "cpuset not on the host",
    { cpusetCpus: "99" },
    /^Requested CPUs are not available - requested 99, available: /,
  ],
  ["cpuset syntax", { cpusetCpus: "0-x" }, /^Invalid value 0-x for cpuset cpus$/],
  ["memory nodes", { cpusetMems: "7" }, /^Requested memory nodes are not available/],
  ["memory below 6 MB", { memory: 5 * MiB }, /^Minimum memory limit allowed is 6MB$/],
  [
    "swap below memory",
    { memory: 32 * MiB, memorySwap: 16 * MiB },
    /^Minimum memoryswap limit should be larger/,
  ],
  ["swap without memory", { memorySwap: 64 * MiB }, /^You should always set the Memory limit/],
  [
    "negative cpus",
    { nanoCpus: -1e9 },
    /^Range of CPUs is from 0.01 to \d+\.00, as there are only \d+ CPUs available$/,
  ],
  ["too many cpus", { nanoCpus: 999e9 }, /^Range of CPUs is from 0.01/],
  ["blkio weight", { blkioWeight: 5 }, /^Range of blkio weight is from 10 to 1000$/],
  ["negative shares", { cpuShares: -5 }, /^invalid CPU shares/],
  [
    "cpus with a period",
    { nanoCpus: 1e9, cpuPeriod: 50000 },
    /^Conflicting options: Nano CPUs and CPU Period/,
  ],
  ["cpus with a quota", { nanoCpus: 1e9, cpuQuota: 50000 }, /^Conflicting options: Nano CPUs and CPU Quota/],
  ["a period below 1 ms", { cpuPeriod: 500 }, /^CPU cfs period can not be less than 1ms/],
  ["a quota below 1 ms", { cpuQuota: 500 }, /^CPU cfs quota can not be less than 1ms \(i\.e\. 1000\)$/],
  ["a reservation below 6 MB", { memoryReservation: MiB }, /^Minimum memory reservation allowed is 6MB$/],
  [
    "a reservation above the limit",
    { memory: 32 * MiB, memoryReservation: 64 * MiB },
    /^Minimum memory limit can not be less than memory reservation limit/,
  ],
  [
    "swappiness 101",
    { memorySwappiness: 101 },
    /^Invalid value: 101, valid memory swappiness range is 0-100$/,
  ],
  [
    "a negative throttle rate",
    { blkioThrottle: { readBps: [{ device: "254:0", rate: -1 }] } },
    /^invalid readBps rate -1 for device 254:0: must be a positive integer$/,
  ],
];
for (const [what, limits, message] of refusals) {
  Deno.test(`cgroups: refuses ${what} and creates nothing`, () => {
    const id = newId();
    assert.throws(
      () => createCgroup(new StateRoot("/nonexistent"), id, { privileged: false, ...limits }, {}),
      (e) => e instanceof SkiffError && e.exitCode === 125 && message.test(e.message),
    );
    assert.deepEqual(cgroupDirsOf(id), []);
  });
}

Deno.test("cgroups: a limit the kernel rejects removes what was already created", () => {
  const id = newId();
  // passes docker's checks, but pids.max takes at most PID_MAX_LIMIT (4194304): the write fails
  // after the directories exist
  assert.throws(
    () =>
      createCgroup(new StateRoot("/nonexistent"), id, {
        privileged: false,
        memory: 32 * MiB,
        pidsLimit: 5e6,
      }, {}),
    (e) => e instanceof SkiffError && /pids\.max/.test(e.message),
  );
  assert.deepEqual(cgroupDirsOf(id), []);
});

Deno.test(
  {
    name: "cgroups: v1 cpu period/quota, reservation, swappiness, oom-kill-disable",
    // docker discards swappiness and oom-kill-disable where the root group lacks their files
    ignore: !V1 || !HOST.memorySwappiness || !HOST.oomKillDisable,
  },
  async () => {
    await withCgroup({
      cpuPeriod: 50000,
      cpuQuota: 25000,
      memory: 64 * MiB,
      memoryReservation: 32 * MiB,
      memorySwappiness: 10,
      oomKillDisable: true,
      privileged: false,
    }, async (cg) => {
      assert.equal(read(join(dirOf(cg, "cpu"), "cpu.cfs_period_us")), "50000");
      assert.equal(read(join(dirOf(cg, "cpu"), "cpu.cfs_quota_us")), "25000");
      const memory = dirOf(cg, "memory");
      assert.equal(read(join(memory, "memory.soft_limit_in_bytes")), String(32 * MiB));
      assert.equal(read(join(memory, "memory.swappiness")), "10");
      assert.match(read(join(memory, "memory.oom_control")), /^oom_kill_disable 1$/m);
      await Promise.resolve();
    });
  },
);

Deno.test({
  name: "cgroups: v1 block I/O throttles per device",
  // the throttle files exist only with CONFIG_BLK_DEV_THROTTLING
  ignore: !V1 || (() => {
    try {
      return !Deno.statSync("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").isFile;
    } catch {
      return true;
    }
  })(),
}, async () => {
  const disk = ["/dev/loop0", "/dev/vda", "/dev/sda"].find((d) => {
    try {
      return Deno.statSync(d).isBlockDevice;
    } catch {
      return false;
    }
  });
  assert.ok(disk, "no block device to throttle");
  const rdev = Deno.statSync(disk).rdev!;
  const device = `${(rdev >> 8) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & ~0xff)}`;
  await withCgroup({
    privileged: false,
    blkioThrottle: {
      readBps: [{ device, rate: MiB }],
      writeBps: [{ device, rate: 2 * MiB }],
      readIops: [{ device, rate: 100 }],
      writeIops: [{ device, rate: 50 }],
    },
  }, async (cg) => {
    const blkio = dirOf(cg, "blkio");
    assert.equal(read(join(blkio, "blkio.throttle.read_bps_device")), `${device} ${MiB}`);
    assert.equal(read(join(blkio, "blkio.throttle.write_bps_device")), `${device} ${2 * MiB}`);
    assert.equal(read(join(blkio, "blkio.throttle.read_iops_device")), `${device} 100`);
    assert.equal(read(join(blkio, "blkio.throttle.write_iops_device")), `${device} 50`);
    await Promise.resolve();
  });
});

Deno.test("cgroups: --device-cgroup-rule parsing and v1 lines", () => {
  assert.deepEqual(parseDeviceCgroupRule("c 1:11 r"), { type: "c", major: 1, minor: 11, access: "r" });
  assert.deepEqual(parseDeviceCgroupRule("b 7:* rwm"), { type: "b", major: 7, minor: null, access: "rwm" });
  for (const bad of ["c 1:11", "x 1:1 r", "c 1:1 rx", "c a:1 r", " c 1:1 r"]) {
    assert.throws(
      () => parseDeviceCgroupRule(bad),
      (e) => e instanceof SkiffError && e.message === `invalid device cgroup format '${bad}'`,
    );
  }
  assert.deepEqual(v1RuleLines(parseDeviceCgroupRule("a *:* rwm")), ["a"]);
  // the kernel reads any "a" line as everything: a narrower one is split
  assert.deepEqual(v1RuleLines(parseDeviceCgroupRule("a 7:* r")), ["c 7:* r", "b 7:* r"]);
});

/** Extra rules allowing the test's denied nodes: kmsg for reading, the block device via an "a" rule. */
function extraRules(block: string): DeviceRule[] {
  const rdev = Deno.statSync(block).rdev!;
  return [parseDeviceCgroupRule("c 1:11 r"), parseDeviceCgroupRule(`a ${(rdev >> 8) & 0xfff}:* r`)];
}

Deno.test("cgroups: extra device rules open exactly what they allow", async () => {
  await withRoot(async (testRoot) => {
    const { block, char } = deniedNodes(testRoot.path);
    await withCgroup({ privileged: false, deviceRules: extraRules(block) }, async (cg) => {
      if (V1) assert.match(read(join(dirOf(cg, "devices"), "devices.list")), /^c 1:11 r$/m);
      const out = await runIn(cg, `${openScript([block, char])}; (echo x > ${char}) && echo wrote`);
      assert.deepEqual(out.stdout.trim().split("\n"), [`opened ${block}`, `opened ${char}`], out.stderr);
      assert.match(out.stderr, /Operation not permitted/); // read-only rule: no write
    });
  });
});

Deno.test(
  { name: "cgroups v2: extra device rules in the eBPF filter (unified hierarchy)", ignore: !hybrid },
  async () => {
    await withRoot(async (testRoot) => {
      const id = newId();
      const { block, char } = deniedNodes(testRoot.path);
      const cg = createV2(UNIFIED, "skiff", id, { privileged: false, deviceRules: extraRules(block) }, false);
      try {
        const out = await runIn(cg, `${openScript([block, char])}; (echo x > ${char}) && echo wrote`);
        assert.deepEqual(out.stdout.trim().split("\n"), [`opened ${block}`, `opened ${char}`], out.stderr);
        assert.match(out.stderr, /Operation not permitted/);
      } finally {
        cg.destroy();
      }
      assert.deepEqual(cgroupDirsOf(id), []);
    });
  },
);

// ---- the v2 code path, on the hybrid host's unified hierarchy ----

Deno.test({
  name: "cgroups v2: create, devices eBPF filter, kill and remove (unified hierarchy)",
  ignore: !hybrid,
}, async () => {
  await withRoot(async (testRoot) => {
    const id = newId();
    const cg = createV2(UNIFIED, "skiff", id, { privileged: false }, false);
    try {
      assert.equal(cg.driver, "v2");
      assert.deepEqual(cg.paths, [join(UNIFIED, "skiff", id)]);
      const { block, char } = deniedNodes(testRoot.path);
      const out = await runIn(
        cg,
        `${openScript([block, char, "/dev/null"])}; head -c 2 /dev/urandom | wc -c`,
      );
      assert.equal(out.stderr.match(/Operation not permitted/g)?.length, 2, out.stderr);
      assert.deepEqual(out.stdout.trim().split("\n"), ["opened /dev/null", "2"]);
      assert.equal(cg.oomKilled(), false);

      const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
      cg.addProcess(sleeper.pid);
      assert.deepEqual(cg.pids(), [sleeper.pid]);
      openV2(UNIFIED, "skiff", id, false).destroy(); // cgroup.kill
      assert.equal((await sleeper.status).signal, "SIGKILL");
      assert.deepEqual(cgroupDirsOf(id), []);
    } finally {
      cg.destroy();
    }
  });
});

Deno.test(
  { name: "cgroups v2: freeze and thaw through cgroup.freeze (unified hierarchy)", ignore: !hybrid },
  async () => {
    await withRoot(async (testRoot) => {
      const id = newId();
      const cg = createV2(UNIFIED, "skiff", id, { privileged: false }, false);
      try {
        await checkFreeze(cg, testRoot.path, () => openV2(UNIFIED, "skiff", id, false).destroy());
        assert.deepEqual(cgroupDirsOf(id), []);
      } finally {
        cg.destroy();
      }
    });
  },
);

Deno.test({
  name: "cgroups v2: a limit whose controller is absent is refused, nothing created",
  ignore: !hybrid,
}, () => {
  const id = newId();
  assert.throws(
    () => createV2(UNIFIED, "skiff", id, { privileged: false, memory: 32 * MiB }, false),
    (e) => e instanceof SkiffError && /controller "memory" is not available/.test(e.message),
  );
  assert.deepEqual(cgroupDirsOf(id), []);
});

// ---- pure functions ----

Deno.test("cgroups: conversions and the device filter program", () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(blkioToIoWeight(10), 1);
  assert.equal(blkioToIoWeight(1000), 10000);
  assert.deepEqual([...parseCpuList("0-2,5")], [0, 1, 2, 5]);
  assert.throws(() => parseCpuList("1-"));
  const prog = assembleDeviceFilter(DEFAULT_ALLOWED_DEVICES);
  assert.equal(prog.length % 8, 0);
  assert.equal(prog[prog.length - 8], 0x95); // ends in exit
});

// --device's nodes become rules through the one HostConfig mapping (cgroupLimitsOf), on v1's
// devices.allow and in v2's eBPF filter alike: /dev/fuse given "r" opens for reading only
Deno.test("cgroups: a --device node's permissions, on v1 and in the v2 filter", async () => {
  const limits = cgroupLimitsOf({
    ...NO_RESOURCE_LIMITS,
    Privileged: false,
    Devices: [{ PathOnHost: "/dev/fuse", PathInContainer: "/dev/fz", CgroupPermissions: "r" }],
  });
  assert.deepEqual(limits.deviceRules, [{ type: "c", major: 10, minor: 229, access: "r" }]);
  const script = ": < /dev/fuse && echo read; (: > /dev/fuse) && echo wrote";
  await withCgroup(limits, async (cg) => {
    const out = await runIn(cg, script);
    assert.equal(out.stdout, "read\n", out.stderr);
    assert.match(out.stderr, /Operation not permitted/);
  });
  if (!hybrid) return;
  const id = newId();
  const cg = createV2(UNIFIED, "skiff", id, limits, false);
  try {
    const out = await runIn(cg, script);
    assert.equal(out.stdout, "read\n", out.stderr);
    assert.match(out.stderr, /Operation not permitted/);
  } finally {
    cg.destroy();
  }
  assert.deepEqual(cgroupDirsOf(id), []);
});

Deno.test(
  {
    name: "cgroups v2: a --cgroup-parent of three levels is made down the path and kept (unified hierarchy)",
    ignore: !hybrid,
  },
  async () => {
    const top = `skiff-cgp-v2-${crypto.randomUUID().slice(0, 8)}`;
    const parent = `${top}/a/b`;
    const id = newId();
    try {
      const cg = createV2(UNIFIED, parent, id, { privileged: false }, true);
      try {
        assert.deepEqual(cg.paths, [join(UNIFIED, parent, id)]);
        const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
        cg.addProcess(sleeper.pid);
        assert.match(
          Deno.readTextFileSync(`/proc/${sleeper.pid}/cgroup`),
          new RegExp(`^0::/${parent}/${id}$`, "m"),
        );
        openV2(UNIFIED, parent, id, true).destroy(); // as rm -f: the recorded parent, kept
        assert.equal((await sleeper.status).signal, "SIGKILL");
      } finally {
        cg.destroy();
      }
      assert.ok(Deno.statSync(join(UNIFIED, parent)).isDirectory, "the parent is kept");
      assert.deepEqual(
        [...Deno.readDirSync(join(UNIFIED, parent))].filter((e) => e.isDirectory),
        [],
        "the container's group is gone",
      );
    } finally {
      for (const level of [parent, `${top}/a`, top]) {
        try {
          Deno.removeSync(join(UNIFIED, level));
        } catch { /* absent */ }
      }
    }
  },
);

Deno.test({
  name: "cgroups v1: a --cgroup-parent of three levels gets the host's cpuset at each level and is kept",
  ignore: !V1,
}, () => {
  const top = `skiff-cgp-v1-${crypto.randomUUID().slice(0, 8)}`;
  const parent = `${top}/a/b`;
  const id = newId();
  try {
    const cg = createV1(parent, id, { privileged: false }, true);
    try {
      const cpuset = "/sys/fs/cgroup/cpuset";
      for (const level of [top, `${top}/a`, parent, `${parent}/${id}`]) {
        assert.equal(read(join(cpuset, level, "cpuset.cpus")), read(join(cpuset, "cpuset.cpus")), level);
      }
    } finally {
      cg.destroy();
    }
    assert.deepEqual(cgroupDirsOfParent(parent, id), [], "the container's groups are gone");
    assert.ok(Deno.statSync(join("/sys/fs/cgroup/cpuset", parent)).isDirectory, "the parent is kept");
  } finally {
    for (const e of Deno.readDirSync("/sys/fs/cgroup")) {
      for (const level of [parent, `${top}/a`, top]) {
        try {
          Deno.removeSync(join("/sys/fs/cgroup", e.name, level));
        } catch {
          /* absent */
        }
      }
    }
  }
});

/** Every directory <parent>/<id> of any hierarchy. */
function cgroupDirsOfParent(parent: string, id: string): string[] {
  return [...Deno.readDirSync("/sys/fs/cgroup")].map((e) => join("/sys/fs/cgroup", e.name, parent, id))
    .filter((dir) => {
      try {
        return Deno.statSync(dir).isDirectory;
      } catch {
        return false;
      }
    });
}

Deno.test("openCgroup of an unreadable record: a group named by its id inside another container's group is not taken for it", () => {
  const top = `skiff-test-fp-${Deno.pid}`;
  const owner = { cgroupParent: "skiff" };
  const hex = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
  const a = hex(), b = hex();
  const made: ContainerCgroup[] = [];
  try {
    // A's group, with a group named by B's id made inside it (a privileged container may make
    // groups in its own), shallower than B's real one
    const groupA = createCgroup(owner, a, { privileged: false }, { CgroupParent: top });
    made.push(groupA);
    for (const dir of groupA.paths) Deno.mkdirSync(join(dir, b));
    const groupB = createCgroup(owner, b, { privileged: false }, { CgroupParent: `${top}/x/y` });
    made.push(groupB);
    // B's record unreadable: its group is looked for by its id
    const found = openCgroup(owner, b, undefined);
    assert.deepEqual(found.paths, groupB.paths);
  } finally {
    for (const dir of made[0]?.paths ?? []) {
      try {
        Deno.removeSync(join(dir, b));
      } catch { /* not made */ }
    }
    for (const group of made.reverse()) group.destroy();
    // the kept parents, deepest first, in every hierarchy
    for (const base of ["/sys/fs/cgroup", UNIFIED]) {
      const bases = base === UNIFIED ? [UNIFIED] : [...Deno.readDirSync(base)].map((e) => join(base, e.name));
      for (const hier of bases) {
        for (const rel of [`${top}/x/y`, `${top}/x`, top]) {
          try {
            Deno.removeSync(join(hier, rel));
          } catch { /* absent */ }
        }
      }
    }
  }
});
