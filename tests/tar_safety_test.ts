// Layer unpacking: every way a layer could write outside its directory is refused (exit 1 as docker's
// import, the
// entry named, no layer and no temp dir left, nothing written outside), and every kind of entry a
// real layer carries comes out right (whiteouts, setuid, hardlinks, devices, fifos, xattrs, long
// names, owners, mtimes).

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withRoot } from "./helpers.ts";
import { type TarWriteEntry, writeTar } from "../lib/image/tar.ts";
import { lgetxattr } from "../ffi/libc.ts";

const names = (dir: string) => {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
};

async function writeTemp(data: Uint8Array, suffix = ".tar"): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "skiff-tar-", suffix });
  await Deno.writeFile(path, data);
  return path;
}

/** Imports a crafted layer; returns the unpacked diff dir. */
async function importLayer(root: TestRoot, entries: TarWriteEntry[]): Promise<string> {
  const tar = await writeTemp(writeTar(entries));
  try {
    await root.ok(["import", tar, "crafted:latest"]);
  } finally {
    await Deno.remove(tar);
  }
  const layers = names(join(root.path, "layers"));
  assert.deepEqual(layers.length, 1);
  return join(root.path, "layers", layers[0], "diff");
}

/** Imports a crafted layer that must be refused, and checks that it left nothing anywhere. */
async function expectRefused(root: TestRoot, entries: TarWriteEntry[], entryName: string): Promise<void> {
  const tar = await writeTemp(writeTar(entries));
  try {
    const r = await root.skiff(["import", tar, "evil:latest"]);
    assert.deepEqual(r.code, 1, `expected exit 1, got ${r.code}: ${r.stderr}`);
    assert(r.stderr.includes(`"${entryName}"`), `error does not name ${entryName}: ${r.stderr}`);
    assert.deepEqual(r.stderr.trim().split("\n").length, 1, `expected one line: ${r.stderr}`);
  } finally {
    await Deno.remove(tar);
  }
  assert.deepEqual(names(join(root.path, "layers")), [], "a layer dir was left");
  assert.deepEqual(names(join(root.path, "tmp")), [], "a temp dir was left");
  assert.deepEqual(names(join(root.path, "images")), [], "an image was recorded");
}

/** Runs skiff with a file as its stdin. */
async function skiffStdin(root: TestRoot, args: string[], stdinPath: string) {
  const file = await Deno.open(stdinPath);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await file.readable.pipeTo(child.stdin).catch(() => {}); // skiff may stop reading at a bad byte
  const result = await child.output();
  const dec = new TextDecoder();
  return { code: result.code, stdout: dec.decode(result.stdout), stderr: dec.decode(result.stderr) };
}

/** A fresh empty dir outside the state root: the target of escape attempts. */
async function outsideDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "skiff-outside-" });
}

Deno.test("tar safety: '../x' is refused", () =>
  withRoot(async (root) => {
    await expectRefused(root, [{ name: "ok.txt", data: "fine" }, { name: "../x", data: "evil" }], "../x");
  }));

Deno.test("tar safety: 'a/../../x' is refused", () =>
  withRoot(async (root) => {
    await expectRefused(
      root,
      [{ name: "a/", type: "dir" }, { name: "a/../../x", data: "evil" }],
      "a/../../x",
    );
  }));

