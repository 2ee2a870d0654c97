// build's flags for its RUN containers (--add-host, --ulimit, --shm-size, -m, ...): each RUN step's
// container gets them, as docker's classic builder gives them to its intermediate containers; they
// are not part of the cache key; a bad value is refused before any step, with run's words.

import assert from "node:assert/strict";
import { join } from "node:path";
import { docker, peerDocker, peerDockerReady } from "./peer_docker.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";

/** What a RUN step sees of its container's settings. */
const PROBE = "RUN grep myhost /etc/hosts; ulimit -n; df -k /dev/shm | tail -1 | awk '{print $2}'";
const FLAGS = ["--add-host", "myhost:10.1.2.3", "--ulimit", "nofile=512:512", "--shm-size", "32m"];
const EXPECTED = "10.1.2.3\tmyhost\n512\n32768\n";

async function withContext(base: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-buildflags-" });
  try {
    Deno.writeTextFileSync(join(dir, "Dockerfile"), `FROM ${base}\n${PROBE}\n`);
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The RUN step's own output in a classic builder's log: the lines between "Running in" and its end. */
function stepOutput(log: string): string {
  const lines = log.split("\n");
  const start = lines.findIndex((l) => l.startsWith(" ---> Running in "));
  const end = lines.findIndex((l, i) => i > start && /^(Removing intermediate container| ---> )/.test(l));
  return lines.slice(start + 1, end).map((l) => `${l}\n`).join("");
}

const imageCount = async (root: TestRoot) =>
  (await root.ok(["images", "-a", "-q"])).trim().split("\n").filter(Boolean).length;

Deno.test("build: --add-host, --ulimit, --shm-size, -m reach each RUN container; not in the cache key", async () => {
  await withBusybox(async (root) => {
    await withContext("busybox", async (dir) => {
      const first = await root.ok(["build", "--no-cache", ...FLAGS, "-m", "64m", "-t", "bf", dir]);
      assert.equal(stepOutput(first), EXPECTED, first);
      // docker's classic builder keys its cache on the instructions: the flags change nothing of it
      const again = await root.ok(["build", "-t", "bf", dir]);
      assert.match(again, / ---> Using cache\n/);
      // the memory limit, read from the step's own cgroup view (v1 or v2)
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max\n",
      );
      const memory = await root.ok(["build", "-m", "64m", "-t", "bf-mem", dir]);
      assert.equal(stepOutput(memory), `${64 * 1024 * 1024}\n`, memory);
    });
  });
});

Deno.test("build: a bad RUN-container flag is refused before any step, exit 125, nothing made", async () => {
  await withBusybox(async (root) => {
    await withContext("busybox", async (dir) => {
      const before = await imageCount(root);
      for (
        const [flags, words] of [
          [["--shm-size", "abc"], `invalid argument "abc" for "--shm-size" flag: invalid size: 'abc'`],
          [
            ["--add-host", "bad"],
            `invalid argument "bad" for "--add-host" flag: bad format for add-host: "bad"`,
          ],
          [["--ulimit", "nofile=x"], `invalid argument "nofile=x" for "--ulimit" flag`],
        ] as const
      ) {
        const r = await root.skiff(["build", ...flags, "-t", "never", dir]);
        assert.equal(r.code, 125, r.stderr);
        assert.ok(r.stderr.includes(words), r.stderr);
        assert.match(r.stderr, /see 'skiff build --help'/);
        assert.equal(r.stdout, "");
      }
      const isolation = await root.skiff(["build", "--isolation", "hyperv", dir]);
      assert.equal(isolation.code, 1);
      assert.equal(await imageCount(root), before);
      // flags docker takes that change nothing here
      const taken = await root.ok([
        "build",
        "-q",
        "--compress",
        "--disable-content-trust",
        "--cache-from",
        "x",
        dir,
      ]);
      assert.match(taken, /^sha256:[0-9a-f]{64}\n$/);
    });
  });
});

Deno.test("build: the RUN step sees what docker's classic builder's does (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  await withContext("localhost/bb:latest", async (dir) => {
    const tag = `skiffcmp-buildflags-${Deno.pid}`;
    try {
      const out = await new Deno.Command("sh", {
        args: [
          "-c",
          `DOCKER_BUILDKIT=0 "$@"`,
          "sh",
          ...peerDocker!,
          "build",
          "--no-cache",
          ...FLAGS,
          "-t",
          tag,
          dir,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal(stepOutput(log), EXPECTED, log);
    } finally {
      await docker(["rmi", tag]);
    }
  });
});

Deno.test("build --cgroup-parent: each RUN container's cgroup is under it", async () => {
  const parent = `skiff-test-bp-${Deno.pid}`;
  try {
    await withBusybox(async (root) => {
      const dir = await Deno.makeTempDir({ prefix: "skiff-buildflags-" });
      try {
        Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN cat /proc/self/cgroup\n");
        const out = await root.ok(["build", "--cgroup-parent", parent, "-t", "bp", dir]);
        // every hierarchy the step sees (v1 controllers or the v2 one) names the parent
        const lines = stepOutput(out).split("\n").filter((l) =>
          /^\d+:[^:]*:\//.test(l) && !l.includes("systemd")
        );
        assert.ok(lines.length > 0, out);
        for (const line of lines) assert.match(line, new RegExp(`:/${parent}/[0-9a-f]{64}$`), out);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  } finally {
    // docker leaves a parent in place; the test removes what it made
    for (const base of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
      for (const e of [...Deno.readDirSync(base)]) {
        for (const path of [`${base}/${e.name}/${parent}`, `${base}/${parent}`]) {
          try {
            Deno.removeSync(path);
          } catch { /* absent */ }
        }
      }
    }
  }
});
