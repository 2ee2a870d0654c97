// skiff update: new limits reach the live cgroup (read back from the kernel's files) and the record;
// invalid values are refused with docker's wording and change nothing.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";
import { hostSupport } from "../lib/cgroups/support.ts";
import { eventually } from "./detach_helpers.ts";

/** What this host's kernel offers: the tests assert docker's behaviour either way. */
const HOST = hostSupport();
/** docker update prints the daemon's warnings after the names, on stdout. */
const SWAP_WARNING = HOST.swapLimit
  ? ""
  : "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.\n";

function cgroupFile(controller: string, id: string, file: string): string {
  for (
    const path of [`/sys/fs/cgroup/${controller}/skiff/${id}/${file}`, `/sys/fs/cgroup/skiff/${id}/${file}`]
  ) {
    try {
      return Deno.readTextFileSync(path).trim();
    } catch { /* other layout */ }
  }
  throw new Error(`no ${file} for ${id}`);
}
const memoryLimit = (id: string) => cgroupFile("memory", id, "memory.limit_in_bytes");

Deno.test("update: raises and lowers memory and pids limits of a running container", async () => {
  await withBusybox(async (root) => {
    await withBackground(
      root,
      "uu",
      async (c) => {
        assert.equal(memoryLimit(c.id), String(64 * 1024 * 1024));
        assert.equal(cgroupFile("pids", c.id, "pids.max"), "50");

        assert.equal(
          await root.ok(["update", "--memory", "128m", "--pids-limit", "200", "uu"]),
          `uu\n${SWAP_WARNING}`,
        );
        assert.equal(memoryLimit(c.id), String(128 * 1024 * 1024));
        assert.equal(cgroupFile("pids", c.id, "pids.max"), "200");
        assert.equal(
          await root.ok(["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "uu"]),
          `${128 * 1024 * 1024} 200\n`,
        );

        await root.ok(["update", "-m", "32m", "--pids-limit", "10", "uu"]);
        assert.equal(memoryLimit(c.id), String(32 * 1024 * 1024));
        assert.equal(cgroupFile("pids", c.id, "pids.max"), "10");

        // unlimited pids again
        await root.ok(["update", "--pids-limit", "-1", "uu"]);
        assert.equal(cgroupFile("pids", c.id, "pids.max"), "max");

        // invalid: below docker's minimum; nothing changes
        const small = await root.skiff(["update", "--memory", "1m", "uu"]);
        assert.equal(small.code, 1);
        assert.match(small.stderr, /Minimum memory limit allowed is 6MB/);
        assert.equal(memoryLimit(c.id), String(32 * 1024 * 1024));
        const badFlag = await root.skiff(["update", "--memory", "lots", "uu"]);
        assert.equal(badFlag.code, 125);
        const noFlags = await root.skiff(["update", "uu"]);
        assert.equal(noFlags.code, 125);
        assert.match(noFlags.stderr, /You must provide one or more flags/);
      },
      ["sleep", "100"],
      ["--memory", "64m", "--pids-limit", "50"],
    );
  });
});

Deno.test("update: a stopped container gets the new values in its record", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "idle", "busybox", "true"]);
    await root.ok(["update", "--memory", "100m", "--cpus", "0.5", "idle"]);
    assert.equal(
      await root.ok(["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", "idle"]),
      `${100 * 1024 * 1024} 500000000\n`,
    );
    const ghost = await root.skiff(["update", "-m", "10m", "ghost"]);
    assert.equal(ghost.code, 1);
  });
});

