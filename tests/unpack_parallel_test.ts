// The layer unpacker's worker threads (lib/image/file_pool.ts): a layer whose small files are
// created on other threads comes out identical, entry for entry, to the same layer unpacked on one
// thread, including the steps whose order matters (a file replaced, hardlinked or whited out while
// it may still be in flight, a directory's owner and setgid bit set again); a worker's failure
// fails the unpack with the entry named; a symlink planted over a directory still cannot be written
// through.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type TarWriteEntry, writeTar } from "../lib/image/tar.ts";
import { unpackLayer } from "../lib/image/unpack.ts";
import { poolStats } from "../lib/image/file_pool.ts";
import { lgetxattr, llistxattr } from "../ffi/libc.ts";

const MTIME = 1_600_000_000;

function layerEntries(): TarWriteEntry[] {
  const entries: TarWriteEntry[] = [{ name: "sg/", type: "dir", mode: 0o2775, gid: 50, mtime: MTIME }];
  for (let i = 0; i < 400; i++) {
    const dir = `d${i % 10}`;
    if (i < 10) entries.push({ name: `${dir}/`, type: "dir", mode: 0o755, mtime: MTIME });
    entries.push({
      name: `${dir}/f${i}`,
      data: `file ${i}\n`.repeat(1 + (i * 37) % 500),
      mode: i % 7 === 0 ? 0o4755 : 0o644,
      uid: i % 5 === 0 ? 1000 : 0,
      gid: i % 5 === 0 ? 1000 : 0,
      mtime: MTIME + i,
      ...(i % 50 === 0 ? { xattrs: { "user.tag": `x${i}` } } : {}),
    });
    if (i % 9 === 0) entries.push({ name: `sg/g${i}`, data: `in setgid dir ${i}`, mtime: MTIME });
  }
  entries.push(
    // replaced while the first version may be in flight
    { name: "d1/f1", data: "second version", mode: 0o600, mtime: MTIME },
    // hardlink to a file that may be in flight
    { name: "links/", type: "dir", mode: 0o755, mtime: MTIME },
    { name: "links/h33", type: "link", linkname: "d3/f33", mtime: MTIME },
    // whiteout of a file that may be in flight
    { name: "d4/.wh.f44", data: "", mtime: MTIME },
    // a directory's metadata set again while files are made inside it
    { name: "d6/", type: "dir", mode: 0o2750, uid: 7, gid: 8, mtime: MTIME },
    { name: "d6/after", data: "made after the setgid bit", mtime: MTIME },
    // a big file streamed on the main thread between small ones
    { name: "big.bin", data: new Uint8Array(600_000).fill(7), mtime: MTIME },
    { name: "d7/.wh..wh..opq", data: "", mtime: MTIME },
  );
  return entries;
}

/** Every path's type, mode, owner, mtime, link count, content hash, link target and xattrs. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of [...Deno.readDirSync(join(dir, rel))].sort((a, b) => a.name.localeCompare(b.name))) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const abs = join(dir, path);
      const st = Deno.lstatSync(abs);
      // a whiteout's own times are not the layer's (it is made, not unpacked): not compared
      const whiteout = st.isCharDevice && st.rdev === 0;
      let extra = "";
      if (st.isFile) extra = createHash("sha256").update(Deno.readFileSync(abs)).digest("hex");
      if (st.isSymlink) extra = Deno.readLinkSync(abs);
      const xattrs = llistxattr(abs).sort().map((n) =>
        `${n}=${new TextDecoder().decode(lgetxattr(abs, n) ?? new Uint8Array())}`
      );
      out.set(
        path,
        [
          st.mode!.toString(8),
          st.uid,
          st.gid,
          whiteout ? 0 : st.mtime!.getTime(),
          st.nlink,
          st.rdev,
          extra,
          xattrs.join(","),
        ].join(" "),
      );
      if (st.isDirectory) walk(path);
    }
  };
  walk("");
  return out;
}

/**
 * The tar as a stream that waits, as a network would, once the unpacker has seen enough files to
 * start its workers, until they run (they take ~50 ms to start, longer on a loaded machine).
 */
