// Unit tests of the registry client's pure parts: WWW-Authenticate parsing, the token cache,
// insecure-registry matching, manifest validation and platform selection.

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { parseChallenge, TokenCache } from "../lib/registry/auth.ts";
import { isInsecure, RegistryClient } from "../lib/registry/client.ts";
import { DEFAULT_REGISTRY_SETTINGS } from "../lib/registry/settings.ts";
import { registrySettingsFromEnvironment } from "../lib/cli/registry_settings.ts";
import { MANIFEST_SIZE_LIMIT, MEDIA, parseManifest } from "../lib/registry/manifest.ts";
import {
  formatPlatform,
  parsePlatform,
  platformMatches,
  selectPlatform,
} from "../lib/registry/mediatypes.ts";
import { humanSize } from "../lib/format/human.ts";
import { serverDomain } from "../lib/registry/reference.ts";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const D = (c: string) => `sha256:${c.repeat(64)}`;

Deno.test("auth: WWW-Authenticate challenges, quoted commas included", () => {
  deepStrictEqual(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
    ),
    {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:a/b:pull,push",
      },
    },
  );
  deepStrictEqual(parseChallenge('Basic realm="Registry Realm"'), {
    scheme: "basic",
    params: { realm: "Registry Realm" },
  });
  strictEqual(parseChallenge(""), undefined);
});

Deno.test("auth: tokens are cached per scope until shortly before expiry", () => {
  const cache = new TokenCache();
  cache.set("r", "s", "repository:a:pull", "T1", 300);
  strictEqual(cache.get("r", "s", "repository:a:pull"), "T1");
  strictEqual(cache.get("r", "s", "repository:a:pull,push"), undefined);
  strictEqual(cache.get("r", "other", "repository:a:pull"), undefined);
  cache.set("r", "s", "short", "T2", 5); // within the 10 s safety margin: kept one second only
  strictEqual(cache.get("r", "s", "short"), "T2");
  cache.delete("r", "s", "short");
  strictEqual(cache.get("r", "s", "short"), undefined);
});

Deno.test("client: plain HTTP only for loopback and listed insecure registries", () => {
  for (const host of ["localhost:5000", "127.0.0.1:5000", "127.8.9.10", "[::1]:5000"]) {
    ok(isInsecure(host, []));
  }
  ok(!isInsecure("registry.example.com", []));
  ok(!isInsecure("10.1.2.3:5000", []));
  const listed = ["registry.example.com", "10.0.0.0/8"];
  ok(isInsecure("registry.example.com", listed));
  ok(isInsecure("10.1.2.3:5000", listed));
  ok(!isInsecure("11.1.2.3", listed));
});

Deno.test("registry settings: the CLI's environment and flags, read once; the client reads none", () => {
  const saved = Object.fromEntries(
    ["SKIFF_INSECURE_REGISTRIES", "SKIFF_DOCKER_HUB_HOST", "DOCKER_CONFIG", "SKIFF_REGISTRY_TIMEOUT"].map((
      k,
    ) => [k, Deno.env.get(k)]),
  );
  try {
    Deno.env.set("SKIFF_INSECURE_REGISTRIES", "a.example:5000, http://b.example/");
    Deno.env.set("SKIFF_DOCKER_HUB_HOST", "127.0.0.1:2");
    Deno.env.set("DOCKER_CONFIG", "/tmp/dc");
    Deno.env.set("SKIFF_REGISTRY_TIMEOUT", "7");
    const s = registrySettingsFromEnvironment(["c.example"]);
    ok(
      s.insecure.includes("a.example:5000") && s.insecure.includes("b.example") &&
        s.insecure.includes("c.example"),
    );
    strictEqual(s.dockerHubHost, "127.0.0.1:2");
    strictEqual(s.dockerConfigDir, "/tmp/dc");
    strictEqual(s.timeoutMs, 7000);
    // a client made with other settings uses those, whatever the environment says
    const client = new RegistryClient("docker.io", {
      ...DEFAULT_REGISTRY_SETTINGS,
      dockerConfigDir: "/nonexistent",
    });
    strictEqual(client.host, "registry-1.docker.io");
    strictEqual(client.timeoutMs, DEFAULT_REGISTRY_SETTINGS.timeoutMs);
    client.close();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
});

Deno.test("manifest: the four formats parse, bad ones are refused before any fetch", () => {
  const config = { mediaType: MEDIA.dockerConfig, digest: D("c"), size: 10 };
  const layer = { mediaType: MEDIA.dockerLayerGzip, digest: D("1"), size: 100 };
  const m = parseManifest(
    enc({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config, layers: [layer] }),
    null,
  );
  strictEqual(m.kind, "image");
  // OCI without mediaType in the body: told by the header, else by shape
  strictEqual(parseManifest(enc({ schemaVersion: 2, config, layers: [] }), MEDIA.ociManifest).kind, "image");
  strictEqual(parseManifest(enc({ schemaVersion: 2, manifests: [] }), null).kind, "index");
  const list = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifestList,
      manifests: [{
        ...layer,
        mediaType: MEDIA.dockerManifest,
        platform: { os: "linux", architecture: "amd64" },
      }],
    }),
    null,
  );
  strictEqual(list.kind, "index");

  const refuse = (body: Uint8Array, re: RegExp) => throws(() => parseManifest(body, null), re);
  refuse(enc({ schemaVersion: 1, name: "x", fsLayers: [] }), /schema1 manifests are no longer supported/);
  refuse(new TextEncoder().encode("{not json"), /not JSON/);
  refuse(
    enc({
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { ...config, digest: "sha256:xyz" },
      layers: [],
    }),
    /invalid digest/,
  );
  refuse(
    enc({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config, layers: [{ ...layer, size: -1 }] }),
    /invalid manifest/,
  );
  refuse(
    enc({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config,
      layers: [{ ...layer, mediaType: MEDIA.ociLayerZstd }],
    }),
    /unsupported layer compression \(zstd\)/,
  );
  refuse(enc({ schemaVersion: 2, mediaType: "application/x-unknown" }), /unsupported manifest media type/);
  refuse(new Uint8Array(MANIFEST_SIZE_LIMIT + 1), /manifest too large/);
  refuse(
    enc({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { ...config, size: 1e9 }, layers: [] }),
    /image config too large/,
  );
});

