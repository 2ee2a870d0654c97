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
      /^Client:\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n/,
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
