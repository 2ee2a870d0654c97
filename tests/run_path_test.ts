// lib/path.ts must give node:path's answers (it replaces node:path on skiff's start-up path).

import { strictEqual } from "node:assert/strict";
import * as node from "node:path";
import { basename, dirname, join, normalize } from "../lib/path.ts";

const SAMPLES = [
  "",
  ".",
  "..",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "/a/b",
  "/a/b/",
  "a/b/c",
  "/a//b///c/",
  "/a/./b/../c",
  "../a/../../b",
  "/../a",
  "a/..",
  "a/../..",
  "./a/./b/.",
  "/sys/fs/cgroup/cpuset/skiff/abc/..",
];

Deno.test("path: normalize, dirname and basename agree with node:path", () => {
  for (const p of SAMPLES) {
    strictEqual(normalize(p), node.posix.normalize(p), `normalize(${JSON.stringify(p)})`);
    strictEqual(dirname(p), node.posix.dirname(p), `dirname(${JSON.stringify(p)})`);
    strictEqual(basename(p), node.posix.basename(p), `basename(${JSON.stringify(p)})`);
  }
});

Deno.test("path: join agrees with node:path", () => {
  const parts = ["", "/", "a", "/b", "c/", "..", ".", "/root/containers", "id"];
  for (const x of parts) {
    for (const y of parts) {
      strictEqual(join(x, y), node.posix.join(x, y), `join(${JSON.stringify(x)}, ${JSON.stringify(y)})`);
      for (const z of ["d", "..", ""]) {
        strictEqual(join(x, y, z), node.posix.join(x, y, z), `join(${x}, ${y}, ${z})`);
      }
    }
  }
  strictEqual(join(), node.posix.join());
});
