// `info`, `system df` and `system prune`: what scripts ask a docker host (`docker info --format
// '{{.ServerVersion}}'`, the counts), its disk usage with docker's arithmetic, and the prune in
// docker's order with its question and its report; the docker peer's field names where it runs.

import * as assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { runDetached } from "./detach_helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { VERSION } from "../lib/version.ts";

const names = async (root: TestRoot, args: string[]) =>
  (await root.ok([...args, "--format", "{{.Names}}"])).trim().split("\n").filter(Boolean).sort();

Deno.test("info: docker's layout and --format, the counts of this root", async () => {
  await withBusybox(async (root) => {
    await runDetached(root, ["--name", "up", "busybox", "sleep", "60"]);
    await root.ok(["create", "--name", "made", "busybox", "true"]);
    const text = await root.ok(["info"]);
    assert.match(
      text,
      /^Client:\n Context: {4}default\n Debug Mode: false\n\nServer:\n Containers: 2\n {2}Running: 1\n {2}Paused: 0\n {2}Stopped: 1\n Images: 1\n/,
    );
    assert.match(text, new RegExp(`^ Server Version: ${VERSION.replaceAll(".", "\\.")}$`, "m"));
    assert.match(text, new RegExp(`^ Docker Root Dir: ${root.path}$`, "m"));
    assert.match(text, /^ Storage Driver: overlay2$/m);
    assert.match(text, /^ Cgroup Version: [12]$/m);
    assert.match(text, new RegExp(`^ Kernel Version: ${Deno.osRelease().replaceAll(".", "\\.")}$`, "m"));
    assert.match(text, /^ CPUs: \d+$/m);
    assert.match(text, /^ Total Memory: [\d.]+[KMGT]iB$/m);
    const fields = await root.ok([
      "info",
      "--format",
      "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.ServerVersion}} {{.OSType}}",
    ]);
    assert.equal(fields, `2 1 1 1 ${VERSION} linux\n`);
    const json = JSON.parse(await root.ok(["info", "--format", "{{json .}}"]));
    assert.deepEqual(Object.keys(json).slice(0, 6), [
      "ID",
      "Containers",
      "ContainersRunning",
      "ContainersPaused",
      "ContainersStopped",
      "Images",
    ]);
    assert.equal(json.ClientInfo.Context, "default");
    assert.match(json.ID, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.equal(json.ID, JSON.parse(await root.ok(["info", "-f", "json"])).ID, "stable");
    // system info is info; template errors as docker's (parse 64, a missing field 1)
    assert.equal(await root.ok(["system", "info", "-f", "{{.Images}}"]), "1\n");
    const unparsed = await root.skiff(["info", "--format", "{{.ID"]);
    assert.equal(unparsed.code, 64);
    const missing = await root.skiff(["info", "--format", "{{.Bogus}}"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /can't evaluate field Bogus in type system\.info/);
  });
});

Deno.test("system df: images, containers and volumes with docker's ACTIVE and RECLAIMABLE", async () => {
  await withBusybox(async (root) => {
    await runDetached(root, ["--name", "up", "busybox", "sleep", "60"]);
    await root.ok([
      "run",
      "--name",
      "wrote",
      "-v",
      "/v",
      "busybox",
      "sh",
      "-c",
      "head -c 5000 /dev/zero > /f; head -c 3000 /dev/zero > /v/x",
    ]);
    const rows = (await root.ok(["system", "df"])).trim().split("\n").map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    const byType = Object.fromEntries(rows.slice(1).map((r) => [r[0], r.slice(1)]));
    assert.deepEqual(byType["Images"].slice(0, 2), ["1", "1"]);
    assert.equal(byType["Images"][3], "0B (0%)", "the one image is used");
    assert.deepEqual(byType["Containers"], ["2", "1", "5kB", "5kB (100%)"]);
    assert.deepEqual(byType["Local Volumes"], ["1", "1", "3kB", "0B (0%)"]);
    assert.deepEqual(byType["Build Cache"], ["0", "0", "0B", "0B"]);
    await root.ok(["rm", "wrote"]); // its anonymous volume stays, unused now
    const json = (await root.ok(["system", "df", "--format", "{{json .}}"])).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(Object.keys(json[0]), ["Active", "Reclaimable", "Size", "TotalCount", "Type"]);
    assert.deepEqual(json[2], {
      Active: "0",
      Reclaimable: "3kB (100%)",
      Size: "3kB",
      TotalCount: "1",
      Type: "Local Volumes",
    });
    const bad = await root.skiff(["system", "df", "--format", "{{.Bogus}}"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /can't evaluate field Bogus in type \*formatter\.diskUsageImagesContext/);
  });
});

Deno.test("system prune: the question, then docker's prunes in its order; -a, --volumes, --filter", async () => {
  await withBusybox(async (root) => {
    await runDetached(root, ["--name", "up", "busybox", "sleep", "60"]);
    await root.ok([
      "create",
      "--name",
      "old",
      "--label",
      "keep=no",
      "-v",
      "/anon",
      "-v",
      "named:/named",
      "busybox",
      "true",
    ]);
    await root.ok(["create", "--name", "kept", "--label", "keep=yes", "busybox", "true"]);
    await root.ok(["network", "create", "unused"]);
    await root.ok(["tag", "busybox", "other:tag"]);
    // no answer: nothing goes
    const asked = await root.skiff(["system", "prune"], { stdin: "" });
    assert.equal(asked.code, 0);
    assert.equal(
      asked.stdout,
      "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n" +
        "  - all dangling images\n  - all dangling build cache\n\nAre you sure you want to continue? [y/N] ",
    );
    assert.deepEqual(await names(root, ["ps", "-a"]), ["kept", "old", "up"]);
    // a bad filter: nothing goes either
    const bad = await root.skiff(["system", "prune", "-f", "--filter", "until=bogus"]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'skiff: failed to parse value as time or duration: "bogus"\n');
    const volumesUntil = await root.skiff(["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert.equal(volumesUntil.code, 1);
    assert.equal(volumesUntil.stderr, 'skiff: ERROR: The "until" filter is not supported with "--volumes"\n');
    // --filter label: only what has it (the network has no such label: it stays, as in docker)
    const labelled = await root.ok(["system", "prune", "-f", "--filter", "label=keep=no"]);
    assert.match(labelled, /^Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: \S+\n$/);
    assert.deepEqual(await names(root, ["ps", "-a"]), ["kept", "up"]);
    assert.match(await root.ok(["network", "ls", "--format", "{{.Name}}"]), /^unused$/m);
    // -a --volumes: every unused image, anonymous unused volumes (named ones stay, as volume prune)
    const all = await root.ok(["system", "prune", "-af", "--volumes"]);
    assert.match(
      all,
      /^Deleted Containers:\n[0-9a-f]{64}\n\nDeleted Networks:\nunused\n\nDeleted Volumes:\n[0-9a-f]{64}\n\n/,
    );
    assert.match(all, /Total reclaimed space: \S+\n$/);
    assert.deepEqual(await names(root, ["ps", "-a"]), ["up"]);
    assert.deepEqual((await root.ok(["volume", "ls", "-q"])).trim(), "named");
    // busybox is used by `up`: both its tags stay (docker keeps an image a container uses)
    assert.match(await root.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]), /busybox:latest/);
    assert.ok(Deno.statSync(join(root.path, "volumes", "named")).isDirectory);
  });
});

// docker where the peer runs (/tmp/peers/env.sh): skiff's info fields are docker's, in its order
Deno.test("info's fields are docker's names in docker's order (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  await withBusybox(async (root) => {
    const d = await docker(["info", "--format", "{{json .}}"]);
    assert.equal(d.code, 0, d.stderr);
    const theirs = Object.keys(JSON.parse(d.stdout));
    const ours = Object.keys(JSON.parse(await root.ok(["info", "--format", "{{json .}}"])));
    assert.deepEqual(ours.filter((k) => !theirs.includes(k)), [], "no field docker does not have");
    assert.deepEqual(theirs.filter((k) => ours.includes(k)), ours, "docker's order");
  });
});

Deno.test("network prune --filter: label and until, as docker's", async () => {
  await withBusybox(async (root) => {
    await root.ok(["network", "create", "--label", "tier=test", "labelled"]);
    await root.ok(["network", "create", "plain"]);
    assert.equal(
      await root.ok(["network", "prune", "-f", "--filter", "label=tier=test"]),
      "Deleted Networks:\nlabelled\n\n",
    );
    assert.equal(await root.ok(["network", "prune", "-f", "--filter", "until=1h"]), "", "made just now");
    const bad = await root.skiff(["network", "prune", "-f", "--filter", "bogus=1"]);
    assert.equal(bad.code, 1);
    assert.match(await root.ok(["network", "ls", "--format", "{{.Name}}"]), /^plain$/m);
    assert.equal(await root.ok(["network", "prune", "-f"]), "Deleted Networks:\nplain\n\n");
  });
});

Deno.test("system prune --volumes --filter label: only the volumes it names; an unreadable record stops a volume prune", async () => {
  await withBusybox(async (root) => {
    await root.ok(["volume", "create", "--label", "tier=test", "labelled"]);
    await root.ok(["run", "--rm", "--label", "tier=test", "-v", "/anon", "busybox", "true"]); // its volume goes with --rm
    await root.ok(["create", "--name", "holder", "-v", "/held", "busybox", "true"]);
    await root.ok(["rm", "holder"]); // its anonymous volume stays, unused
    const before = (await root.ok(["volume", "ls", "-q"])).trim().split("\n").sort();
    assert.equal(before.length, 2);
    // the anonymous one has no such label: it stays; the named one is not anonymous: it stays too
    const out = await root.ok(["system", "prune", "-f", "--volumes", "--filter", "label=tier=test"]);
    assert.equal(out, "Total reclaimed space: 0B\n");
    assert.deepEqual((await root.ok(["volume", "ls", "-q"])).trim().split("\n").sort(), before);
    // a container whose record cannot be read may still mount a volume: none is pruned then
    await root.ok(["create", "--name", "broken", "-v", "/mine", "busybox", "true"]);
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "broken"])).trim();
    Deno.writeTextFileSync(join(root.path, "containers", id, "container.json"), "{not json");
    const refused = await root.skiff(["volume", "prune", "-f"]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(`cannot tell which volumes are in use: the record of container ${id}`),
    );
    assert.equal((await root.ok(["volume", "ls", "-q"])).trim().split("\n").length, 3);
    await root.ok(["rm", "-f", id]);
  });
});

