// What the start-time work of issue 13 changed in `run`, checked against the real kernel:
// - a --rm container's overlay root is mounted `volatile` (podman does the same for --rm): no sync
//   of the upper filesystem when the container's mount namespace goes, which cost 0.4-12 ms of every
//   run's exit here; a container without --rm keeps the default;
// - the mark a volatile mount leaves in the work dir (overlayfs refuses that upper dir until it is
//   gone) never stops a later mount of the container;
// - `run --rm` leaves neither the container's directory nor its tombstone behind.

import { equal as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";

/** The options of the container's root mount as its own mountinfo shows them. */
const ROOT_OPTIONS = ["sh", "-c", "awk '$5 == \"/\" { print $NF }' /proc/self/mountinfo"];

function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = Deno.osRelease().split(".").map((n) => parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

Deno.test("run --rm: the overlay root is volatile (where the kernel has it); without --rm it is not", async () => {
  await withBusybox(async (root) => {
    const rm = await root.ok(["run", "--rm", "--network", "none", "busybox", ...ROOT_OPTIONS]);
    // Linux 5.10+ shows it as fsync=volatile (newer) or volatile; before it, the mount falls back
    assertEqual(/volatile/.test(rm), kernelAtLeast(5, 10), rm);
    const kept = await root.ok(["run", "--name", "kept", "--network", "none", "busybox", ...ROOT_OPTIONS]);
    assert(!/volatile/.test(kept), kept);
    await root.ok(["rm", "kept"]);
  });
});

Deno.test("run --rm: nothing of the container is left in containers/ or tmp/", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo data > /tmp/f"]);
    assertEqual(root.containerIds().length, 0);
    const tmp = [...Deno.readDirSync(join(root.path, "tmp"))].map((e) => e.name);
    assertEqual(tmp.filter((n) => n.startsWith("rm-")).join(","), "");
  });
});

Deno.test("start: a work dir that carries overlayfs' volatile mark is mounted again", async () => {
  await withBusybox(async (root) => {
    const id = (await root.ok(["create", "--network", "none", "busybox", "cat", "/marker"])).trim();
    await root.ok(["cp", "/etc/hostname", `${id}:/marker`]);
    // what a volatile mount leaves behind (a --rm container that was not removed after its run):
    // before the mark was cleared, overlayfs refused the mount ("incompat feature 'volatile'")
    Deno.mkdirSync(join(root.path, "containers", id, "work/work/incompat/volatile/dirty"), {
      recursive: true,
    });
    const out = await root.ok(["start", "-a", id]);
    assertEqual(out, Deno.readTextFileSync("/etc/hostname"));
    await root.ok(["rm", id]);
  });
});
