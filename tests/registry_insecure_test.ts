// A registry that is not on loopback: docker-registry inside a network namespace this test makes,
// reached over a veth pair (10.213.N.1 here, 10.213.N.2 there). skiff talks plain HTTP to it only
// when it is listed as insecure (the global --insecure-registry flag, host[:port] or a CIDR);
// otherwise HTTPS, which this registry does not speak: one line, exit 1, nothing stored.

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withRoot } from "./helpers.ts";
import { run, sharedImage, skopeoPush, withRegistry } from "./registry_harness.ts";

const testImage = () => sharedImage("insecure");

async function ip(args: string[]): Promise<void> {
  const r = await run("ip", args);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
}

/** A network namespace joined to this one by a veth pair; removed again, link and all. */
async function withNetns(fn: (ns: { name: string; address: string }) => Promise<void>): Promise<void> {
  const n = crypto.getRandomValues(new Uint8Array(1))[0] % 250;
  const tag = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0").slice(0, 6);
  const name = `skiff-t-${tag}`, hostEnd = `sk${tag}h`, nsEnd = `sk${tag}n`;
  await ip(["netns", "add", name]);
  try {
    await ip(["link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd]);
    await ip(["link", "set", nsEnd, "netns", name]);
    await ip(["addr", "add", `10.213.${n}.1/30`, "dev", hostEnd]);
    await ip(["link", "set", hostEnd, "up"]);
    await ip(["-n", name, "addr", "add", `10.213.${n}.2/30`, "dev", nsEnd]);
    await ip(["-n", name, "link", "set", nsEnd, "up"]);
    await ip(["-n", name, "link", "set", "lo", "up"]);
    await fn({ name, address: `10.213.${n}.2` });
  } finally {
    await run("ip", ["link", "del", hostEnd]); // gone with the namespace already, normally
    await ip(["netns", "del", name]);
  }
}

function dirEntries(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

async function assertNothingStored(root: TestRoot) {
  strictEqual((await root.ok(["images", "-q"])).trim(), "");
  deepStrictEqual(dirEntries(join(root.path, "blobs", "sha256")), []);
  deepStrictEqual(dirEntries(join(root.path, "layers")), []);
  deepStrictEqual(dirEntries(join(root.path, "tmp")), []);
}

Deno.test("insecure: a registry off loopback gets plain HTTP only with --insecure-registry (host:port or CIDR)", async () => {
  const img = await testImage();
  await withNetns(async (ns) => {
    await withRegistry("open", async (registry) => {
      await skopeoPush(registry, img.layout, "test/busybox:1");
      const ref = `${registry.host}/test/busybox:1`;
      const env = { SKIFF_INSECURE_REGISTRIES: "", SKIFF_REGISTRY_RETRIES: "0" };
      await withRoot(async (root) => {
        // not listed: HTTPS, which a plain-HTTP registry cannot answer
        const refused = await root.skiff(["pull", ref], { env });
        strictEqual(refused.code, 1, refused.stderr);
        strictEqual(refused.stderr.trim().split("\n").length, 1, refused.stderr);
        strictEqual(
          refused.stderr,
          `skiff: cannot reach registry ${registry.host}: http: server gave HTTP response to HTTPS client\n`,
        );
        await assertNothingStored(root);

        // listed by host:port: pulled over HTTP, and it runs
        const pulled = await root.skiff(["--insecure-registry", registry.host, "pull", ref], { env });
        strictEqual(pulled.code, 0, pulled.stderr);
        ok(pulled.stdout.includes(`Digest: ${img.manifestDigest}`), pulled.stdout);
        const out = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
        strictEqual(out.code, 0, out.stderr);
        strictEqual(out.stdout, "insecure amd64\n");

        // listed by a CIDR that holds it: push goes over HTTP too (skopeo reads it back)
        const pushed = `${registry.host}/test/again:2`;
        await root.ok(["tag", ref, pushed]);
        const cidr = `--insecure-registry=${ns.address.split(".").slice(0, 2).join(".")}.0.0/16`;
        const push = await root.skiff([cidr, "push", pushed], { env });
        strictEqual(push.code, 0, push.stderr);
        const inspect = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${pushed}`]);
        strictEqual(inspect.code, 0, inspect.stderr);
        strictEqual(JSON.parse(inspect.stdout).Digest, img.manifestDigest);

        // a CIDR that does not hold it changes nothing
        await root.ok(["rmi", ref, pushed]);
        const other = await root.skiff(["--insecure-registry", "10.214.0.0/16", "pull", ref], { env });
        strictEqual(other.code, 1, other.stderr);
      });
    }, { netns: ns });
  });
});
