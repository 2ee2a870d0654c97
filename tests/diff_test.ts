// skiff diff (A/C/D from the upper dir, sorted as docker prints them) and skiff export (the merged
// filesystem as a tar: upper over the image layers, whiteouts honoured).

import assert from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

const SCRIPT = [
  "echo new > /root/added.txt",
  "echo changed >> /etc/passwd",
  "rm /etc/group",
  "mkdir -p /newdir/sub && touch /newdir/sub/f",
  "rm -rf /home/user && mkdir /home/user && touch /home/user/fresh",
].join(" && ");

Deno.test("diff: added, changed and deleted paths in docker's order; placeholders hidden", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "dd", "busybox", "sh", "-c", SCRIPT]);
    const out = await root.ok(["diff", "dd"]);
    assert.equal(
      out,
      [
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "C /home",
        "C /home/user",
        "A /home/user/fresh",
        "A /newdir",
        "A /newdir/sub",
        "A /newdir/sub/f",
        "C /root",
        "A /root/added.txt",
        "",
      ].join("\n"),
    );
    // a container that changed nothing shows nothing (its /etc/hosts etc. are the runtime's)
    await root.ok(["run", "--name", "quiet", "busybox", "true"]);
    assert.equal(await root.ok(["diff", "quiet"]), "");
    const ghost = await root.skiff(["diff", "ghost"]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /No such container: ghost/);
  });
});

Deno.test("diff: a running container", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "rr", async () => {
      const host = await Deno.makeTempFile();
      try {
        await root.ok(["cp", host, "rr:/tmp/put"]);
        assert.equal(await root.ok(["diff", "rr"]), "C /tmp\nA /tmp/put\n");
      } finally {
        await Deno.remove(host);
      }
    });
  });
});

Deno.test("export: the merged filesystem as a tar, to a file and to stdout", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "ee", "busybox", "sh", "-c", SCRIPT]);
    const dir = await Deno.makeTempDir({ prefix: "skiff-export-" });
    try {
      const file = join(dir, "fs.tar");
      await root.ok(["export", "-o", file, "ee"]);
      const list = new TextDecoder().decode(
        (await new Deno.Command("tar", { args: ["-tf", file] }).output()).stdout,
      ).split("\n");
      assert.ok(list.includes("bin/busybox"), "image files are there");
      assert.ok(list.includes("root/added.txt"), "added file is there");
      assert.ok(list.includes("home/user/fresh"));
      assert.ok(!list.includes("etc/group"), "deleted file is gone");
      assert.ok(!list.some((n) => n.includes(".wh.")), "no whiteout markers in an export");
      const x = join(dir, "x");
      Deno.mkdirSync(x);
      assert.ok((await new Deno.Command("tar", { args: ["-xf", file, "-C", x] }).output()).success);
      assert.match(Deno.readTextFileSync(join(x, "etc/passwd")), /changed\n$/);
      assert.equal(Deno.readLinkSync(join(x, "bin/sh")), "busybox");

      // stdout gives the same archive
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(import.meta.dirname!, "../main.ts"), "--root", root.path, "export", "ee"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0);
      assert.deepEqual(out.stdout, Deno.readFileSync(file));
      // no temp file left next to the output
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["fs.tar", "x"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