function slowStream(tar: Uint8Array): AsyncIterable<Uint8Array> {
  return (async function* () {
    const step = 16 * 1024;
    for (let off = 0, n = 1; off < tar.length; off += step, n++) {
      yield tar.subarray(off, Math.min(tar.length, off + step));
      if (n % 8 === 0) {
        for (let waited = 0; poolStats.workersStarting && waited < 10_000; waited += 20) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  })();
}

async function unpackWith(threads: string, tar: Uint8Array, dir: string) {
  const before = Deno.env.get("SKIFF_UNPACK_THREADS");
  Deno.env.set("SKIFF_UNPACK_THREADS", threads);
  try {
    return await unpackLayer({ stream: slowStream(tar) }, dir);
  } finally {
    if (before === undefined) Deno.env.delete("SKIFF_UNPACK_THREADS");
    else Deno.env.set("SKIFF_UNPACK_THREADS", before);
  }
}

Deno.test("unpack on worker threads: the same tree, entry for entry, as on one thread", async () => {
  const work = await Deno.makeTempDir({ prefix: "skiff-unpack-par-" });
  try {
    const tar = writeTar(layerEntries());
    const serial = join(work, "serial");
    const parallel = join(work, "parallel");
    await Deno.mkdir(serial);
    await Deno.mkdir(parallel);
    const jobsBefore = poolStats.jobs;
    const a = await unpackWith("0", tar, serial);
    assert.equal(poolStats.jobs, jobsBefore, "SKIFF_UNPACK_THREADS=0 still used workers");
    const b = await unpackWith("2", tar, parallel);
    assert(
      poolStats.jobs - jobsBefore > 100,
      `only ${poolStats.jobs - jobsBefore} files went to the workers`,
    );
    assert.equal(b.diffId, a.diffId);
    assert.equal(b.size, a.size);
    const want = snapshot(serial);
    const got = snapshot(parallel);
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [path, line] of want) assert.equal(got.get(path), line, path);
    // the order-sensitive entries came out as the last entry says
    assert.equal(Deno.readTextFileSync(join(parallel, "d1/f1")), "second version");
    assert.equal(Deno.lstatSync(join(parallel, "d4/f44")).rdev, 0);
    assert(Deno.lstatSync(join(parallel, "d4/f44")).isCharDevice);
    assert.equal(Deno.lstatSync(join(parallel, "links/h33")).nlink, 2);
    // a file keeps its header's group even in a setgid directory (which would hand it its own)
    assert.equal(Deno.lstatSync(join(parallel, "sg/g9")).gid, 0, "setgid dir's group leaked into a file");
    assert.equal(Deno.lstatSync(join(parallel, "d6/after")).gid, 0, "setgid set again: its group leaked");
    assert.equal(Deno.lstatSync(join(parallel, "d6")).gid, 8);
    assert.equal(Deno.lstatSync(join(parallel, "d0/f0")).mode! & 0o7777, 0o4755);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("unpack on worker threads: a file a worker cannot create fails the unpack, entry named", async () => {
  const work = await Deno.makeTempDir({ prefix: "skiff-unpack-par-" });
  try {
    const entries: TarWriteEntry[] = [];
    for (let i = 0; i < 300; i++) entries.push({ name: `many/f${i}`, data: `${i}` });
    const tooLong = `many/${"n".repeat(300)}`; // a name component over 255 bytes: ENAMETOOLONG
    entries.push({ name: tooLong, data: "x" });
    for (let i = 0; i < 50; i++) entries.push({ name: `more/f${i}`, data: `${i}` });
    const jobsBefore = poolStats.jobs;
    await assert.rejects(
      () => unpackWith("2", writeTar(entries), work),
      (e: Error) => e.message.includes(tooLong) && /name too long|ENAMETOOLONG/i.test(e.message),
    );
    assert(poolStats.jobs - jobsBefore > 100, "the files did not go to the workers");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("unpack on worker threads: a directory replaced by a symlink cannot be written through", async () => {
  const work = await Deno.makeTempDir({ prefix: "skiff-unpack-par-" });
  const outside = await Deno.makeTempDir({ prefix: "skiff-unpack-outside-" });
  try {
    const entries: TarWriteEntry[] = [];
    for (let i = 0; i < 300; i++) entries.push({ name: `d/f${i}`, data: `${i}` });
    entries.push({ name: "d", type: "symlink", linkname: outside });
    entries.push({ name: "d/escaped", data: "must not appear outside" });
    const layer = join(work, "layer");
    await Deno.mkdir(layer);
    const jobsBefore = poolStats.jobs;
    await assert.rejects(
      () => unpackWith("2", writeTar(entries), layer),
      /refusing to unpack layer entry "d\/escaped"/,
    );
    assert(poolStats.jobs - jobsBefore > 100, "the files did not go to the workers");
    assert.deepEqual([...Deno.readDirSync(outside)], [], "a file was written outside the layer");
  } finally {
    await Deno.remove(work, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
