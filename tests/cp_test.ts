// skiff cp against real containers: both directions, running (through /proc/<pid>/root) and stopped
// (overlay in a private mount namespace of a child), files, directories, symlinks, tar streams, docker's path
// rules, and symlinks in the container that point at / or ../.. never leading to the host.

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";
import { writeTar } from "../lib/image/tar.ts";

async function hostDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-cp-host-" });
  Deno.mkdirSync(join(dir, "tree/sub"), { recursive: true });
  Deno.writeTextFileSync(join(dir, "tree/a.txt"), "alpha\n");
  Deno.writeTextFileSync(join(dir, "tree/sub/b.txt"), "beta\n");
  Deno.symlinkSync("a.txt", join(dir, "tree/link"));
  Deno.writeTextFileSync(join(dir, "file.txt"), "file\n");
  Deno.chownSync(join(dir, "file.txt"), 1000, 1000);
  Deno.symlinkSync("/", join(dir, "toroot"));
  Deno.symlinkSync("../../../../../../", join(dir, "updir"));
  return dir;
}

/** skiff with binary stdin/stdout. */
async function skiffRaw(
  root: TestRoot,
  args: string[],
  stdin?: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

async function skiffBytes(root: TestRoot, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const r = await skiffRaw(root, args, stdin);
  assert.equal(r.code, 0, `skiff ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const untar = async (bytes: Uint8Array, dir: string) => {
  const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  const w = tar.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  assert.ok((await tar.status).success);
};

/** The common checks, for a running and for a stopped container. */
async function exerciseCp(root: TestRoot, name: string, host: string): Promise<void> {
  // host → container: a file to a new name, a directory into an existing one, a symlink
  await root.ok(["cp", join(host, "file.txt"), `${name}:/tmp/renamed.txt`]);
  await root.ok(["cp", join(host, "tree"), `${name}:/tmp/`]);
  await root.ok(["cp", join(host, "tree/link"), `${name}:/tmp/copied-link`]);
  // trailing /. copies the contents
  await root.ok(["cp", join(host, "tree") + "/.", `${name}:/root`]);

  // container → host
  const out = join(host, "out");
  Deno.mkdirSync(out);
  await root.ok(["cp", `${name}:/tmp/renamed.txt`, out]);
  assert.equal(Deno.readTextFileSync(join(out, "renamed.txt")), "file\n");
  // ownership of copied-in files is root without -a
  const inContainerOwner = Deno.statSync(join(out, "renamed.txt")).uid;
  assert.equal(inContainerOwner, 0);
  await root.ok(["cp", `${name}:/tmp/tree`, join(out, "tree-copy")]);
  assert.equal(Deno.readTextFileSync(join(out, "tree-copy/sub/b.txt")), "beta\n");
  assert.equal(Deno.readLinkSync(join(out, "tree-copy/link")), "a.txt", "symlinks stay symlinks");
  await root.ok(["cp", `${name}:/tmp/copied-link`, join(out, "l2")]);
  assert.equal(Deno.readLinkSync(join(out, "l2")), "a.txt");
  await root.ok(["cp", `${name}:/root/sub/b.txt`, join(out, "from-contents.txt")]);
  assert.equal(Deno.readTextFileSync(join(out, "from-contents.txt")), "beta\n");
  // -L follows the link given as source (resolved inside the container)
  await root.ok(["cp", "-L", `${name}:/tmp/tree/link`, join(out, "followed.txt")]);
  assert.equal(Deno.readTextFileSync(join(out, "followed.txt")), "alpha\n");

  // tar stream out, then in
  const unpacked = join(host, "unpacked");
  Deno.mkdirSync(unpacked);
  await untar(await skiffBytes(root, ["cp", `${name}:/tmp/tree`, "-"]), unpacked);
  assert.equal(Deno.readTextFileSync(join(unpacked, "tree/a.txt")), "alpha\n");
  assert.equal(Deno.readLinkSync(join(unpacked, "tree/link")), "a.txt");

  const tarIn = await new Deno.Command("tar", { args: ["-C", join(host, "tree"), "-cf", "-", "."] }).output();
  await skiffBytes(root, ["cp", "-", `${name}:/home/user`], tarIn.stdout);
  await root.ok(["cp", `${name}:/home/user/sub/b.txt`, join(out, "via-stdin.txt")]);
  assert.equal(Deno.readTextFileSync(join(out, "via-stdin.txt")), "beta\n");

  // -a keeps the uid/gid
  await root.ok(["cp", "-a", join(host, "file.txt"), `${name}:/tmp/owned.txt`]);
  await root.ok(["cp", "-a", `${name}:/tmp/owned.txt`, join(out, "owned.txt")]);
  assert.equal(Deno.statSync(join(out, "owned.txt")).uid, 1000);

  // errors: missing source, directory onto a file
  const missing = await root.skiff(["cp", `${name}:/nope`, out]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Could not find the file \/nope/);
  const dirOnFile = await root.skiff(["cp", join(host, "tree"), `${name}:/tmp/renamed.txt`]);
  assert.notEqual(dirOnFile.code, 0);
}

async function noHostFile(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return false;
  } catch {
    return true;
  }
}

Deno.test("cp: a running container, both ways, files/dirs/symlinks/tar streams", async () => {
  await withBusybox(async (root) => {
    const host = await hostDir();
    try {
      await withBackground(root, "live", async () => {
        await exerciseCp(root, "live", host);
      });
    } finally {
      await Deno.remove(host, { recursive: true });
    }
  });
});

Deno.test("cp: a stopped container, both ways; no mount is left behind", async () => {
  await withBusybox(async (root) => {
    const host = await hostDir();
    try {
      await withBackground(root, "stopped", async (c) => {
        await c.kill();
        assert.equal((await root.ok(["inspect", "-f", "{{.State.Running}}", "stopped"])).trim(), "false");
        await exerciseCp(root, "stopped", host);
        // /etc/hosts is the container's own, as while it ran (not the empty mount point in upper)
        const hosts = join(host, "hosts");
        await root.ok(["cp", "stopped:/etc/hosts", hosts]);
        assert.match(Deno.readTextFileSync(hosts), /^127\.0\.0\.1\tlocalhost$/m);
        // the files written while stopped are in the container's upper dir
        const upper = join(root.path, "containers", c.id, "upper");
        assert.equal(Deno.readTextFileSync(join(upper, "tmp/renamed.txt")), "file\n");
        const mounts = Deno.readTextFileSync("/proc/self/mountinfo");
        assert.ok(!mounts.includes(root.path), "no mount of the container in the host namespace");
      });
    } finally {
      await Deno.remove(host, { recursive: true });
    }
  });
});

for (const state of ["running", "stopped"]) {
  Deno.test(`cp: symlinks to / and ../../ stay inside a ${state} container`, async () => {
    await withBusybox(async (root) => {
      const host = await hostDir();
      try {
        await withBackground(root, "esc", async (c) => {
          if (state === "stopped") await c.kill();
          const marker = `skiff-cp-escape-${crypto.randomUUID()}`;
          Deno.writeTextFileSync(join(host, marker), "x");
          await root.ok(["cp", join(host, "toroot"), `esc:/tmp/toroot`]);
          await root.ok(["cp", join(host, "updir"), `esc:/tmp/updir`]);
          const out = join(host, "esc-out");
          Deno.mkdirSync(out);
          for (const via of ["/tmp/toroot/etc/os-release", "/tmp/updir/etc/os-release"]) {
            const r = await root.skiff(["cp", `esc:${via}`, join(out, "leak")]);
            assert.equal(r.code, 1, `${via} must not reach the host: ${r.stderr}`);
          }
          await root.ok(["cp", join(host, marker), "esc:/tmp/toroot/"]);
          await root.ok(["cp", join(host, marker), "esc:/tmp/updir/tmp/"]);
          // a tar stream whose entries climb out (or are absolute) is refused and writes nothing outside
          for (const name of [`../../../../../../tmp/${marker}-tar`, `/tmp/${marker}-abs`]) {
            const evil = writeTar([{ name, data: "x" }]);
            const r = await skiffRaw(root, ["cp", "-", "esc:/tmp"], evil);
            assert.notEqual(r.code, 0, `${name} must be refused`);
            assert.match(r.stderr, /refusing|outside|\.\./);
          }
          assert.ok(await noHostFile(`/tmp/${marker}-tar`) && await noHostFile(`/tmp/${marker}-abs`));
          assert.ok(await noHostFile(`/${marker}`), "nothing written to the host's /");
          assert.ok(await noHostFile(`/tmp/${marker}`), "nothing written to the host's /tmp");
          // both landed in the container
          await root.ok(["cp", `esc:/${marker}`, join(out, "a")]);
          await root.ok(["cp", `esc:/tmp/${marker}`, join(out, "b")]);
        });
      } finally {
        await Deno.remove(host, { recursive: true });
      }
    });
  });
}

Deno.test("cp: argument errors", async () => {
  await withBusybox(async (root) => {
    const both = await root.skiff(["cp", "a:/x", "b:/y"]);
    assert.equal(both.code, 125);
    assert.match(both.stderr, /copying between containers is not supported/);
    const none = await root.skiff(["cp", "/x", "./y"]);
    assert.equal(none.code, 125);
    assert.match(none.stderr, /must specify at least one container source/);
    const ghost = await root.skiff(["cp", "ghost:/x", "/tmp"]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /No such container: ghost/);
  });
});

Deno.test("cp of a stopped container leaves the caller's mount namespace as it was (the child mounts)", async () => {
  const { resolveRoot } = await import("../lib/state/root.ts");
  const { findContainer } = await import("../lib/state/containers.ts");
  const { copyFromContainer } = await import("../lib/container/cp.ts");
  await withBusybox(async (root) => {
    await root.ok(["create", "--name", "still", "busybox", "true"]);
    const out = await Deno.makeTempDir({ prefix: "skiff-cp-ns-" });
    try {
      // thread-self: a test may not run on the process's main thread, and namespaces are per thread
      const namespaces = () => ["self", "thread-self"].map((p) => Deno.readLinkSync(`/proc/${p}/ns/mnt`));
      const before = namespaces();
      const state = resolveRoot(root.path);
      // the engine's call, in this (the test's) process: what an API server would do
      await copyFromContainer(state, findContainer(state, "still"), "/etc/passwd", join(out, "passwd"), {
        followLink: false,
        archive: false,
      });
      assert.deepEqual(namespaces(), before, "the caller's mount namespace changed");
      assert.match(Deno.readTextFileSync(join(out, "passwd")), /^root:/);
    } finally {
      Deno.removeSync(out, { recursive: true });
    }
  });
});
