// `run/create --platform`: an image here of that platform runs; one of another platform counts as
// missing and is pulled for that platform (docker 20.10's daemon), `--pull never` refuses it with
// docker's words; a specifier docker cannot read fails before anything is made.

import * as assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";

const host = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
const other = host === "amd64" ? "arm64" : "amd64";

Deno.test("run --platform: the host's runs the image here; another's is pulled, or refused with --pull never", async () => {
  await withBusybox(async (root) => {
    const here = await root.skiff(["run", "--rm", "--platform", `linux/${host}`, "busybox", "echo", "ok"]);
    assert.equal(here.code, 0, here.stderr);
    assert.equal(here.stdout, "ok\n");
    assert.equal(here.stderr, "");
    // the tests' Docker Hub is a closed port: the pull of the other platform fails, nothing is made
    for (const args of [["run", "--rm"], ["run", "-d"], ["create"]]) {
      const r = await root.skiff([...args, "--platform", `linux/${other}`, "busybox", "true"], {
        env: { SKIFF_REGISTRY_RETRIES: "0" },
      });
      assert.equal(r.code, args[0] === "run" ? 125 : 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^Unable to find image 'busybox:latest' locally\n/);
    }
    const never = await root.skiff([
      "run",
      "--rm",
      "--pull",
      "never",
      "--platform",
      `linux/${other}`,
      "busybox",
      "true",
    ]);
    assert.equal(never.code, 125);
    assert.match(
      never.stderr,
      new RegExp(
        `^skiff: image with reference busybox was found but does not match the specified platform: wanted linux/${other}.*, actual: linux/${host}\n$`,
      ),
    );
    const bad =
      '"" is an invalid component of "linux//x": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument';
    for (const [verb, code] of [["run", 125], ["create", 1]] as const) {
      const r = await root.skiff([verb, "--platform", "linux//x", "busybox", "true"]);
      assert.equal(r.code, code);
      assert.equal(r.stderr, `skiff: error parsing specified platform: ${bad}\n`);
    }
    assert.deepEqual(root.containerIds(), []);
  });
});
