// Reference parsing against docker's rules (distribution/reference normalized names).

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  familiarString,
  familiarTagged,
  fullString,
  InvalidReferenceError,
  normalizeTag,
  parsePullReference,
  parseReference,
  splitTagged,
} from "../lib/image/reference.ts";
import { registryHost } from "../lib/registry/reference.ts";
import type { SkiffError } from "../lib/errors.ts";
import { withRoot } from "./helpers.ts";

const HEX = "a".repeat(64);

Deno.test("reference: docker hub short names are normalized", () => {
  const { ref, defaulted } = parsePullReference("busybox");
  deepStrictEqual(ref, { domain: "docker.io", path: "library/busybox", tag: "latest" });
  strictEqual(defaulted, true);
  strictEqual(fullString(ref), "docker.io/library/busybox:latest");
  strictEqual(familiarString(ref), "busybox:latest");
  // Docker Hub's names are served by the settings' hub host; other domains by themselves
  strictEqual(registryHost(ref.domain, "registry-1.docker.io"), "registry-1.docker.io");
  strictEqual(registryHost("docker.io", "127.0.0.1:2"), "127.0.0.1:2");
  strictEqual(registryHost("localhost:5000", "127.0.0.1:2"), "localhost:5000");
  deepStrictEqual(parseReference("user/app:v1"), { domain: "docker.io", path: "user/app", tag: "v1" });
  deepStrictEqual(parseReference("index.docker.io/busybox"), {
    domain: "docker.io",
    path: "library/busybox",
  });
  strictEqual(familiarString(parseReference("docker.io/library/busybox:1.36")), "busybox:1.36");
});

Deno.test("reference: registry hosts", () => {
  deepStrictEqual(parseReference("localhost/app"), { domain: "localhost", path: "app" });
  deepStrictEqual(parseReference("localhost:5000/a/b:t"), {
    domain: "localhost:5000",
    path: "a/b",
    tag: "t",
  });
  deepStrictEqual(parseReference("127.0.0.1:5000/app"), { domain: "127.0.0.1:5000", path: "app" });
  deepStrictEqual(parseReference("quay.io/org/app"), { domain: "quay.io", path: "org/app" });
  deepStrictEqual(parseReference("[::1]:5000/app"), { domain: "[::1]:5000", path: "app" });
  // a first component without . or : is a path component of a hub repository
  deepStrictEqual(parseReference("myhost/app"), { domain: "docker.io", path: "myhost/app" });
  strictEqual(familiarString(parseReference("localhost:5000/app:v1")), "localhost:5000/app:v1");
});

Deno.test("reference: tags and digests", () => {
  const d = `sha256:${HEX}`;
  const { ref, defaulted } = parsePullReference(`busybox@${d}`);
  deepStrictEqual(ref, { domain: "docker.io", path: "library/busybox", digest: d });
  strictEqual(defaulted, false);
  deepStrictEqual(parseReference(`busybox:1.36@${d}`), {
    domain: "docker.io",
    path: "library/busybox",
    tag: "1.36",
    digest: d,
  });
  strictEqual(parseReference("a:" + "x".repeat(128)).tag?.length, 128);
  strictEqual(parseReference("a:Tag_1.2-x").tag, "Tag_1.2-x");
});

Deno.test("reference: invalid references say so like docker", () => {
  const bad: [string, string][] = [
    ["Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"],
    ["localhost:5000/App", "invalid reference format: repository name (App) must be lowercase"],
    ["busybox:", "invalid reference format"],
    ["busybox::x", "invalid reference format"],
    [":tag", "invalid reference format"],
    ["", "invalid reference format"],
    ["a//b", "invalid reference format"],
    ["-a", "invalid reference format"],
    ["a:-tag", "invalid reference format"],
    ["a:" + "x".repeat(129), "invalid reference format"],
    ["busybox@sha256:abc", "invalid reference format"],
    [`busybox@sha256:${"a".repeat(63)}`, "invalid reference format: invalid checksum digest length"],
    [`busybox@sha256:${"a".repeat(65)}`, "invalid reference format: invalid checksum digest length"],
    [`busybox@sha256:${"A".repeat(64)}`, "invalid reference format: invalid checksum digest format"],
    [`busybox@md5:${"a".repeat(32)}`, "invalid reference format: unsupported digest algorithm"],
    [
      "a/" + "b".repeat(260),
      "invalid reference format: repository name must not be more than 255 characters",
    ],
  ];
  for (const [input, message] of bad) {
    throws(() => parseReference(input), (e: unknown) => {
      strictEqual(e instanceof InvalidReferenceError, true, `${input}: ${e}`);
      strictEqual((e as Error).message, message, input);
      strictEqual((e as SkiffError).exitCode, 125);
      return true;
    });
  }
  throws(() => parseReference(HEX), /cannot specify 64-byte hexadecimal strings/);
});

// docker 20.10: `docker pull Busybox` exits 1 ("invalid reference format: repository name must be lowercase")
Deno.test("reference: skiff pull with an invalid reference exits 1 with one line", async () => {
  await withRoot(async (root) => {
    const r = await root.skiff(["pull", "Busybox"]);
    strictEqual(r.code, 1);
    strictEqual(
      r.stderr.trim(),
      "skiff: invalid reference format: repository name (library/Busybox) must be lowercase",
    );
    strictEqual(r.stdout, "");
    deepStrictEqual([...Deno.readDirSync(`${root.path}/images`)], []);
  });
});

Deno.test("reference: one parser for local names and pulls (IPv6 registries, digest algorithms)", () => {
  // [::1]:5000/foo was refused locally while pull took it; foo@sha512 the other way round
  strictEqual(normalizeTag("[::1]:5000/foo"), "[::1]:5000/foo:latest");
  throws(() => parseReference(`foo@sha512:${"a".repeat(128)}`), /unsupported digest algorithm/);
  strictEqual(familiarTagged(parseReference("docker.io/library/busybox")), "busybox:latest");
  throws(() => normalizeTag(`busybox@sha256:${"a".repeat(64)}`), /refusing to create a tag with a digest/);
  throws(() => normalizeTag(`${"a".repeat(64)}:v1`), /cannot specify 64-byte hexadecimal strings/);
  deepStrictEqual(splitTagged("localhost:5000/app"), { repository: "localhost:5000/app", tag: "latest" });
  deepStrictEqual(splitTagged("localhost:5000/app:v1"), { repository: "localhost:5000/app", tag: "v1" });
});
