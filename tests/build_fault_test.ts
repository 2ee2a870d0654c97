// kill -9 of `skiff build` during a RUN, during a COPY, and while a step's layer is being stored:
// the store stays consistent (`system check`), and once the next command has run (a build, whose
// sweep removes the RUN containers of dead builders) no container, mount, cgroup, process or tmp
// entry is left.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { findLeaks, MAIN, type TestRoot, withBusybox } from "./helpers.ts";

/** Starts a build, kills it with SIGKILL once `ready(output so far)` says so; returns the output. */
async function killBuild(root: TestRoot, dir: string, ready: (out: string) => boolean): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, "build", "-t", "killed", dir],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let out = "";
  let killed = false;
  const deadline = Date.now() + 60_000;
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  // the output is read as it comes; `ready` is also asked between reads (a layer being stored prints nothing)
  const poll = setInterval(() => {
    if (!killed && (ready(out) || Date.now() > deadline)) {
      killed = true;
      child.kill("SIGKILL");
    }
  }, 5);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
  } finally {
    clearInterval(poll);
  }
  const status = await child.status;
  assert(killed, `the build was never killed:\n${out}\n${await stderr}`);
  assertEqual(status.signal, "SIGKILL", `the build finished before the kill:\n${out}`);
  return out;
}

const tmpEntries = (root: TestRoot) => {
  try {
    return [...Deno.readDirSync(join(root.path, "tmp"))].map((e) => e.name);
  } catch {
    return [];
  }
};

async function checkAfter(root: TestRoot, dir: string, what: string) {
  const ids = root.containerIds();
  // the next command: another build in the same root
  Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN true\n");
  await root.ok(["build", "-q", dir]);
  const check = await root.skiff(["system", "check"]);
  assertEqual(check.code, 0, `${what}: ${check.stdout}${check.stderr}`);
  assert(check.stdout.includes("no problems"), `${what}: ${check.stdout}`);
  assertEqual(root.containerIds(), [], what);
  assertEqual(tmpEntries(root), [], what);
  const leaks = findLeaks(root.path, ids);
  assertEqual(leaks.mounts, [], what);
  assertEqual(leaks.pids, [], what);
  // skiff's parent groups may be another test's on this machine; the build containers' must be gone
  assertEqual(leaks.cgroups.filter((c) => ids.some((id) => c.includes(id))), [], what);
  assertEqual((await root.skiff(["inspect", "killed"])).code, 1, what); // no tag moved
}

Deno.test("build faults: kill -9 during a RUN, a COPY and a layer's commit leaves a consistent store, nothing behind", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-build-fault-" });
    try {
      // during a RUN: the container runs (its process dies with the builder)
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN echo started && sleep 30\n");
      const run = await killBuild(root, dir, (out) => out.includes("started\n"));
      assert(run.includes(" ---> Running in "), run);
      assertEqual(root.containerIds().length, 1); // what the next build must remove
      await checkAfter(root, dir, "during RUN");

      // docker's daemon kills and removes a cancelled build's RUN container: the next `ps -a` (or
      // `container prune`) must not show it, and removes it. Before the sweep in the listing
      // commands, `ps -a` showed it "Exited (137)" and `container prune` listed it.
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN echo started && sleep 30\n");
      for (const listing of [["ps", "-a", "-q", "--no-trunc"], ["container", "prune", "-f"]]) {
        await killBuild(root, dir, (out) => out.includes("started\n"));
        const ids = root.containerIds();
        assertEqual(ids.length, 1, listing.join(" "));
        const shown = await root.ok(listing);
        assert(
          !shown.includes(ids[0]),
          `${listing.join(" ")} showed the killed build's container:\n${shown}`,
        );
        assertEqual(root.containerIds(), [], listing.join(" "));
        const leaks = findLeaks(root.path, ids);
        assertEqual([leaks.mounts, leaks.pids], [[], []], listing.join(" "));
        assertEqual(leaks.cgroups.filter((c) => c.includes(ids[0])), [], listing.join(" "));
      }

      // during a COPY of a 200 MB file (read, hashed, stored as a layer)
      const big = join(dir, "big");
      const f = Deno.openSync(big, { write: true, create: true });
      const chunk = new Uint8Array(1 << 20).fill(7);
      for (let i = 0; i < 200; i++) f.writeSync(chunk);
      f.close();
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nCOPY big /big\n");
      let copyAt = 0;
      const copy = await killBuild(root, dir, (out) => {
        if (!out.includes("Step 2/2 : COPY")) return false;
        copyAt ||= Date.now();
        return Date.now() - copyAt > 100;
      });
      assert(!copy.split("Step 2/2")[1].includes(" ---> "), `the COPY had finished:\n${copy}`);
      await checkAfter(root, dir, "during COPY");
      Deno.removeSync(big);

      // while a RUN's layer is stored: its upper dir is being written into <root>/tmp/layer-*
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/x bs=1M count=200 2>/dev/null && echo written\n",
      );
      let sawTmp = false;
      const commit = await killBuild(root, dir, (out) => {
        sawTmp = out.includes("written\n") && tmpEntries(root).some((n) => n.startsWith("layer-"));
        return sawTmp;
      });
      assert(sawTmp, "killed before the layer was being stored");
      assert(!commit.includes("Removing intermediate container"), commit);
      await checkAfter(root, dir, "during a layer's commit");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
