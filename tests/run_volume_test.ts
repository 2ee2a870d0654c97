// `run -v`: host binds (rw and ro, directories and files), named volumes that outlive containers and
// get the image's files when empty, anonymous volumes that go with --rm, and docker's refusals.

import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

function volumeNames(root: TestRoot): string[] {
  try {
    return [...Deno.readDirSync(join(root.path, "volumes"))].filter((e) => e.isDirectory).map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

Deno.test("run -v: host directory and file binds, read-write and read-only", async () => {
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir");
    Deno.mkdirSync(host);
    Deno.writeTextFileSync(join(host, "in"), "from host\n");
    const r = await root.skiff([
      "run",
      "--rm",
      "-v",
      `${host}:/data`,
      "-v",
      `${join(host, "in")}:/etc/motd:ro`,
      "busybox",
      "sh",
      "-c",
      "cat /data/in /etc/motd; echo out > /data/out; echo x > /etc/motd && echo WROTE; true",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, "from host\nfrom host\n");
    assertMatch(r.stderr, /Read-only file system/);
    assertEquals(Deno.readTextFileSync(join(host, "out")), "out\n");
    assertEquals(Deno.readTextFileSync(join(host, "in")), "from host\n");
    // docker's -v creates a missing host directory
    const missing = join(root.path, "made-by-run");
    await root.ok(["run", "--rm", "-v", `${missing}:/m`, "busybox", "true"]);
    assert(Deno.statSync(missing).isDirectory);
  });
});

Deno.test("run -v: a named volume outlives its containers and starts with the image's files", async () => {
  await withBusybox(async (root) => {
    // /etc of the image is copied into the new, empty volume
    const first = await root.ok([
      "run",
      "--rm",
      "-v",
      "conf:/etc",
      "busybox",
      "sh",
      "-c",
      "ls /etc; echo kept > /etc/note",
    ]);
    assertMatch(first, /^passwd$/m);
    const second = await root.ok(["run", "--rm", "-v", "conf:/etc", "busybox", "cat", "/etc/note"]);
    assertEquals(second, "kept\n");
    // nocopy: an empty volume stays empty (the image has /home/user)
    assertEquals(
      await root.ok(["run", "--rm", "-v", "bare:/home:nocopy", "busybox", "ls", "-A", "/home"]),
      "",
    );
    assertEquals(
      await root.ok(["run", "--rm", "-v", "homes:/home", "busybox", "ls", "-A", "/home"]),
      "user\n",
    );
    assertEquals(volumeNames(root), ["bare", "conf", "homes"]);
    for (const name of ["bare", "conf", "homes"]) await root.ok(["volume", "rm", name]);
  });
});

Deno.test("run -v /path: an anonymous volume, removed with --rm, recorded in Mounts", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--rm", "-v", "/scratch", "busybox", "touch", "/scratch/file"]);
    assertEquals(volumeNames(root), []);
    await root.ok(["run", "--name", "keeper", "-v", "/scratch", "-v", "named:/n:ro", "busybox", "true"]);
    const [id] = root.containerIds();
    const record = JSON.parse(Deno.readTextFileSync(join(root.path, "containers", id, "container.json")));
    const mounts = record.Mounts.map((m: Record<string, unknown>) => [m.Type, m.Destination, m.RW, m.Mode]);
    assertEquals(mounts, [["volume", "/scratch", true, ""], ["volume", "/n", false, "ro"]]);
    assertEquals(volumeNames(root).length, 2);
    await root.ok(["rm", "-v", "keeper"]);
    assertEquals(volumeNames(root), ["named"]);
    await root.ok(["volume", "rm", "named"]);
  });
});

Deno.test("run -v: docker's refusals, nothing created", async () => {
  await withBusybox(async (root) => {
    for (
      const [spec, message] of [
        ["data:relative", /invalid mount path: 'relative' mount path must be absolute/],
        ["/host:/", /destination can't be '\/'/],
        ["a:b:c:d", /invalid volume specification: 'a:b:c:d'/],
        ["/host:/x:bogus", /invalid mode: bogus/],
        ["bad$name:/x", /includes invalid characters for a local volume name/],
      ] as const
    ) {
      const r = await root.skiff(["run", "--rm", "-v", spec, "busybox", "true"]);
      assertEquals(r.code, 125, `${spec}: ${r.stderr}`);
      assertMatch(r.stderr, message);
    }
    const dup = await root.skiff(["run", "--rm", "-v", "/a", "-v", "vol:/a", "busybox", "true"]);
    assertEquals(dup.code, 125);
    assertMatch(dup.stderr, /Duplicate mount point: \/a/);
    // a name conflict after the volumes were made takes the anonymous ones back
    await root.ok(["run", "--name", "taken", "busybox", "true"]);
    const conflict = await root.skiff(["run", "--name", "taken", "-v", "/anon", "busybox", "true"]);
    assertEquals(conflict.code, 125);
    assertEquals(volumeNames(root), []);
    assertEquals(root.containerIds().length, 1);
  });
});