Deno.test("info: insecure registries as docker splits them; host-gateway with a broken daemon.json", async () => {
  await withBusybox(async (root) => {
    const env = { SKIFF_INSECURE_REGISTRIES: "myreg:5000,10.1.0.0/16" };
    const text = await root.ok(["info"], { env });
    assert.match(
      text,
      / Insecure Registries:\n {2}myreg:5000\n {2}127\.0\.0\.0\/8\n {2}10\.1\.0\.0\/16\n Live Restore Enabled: true\n\n$/,
    );
    const json = JSON.parse(await root.ok(["info", "-f", "{{json .RegistryConfig}}"], { env }));
    assert.deepEqual(json.InsecureRegistryCIDRs, ["127.0.0.0/8", "10.1.0.0/16"]);
    assert.deepEqual(json.IndexConfigs["myreg:5000"], {
      Name: "myreg:5000",
      Mirrors: [],
      Secure: false,
      Official: false,
    });
    // an unreadable daemon.json fails the bridge, not the /etc/hosts of a run that names host-gateway
    Deno.writeTextFileSync(join(root.path, "daemon.json"), "{broken");
    const hosts = await root.ok([
      "run",
      "--rm",
      "--network",
      "none",
      "--add-host",
      "h:host-gateway",
      "busybox",
      "cat",
      "/etc/hosts",
    ]);
    assert.match(hosts, /^10\.89\.0\.1\th$/m);
  });
});

