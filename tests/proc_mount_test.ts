// Volumes and binds on or below /proc, as runc refuses them (checkProcMount): on /proc only a proc
// itself, below it only the files lxcfs stands in for. docker's daemon reports runc's words and exits
// 125 (docker 20.10 here: `error mounting "/tmp/pv" to rootfs at "/proc/sys": "…/merged/proc/sys"
// cannot be mounted because it is inside /proc`). Attack: an image's symlink that leads into /proc
// under another name; the check is made on where the path led, not on its name.
// Before: skiff mounted all of these (a host directory in place of the container's proc, or over
// /proc/sys), and the symlink case too.

import assert from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar, withBusybox } from "./helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";

const INSIDE = "cannot be mounted because it is inside /proc";
const NOT_PROC = "cannot be mounted because it is not of type proc";

Deno.test("run -v/--mount on /proc or below it is refused with runc's words, exit 125, nothing left", async () => {
  await withBusybox(async (root) => {
    const dir = join(root.path, "hostdir");
    Deno.mkdirSync(dir);
    const cases: [string[], string, string][] = [
      [["-v", `${dir}:/proc`], "/proc", NOT_PROC],
      [["-v", `${dir}:/proc/sys`], "/proc/sys", INSIDE],
      [["-v", `${dir}:/proc/not-there`], "/proc/not-there", INSIDE],
      [["--mount", `type=bind,source=${dir},target=/proc/sys/kernel`], "/proc/sys/kernel", INSIDE],
      [["-v", `${dir}:/proc/./sys//`], "/proc/sys", INSIDE], // cleaned, as docker's daemon does
    ];
    for (const [flags, dest, why] of cases) {
      const r = await root.skiff(["run", "--rm", "--network", "none", ...flags, "busybox", "true"]);
      assert.equal(r.code, 125, `${flags.join(" ")}: ${r.stderr}`);
      assert.equal(
        r.stderr.trim(),
        `skiff: unable to start container process: error during container init: error mounting "${dir}" to rootfs at "${dest}": "${dest}" ${why}`,
      );
      assert.equal((await root.ok(["ps", "-aq"])).trim(), "", "a --rm container was left");
    }
    // run -d: the supervisor's start refuses it the same way
    const d = await root.skiff([
      "run",
      "-d",
      "--network",
      "none",
      "-v",
      `${dir}:/proc/sys`,
      "busybox",
      "true",
    ]);
    assert.equal(d.code, 125, d.stderr);
    assert.match(d.stderr, new RegExp(`"/proc/sys" ${INSIDE}`));
    await root.ok(["rm", "-f", d.stdout.trim()]);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "something was written into the host directory");
  });
});

Deno.test("run: what runc allows on /proc: a proc on /proc, a file lxcfs stands in for, a tmpfs", async () => {
  await withBusybox(async (root) => {
    const uptime = join(root.path, "uptime");
    Deno.writeTextFileSync(uptime, "12.5 7.25\n");
    const run = (flags: string[], cmd: string) =>
      root.ok(["run", "--rm", "--network", "none", ...flags, "busybox", "sh", "-c", cmd]);
    assert.equal((await run(["-v", `${uptime}:/proc/uptime:ro`], "cat /proc/uptime")).trim(), "12.5 7.25");
    // the host's proc in place of the container's: the user's choice, as with docker
    assert.match(await run(["-v", "/proc:/proc"], "cat /proc/1/comm"), /\S/);
    assert.equal((await run(["--tmpfs", "/proc/sys"], "ls -A /proc/sys | wc -l")).trim(), "0");
    // a name that only starts like /proc is not below it
    assert.equal(
      (await run(["-v", `${root.path}:/procx`], "test -f /procx/uptime && echo yes")).trim(),
      "yes",
    );
  });
});

Deno.test("attack: an image's symlink into /proc under another name, or a VOLUME below /proc", async () => {
  await withBusybox(async (root) => {
    const dir = join(root.path, "hostdir");
    Deno.mkdirSync(dir);
    await root.ok([
      "run",
      "--name",
      "mk",
      "--network",
      "none",
      "busybox",
      "ln",
      "-s",
      "/proc/sys",
      "/innocent",
    ]);
    await root.ok(["commit", "mk", "hostile:link"]);
    await root.ok(["rm", "mk"]);
    const r = await root.skiff([
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${dir}:/innocent/kernel`,
      "hostile:link",
      "true",
    ]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, new RegExp(`rootfs at "/innocent/kernel": "/innocent/kernel" ${INSIDE}`));
    await root.ok([
      "import",
      "--change",
      "VOLUME /proc/sys/kernel/random",
      await busyboxTar(),
      "hostile:volume",
    ]);
    const v = await root.skiff(["run", "--rm", "--network", "none", "hostile:volume", "true"]);
    assert.equal(v.code, 125, v.stderr);
    assert.match(v.stderr, new RegExp(`"/proc/sys/kernel/random" ${INSIDE}`));
    assert.equal((await root.ok(["ps", "-aq"])).trim(), "");
    assert.equal((await root.ok(["volume", "ls", "-q"])).trim(), "", "the anonymous volume was left");
  });
});

// docker where the peer runs (/tmp/peers/env.sh): the same exit code and the same words
Deno.test("docker refuses the same binds with the same words (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  await withBusybox(async (root) => {
    const dir = join(root.path, "hostdir");
    Deno.mkdirSync(dir);
    for (const [dest, why] of [["/proc", NOT_PROC], ["/proc/sys", INSIDE]]) {
      const args = ["run", "--rm", "--network", "none", "-v", `${dir}:${dest}`];
      const d = await docker([...args, "localhost/bb:latest", "true"]);
      const s = await root.skiff([...args, "busybox", "true"]);
      assert.equal(d.code, 125, d.stderr);
      assert.equal(s.code, d.code);
      assert.match(d.stderr, new RegExp(`error mounting "${dir}" to rootfs at "${dest}": ".*" ${why}`));
      assert.match(s.stderr, new RegExp(`error mounting "${dir}" to rootfs at "${dest}": "${dest}" ${why}`));
    }
  });
});
