// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>
// with a temp config and storage dir, in three set-ups: open, htpasswd Basic auth, and token auth
// with a token server in this process (ES256 JWTs signed with a key made by openssl). Also: OCI
// layout images built from the host's busybox, and a skopeo wrapper. Everything is removed in
// stop(), which withRegistry() always calls.

import { join } from "node:path";
import { createHash, sign } from "node:crypto";
import { gzipSync } from "node:zlib";
import { busyboxTar } from "./helpers.ts";

export type RegistryMode = "open" | "basic" | "token";

export const USER = "skiffuser";
export const PASSWORD = "s3cret-pass";

export interface TestRegistry {
  mode: RegistryMode;
  /** <listen address>:<port>: 127.0.0.1, or the netns address */
  host: string;
  dir: string;
  /** "user:pass" for skopeo --creds, when the registry needs them. */
  creds?: string;
  /** Requests the token server answered (token mode). */
  tokenRequests: { scope: string[]; user?: string }[];
  stop(): Promise<void>;
}

const dec = new TextDecoder();

export async function run(cmd: string, args: string[], opts: { stdin?: Uint8Array } = {}) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function mustRun(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function bcryptLine(user: string, password: string): Promise<string> {
  try {
    return (await mustRun("htpasswd", ["-nbB", user, password])).trim();
  } catch {
    // no apache2-utils: glibc's crypt does bcrypt too
    const script =
      "import crypt,sys;print(sys.argv[1]+':'+crypt.crypt(sys.argv[2],crypt.mksalt(crypt.METHOD_BLOWFISH)))";
    return (await mustRun("python3", ["-W", "ignore", "-c", script, user, password])).trim();
  }
}

const b64url = (data: Uint8Array | string) =>
  (typeof data === "string" ? btoa(data) : btoa(String.fromCharCode(...data)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

interface TokenServer {
  url: string;
  shutdown(): Promise<void>;
}

function startTokenServer(
  keyPem: string,
  certDerB64: string,
  service: string,
  issuer: string,
  requests: TestRegistry["tokenRequests"],
): TokenServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const scopes = url.searchParams.getAll("scope");
    let user: string | undefined;
    const auth = req.headers.get("authorization");
    if (auth) {
      const decoded = atob(auth.replace(/^Basic\s+/i, ""));
      if (decoded !== `${USER}:${PASSWORD}`) {
        requests.push({ scope: scopes, user: "<rejected>" });
        return new Response(JSON.stringify({ details: "incorrect username or password" }), { status: 401 });
      }
      user = USER;
    }
    requests.push({ scope: scopes, user });
    // anonymous callers get a token without access, as Docker Hub gives for a private repository
    const access = user
      ? scopes.map((s) => {
        const [type, ...rest] = s.split(":");
        const actions = rest.pop()!.split(",");
        return { type, name: rest.join(":"), actions };
      })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "ES256", typ: "JWT", x5c: [certDerB64] };
    const claims = {
      iss: issuer,
      sub: user ?? "",
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", new TextEncoder().encode(signingInput), {
      key: keyPem,
      dsaEncoding: "ieee-p1363",
    });
    const token = `${signingInput}.${b64url(new Uint8Array(signature))}`;
    return Response.json({
      token,
      access_token: token,
      expires_in: 300,
      issued_at: new Date().toISOString(),
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/token`, shutdown: () => server.shutdown() };
}

export interface RegistryOptions {
  /** Serve HTTPS only (registry config http.tls): PEM files for the server certificate and key. */
  tls?: {
    certificate: string;
    key: string;
    /** CA file: clients must present a certificate it signed */
    clientCa?: string;
  };
  /**
   * Run the registry inside this network namespace (made by the test), listening on `address`
   * there, instead of on 127.0.0.1: a registry that is not on loopback.
   */
  netns?: { name: string; address: string };
}

export async function startRegistry(mode: RegistryMode, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-registry-" });
  let proc: Deno.ChildProcess | undefined;
  let tokenServer: TokenServer | undefined;
  const tokenRequests: TestRegistry["tokenRequests"] = [];
  const stop = async () => {
    try {
      proc?.kill("SIGKILL");
      await proc?.status;
    } catch { /* already gone */ }
    await tokenServer?.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const port = freePort();
    const listenHost = opts.netns?.address ?? "127.0.0.1";
    let auth = "";
    if (mode === "basic") {
      Deno.writeTextFileSync(join(dir, "htpasswd"), (await bcryptLine(USER, PASSWORD)) + "\n");
      auth = `auth:\n  htpasswd:\n    realm: skiff-test\n    path: ${join(dir, "htpasswd")}\n`;
    } else if (mode === "token") {
      const key = join(dir, "token.key");
      const cert = join(dir, "token.crt");
      await mustRun("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=skiff-test-token",
      ]);
      const pem = Deno.readTextFileSync(cert);
      const derB64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
      const service = "skiff-test-registry";
      const issuer = "skiff-test-issuer";
      tokenServer = startTokenServer(Deno.readTextFileSync(key), derB64, service, issuer, tokenRequests);
      auth = `auth:\n  token:\n    realm: ${tokenServer.url}\n    service: ${service}\n` +
        `    issuer: ${issuer}\n    rootcertbundle: ${cert}\n`;
    }
    const tls = opts.tls
      ? `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n` +
        (opts.tls.clientCa ? `    clientcas:\n      - ${opts.tls.clientCa}\n` : "")
      : "";
    const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
http:
  addr: ${listenHost}:${port}
  secret: skiff-test-secret
${tls}${auth}`;
    Deno.writeTextFileSync(join(dir, "config.yml"), config);
    // the registry's log goes to a file: a closed pipe would kill it on its next log line
    const log = await Deno.open(join(dir, "registry.log"), { write: true, create: true });
    const serve = [
      "sh",
      "-c",
      `exec /usr/bin/docker-registry serve "$1" >>"$2" 2>&1`,
      "sh",
      join(dir, "config.yml"),
      join(dir, "registry.log"),
    ];
    // `ip netns exec` execs the command: the pid is still the registry's own
    const argv = opts.netns ? ["ip", "netns", "exec", opts.netns.name, ...serve] : serve;
    proc = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "null" }).spawn();
    log.close();
    const host = `${listenHost}:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        // a TLS-only registry answers plain HTTP with 400, which is enough to know it is up
        const res = await fetch(`http://${host}/v2/`);
        await res.body?.cancel();
        break;
      } catch {
        if (Date.now() > deadline) {
          const text = Deno.readTextFileSync(join(dir, "registry.log"));
          throw new Error(`docker-registry did not start: ${text}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return {
      mode,
      host,
      dir,
      creds: mode === "open" ? undefined : `${USER}:${PASSWORD}`,
      tokenRequests,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export async function withRegistry(
  mode: RegistryMode,
  fn: (r: TestRegistry) => Promise<void>,
  opts: RegistryOptions = {},
) {
  const registry = await startRegistry(mode, opts);
  try {
    await fn(registry);
  } finally {
    await registry.stop();
  }
}

// ---- images made by the tests ----

export interface BuiltImage {
  /** oci:<dir>:<tag> source for skopeo. */
  layout: string;
  dir: string;
  manifestDigest: string;
  manifestBytes: Uint8Array;
  configDigest: string;
  layerDigests: string[];
  platform: { os: string; architecture: string; variant?: string };
}

export const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function tarOfFiles(files: Record<string, string>): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-layer-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      Deno.mkdirSync(join(dir, name, ".."), { recursive: true });
      Deno.writeTextFileSync(join(dir, name), content);
    }
    const out = await new Deno.Command("tar", {
      args: ["--sort=name", "--mtime=2020-01-01", "--owner=0", "--group=0", "-C", dir, "-cf", "-", "."],
      stdout: "piped",
    }).output();
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function writeBlob(dir: string, data: Uint8Array): string {
  const digest = sha256(data);
  Deno.writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), data);
  return digest;
}

/**
 * An OCI layout with one image: the busybox rootfs (gzip) plus a small layer with /skiff-image
 * naming the image (so tests can tell images apart), config Cmd ["sh"].
 */
export async function buildImage(opts: {
  name?: string;
  architecture?: string;
  variant?: string;
  extraLayers?: Uint8Array[];
} = {}): Promise<BuiltImage> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-oci-" });
  Deno.mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const architecture = opts.architecture ?? "amd64";
  const tars = [
    Deno.readFileSync(await busyboxTar()),
    await tarOfFiles({ "skiff-image": `${opts.name ?? "test"} ${architecture}\n` }),
    ...(opts.extraLayers ?? []),
  ];
  const layers = tars.map((t) => {
    const gz = gzipSync(t);
    return {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: writeBlob(dir, gz),
      size: gz.length,
      diffId: sha256(t),
    };
  });
  const config = new TextEncoder().encode(JSON.stringify({
    architecture,
    os: "linux",
    ...(opts.variant ? { variant: opts.variant } : {}),
    created: "2020-01-01T00:00:00Z",
    config: { Cmd: ["sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: "2020-01-01T00:00:00Z", created_by: "skiff test" })),
  }));
  const configDigest = writeBlob(dir, config);
  const manifestBytes = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  }));
  const manifestDigest = writeBlob(dir, manifestBytes);
  Deno.writeTextFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  Deno.writeTextFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: manifestDigest,
        size: manifestBytes.length,
        annotations: { "org.opencontainers.image.ref.name": "latest" },
      }],
    }),
  );
  return {
    layout: `oci:${dir}:latest`,
    dir,
    manifestDigest,
    manifestBytes,
    configDigest,
    layerDigests: layers.map((l) => l.digest),
    platform: { os: "linux", architecture, ...(opts.variant ? { variant: opts.variant } : {}) },
  };
}

/** skopeo copy from an OCI layout (or any transport) into the test registry. */
const sharedImages = new Map<string, Promise<BuiltImage>>();
/** buildImage({ name }) once per test process, removed again when the process ends. */
export function sharedImage(name: string): Promise<BuiltImage> {
  let image = sharedImages.get(name);
  if (!image) {
    image = buildImage({ name }).then((img) => {
      globalThis.addEventListener("unload", () => Deno.removeSync(img.dir, { recursive: true }));
      return img;
    });
    sharedImages.set(name, image);
  }
  return image;
}

export async function skopeoPush(
  registry: TestRegistry,
  source: string,
  dest: string,
  /** docker-style certs dir (client.cert/client.key) for a registry that wants a client certificate */
  certDir?: string,
): Promise<void> {
  const args = ["copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"];
  if (registry.creds) args.push("--dest-creds", registry.creds);
  if (certDir) args.push("--dest-cert-dir", certDir);
  await mustRun("skopeo", [...args, source, `docker://${registry.host}/${dest}`]);
}

export async function skopeoInspectRaw(registry: TestRegistry, ref: string): Promise<string> {
  const args = ["inspect", "--raw", "--tls-verify=false"];
  if (registry.creds) args.push("--creds", registry.creds);
  return await mustRun("skopeo", [...args, `docker://${registry.host}/${ref}`]);
}

/** Writes a manifest (or index) straight to the registry (open mode), returning its digest. */
export async function putManifest(
  registry: TestRegistry,
  repo: string,
  tag: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<string> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT manifest: ${res.status} ${text}`);
  return res.headers.get("docker-content-digest") ?? sha256(bytes);
}

/** A temp DOCKER_CONFIG dir so tests never touch the real ~/.docker. */
export async function withDockerConfig(fn: (env: Record<string, string>, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-dockercfg-" });
  try {
    await fn({ DOCKER_CONFIG: dir }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