Deno.test("attack: system df and ps -s walk a container's files by fd, never through a symlink it swaps in", async () => {
  await withBusybox(async (root) => {
    // a hundred directories of the container's that keep turning into symlinks to the host's / and
    // back: a walk that lists them and then opens each by path follows some out to the host's tree
    const swap = "for i in $(seq 1 100); do mkdir -p /w/d$i; done; while true; do " +
      "for i in $(seq 1 100); do rmdir /w/d$i; ln -s / /w/d$i; done; " +
      "for i in $(seq 1 100); do rm /w/d$i; mkdir /w/d$i; done; done";
    await runDetached(root, ["--name", "swapper", "busybox", "sh", "-c", swap]);
    for (let i = 0; i < 10; i++) {
      const df = await root.skiff(["system", "df", "--format", "{{.Type}} {{.Size}}"], { timeoutMs: 20_000 });
      assert.equal(df.code, 0, df.stderr);
      const size = df.stdout.split("\n").find((r) => r.startsWith("Containers"))!.split(" ")[1];
      assert.match(size, /^(\d+(\.\d+)?(B|kB))$/, `the container's few bytes, not the host's tree: ${size}`);
      const ps = await root.skiff(["ps", "-s", "--format", "{{.Size}}"], { timeoutMs: 20_000 });
      assert.equal(ps.code, 0, ps.stderr);
    }
  });
});

