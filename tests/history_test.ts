// history: config history newest first, "<missing>" below the top, sizes per layer, docker's flags.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";

Deno.test("history of a committed image: two entries, top has the id, sizes, comment, flags", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "c1", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /data"]);
    await root.ok(["commit", "-m", "five k", "c1", "img:1"]);
    const id = (await root.ok(["inspect", "--format", "{{.Id}}", "img:1"])).trim();
    const lines = (await root.ok(["history", "img:1"])).trimEnd().split("\n");
    assert.match(lines[0], /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    assert.equal(lines.length, 3);
    assert.ok(lines[1].startsWith(id.slice(7, 19)), lines[1]);
    assert.match(lines[1], /sh -c head -c 5000 \/dev\/zero > \/data\s+5kB\s+five k$/);
    assert.ok(lines[2].startsWith("<missing>"), lines[2]);
    assert.match(lines[2], /1\.9\dMB/);

    const quiet = (await root.ok(["history", "-q", "img:1"])).trim().split("\n");
    assert.deepEqual(quiet, [id.slice(7, 19), "<missing>"]);
    const full = (await root.ok([
      "image",
      "history",
      "--no-trunc",
      "-H=false",
      "--format",
      "{{.ID}}|{{.Size}}|{{.CreatedSince}}",
      "img:1",
    ]))
      .trim().split("\n");
    assert.match(full[0], new RegExp(`^${id}\\|5000\\|\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    const json = JSON.parse((await root.ok(["history", "--format", "json", "img:1"])).split("\n")[0]);
    assert.equal(json.Comment, "five k");
  });
});

Deno.test("history: long CREATED BY is cut to 45 with an ellipsis; missing image exits 1", async () => {
  await withBusybox(async (root) => {
    const long = "echo " + "x".repeat(60);
    await root.ok(["run", "--name", "c2", "busybox", "sh", "-c", long]);
    await root.ok(["commit", "c2", "img:2"]);
    const top = (await root.ok(["history", "--format", "{{.CreatedBy}}", "img:2"])).split("\n")[0];
    assert.equal([...top].length, 45);
    assert.ok(top.endsWith("…"));
    const r = await root.skiff(["history", "nosuch"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), "skiff: No such image: nosuch:latest");
    const bad = await root.skiff(["history"]);
    assert.equal(bad.code, 1); // docker's CLI: 1 for a wrong number of arguments
  });
});
