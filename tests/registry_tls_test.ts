// skiff pull from a TLS-only docker-registry on 127.0.0.1: the server certificate is signed by a
// test CA made with openssl, trusted only through docker's per-registry convention
// <certs.d>/<host:port>/ca.crt. The certs.d directory is a temp dir passed as SKIFF_CERTS_DIR,
// so the tests never write to the real /etc/docker.

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withRoot } from "./helpers.ts";
import { run, sharedImage, skopeoPush, type TestRegistry, withRegistry } from "./registry_harness.ts";

const testImage = () => sharedImage("tls");

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** a client certificate (extendedKeyUsage clientAuth) signed by the same CA, and its key */
  clientCert: string;
  clientKey: string;
}

/**
 * A CA; a server certificate it signed for 127.0.0.1 (IP SAN) and localhost; a client certificate
 * it signed too.
 */
async function makePki(dir: string): Promise<TestPki> {
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.crt");
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    caKey,
    "-out",
    caCert,
    "-days",
    "2",
    "-subj",
    "/CN=skiff test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  /** A key and a certificate the CA signed, with these extensions; written as <name>.key, <name><certExt>. */
  const issue = async (name: string, subject: string, extensions: string, certExt: string) => {
    const key = join(dir, `${name}.key`), csr = join(dir, `${name}.csr`), ext = join(dir, `${name}.ext`);
    const cert = join(dir, `${name}${certExt}`);
    await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject]);
    Deno.writeTextFileSync(
      ext,
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${extensions}`,
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      caCert,
      "-CAkey",
      caKey,
      "-CAcreateserial",
      "-out",
      cert,
      "-days",
      "2",
      "-extfile",
      ext,
    ]);
    return { key, cert };
  };
  const server = await issue(
    "server",
    "/CN=127.0.0.1",
    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    ".crt",
  );
  // docker's certs.d names a client certificate X.cert (a .crt there is a CA)
  const client = await issue("client", "/CN=skiff test client", "extendedKeyUsage=clientAuth\n", ".cert");
  return {
    dir,
    caCert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

interface TlsSetup {
  registry: TestRegistry;
  pki: TestPki;
  /** Empty certs.d for SKIFF_CERTS_DIR; trust(host) puts the CA in it for that host[:port]. */
  certsDir: string;
  trust(host: string): void;
  env: Record<string, string>;
}

/**
 * A TLS-only registry holding test/busybox:1 (pushed by skopeo), and an empty certs.d. clientAuth:
 * the registry wants a client certificate signed by the test CA (skopeo pushes with one).
 */
async function withTlsRegistry(
  fn: (setup: TlsSetup) => Promise<void>,
  { clientAuth = false } = {},
): Promise<void> {
  const img = await testImage();
  const dir = await Deno.makeTempDir({ prefix: "skiff-tls-" });
  try {
    const pki = await makePki(dir);
    const certsDir = join(dir, "certs.d");
    const dockerConfig = join(dir, "docker");
    Deno.mkdirSync(certsDir);
    Deno.mkdirSync(dockerConfig);
    let pushCerts: string | undefined;
    if (clientAuth) {
      pushCerts = join(dir, "push-certs");
      Deno.mkdirSync(pushCerts);
      Deno.copyFileSync(pki.caCert, join(pushCerts, "ca.crt"));
      Deno.copyFileSync(pki.clientCert, join(pushCerts, "client.cert"));
      Deno.copyFileSync(pki.clientKey, join(pushCerts, "client.key"));
    }
    await withRegistry("open", async (registry) => {
      await skopeoPush(registry, img.layout, "test/busybox:1", pushCerts);
      const trust = (host: string) => {
        Deno.mkdirSync(join(certsDir, host), { recursive: true });
        Deno.copyFileSync(pki.caCert, join(certsDir, host, "ca.crt"));
      };
      const env = { SKIFF_CERTS_DIR: certsDir, DOCKER_CONFIG: dockerConfig, SKIFF_INSECURE_REGISTRIES: "" };
      await fn({ registry, pki, certsDir, trust, env });
    }, {
      tls: { certificate: pki.serverCert, key: pki.serverKey, clientCa: clientAuth ? pki.caCert : undefined },
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function dirEntries(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

async function assertPulledAndRuns(root: TestRoot, ref: string, env: Record<string, string>) {
  const img = await testImage();
  const r = await root.skiff(["pull", ref], { env });
  strictEqual(r.code, 0, r.stderr);
  ok(r.stdout.includes(`Digest: ${img.manifestDigest}`), r.stdout);
  strictEqual((await root.ok(["images", "-q", "--no-trunc"])).trim(), img.configDigest);
  for (const d of img.layerDigests) ok(Deno.statSync(join(root.path, "blobs/sha256", d.slice(7))).isFile);
  const runOut = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
  strictEqual(runOut.code, 0, runOut.stderr);
  strictEqual(runOut.stdout, "tls amd64\n");
}

Deno.test("tls: the registry is TLS-only (plain HTTP gets 400), so a loopback pull must fall back to HTTPS", async () => {
  await withTlsRegistry(async ({ registry }) => {
    const res = await fetch(`http://${registry.host}/v2/`);
    await res.body?.cancel();
    strictEqual(res.status, 400);
  });
});