Deno.test("update: --blkio-weight where the kernel has no weight is discarded with docker's warning", async () => {
  await withBusybox(async (root) => {
    await withBackground(
      root,
      "bw",
      async () => {
        const r = await root.skiff(["update", "--blkio-weight", "300", "bw"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        const warning =
          "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n";
        assert.equal(r.stdout, HOST.blkioWeight ? "bw\n" : `bw\n${warning}`);
        assert.equal(
          await root.ok(["inspect", "-f", "{{.HostConfig.BlkioWeight}}", "bw"]),
          HOST.blkioWeight ? "300\n" : "0\n",
        );
      },
      ["sleep", "100"],
    );
  });
});

Deno.test("update: --cpu-period, --cpu-quota, --memory-reservation reach the live cgroup; docker's conflicts", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "uc", async (c) => {
      const out = await root.ok(["update", "--cpu-period", "50000", "--cpu-quota", "25000", "uc"]);
      assert.equal(out, "uc\n");
      if (HOST.cpuCfs) {
        try {
          assert.equal(cgroupFile("cpu", c.id, "cpu.cfs_period_us"), "50000");
          assert.equal(cgroupFile("cpu", c.id, "cpu.cfs_quota_us"), "25000");
        } catch (e) {
          if (!String(e).includes("no cpu.cfs")) throw e;
          assert.equal(cgroupFile("", c.id, "cpu.max"), "25000 50000"); // v2
        }
      }
      await root.ok(["update", "--memory-reservation", "10m", "uc"]);
      if (HOST.memoryReservation) {
        let soft: string;
        try {
          soft = cgroupFile("memory", c.id, "memory.soft_limit_in_bytes");
        } catch {
          soft = cgroupFile("", c.id, "memory.low");
        }
        assert.equal(soft, String(10 * 1024 * 1024));
      }
      assert.equal(
        await root.ok([
          "inspect",
          "-f",
          "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}}",
          "uc",
        ]),
        `50000 25000 ${HOST.memoryReservation ? 10 * 1024 * 1024 : 0}\n`,
      );
      // zero values change nothing, in the record as in the cgroup (docker skips them)
      assert.equal(
        await root.ok(["update", "--cpu-period", "0", "--cpu-quota", "0", "--memory-reservation", "0", "uc"]),
        "uc\n",
      );
      if (HOST.cpuCfs) {
        try {
          assert.equal(cgroupFile("cpu", c.id, "cpu.cfs_quota_us"), "25000");
        } catch (e) {
          if (!String(e).includes("no cpu.cfs")) throw e;
        }
      }
      // docker's daemon (container.UpdateContainer): --cpus against a period already set, exit 1
      const cpus = await root.skiff(["update", "--cpus", "1", "uc"]);
      assert.equal(cpus.code, 1);
      assert.equal(
        cpus.stderr,
        `skiff: Cannot update container ${c.id}: Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set\n`,
      );
      const small = await root.skiff(["update", "--cpu-quota", "500", "uc"]);
      assert.equal(small.code, 1);
      assert.match(small.stderr, /CPU cfs quota can not be less than 1ms \(i\.e\. 1000\)/);
      const soft = await root.skiff(["update", "--memory-reservation", "1k", "uc"]);
      assert.equal(soft.code, 1);
      assert.match(soft.stderr, /Minimum memory reservation allowed is 6MB/);
      // nothing of the refused updates was kept
      assert.equal(
        await root.ok(["inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuQuota}}", "uc"]),
        "0 25000\n",
      );
      // --kernel-memory: taken with the daemon's warning after the name (docker 20.10)
      assert.equal(
        await root.ok(["update", "--kernel-memory", "5m", "uc"]),
        "uc\nSpecifying a kernel memory limit is deprecated and will be removed in a future release.\n",
      );
    });
  });
});

Deno.test("update --restart: the new policy holds at the container's next exit; refused with --rm", async () => {
  await withBusybox(async (root) => {
    try {
      await root.ok(["run", "-d", "--name", "ur", "busybox", "sh", "-c", "sleep 1; exit 3"]);
      assert.equal(await root.ok(["update", "--restart", "on-failure:1", "ur"]), "ur\n");
      assert.equal(
        await root.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy}}", "ur"]),
        "{on-failure 1}\n",
      );
      await eventually(
        "one restart, then exited",
        async () =>
          (await root.ok(["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "ur"])) === "1 exited\n",
      );
      const bad = await root.skiff(["update", "--restart", "bogus", "ur"]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /invalid restart policy/);
      for (
        const [policy, words] of [["on-failure:-1", /maximum retry count cannot be negative/], [
          "on-failure:x",
          /maximum retry count must be an integer/,
        ]] as const
      ) {
        const r = await root.skiff(["update", "--restart", policy, "ur"]);
        assert.equal(r.code, 1, r.stderr); // the daemon's refusal, as docker update
        assert.match(r.stderr, words);
      }

      await root.ok(["run", "-d", "--rm", "--name", "urm", "busybox", "sleep", "100"]);
      const id = (await root.ok(["inspect", "-f", "{{.Id}}", "urm"])).trim();
      const autoRemove = await root.skiff(["update", "--restart", "always", "urm"]);
      assert.equal(autoRemove.code, 1);
      assert.equal(
        autoRemove.stderr,
        `skiff: Cannot update container ${id}: Restart policy cannot be updated because AutoRemove is enabled for the container\n`,
      );
      assert.equal(await root.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "urm"]), "no\n");
    } finally {
      await root.skiff(["rm", "-f", "ur", "urm"]);
    }
  });
});