Deno.test("tar safety: an absolute path is refused and nothing is written there", () =>
  withRoot(async (root) => {
    const outside = await outsideDir();
    try {
      const target = join(outside, "abs");
      await expectRefused(root, [{ name: target, data: "evil" }], target);
      assert.deepEqual(names(outside), []);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  }));

Deno.test("tar safety: writing through a symlink the layer planted is refused", () =>
  withRoot(async (root) => {
    const outside = await outsideDir();
    try {
      await expectRefused(root, [
        { name: "link", type: "symlink", linkname: outside },
        { name: "link/file", data: "evil" },
      ], "link/file");
      assert.deepEqual(names(outside), []);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  }));

Deno.test("tar safety: a symlink to '..' then a write through it is refused", () =>
  withRoot(async (root) => {
    await expectRefused(root, [
      { name: "up", type: "symlink", linkname: ".." },
      { name: "up/escaped", data: "evil" },
    ], "up/escaped");
  }));

Deno.test("tar safety: a directory replaced by a symlink cannot be written through", () =>
  withRoot(async (root) => {
    const outside = await outsideDir();
    try {
      await expectRefused(root, [
        { name: "d/", type: "dir" },
        { name: "d", type: "symlink", linkname: outside },
        { name: "d/f", data: "evil" },
      ], "d/f");
      assert.deepEqual(names(outside), []);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  }));

Deno.test("tar safety: a hardlink to /etc/passwd is refused", () =>
  withRoot(async (root) => {
    const before = Deno.statSync("/etc/passwd").nlink;
    await expectRefused(root, [{ name: "pw", type: "link", linkname: "/etc/passwd" }], "pw");
    assert.deepEqual(Deno.statSync("/etc/passwd").nlink, before);
  }));

Deno.test("tar safety: a hardlink to '../../x' is refused", () =>
  withRoot(async (root) => {
    await expectRefused(root, [{ name: "h", type: "link", linkname: "../../x" }], "h");
  }));

Deno.test("tar safety: a hardlink through a planted symlink is refused", () =>
  withRoot(async (root) => {
    await expectRefused(root, [
      { name: "s", type: "symlink", linkname: "/etc" },
      { name: "h", type: "link", linkname: "s/passwd" },
    ], "h");
  }));

Deno.test("tar safety: a truncated archive is refused and leaves nothing", () =>
  withRoot(async (root) => {
    const full = writeTar([{ name: "big", data: new Uint8Array(100_000) }]);
    const tar = await writeTemp(full.subarray(0, 20_000));
    try {
      const r = await root.skiff(["import", tar]);
      assert.deepEqual(r.code, 1);
      assert.match(r.stderr, /unexpected end of archive/);
    } finally {
      await Deno.remove(tar);
    }
    assert.deepEqual(names(join(root.path, "layers")), []);
    assert.deepEqual(names(join(root.path, "tmp")), []);
  }));

Deno.test("unpack: whiteouts become 0/0 char devices, opaque markers an xattr", () =>
  withRoot(async (root) => {
    const diff = await importLayer(root, [
      { name: "etc/", type: "dir" },
      { name: "etc/.wh.gone", uid: 0 },
      { name: "var/cache/", type: "dir" },
      { name: "var/cache/.wh..wh..opq" },
      { name: ".wh..wh.plnk", type: "dir" },
    ]);
    const wh = Deno.lstatSync(join(diff, "etc/gone"));
    assert(wh.isCharDevice, "whiteout is not a char device");
    assert.deepEqual(wh.rdev, 0);
    assert(!names(join(diff, "etc")).some((n) => n.startsWith(".wh.")));
    assert.deepEqual(
      new TextDecoder().decode(lgetxattr(join(diff, "var/cache"), "trusted.overlay.opaque")!),
      "y",
    );
    assert.deepEqual(names(join(diff, "var/cache")), []);
    assert(!names(diff).includes(".wh..wh.plnk"));
  }));

Deno.test("unpack: modes (setuid/setgid/sticky), owners, mtimes, hardlinks, symlinks, fifo, devices", () =>
  withRoot(async (root) => {
    const diff = await importLayer(root, [
      { name: "bin/", type: "dir", mode: 0o755, mtime: 1_000_000 },
      { name: "bin/su", data: "#!", mode: 0o4755, uid: 0, gid: 0, mtime: 1_500_000_000 },
      { name: "bin/sg", data: "#!", mode: 0o2711, uid: 1000, gid: 50 },
      { name: "tmp/", type: "dir", mode: 0o1777 },
      { name: "home/user/file", data: "x", mode: 0o640, uid: 1000, gid: 1000, mtime: 1_234_567_890 },
      { name: "home/user/hard", type: "link", linkname: "home/user/file" },
      { name: "home/user/abs-link", type: "symlink", linkname: "/etc/passwd", uid: 1000, gid: 1000 },
      { name: "home/user/rel-link", type: "symlink", linkname: "../../bin/su" },
      { name: "run/fifo", type: "fifo", mode: 0o620 },
      { name: "dev/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3 },
      { name: "dev/loop9", type: "block", mode: 0o660, devmajor: 7, devminor: 9 },
      // a setgid dir would hand its group to new files: an explicit 0:0 entry must still be 0:0
      { name: "shared/", type: "dir", mode: 0o2775, gid: 50 },
      { name: "shared/root-owned", data: "x", mode: 0o444, uid: 0, gid: 0 },
      { name: "group-writable", data: "x", mode: 0o666 },
    ]);
    const shared = Deno.lstatSync(join(diff, "shared"));
    assert.deepEqual([shared.mode! & 0o7777, shared.gid], [0o2775, 50]);
    const rootOwned = Deno.lstatSync(join(diff, "shared/root-owned"));
    assert.deepEqual([rootOwned.mode! & 0o7777, rootOwned.uid, rootOwned.gid], [0o444, 0, 0]);
    assert.equal(Deno.lstatSync(join(diff, "group-writable")).mode! & 0o7777, 0o666);
    const su = Deno.lstatSync(join(diff, "bin/su"));
    assert.deepEqual(su.mode! & 0o7777, 0o4755);
    assert.deepEqual(su.mtime!.getTime(), 1_500_000_000_000);
    const sg = Deno.lstatSync(join(diff, "bin/sg"));
    assert.deepEqual([sg.mode! & 0o7777, sg.uid, sg.gid], [0o2711, 1000, 50]);
    assert.deepEqual(Deno.lstatSync(join(diff, "tmp")).mode! & 0o7777, 0o1777);
    // directory mtimes survive the files created inside them
    assert.deepEqual(Deno.lstatSync(join(diff, "bin")).mtime!.getTime(), 1_000_000_000);
    const file = Deno.lstatSync(join(diff, "home/user/file"));
    assert.deepEqual([file.mode! & 0o7777, file.uid, file.gid], [0o640, 1000, 1000]);
    assert.deepEqual(file.mtime!.getTime(), 1_234_567_890_000);
    const hard = Deno.lstatSync(join(diff, "home/user/hard"));
    assert.deepEqual(hard.ino, file.ino);
    assert.deepEqual(file.nlink, 2);
    assert.deepEqual(Deno.readLinkSync(join(diff, "home/user/abs-link")), "/etc/passwd");
    assert.deepEqual(Deno.lstatSync(join(diff, "home/user/abs-link")).uid, 1000);
    assert.deepEqual(Deno.readLinkSync(join(diff, "home/user/rel-link")), "../../bin/su");
    const fifo = Deno.lstatSync(join(diff, "run/fifo"));
    assert(fifo.isFifo);
    assert.deepEqual(fifo.mode! & 0o7777, 0o620);
    const devNull = Deno.lstatSync(join(diff, "dev/null"));
    assert(devNull.isCharDevice);
    assert.deepEqual(devNull.rdev, (1 << 8) | 3);
    const loop = Deno.lstatSync(join(diff, "dev/loop9"));
    assert(loop.isBlockDevice);
    assert.deepEqual(loop.rdev, (7 << 8) | 9);
  }));

Deno.test("unpack: xattrs from pax records, trusted.overlay.* from a layer ignored", () =>
  withRoot(async (root) => {
    const diff = await importLayer(root, [
      { name: "f", data: "x", xattrs: { "user.skiff": "hello", "trusted.overlay.redirect": "/etc" } },
      { name: "d/", type: "dir", xattrs: { "user.dir": new Uint8Array([0, 1, 2, 255]) } },
    ]);
    assert.deepEqual(new TextDecoder().decode(lgetxattr(join(diff, "f"), "user.skiff")!), "hello");
    assert.deepEqual(lgetxattr(join(diff, "f"), "trusted.overlay.redirect"), null);
    assert.deepEqual([...lgetxattr(join(diff, "d"), "user.dir")!], [0, 1, 2, 255]);
  }));

Deno.test("unpack: long names and link targets, pax and GNU", () =>
  withRoot(async (root) => {
    const deep = `${"a".repeat(60)}/${"b".repeat(60)}/${"c".repeat(60)}`;
    const diff = await importLayer(root, [
      { name: `pax/${deep}/file.txt`, data: "pax" },
      { name: `gnu/${deep}/file.txt`, data: "gnu", longNames: "gnu" },
      { name: `pax/${deep}/link`, type: "symlink", linkname: `/${"t".repeat(150)}` },
      { name: `gnu/${deep}/hard`, type: "link", linkname: `gnu/${deep}/file.txt`, longNames: "gnu" },
    ]);
    assert.deepEqual(Deno.readTextFileSync(join(diff, `pax/${deep}/file.txt`)), "pax");
    assert.deepEqual(Deno.readTextFileSync(join(diff, `gnu/${deep}/file.txt`)), "gnu");
    assert.deepEqual(Deno.readLinkSync(join(diff, `pax/${deep}/link`)), `/${"t".repeat(150)}`);
    assert.deepEqual(Deno.readTextFileSync(join(diff, `gnu/${deep}/hard`)), "gnu");
  }));

Deno.test("unpack: GNU tar's own archives (gnu, pax formats) come out identical", () =>
  withRoot(async (root) => {
    const src = await Deno.makeTempDir({ prefix: "skiff-src-" });
    try {
      const long = join(src, "x".repeat(120));
      Deno.mkdirSync(long);
      Deno.writeTextFileSync(join(long, "y".repeat(130)), "deep");
      Deno.writeFileSync(join(src, "big.bin"), crypto.getRandomValues(new Uint8Array(65536)));
      Deno.symlinkSync("big.bin", join(src, "big.link"));
      Deno.linkSync(join(src, "big.bin"), join(src, "big.hard"));
      Deno.chmodSync(join(src, "big.bin"), 0o4750);
      for (const format of ["gnu", "pax"]) {
        const tar = join(src, "..", `${src.split("/").pop()}-${format}.tar`);
        const out = await new Deno.Command("tar", {
          args: [`--format=${format}`, "-C", src, "-cf", tar, "."],
        }).output();
        assert(out.success);
        await root.ok(["import", tar, `gnu-${format}:latest`]);
        await Deno.remove(tar);
      }
      const layers = names(join(root.path, "layers"));
      assert.deepEqual(layers.length, 2);
      for (const layer of layers) {
        const diff = join(root.path, "layers", layer, "diff");
        assert.deepEqual(Deno.readTextFileSync(join(diff, "x".repeat(120), "y".repeat(130))), "deep");
        assert.deepEqual(Deno.readFileSync(join(diff, "big.bin")), Deno.readFileSync(join(src, "big.bin")));
        assert.deepEqual(Deno.lstatSync(join(diff, "big.bin")).mode! & 0o7777, 0o4750);
        assert.deepEqual(Deno.readLinkSync(join(diff, "big.link")), "big.bin");
        assert.deepEqual(
          Deno.lstatSync(join(diff, "big.hard")).ino,
          Deno.lstatSync(join(diff, "big.bin")).ino,
        );
      }
    } finally {
      await Deno.remove(src, { recursive: true });
    }
  }));

Deno.test("unpack: the layer's diffID is the sha256 of the uncompressed tar, gzip or not", () =>
  withRoot(async (root) => {
    const data = new Uint8Array(writeTar([{ name: "hello", data: "world" }]));
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", data)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const gz = await writeTemp(
      new Uint8Array(
        await new Response(
          new Blob([data]).stream().pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer(),
      ),
      ".tar.gz",
    );
    try {
      await root.ok(["import", gz, "hello:gz"]);
    } finally {
      await Deno.remove(gz);
    }
    assert.deepEqual(names(join(root.path, "layers")), [digest]);
    const info = JSON.parse(Deno.readTextFileSync(join(root.path, "layers", digest, "layer.json")));
    assert.deepEqual(info.diffId, `sha256:${digest}`);
    assert.deepEqual(info.size, 5);
  }));

Deno.test("unpack: corrupt or truncated gzip is refused and leaves nothing", () =>
  withRoot(async (root) => {
    const plain = writeTar([{ name: "data.txt", data: "hello layer ".repeat(20_000) }]);
    const gz = new Uint8Array(
      await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
    const corrupt = gz.slice();
    for (let i = 40; i < gz.length - 40; i++) corrupt[i] ^= 0x5a;
    const cases: [string, Uint8Array, boolean][] = [];
    // from a file (small: read on the main thread) and from stdin (read on the reader thread)
    for (
      const [what, bytes] of [["corrupt", corrupt], ["truncated", gz.subarray(0, gz.length / 2)]] as const
    ) {
      cases.push([what, bytes, false], [`${what} via stdin`, bytes, true]);
    }
    for (const [what, bytes, viaStdin] of cases) {
      const path = await writeTemp(bytes, ".tar.gz");
      try {
        const r = viaStdin
          ? await skiffStdin(root, ["import", "-", "bad:gz"], path)
          : await root.skiff(["import", path, "bad:gz"]);
        assert.equal(r.code, 1, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /invalid gzip data|unexpected end/, what);
        assert.equal(r.stderr.trim().split("\n").length, 1, what);
      } finally {
        await Deno.remove(path);
      }
      assert.deepEqual(names(join(root.path, "layers")), [], what);
      assert.deepEqual(names(join(root.path, "tmp")), [], what);
      assert.deepEqual(names(join(root.path, "images")), [], what);
    }
  }));

Deno.test("unpack: a '/' root entry (as docker save writes it) is the layer root; size counts symlinks", () =>
  withRoot(async (root) => {
    const diff = await importLayer(root, [
      { name: "/", type: "dir", mode: 0o700 },
      { name: "bin/", type: "dir" },
      { name: "bin/busybox", data: "0123456789" },
      { name: "bin/sh", type: "symlink", linkname: "/bin/busybox" },
      { name: "bin/hard", type: "link", linkname: "bin/busybox" },
    ]);
    // the root keeps 0755: an archive's "/" or "./" mode is that of whatever dir it was made from
    assert.equal(Deno.statSync(diff).mode! & 0o777, 0o755);
    const layer = JSON.parse(Deno.readTextFileSync(join(diff, "..", "layer.json")));
    assert.equal(layer.size, 10 + "/bin/busybox".length, "regular files once, plus symlink targets");
  }));

Deno.test("unpack: exact modes whatever skiff's umask is", () =>
  withRoot(async (root) => {
    const tar = await writeTemp(writeTar([
      { name: "implied/dir/f666", data: "x", mode: 0o666 },
      { name: "f777", data: "x", mode: 0o777 },
      { name: "f640", data: "x", mode: 0o640 },
      { name: "d775/", type: "dir", mode: 0o775 },
    ]));
    try {
      // run skiff under umask 077 (sh sets it, then execs skiff)
      const out = await new Deno.Command("sh", {
        args: [
          "-c",
          'umask 077 && exec "$0" run -A "$1" --root "$2" import "$3" umasked',
          Deno.execPath(),
          MAIN,
          root.path,
          tar,
        ],
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    } finally {
      await Deno.remove(tar);
    }
    const diff = join(root.path, "layers", names(join(root.path, "layers"))[0], "diff");
    const mode = (p: string) => Deno.lstatSync(join(diff, p)).mode! & 0o7777;
    assert.deepEqual(
      ["implied", "implied/dir", "implied/dir/f666", "f777", "f640", "d775"].map(mode),
      [0o755, 0o755, 0o666, 0o777, 0o640, 0o775],
    );
  }));

Deno.test("unpack: a big gzip file (read on the reader thread) gets the right diffID and content", () =>
  withRoot(async (root) => {
    const big = new Uint8Array(9 << 20);
    for (let off = 0; off < big.length; off += 65536) crypto.getRandomValues(big.subarray(off, off + 65536));
    const plain = writeTar([{ name: "big.bin", data: big }, { name: "small.txt", data: "ok" }]);
    const gz = new Uint8Array(
      await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
    assert.ok(gz.length > 8 << 20, "the file must be big enough for the reader thread");
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", plain)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const path = await writeTemp(gz, ".tar.gz");
    try {
      await root.ok(["import", path, "big:gz"]);
    } finally {
      await Deno.remove(path);
    }
    assert.deepEqual(names(join(root.path, "layers")), [digest]);
    const diff = join(root.path, "layers", digest, "diff");
    assert.deepEqual(Deno.readFileSync(join(diff, "big.bin")), big);
    assert.equal(Deno.readTextFileSync(join(diff, "small.txt")), "ok");
  }));
