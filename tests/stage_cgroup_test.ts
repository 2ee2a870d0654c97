// The init stage reads the container's files by path (/etc/passwd, /etc/group, the workdir, the
// command) only once it is a member of the container's cgroups, whose device rules then apply to it
// as they do to the container. Until then it opens container content only by O_PATH (lib/fs).
//
// The attack: an image (or an earlier run with CAP_MKNOD) makes /etc/passwd a block device node of
// the host, here a loop device that holds a passwd line for "eve" (uid 4242); the container runs
// with `-u eve`. Read inside the devices cgroup, the open fails (EPERM) and docker's "unable to find
// user" follows; read outside it, the stage parsed the host device and the container ran as uid 4242.
// On 125844e `run -d` and `start` (the supervisor joins the stage to its cgroups while it sets up the
// rootfs) resolved the user before the join was done: the container ran as 4242 in 1 of 20 and 1 of
// 10 tries by hand, in 16 of 40 in this test's loop (a warm supervisor) on this machine (the race:
// the join's RCU grace period against the stage's mounts); the foreground run joined first and
// never did. Now the foreground run overlaps the join too, and both wait for it before the stage
// reads anything by path.

import { ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar, type TestRoot, withRoot } from "./helpers.ts";

const HAS_LOOP = (() => {
  try {
    return Deno.statSync("/dev/loop-control").isCharDevice === true;
  } catch {
    return false;
  }
})();

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** A loop device holding a passwd file with "eve" (uid 4242); detached again after `fn`. */
async function withHostPasswdDevice(fn: (major: number, minor: number) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-loop-" });
  const file = join(dir, "passwd.img");
  const text = "root:x:0:0:root:/root:/bin/sh\neve:x:4242:4242:eve:/home/eve:/bin/sh\n";
  Deno.writeTextFileSync(file, text.padEnd(4096, "\n")); // a loop device is whole 512-byte sectors
  const device = await sh("losetup", ["-f", "--show", file]);
  try {
    const rdev = Deno.statSync(device).rdev!;
    await fn((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00));
  } finally {
    await sh("losetup", ["-d", device]).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/** busybox with /etc/passwd a block device node major:minor, imported as devpasswd:latest. */
async function importDevicePasswdImage(root: TestRoot, major: number, minor: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-devpasswd-" });
  try {
    const rootfs = join(dir, "rootfs");
    Deno.mkdirSync(rootfs);
    await sh("tar", ["-C", rootfs, "-xf", await busyboxTar()]);
    Deno.removeSync(join(rootfs, "etc/passwd"));
    await sh("mknod", [join(rootfs, "etc/passwd"), "b", String(major), String(minor)]);
    await sh("tar", ["-C", rootfs, "-cf", join(dir, "img.tar"), "."]);
    await root.ok(["import", join(dir, "img.tar"), "devpasswd:latest"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const REFUSED = /unable to find user eve/;

Deno.test({
  name: "run, run -d: -u is resolved inside the devices cgroup (a host block device as /etc/passwd)",
  ignore: !HAS_LOOP,
  fn: async () => {
    await withHostPasswdDevice(async (major, minor) => {
      await withRoot(async (root) => {
        await importDevicePasswdImage(root, major, minor);
        // the device itself reads as eve's passwd line: what the container must never get
        const host = await sh("head", ["-c", "80", `/dev/loop${minor}`]);
        assert(host.includes("eve:x:4242"), host);

        for (let i = 0; i < 10; i++) {
          const r = await root.skiff(["run", "--rm", "-u", "eve", "devpasswd", "id", "-u"]);
          assert(!r.stdout.includes("4242"), `run ${i}: the container ran as the host device's user`);
          assert(r.code === 125 && REFUSED.test(r.stderr), `run ${i}: ${r.code} ${r.stderr}`);
        }
        // the supervisor's path (run -d, start): the race of the join against the stage's mounts
        const hits: string[] = [];
        for (let i = 0; i < 40; i++) {
          const r = await root.skiff(["run", "-d", "-u", "eve", "devpasswd", "id", "-u"]);
          if (r.code === 0) {
            const id = r.stdout.trim();
            await root.skiff(["wait", id]);
            hits.push(`try ${i}: ran, printed ${JSON.stringify((await root.ok(["logs", id])).trim())}`);
          } else if (r.code !== 125 || !REFUSED.test(r.stderr)) hits.push(`try ${i}: ${r.code} ${r.stderr}`);
        }
        assert(hits.length === 0, `run -d, 40 tries:\n${hits.join("\n")}`);
      });
    });
  },
});
