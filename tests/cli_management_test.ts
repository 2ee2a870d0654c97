// docker's management-command spellings (`container stop`, `image pull`, `system events`) and the
// help `skiff container` / `skiff image` print, against docker 20.10's lists when the peer runs.

import assert from "node:assert/strict";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { MAIN, withBusybox } from "./helpers.ts";

/** The subcommands a management command's help lists. */
function listed(help: string): string[] {
  const commands = help.split("\nCommands:\n")[1]?.split("\n\n")[0] ?? "";
  return commands.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

async function skiffNoRoot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--no-lazy", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("container/image: help as docker's CLI prints it, and every subcommand it lists answers", async () => {
  await withBusybox(async (root) => {
    for (const command of ["container", "image"]) {
      const help = await root.skiff([command, "--help"]);
      assert.equal(help.code, 0);
      assert.equal(help.stderr, "");
      const bare = await root.skiff([command]);
      assert.equal(bare.code, 0);
      assert.equal(bare.stdout, "");
      assert.equal(bare.stderr.trim(), help.stdout.trim());
      const unknown = await root.skiff([command, "nosuch"]);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stderr.trim(), help.stdout.trim());
      const subcommands = listed(help.stdout);
      assert.ok(subcommands.length >= 12, help.stdout);
      for (const sub of subcommands) {
        const r = await root.skiff([command, sub, "--help"]);
        assert.equal(r.code, 0, `${command} ${sub} --help: ${r.stderr}`);
        assert.match(r.stdout, /^Usage:/m, `${command} ${sub}`);
      }
    }
    const system = await root.ok(["system", "--help"]);
    for (const sub of ["df", "events", "info", "prune"]) assert.ok(listed(system).includes(sub), sub);
  });
});

Deno.test("container/image: a container's life through the management spellings", async () => {
  await withBusybox(async (root) => {
    try {
      await root.ok(["container", "run", "-d", "--name", "mg", "busybox", "sh", "-c", "echo hi; sleep 300"]);
      assert.match(await root.ok(["container", "ls", "--format", "{{.Names}} {{.State}}"]), /^mg running$/m);
      await root.ok(["container", "stop", "-t", "0", "mg"]);
      assert.equal(await root.ok(["container", "wait", "mg"]), "137\n");
      assert.equal(await root.ok(["container", "logs", "mg"]), "hi\n");
      await root.ok(["container", "start", "mg"]);
      await root.ok(["container", "restart", "-t", "0", "mg"]);
      await root.ok(["container", "kill", "mg"]);
      assert.equal(await root.ok(["container", "wait", "mg"]), "137\n");
      await root.ok(["container", "rm", "mg"]);
      assert.equal(await root.ok(["container", "ls", "-a", "-q"]), "");
      assert.match(await root.ok(["image", "ls", "--format", "{{.Repository}}"]), /^busybox$/m);
    } finally {
      await root.skiff(["rm", "-f", "mg"]);
    }
  });
});

Deno.test("container/image/system: the subcommands docker 20.10 lists (where the docker peer runs)", async () => {
  const bare = await skiffNoRoot(["--help"]);
  assert.match(bare.stdout, /^ {2}build {6}/m); // build is a top-level command, as in docker
  if (!await peerDockerReady()) return;
  for (const command of ["container", "image"]) {
    const theirs = listed((await docker([command, "--help"])).stdout);
    const ours = listed((await skiffNoRoot([command, "--help"])).stdout);
    assert.deepEqual(ours, theirs, command);
  }
  const theirs = listed((await docker(["system", "--help"])).stdout);
  const ours = listed((await skiffNoRoot(["system", "--help"])).stdout);
  assert.deepEqual(ours.filter((c) => c !== "check"), theirs); // check (fsck) is skiff's own
});
