// skiff push against a real docker-registry: an imported image (no stored layer blob) and a pulled
// one go up, skopeo reads them back with the digests skiff printed; blobs the registry has are
// skipped, blobs in another repository are mounted.

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { withBusybox, withRoot } from "./helpers.ts";
import {
  buildImage,
  PASSWORD,
  type RegistryMode,
  run,
  sha256,
  skopeoInspectRaw,
  skopeoPush,
  USER,
  withDockerConfig,
  withRegistry,
} from "./registry_harness.ts";

const DIGEST_LINE = /^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m;

for (const mode of ["open", "basic", "token"] as RegistryMode[]) {
  Deno.test(`push (${mode}): an imported image, read back by skopeo and skiff`, async () => {
    await withRegistry(mode, async (registry) => {
      await withDockerConfig(async (env) => {
        await withBusybox(async (root) => {
          if (mode !== "open") {
            await root.ok(["login", "-u", USER, "-p", PASSWORD, registry.host], { env });
          }
          const ref = `${registry.host}/team/busybox:v1`;
          await root.ok(["tag", "busybox:latest", ref]);
          const r = await root.skiff(["push", ref], { env });
          strictEqual(r.code, 0, r.stderr);
          const lines = r.stdout.trim().split("\n");
          strictEqual(lines[0], `The push refers to repository [${registry.host}/team/busybox]`);
          ok(lines.some((l) => l.endsWith(": Pushed")), r.stdout);
          const m = DIGEST_LINE.exec(r.stdout);
          ok(m, r.stdout);
          strictEqual(m[1], "v1");

          // skopeo sees the manifest skiff printed, byte for byte
          const raw = await skopeoInspectRaw(registry, "team/busybox:v1");
          strictEqual(sha256(new TextEncoder().encode(raw)), m[2]);
          strictEqual(raw.length, Number(m[3]));
          const copyDir = await Deno.makeTempDir({ prefix: "skiff-copy-" });
          try {
            const creds = registry.creds ? ["--src-creds", registry.creds] : [];
            const copy = await run("skopeo", [
              "copy",
              "--src-tls-verify=false",
              ...creds,
              `docker://${ref}`,
              `dir:${copyDir}`,
            ]);
            strictEqual(copy.code, 0, copy.stderr);
            strictEqual(sha256(Deno.readFileSync(join(copyDir, "manifest.json"))), m[2]);
          } finally {
            await Deno.remove(copyDir, { recursive: true });
          }

          // the same push again: every blob is there already
          const again = await root.skiff(["push", ref], { env });
          strictEqual(again.code, 0, again.stderr);
          ok(again.stdout.includes(": Layer already exists"), again.stdout);
          strictEqual(DIGEST_LINE.exec(again.stdout)?.[2], m[2]);

          // another repository on the same registry: the layer is mounted, not uploaded
          const other = `${registry.host}/other/copy:v2`;
          await root.ok(["tag", "busybox:latest", other]);
          const mounted = await root.skiff(["push", other], { env });
          strictEqual(mounted.code, 0, mounted.stderr);
          match(mounted.stdout, /: Mounted from team\/busybox$/m);
          strictEqual(DIGEST_LINE.exec(mounted.stdout)?.[2], m[2]);

          // and skiff pulls it back into a fresh root, runnable
          await withRoot(async (fresh) => {
            const p = await fresh.skiff(["pull", "-q", ref], { env });
            strictEqual(p.code, 0, p.stderr);
            // the imported layer kept its tar: sent gzipped, same diffID, so the same image ID
            strictEqual(
              (await fresh.ok(["inspect", "--format", "{{.Id}}", ref])).trim(),
              (await root.ok(["inspect", "--format", "{{.Id}}", "busybox:latest"])).trim(),
            );
            const out = await fresh.skiff(["run", "--rm", ref, "cat", "/etc/group"]);
            strictEqual(out.code, 0, out.stderr);
            match(out.stdout, /^root:x:0:/);
          });
        });
      });
    });
  });
}

Deno.test("push: a pulled image keeps its manifest digest on another registry", async () => {
  const img = await buildImage({ name: "repush" });
  try {
    await withRegistry("open", async (source) => {
      await withRegistry("open", async (dest) => {
        await skopeoPush(source, img.layout, "orig:1");
        await withRoot(async (root) => {
          await root.ok(["pull", "-q", `${source.host}/orig:1`]);
          await root.ok(["tag", `${source.host}/orig:1`, `${dest.host}/copy:1`]);
          const r = await root.skiff(["push", `${dest.host}/copy:1`]);
          strictEqual(r.code, 0, r.stderr);
          strictEqual(DIGEST_LINE.exec(r.stdout)?.[2], img.manifestDigest);
          const raw = await skopeoInspectRaw(dest, "copy:1");
          deepStrictEqual(JSON.parse(raw), JSON.parse(new TextDecoder().decode(img.manifestBytes)));
        });
      });
    });
  } finally {
    await Deno.remove(img.dir, { recursive: true });
  }
});

Deno.test("push: errors", async () => {
  await withRegistry("basic", async (registry) => {
    await withDockerConfig(async (env) => {
      await withBusybox(async (root) => {
        const missing = await root.skiff(["push", `${registry.host}/absent:1`], { env });
        strictEqual(missing.code, 1);
        strictEqual(
          missing.stderr,
          `skiff: An image does not exist locally with the tag: ${registry.host}/absent\n`,
        );
        await root.ok(["tag", "busybox:latest", `${registry.host}/needs/auth:1`]);
        const denied = await root.skiff(["push", `${registry.host}/needs/auth:1`], { env });
        strictEqual(denied.code, 1);
        match(denied.stderr, /unauthorized: authentication required/);
        const bad = await root.skiff(["push", "Bad/Name"]);
        strictEqual(bad.code, 1); // docker 20.10: "invalid reference format: …", exit 1
      });
    });
  });
});