Deno.test("platforms: parsing and selection follow docker/containerd", () => {
  deepStrictEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  deepStrictEqual(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
  deepStrictEqual(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v6" });
  deepStrictEqual(parsePlatform("arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
  deepStrictEqual(parsePlatform("linux/x86_64"), { os: "linux", architecture: "amd64" });
  // containerd's words (docker 20.10's daemon): a bad component, one unknown word, too many parts
  throws(() => parsePlatform("linux//"), /"" is an invalid component of "linux\/\/": platform specifier/);
  throws(
    () => parsePlatform("bogus"),
    /"bogus": unknown operating system or architecture: invalid argument$/,
  );
  throws(
    () => parsePlatform("linux/a/b/c"),
    /"linux\/a\/b\/c": cannot parse platform specifier: invalid argument$/,
  );
  deepStrictEqual(parsePlatform("wasm"), { os: "linux", architecture: "wasm" });
  strictEqual(parsePlatform("windows").os, "windows");
  // run/create --platform: an image of another platform does not count as here
  strictEqual(platformMatches(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" }), true);
  strictEqual(platformMatches(parsePlatform("linux/arm64"), { os: "linux", architecture: "amd64" }), false);
  strictEqual(platformMatches(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64" }), true);
  strictEqual(
    platformMatches(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v7" }),
    false,
  );
  strictEqual(platformMatches(parsePlatform("windows/amd64"), { os: "linux", architecture: "amd64" }), false);
  strictEqual(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
  const entry = (architecture: string, variant?: string, os = "linux") => ({
    mediaType: MEDIA.ociManifest,
    digest: D(architecture === "amd64" ? "a" : variant === "v6" ? "6" : variant === "v7" ? "7" : "b"),
    size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index = {
    manifests: [
      entry("amd64", undefined, "windows"),
      entry("arm", "v6"),
      entry("arm", "v7"),
      entry("arm64"),
      entry("amd64"),
    ],
  };
  strictEqual(selectPlatform(index, parsePlatform("linux/amd64"))?.digest, D("a"));
  strictEqual(selectPlatform(index, parsePlatform("linux/amd64"))?.platform?.os, "linux");
  strictEqual(selectPlatform(index, parsePlatform("linux/arm64"))?.digest, D("b")); // no variant means v8
  strictEqual(selectPlatform(index, parsePlatform("linux/arm/v7"))?.digest, D("7"));
  strictEqual(selectPlatform(index, parsePlatform("linux/s390x")), undefined);
});

Deno.test("misc: sizes as docker prints them, login server names", () => {
  // go-units: tables use HumanSizeWithPrecision(x, 3), progress bars HumanSize (precision 4)
  strictEqual(humanSize(999), "999B");
  strictEqual(humanSize(1_234_567), "1.23MB");
  strictEqual(humanSize(1_234_567, 4), "1.235MB");
  strictEqual(humanSize(999_999), "1e+03kB");
  strictEqual(humanSize(999_999, 4), "1000kB");
  strictEqual(serverDomain(undefined), "docker.io");
  strictEqual(serverDomain("https://index.docker.io/v1/"), "docker.io");
  strictEqual(serverDomain("http://LocalHost:5000/"), "localhost:5000");
  strictEqual(serverDomain("127.0.0.1:5000"), "127.0.0.1:5000");
  throws(() => serverDomain("bad host!"), /invalid reference format/);
});
