// Attack: a hostile image declares a VOLUME below /proc. The container's proc (and sysfs, /dev) are
// mounted before its volumes, and an empty volume gets a copy of what is at its path: skiff, root
// with every capability, read the container's procfs there and wrote it into the volume, on the
// thread that every container of a supervisor waits for. Under /proc/sys/kernel/random (this test)
// that is a few sysctl values; an image's VOLUME /proc would have it copy /proc/kallsyms with the
// kernel's addresses, /proc/kcore (the kernel's memory, 128 TiB on x86-64: the disk fills, the
// supervisor never comes back) and read /proc/kmsg (blocks). Not run in that form: on the old code
// it fills the disk (since the fix a VOLUME /proc is an empty volume, as the image's /proc is).
// docker copies the image's own files (none here): the volume stays empty. Below /proc, docker's
// runtime refuses the volume altogether (runc's "inside /proc", tests/proc_mount_test.ts), and so
// does skiff now, before any copy.
// Old code: 3 of 3 runs copied the procfs files into the volume; fixed: 0 of 3.
// Since skiff copies at create, as docker does, from the image's layers (nothing is mounted there),
// the copy at start is left only for records an older skiff made: the second test runs that path.

import assert from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar, withBusybox } from "./helpers.ts";
import { withDetached } from "./detach_helpers.ts";
import { StateRoot } from "../lib/state/root.ts";

Deno.test("attack: an image's VOLUME below /proc has skiff copy procfs into the volume", async () => {
  await withBusybox(async (root) => {
    for (const path of ["/proc/sys/kernel/random", "/sys/kernel", "/dev/pts"]) {
      await root.ok(["import", "--change", `VOLUME ${path}`, await busyboxTar(), "hostile:latest"]);
      const r = await root.skiff(["run", "--rm", "hostile", "sh", "-c", `ls -A ${path} | wc -l`]);
      if (path.startsWith("/proc/")) {
        assert.equal(r.code, 125, r.stderr);
        assert.match(r.stderr, /cannot be mounted because it is inside \/proc/);
        await root.ok(["rmi", "hostile"]);
        continue;
      }
      assert.equal(r.code, 0, r.stderr);
      // the volume over the path shows what was copied into it
      assert.equal(r.stdout.trim(), "0", `${path}: the kernel's files were copied into the volume`);
      await root.ok(["rmi", "hostile"]);
    }
  });
});

Deno.test("attack: the same VOLUMEs on a record of an older skiff, whose copy-up runs at start", async () => {
  await withDetached(async (root) => {
    for (const path of ["/sys/kernel", "/dev/pts"]) {
      await root.ok(["import", "--change", `VOLUME ${path}`, await busyboxTar(), "hostile:latest"]);
      const id = (await root.ok(["create", "hostile", "sh", "-c", `ls -A ${path} | wc -l`])).trim();
      // as an older skiff wrote it: without VolumesCopiedAtCreate, its start copies an empty volume
      const file = join(new StateRoot(root.path).container(id), "container.json");
      const record = JSON.parse(Deno.readTextFileSync(file));
      assert.equal(record.VolumesCopiedAtCreate, true);
      delete record.VolumesCopiedAtCreate;
      Deno.writeTextFileSync(file, JSON.stringify(record));
      assert.equal(
        (await root.ok(["start", "-a", id])).trim(),
        "0",
        `${path}: the kernel's files were copied`,
      );
      await root.ok(["rm", "-v", id]);
      await root.ok(["rmi", "hostile"]);
    }
  });
});