Deno.test("a container's id already taken is refused, and the existing container stays whole", async () => {
  await withBusybox(async (root) => {
    await runDetached(root, ["--name", "first", "busybox", "sleep", "60"]);
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "first"])).trim();
    const { createContainer } = await import("../lib/state/containers.ts");
    const { StateRoot } = await import("../lib/state/root.ts");
    await assert.rejects(
      createContainer(new StateRoot(root.path), undefined, () => {
        throw new Error("must not be built");
      }, id),
      new RegExp(`container ${id} already exists`),
    );
    assert.equal((await root.ok(["inspect", "-f", "{{.State.Running}}", "first"])).trim(), "true");
    assert.ok(Deno.statSync(join(root.path, "containers", id, "container.json")).isFile);
  });
});

Deno.test("builder prune: dangling step entries, or with -a every one (the next build runs its steps again)", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-builder-ctx-" });
    try {
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN echo hi > /f\n");
      await root.ok(["build", "-t", "cached:1", dir]);
      assert.match(await root.ok(["build", "-t", "cached:1", dir]), /Using cache/);
      const asked = await root.skiff(["builder", "prune"], { stdin: "" });
      assert.equal(
        asked.stdout,
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ",
      );
      // its image is there: not dangling
      assert.equal(await root.ok(["builder", "prune", "-f"]), "Total reclaimed space: 0B\n");
      assert.match(await root.ok(["build", "-t", "cached:1", dir]), /Using cache/);
      const all = await root.ok(["builder", "prune", "-af"]);
      assert.match(all, /^Deleted build cache objects:\n([0-9a-f]{64}\n)+\nTotal reclaimed space: \d+B\n$/);
      assert.doesNotMatch(await root.ok(["build", "-t", "cached:1", dir]), /Using cache/);
      const bad = await root.skiff(["builder", "prune", "-f", "--filter", "bogus=1"]);
      assert.deepEqual([bad.code, bad.stderr], [1, "skiff: invalid filter 'bogus'\n"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("system df -v: docker's four sections, a row per image tag, container and volume", async () => {
  await withBusybox(async (root) => {
    await root.ok(["tag", "busybox", "other:two"]);
    await root.ok([
      "run",
      "--name",
      "wrote",
      "-v",
      "/v",
      "busybox",
      "sh",
      "-c",
      "head -c 5000 /dev/zero > /f; head -c 3000 /dev/zero > /v/x",
    ]);
    const text = await root.ok(["system", "df", "-v"]);
    const sections = text.split(/\n(?=[A-Z][a-z]+ [a-z ]*usage)/);
    assert.match(
      sections[0],
      /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/,
    );
    assert.match(sections[0], /^busybox +latest +[0-9a-f]{12} .+ +1$/m);
    assert.match(sections[0], /^other +two +[0-9a-f]{12} .+ +1$/m);
    assert.match(
      text,
      /Containers space usage:\n\nCONTAINER ID +IMAGE +COMMAND +LOCAL VOLUMES +SIZE +CREATED +STATUS +NAMES\n[0-9a-f]{12} +busybox +"sh -c 'head -c 5000…" +1 +5kB +.* +Exited \(0\) .* +wrote\n/,
    );
    assert.match(text, /Local Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\n[0-9a-f]{64} +1 +3kB\n/);
    assert.match(
      text,
      /\nBuild cache usage: 0B\n\nCACHE ID +CACHE TYPE +SIZE +CREATED +LAST USED +USAGE +SHARED\n$/,
    );
  });
});
