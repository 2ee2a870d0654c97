// The build cache's file hashes (lib/build/hash.ts): an unchanged COPY source is known by its
// device, inode, size, mtime and ctime and not read again; anything that changes the file, or a
// damaged record, falls back to hashing it; a touched mtime keeps the build cache.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

const copyRan = (out: string) => !/Step 2\/2 : COPY big \/big\n ---> Using cache/.test(out);

interface HashFile {
  version: number;
  files: Record<string, { stamp: string; sha256: string }>;
}

async function build(root: TestRoot, dir: string) {
  const r = await root.skiff(["build", "-t", "hashed", dir]);
  assertEqual(r.code, 0, r.stderr);
  return r;
}

Deno.test("build cache: COPY sources' hashes are kept by inode and stamps, checked, and never trusted for a changed file", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-build-hash-" });
    try {
      const big = join(dir, "big");
      const content = crypto.getRandomValues(new Uint8Array(60000));
      Deno.writeFileSync(big, content);
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nCOPY big /big\n");
      // a file changed within 2 s of a build is hashed but not recorded (git's "racily clean")
      await new Promise((r) => setTimeout(r, 2100));
      const cacheFile = join(root.path, "build-cache", "files.json");

      assert(copyRan((await build(root, dir)).stdout));
      const st = Deno.statSync(big);
      const rec = (JSON.parse(Deno.readTextFileSync(cacheFile)) as HashFile).files;
      const key = Object.keys(rec).find((k) => k.endsWith(`:${st.ino}`))!;
      assert(key, JSON.stringify(rec));
      assertEqual(rec[key].sha256, createHash("sha256").update(content).digest("hex"));
      assert(rec[key].stamp.startsWith(`${content.length}:`), rec[key].stamp);

      // unchanged: the cache, and the record is what the build used (a wrong hash under the right
      // stamps changes the key: the COPY runs, reads the file, and refuses the mismatch)
      assert(!copyRan((await build(root, dir)).stdout));
      const lying: HashFile = { version: 1, files: { [key]: { ...rec[key], sha256: "0".repeat(64) } } };
      Deno.writeTextFileSync(cacheFile, JSON.stringify(lying));
      const refused = await root.skiff(["build", "-t", "hashed", dir]);
      assertEqual(refused.code, 1);
      assert(/the build context changed while the build was reading it/.test(refused.stderr), refused.stderr);
      Deno.writeTextFileSync(cacheFile, JSON.stringify({ version: 1, files: rec }));

      // only the mtime changed (ctime moves too): re-hashed, the same content, the build cache kept
      Deno.utimeSync(big, new Date(), new Date(2001, 1, 1));
      assert(!copyRan((await build(root, dir)).stdout));

      // new content of the same size with the old mtime put back, on a new (maybe reused) inode:
      // ctime differs, so the record is not trusted and the COPY runs again
      const mtime = Deno.statSync(big).mtime!;
      Deno.removeSync(big);
      const other = crypto.getRandomValues(new Uint8Array(content.length));
      Deno.writeFileSync(big, other);
      Deno.utimeSync(big, mtime, mtime);
      assert(copyRan((await build(root, dir)).stdout));
      const copied = await root.ok(["run", "--rm", "hashed", "md5sum", "/big"]);
      assertEqual(copied.split(" ")[0], createHash("md5").update(other).digest("hex"));

      // damaged files: reported on stderr, ignored, the build right
      for (
        const [text, warning] of [
          ["{not json", /WARNING: .*files\.json: not JSON; ignored/],
          [
            JSON.stringify({ version: 1, files: { [key]: { stamp: "x", sha256: "zz" } } }),
            /1 bad record ignored/,
          ],
          [JSON.stringify({ version: 9 }), /not a version 1 file hash cache/],
        ] as const
      ) {
        Deno.writeTextFileSync(cacheFile, text);
        const r = await build(root, dir);
        assert(warning.test(r.stderr), r.stderr);
        assert(!copyRan(r.stdout));
      }
      // the damaged file was replaced by a good one
      assertEqual((JSON.parse(Deno.readTextFileSync(cacheFile)) as HashFile).version, 1);
      assertEqual((await build(root, dir)).stderr, "");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