Deno.test("tls: pull with the CA in certs.d/<host:port>/ca.crt succeeds (HTTP first on loopback, then HTTPS)", async () => {
  await withTlsRegistry(async ({ registry, trust, env }) => {
    trust(registry.host);
    await withRoot(async (root) => {
      await assertPulledAndRuns(root, `${registry.host}/test/busybox:1`, env);
    });
  });
});

Deno.test("tls: the certificate's DNS name works too: localhost:<port> with certs.d/localhost:<port>", async () => {
  await withTlsRegistry(async ({ registry, trust, env }) => {
    const host = registry.host.replace("127.0.0.1", "localhost");
    trust(host);
    await withRoot(async (root) => {
      await assertPulledAndRuns(root, `${host}/test/busybox:1`, env);
    });
  });
});

Deno.test("tls: without the CA the pull fails with one line about the certificate and stores nothing", async () => {
  await withTlsRegistry(async ({ registry, trust, env }) => {
    // a CA filed under another host must not be used for this one
    trust("127.0.0.1:1");
    await withRoot(async (root) => {
      const started = Date.now();
      const r = await root.skiff(["pull", `${registry.host}/test/busybox:1`], { env });
      const elapsed = Date.now() - started;
      ok(r.code !== 0, r.stderr);
      const lines = r.stderr.trim().split("\n");
      strictEqual(lines.length, 1, r.stderr);
      match(lines[0], /certificate/i);
      match(lines[0], /UnknownIssuer/);
      match(lines[0], new RegExp(registry.host.replaceAll(".", "\\.")));
      strictEqual((await root.ok(["images", "-q"])).trim(), "");
      deepStrictEqual(dirEntries(join(root.path, "blobs", "sha256")), []);
      deepStrictEqual(dirEntries(join(root.path, "layers")), []);
      deepStrictEqual(dirEntries(join(root.path, "images")), []);
      deepStrictEqual(dirEntries(join(root.path, "tmp")), []);
      // a certificate error is not transient: no retries (4 with backoff would take over 2 s)
      ok(elapsed < 2000, `took ${elapsed} ms`);
    });
  });
});

Deno.test("tls: a registry that wants a client certificate: X.cert + X.key in certs.d, as docker reads them", async () => {
  await withTlsRegistry(async ({ registry, pki, certsDir, trust, env }) => {
    trust(registry.host);
    const hostDir = join(certsDir, registry.host);
    const ref = `${registry.host}/test/busybox:1`;
    await withRoot(async (root) => {
      const assertNothingStored = async () => {
        strictEqual((await root.ok(["images", "-q"])).trim(), "");
        deepStrictEqual(dirEntries(join(root.path, "blobs", "sha256")), []);
        deepStrictEqual(dirEntries(join(root.path, "layers")), []);
        deepStrictEqual(dirEntries(join(root.path, "tmp")), []);
      };
      // the CA alone: the registry refuses the handshake; one line, nothing stored. With TLS 1.3 the
      // client counts the handshake done before the server has checked its (empty) certificate: the
      // server's alert or the closed connection arrives first, by timing (the latter once in five suite runs)
      const bare = await root.skiff(["pull", ref], { env });
      strictEqual(bare.code, 1, bare.stderr);
      strictEqual(bare.stderr.trim().split("\n").length, 1, bare.stderr);
      match(
        bare.stderr,
        /^skiff: cannot reach registry .*: (remote error: tls: (bad certificate|certificate required)|connection closed)\n$/,
      );
      await assertNothingStored();

      // a certificate without its key, and a key without its certificate: docker's messages
      Deno.copyFileSync(pki.clientCert, join(hostDir, "client.cert"));
      const noKey = await root.skiff(["pull", ref], { env });
      strictEqual(noKey.code, 1);
      strictEqual(
        noKey.stderr,
        "skiff: missing key client.key for client certificate client.cert. CA certificates must use the extension .crt\n",
      );
      Deno.removeSync(join(hostDir, "client.cert"));
      Deno.copyFileSync(pki.clientKey, join(hostDir, "client.key"));
      const noCert = await root.skiff(["pull", ref], { env });
      strictEqual(noCert.code, 1);
      strictEqual(noCert.stderr, "skiff: missing client certificate client.cert for key client.key\n");
      await assertNothingStored();

      // both: the pull goes through and the image runs
      Deno.copyFileSync(pki.clientCert, join(hostDir, "client.cert"));
      await assertPulledAndRuns(root, ref, env);
      // and the key never shows: nothing printed mentions it
      const again = await root.skiff(["pull", ref], { env });
      strictEqual(again.code, 0, again.stderr);
      ok(!again.stdout.includes("PRIVATE KEY") && !again.stderr.includes("PRIVATE KEY"));
    });
  }, { clientAuth: true });
});
