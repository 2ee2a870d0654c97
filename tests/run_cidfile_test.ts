// run/create --cidfile (docker's CLI: made first, never over an existing one, the id without a
// newline, gone again when no container came to be) and --add-host NAME:host-gateway (the default
// bridge's address, as docker's default host-gateway-ip; the entry kept as given).

import * as assert from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";
import { runDetached } from "./detach_helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";

Deno.test("--cidfile: run, run -d and create write the id; an existing file or a failure leaves none", async () => {
  await withBusybox(async (root) => {
    const dir = join(root.path, "cids");
    Deno.mkdirSync(dir);
    const path = (n: string) => join(dir, n);
    await root.ok(["run", "--name", "fg", "--cidfile", path("fg"), "busybox", "true"]);
    const fgId = (await root.ok(["inspect", "-f", "{{.Id}}", "fg"])).trim();
    assert.equal(Deno.readTextFileSync(path("fg")), fgId, "the id, no newline");
    assert.equal(
      (await root.ok(["inspect", "-f", "{{.HostConfig.ContainerIDFile}}", "fg"])).trim(),
      path("fg"),
    );
    const bg = await runDetached(root, ["--cidfile", path("bg"), "busybox", "sleep", "30"]);
    assert.equal(Deno.readTextFileSync(path("bg")), bg);
    const made = (await root.ok(["create", "--cidfile", path("made"), "busybox", "true"])).trim();
    assert.equal(Deno.readTextFileSync(path("made")), made);
    const before = root.containerIds().length;
    // an existing file: refused, untouched (run 125, create 1)
    for (const [verb, code] of [["run", 125], ["create", 1]] as const) {
      const r = await root.skiff([verb, "--cidfile", path("fg"), "busybox", "true"]);
      assert.equal(r.code, code);
      assert.equal(
        r.stderr,
        `skiff: container ID file found, make sure the other container isn't running or delete ${
          path("fg")
        }\n`,
      );
    }
    assert.equal(Deno.readTextFileSync(path("fg")), fgId);
    // a failure before the container exists: no file left
    const badName = await root.skiff([
      "create",
      "--cidfile",
      path("bad"),
      "--name",
      "bad/name",
      "busybox",
      "true",
    ]);
    assert.equal(badName.code, 1);
    const noImage = await root.skiff(["run", "--cidfile", path("none"), "--pull", "never", "nosuch", "true"]);
    assert.equal(noImage.code, 125);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["bg", "fg", "made"]);
    assert.equal(root.containerIds().length, before);
    const nowhere = await root.skiff(["create", "--cidfile", join(dir, "no", "x"), "busybox", "true"]);
    assert.equal(nowhere.code, 1);
    assert.equal(
      nowhere.stderr,
      `skiff: failed to create the container ID file: open ${
        join(dir, "no", "x")
      }: no such file or directory\n`,
    );
  });
});

Deno.test("--add-host NAME:host-gateway: the default bridge's address, the entry kept as given", async () => {
  await withBusybox(async (root) => {
    for (const network of ["none", "host", "bridge"]) {
      const hosts = await root.ok([
        "run",
        "--rm",
        "--network",
        network,
        "--add-host",
        "host.docker.internal:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
      ]);
      assert.match(hosts, /^10\.89\.0\.1\thost\.docker\.internal$/m, network);
    }
    await root.ok(["create", "--name", "hg", "--add-host", "h:host-gateway", "busybox", "true"]);
    assert.equal(
      await root.ok(["inspect", "-f", "{{json .HostConfig.ExtraHosts}}", "hg"]),
      '["h:host-gateway"]\n',
    );
    // daemon.json's bip moves it, as docker's bridge address moves its host-gateway-ip
    Deno.writeTextFileSync(join(root.path, "daemon.json"), '{"bip": "10.123.0.1/24"}');
    const moved = await root.ok([
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
    assert.match(moved, /^10\.123\.0\.1\th$/m);
  });
});

Deno.test("docker keeps host-gateway as given too (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  const d = await docker(["create", "--add-host", "h:host-gateway", "localhost/bb:latest", "true"]);
  assert.equal(d.code, 0, d.stderr);
  try {
    const extra = await docker(["inspect", "-f", "{{json .HostConfig.ExtraHosts}}", d.stdout.trim()]);
    assert.equal(extra.stdout, '["h:host-gateway"]\n');
  } finally {
    await docker(["rm", "-f", d.stdout.trim()]);
  }
});

Deno.test("run -d with --cidfile asked twice (no answer came the first time): one container, started", async () => {
  const { withDetached } = await import("./detach_helpers.ts");
  await withDetached(async (root) => {
    const [
      { runRequest },
      { parseArgs },
      { RUN_OPTIONS },
      { runDetachedRequest },
      { StateRoot },
      { newContainerId },
    ] = await Promise.all([
      import("../lib/cli/run_flags.ts"),
      import("../lib/cli/args.ts"),
      import("../lib/cli/run_options.ts"),
      import("../lib/engine/detach.ts"),
      import("../lib/state/root.ts"),
      import("../lib/state/containers.ts"),
    ]);
    const parsed = parseArgs(["-d", "busybox", "sleep", "60"], {
      verb: "run",
      options: RUN_OPTIONS,
      stopAtPositional: 1,
    });
    const request = runRequest(parsed, false);
    request.id = newContainerId();
    const state = new StateRoot(root.path);
    const first = await runDetachedRequest(state, request);
    const again = await runDetachedRequest(state, request);
    assert.ok(first.ok && again.ok, JSON.stringify([first, again]));
    assert.equal(first.id, request.id);
    assert.equal(again.id, request.id);
    assert.deepEqual(root.containerIds(), [request.id]);
    assert.equal((await root.ok(["inspect", "-f", "{{.State.Running}}", request.id])).trim(), "true");
  });
});
