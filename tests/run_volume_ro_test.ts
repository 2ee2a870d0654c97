// Finding 11: `-v SRC:DST:ro` was read-only at its top mount only: a tmpfs mounted under SRC on the
// host stayed writable inside the container (1 of 1 runs on the old code: no race). docker 25
// makes read-only binds recursively read-only (mount_setattr AT_RECURSIVE, Linux 5.12+) and offers
// --mount bind-recursive=enabled|disabled|writable|readonly; on an older kernel "enabled" falls back
// to the top mount alone and "readonly" is refused.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";

/** mount_setattr exists from Linux 5.12 on. */
const KERNEL_HAS_SETATTR = (() => {
  const [major, minor] = Deno.osRelease().split(".").map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 12);
})();

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** SRC with a tmpfs mounted at SRC/sub on the host (holding `seen`), for the test's duration. */
async function withSubmount(fn: (src: string) => Promise<void>): Promise<void> {
  const src = await Deno.makeTempDir({ prefix: "skiff-rro-" });
  await Deno.mkdir(`${src}/sub`);
  await sh("mount", ["-t", "tmpfs", "-o", "size=1m", "skiff-rro", `${src}/sub`]);
  try {
    await Deno.writeTextFile(`${src}/sub/seen`, "from the host\n");
    await fn(src);
  } finally {
    await sh("umount", ["-l", `${src}/sub`]);
    await Deno.remove(src, { recursive: true });
  }
}

// writes at the top of the bind and inside the submount; each line says what happened
const PROBE =
  "for f in /data/top /data/sub/under; do (echo x > $f) 2>/dev/null && echo wrote $f || echo refused $f; done; " +
  "cat /data/sub/seen 2>/dev/null || echo no-submount";

Deno.test("run -v SRC:DST:ro: a mount under SRC is read-only inside too", async () => {
  await withSubmount(async (src) => {
    await withBusybox(async (root) => {
      const r = await root.skiff(["run", "--rm", "-v", `${src}:/data:ro`, "busybox", "sh", "-c", PROBE]);
      assert.equal(r.code, 0, r.stderr);
      // docker 25's default: recursively read-only where the kernel can, else the top mount only
      const under = KERNEL_HAS_SETATTR ? "refused /data/sub/under" : "wrote /data/sub/under";
      assert.equal(r.stdout, `refused /data/top\n${under}\nfrom the host\n`);
      // the write was refused with EROFS, not for another reason
      const erofs = await root.skiff([
        "run",
        "--rm",
        "-v",
        `${src}:/data:ro`,
        "busybox",
        "touch",
        "/data/sub/x",
      ]);
      if (KERNEL_HAS_SETATTR) {
        assert.equal(erofs.code, 1);
        assert.match(erofs.stderr, /Read-only file system/);
      }
      assert.deepEqual([...Deno.readDirSync(`${src}/sub`)].map((e) => e.name), ["seen"]);
      // a read-write bind stays writable throughout
      const rw = await root.ok(["run", "--rm", "-v", `${src}:/data`, "busybox", "sh", "-c", PROBE]);
      assert.equal(rw, "wrote /data/top\nwrote /data/sub/under\nfrom the host\n");
    });
  });
});

Deno.test("run --mount bind-recursive: enabled, writable, disabled, readonly as in docker 25", async () => {
  await withSubmount(async (src) => {
    await withBusybox(async (root) => {
      const run = (option: string) =>
        root.skiff([
          "run",
          "--rm",
          "--mount",
          `type=bind,src=${src},dst=/data,readonly${option}`,
          "busybox",
          "sh",
          "-c",
          PROBE,
        ]);
      const recursiveOrTop = KERNEL_HAS_SETATTR ? "refused /data/sub/under" : "wrote /data/sub/under";
      assert.equal((await run("")).stdout, `refused /data/top\n${recursiveOrTop}\nfrom the host\n`);
      assert.equal(
        (await run(",bind-recursive=enabled")).stdout,
        `refused /data/top\n${recursiveOrTop}\nfrom the host\n`,
      );
      // docker 24's read-only: the top mount only
      assert.equal(
        (await run(",bind-recursive=writable")).stdout,
        "refused /data/top\nwrote /data/sub/under\nfrom the host\n",
      );
      // no submounts at all: /data/sub is the empty directory under the host's tmpfs
      assert.equal(
        (await run(",bind-recursive=disabled")).stdout,
        "refused /data/top\nrefused /data/sub/under\nno-submount\n",
      );
      const forced = await run(",bind-recursive=readonly");
      if (KERNEL_HAS_SETATTR) {
        assert.equal(forced.stdout, "refused /data/top\nrefused /data/sub/under\nfrom the host\n");
      } else {
        assert.notEqual(forced.code, 0);
        assert.match(forced.stderr, /recursively read-only/);
      }
      assert.deepEqual([...Deno.readDirSync(`${src}/sub`)].map((e) => e.name).sort(), ["seen", "under"]);

      const bad = await root.skiff([
        "run",
        "--rm",
        "--mount",
        `type=bind,src=${src},dst=/d,bind-recursive=maybe`,
        "busybox",
        "true",
      ]);
      assert.equal(bad.code, 125);
      assert.equal(
        bad.stderr.trim().split("\n")[0],
        `skiff: invalid argument "type=bind,src=${src},dst=/d,bind-recursive=maybe" for "--mount" flag: invalid value for bind-recursive: maybe (must be "enabled", "disabled", "writable", or "readonly")`,
      );
      const notRo = await root.skiff([
        "run",
        "--rm",
        "--mount",
        `type=bind,src=${src},dst=/d,bind-recursive=readonly`,
        "busybox",
        "true",
      ]);
      assert.equal(notRo.code, 125);
      assert.equal(notRo.stderr.trim(), 'skiff: invalid mount config for type "bind": must be read-only');
      // inspect shows docker's Mounts entries, without skiff's own record of the option
      await root.ok([
        "run",
        "--name",
        "kk",
        "--mount",
        `type=bind,src=${src},dst=/data,readonly,bind-recursive=writable`,
        "busybox",
        "true",
      ]);
      assert.deepEqual(JSON.parse(await root.ok(["inspect", "-f", "{{json .Mounts}}", "kk"])), [
        { Type: "bind", Source: src, Destination: "/data", Mode: "", RW: false, Propagation: "rprivate" },
      ]);
    });
  });
});
