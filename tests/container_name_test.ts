// Container names as docker's daemon takes them: `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (so at least two
// characters, one leading "/" dropped), an empty --name is none (a generated name), and `rename`
// reports a bad or taken new name as "Error when allocating new name: …" after looking the container
// up. docker 20.10's own answers are checked where the peer runs.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";

const INVALID = (name: string) =>
  `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`;

Deno.test("--name: one character and a doubled slash refused, '/name' and '' taken as docker does", async () => {
  await withBusybox(async (root) => {
    for (const [verb, name] of [["run", "a"], ["create", "a"], ["run", "//ab"], ["create", "/"]]) {
      const r = await root.skiff([
        verb,
        ...(verb === "run" ? ["--rm"] : []),
        "--name",
        name,
        "busybox",
        "true",
      ]);
      // the daemon's refusal: docker's run exits 125 for it, its create 1
      assert.equal(r.code, verb === "run" ? 125 : 1, `${verb} --name ${name}: ${r.stderr}`);
      assert.equal(r.stderr, `skiff: ${INVALID(name)}\n`);
      assert.equal(r.stdout, "");
      assert.deepEqual(root.containerIds(), [], "nothing was created");
    }

    await root.ok(["run", "--name", "/ab", "busybox", "true"]);
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", "ab"]), "/ab\n");
    const id = (await root.ok(["create", "--name", "", "busybox", "true"])).trim();
    assert.match(await root.ok(["inspect", "-f", "{{.Name}}", id]), /^\/[a-z]+_[a-z]+(_\d+)?\n$/);
  });
});

Deno.test("rename: the container first, then the new name's reservation, in docker's words", async () => {
  await withBusybox(async (root) => {
    await root.ok(["create", "--name", "ab", "busybox", "true"]);
    const otherId = (await root.ok(["create", "--name", "other", "busybox", "true"])).trim();

    const ghost = await root.skiff(["rename", "ghost", "c"]);
    assert.equal(ghost.code, 1);
    assert.equal(ghost.stderr, "skiff: No such container: ghost\n");

    for (const bad of ["c", "no/slash"]) {
      const r = await root.skiff(["rename", "ab", bad]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `skiff: Error when allocating new name: ${INVALID(`/${bad}`)}\n`);
    }
    const taken = await root.skiff(["rename", "ab", "/other"]);
    assert.equal(taken.code, 1);
    assert.equal(
      taken.stderr,
      `skiff: Error when allocating new name: Conflict. The container name "/other" is already in use by ` +
        `container "${otherId}". You have to remove (or rename) that container to be able to reuse that name.\n`,
    );
    for (const args of [["ab", ""], ["", "xy"]]) {
      const r = await root.skiff(["rename", ...args]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, "skiff: Neither old nor new names may be empty\n");
    }
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", "ab"]), "/ab\n", "nothing was renamed");

    await root.ok(["rename", "ab", "/abc"]);
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", "abc"]), "/abc\n");
  });
});

Deno.test("docker takes and refuses the same names (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  const name = `skiffnametest${crypto.randomUUID().slice(0, 8)}`;
  try {
    await withBusybox(async (root) => {
      for (const [flag, expectCode] of [["a", 125], [`/${name}`, 0], ["//ab", 125]] as const) {
        const d = await docker([
          "run",
          "--rm",
          "--network",
          "none",
          "--name",
          flag,
          "localhost/bb:latest",
          "true",
        ]);
        const s = await root.skiff(["run", "--rm", "--network", "none", "--name", flag, "busybox", "true"]);
        assert.equal(d.code, expectCode, d.stderr);
        assert.equal(s.code, d.code, s.stderr);
        if (expectCode !== 0) {
          assert.match(d.stderr, new RegExp(`Error response from daemon: ${escape(INVALID(flag))}`));
          assert.match(s.stderr, new RegExp(`^skiff: ${escape(INVALID(flag))}\n$`));
        }
      }
      // rename to one character: exit 1 and the same words after docker's "Error response from daemon: "
      await docker(["create", "--name", name, "localhost/bb:latest", "true"]);
      await root.ok(["create", "--name", name, "busybox", "true"]);
      const d = await docker(["rename", name, "c"]);
      const s = await root.skiff(["rename", name, "c"]);
      assert.equal(d.code, 1, d.stderr);
      assert.equal(s.code, 1);
      const words = `Error when allocating new name: ${INVALID("/c")}`;
      assert.match(d.stderr, new RegExp(`^Error response from daemon: ${escape(words)}\n`));
      assert.equal(s.stderr, `skiff: ${words}\n`);
    });
  } finally {
    await docker(["rm", "-f", name]);
  }
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
