// Registry API v2 over fetch(): scheme choice (HTTPS, plain HTTP only for loopback and insecure
// registries), authentication (bearer token flow, Basic), retries with backoff for dropped
// connections, 5xx and 429 (Retry-After), timeouts, and blob streams that resume with Range.
//
// Settings (docker's files where docker has one, else environment variables):
//   /etc/docker/daemon.json "insecure-registries"  hosts[:port] or IPv4 CIDRs reachable over HTTP
//   SKIFF_INSECURE_REGISTRIES=a:5000,10.0.0.0/8     the same, comma-separated (the global
//                                                   --insecure-registry flag adds to it)
//   /etc/docker/certs.d/<host[:port]>/*.crt         extra CAs for that registry (SKIFF_CERTS_DIR)
//   /etc/docker/certs.d/<host[:port]>/X.cert + X.key  a client certificate for that registry
//   SKIFF_REGISTRY_TIMEOUT=<seconds>                 wait for headers / between body chunks (30)
//   SKIFF_REGISTRY_RETRIES=<n>                       extra attempts for transient failures (4)
// Loopback hosts (localhost, 127.0.0.0/8, ::1) are always insecure: HTTP first, then HTTPS.

import { join } from "../path.ts";
import { type ErrorKind, oneLine, SkiffError } from "../errors.ts";
import {
  basicAuthHeader,
  type Challenge,
  type Credentials,
  fetchBearerToken,
  parseChallenge,
  readCredentials,
  TokenCache,
  UnauthorizedError,
} from "./auth.ts";
import { registryHost } from "./reference.ts";
import type { RegistrySettings } from "./settings.ts";

/** A registry's error answer, with its distribution error code (MANIFEST_UNKNOWN, …) when sent. */
export class RegistryError extends SkiffError {
  constructor(message: string, readonly status: number, readonly code?: string) {
    super(message, 1);
    this.name = "RegistryError";
  }
}

export interface ClientOptions {
  /** undefined: read ~/.docker/config.json; null: anonymous; else these. */
  credentials?: Credentials | null;
  /** Milliseconds to wait for response headers and between body chunks. */
  timeoutMs?: number;
  /** Extra attempts after a failure that may be transient. */
  retries?: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Re-sendable body only: a retry sends it again. */
  body?: Uint8Array<ArrayBuffer> | string;
  /** Token scopes this request needs, e.g. repository:library/busybox:pull. */
  scopes?: string[];
  /** Statuses returned to the caller instead of thrown (besides 2xx). */
  accept?: number[];
  /** Retry transient failures (default true). */
  retry?: boolean;
  signal?: AbortSignal;
}

const MAX_RETRY_AFTER_MS = 30_000;

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

/** Spoken to over plain HTTP first, docker's way: loopback, and the settings' insecure list (host[:port] or IPv4 CIDR). */
export function isInsecure(host: string, insecure: readonly string[]): boolean {
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
  if (isLoopback(hostname)) return true;
  for (const entry of insecure) {
    if (entry === host || entry === hostname) return true;
    const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(entry);
    const ip = ipv4ToInt(hostname);
    if (cidr && ip !== undefined) {
      const base = ipv4ToInt(cidr[1]);
      const bits = Number(cidr[2]);
      if (base === undefined || bits > 32) continue;
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      if (((ip & mask) >>> 0) === ((base & mask) >>> 0)) return true;
    }
  }
  return false;
}

/**
 * Docker's certs.d for one registry, on top of the system's CAs: every `*.crt` is a CA; `X.cert` with
 * `X.key` is a client certificate (the first pair by name: a Deno client holds one). A `.cert` without
 * its `.key`, or the reverse, is refused with docker's message.
 */
function httpClientFor(certsDir: string, host: string): Deno.HttpClient | undefined {
  const dir = join(certsDir, host);
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => !e.isDirectory).map((e) => e.name).sort();
  } catch {
    return undefined; // no directory: system CAs only
  }
  const has = new Set(names);
  const read = (name: string) => {
    try {
      return Deno.readTextFileSync(join(dir, name));
    } catch (e) {
      throw new SkiffError(`open ${join(dir, name)}: ${e instanceof Error ? e.message : String(e)}`, 1);
    }
  };
  const caCerts: string[] = [];
  let client: { cert: string; key: string } | undefined;
  for (const name of names) {
    if (name.endsWith(".crt")) caCerts.push(read(name));
    else if (name.endsWith(".cert")) {
      const keyName = `${name.slice(0, -".cert".length)}.key`;
      if (!has.has(keyName)) {
        throw new SkiffError(
          `missing key ${keyName} for client certificate ${name}. CA certificates must use the extension .crt`,
          1,
        );
      }
      client ??= { cert: read(name), key: read(keyName) };
    } else if (name.endsWith(".key")) {
      const certName = `${name.slice(0, -".key".length)}.cert`;
      if (!has.has(certName)) {
        throw new SkiffError(`missing client certificate ${certName} for key ${name}`, 1);
      }
    }
  }
  if (!caCerts.length && !client) return undefined;
  try {
    return Deno.createHttpClient({ caCerts, ...client });
  } catch (e) {
    throw new SkiffError(`${dir}: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.min(Math.max(0, seconds * 1000), MAX_RETRY_AFTER_MS);
  const date = Date.parse(v);
  if (Number.isFinite(date)) return Math.min(Math.max(0, date - Date.now()), MAX_RETRY_AFTER_MS);
  return undefined;
}

/** The distribution error body: {"errors":[{"code","message","detail"}]}. */
async function registryErrorOf(res: Response, what: string): Promise<RegistryError> {
  let code: string | undefined;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const text = await res.text();
    const body = JSON.parse(text);
    const first = body?.errors?.[0];
    if (first?.code) {
      code = String(first.code);
      message = `${code.toLowerCase().replaceAll("_", " ")}: ${first.message ?? code}`;
    }
  } catch { /* not JSON */ }
  return new RegistryError(`${what}: ${message}`, res.status, code);
}

export class TimeoutError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "unavailable";
  constructor(message: string) {
    super(message, 1);
    this.name = "TimeoutError";
  }
}

/** TLS could not be set up (certificate not verified, ours refused, plain HTTP answered): never retried. */
export class CertificateError extends SkiffError {}

/**
 * Deno's fetch rejects with "fetch failed" and the reason in the cause chain, e.g. "error sending
 * request for url (...): client error (Connect): invalid peer certificate: UnknownIssuer"; this
 * gives the innermost reason without the URL prefix, as a CertificateError when TLS verification failed.
 */
function connectError(e: unknown): Error {
  let inner: unknown = e;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const detail = (inner instanceof Error ? inner.message : String(inner))
    .replace(/^error sending request for url \([^)]*\): /, "");
  // plain HTTP where TLS was expected: an insecure registry that is not listed as one (docker's wording)
  if (/corrupt message of type InvalidContentType/.test(detail)) {
    return new CertificateError("http: server gave HTTP response to HTTPS client");
  }
  // the registry refused the handshake (no client certificate, or one it doesn't trust): Go's wording
  const alert = /received fatal alert: (\w+)/.exec(detail);
  if (alert) {
    return new CertificateError(
      `remote error: tls: ${alert[1].replace(/(?<=.)([A-Z])/g, " $1").toLowerCase()}`,
    );
  }
  if (/invalid peer certificate|certificate/i.test(detail)) {
    return new CertificateError(
      `tls: failed to verify certificate: ${detail.replace(/^.*?invalid peer/, "invalid peer")}`,
    );
  }
  return new Error(detail);
}

/** One registry (host[:port]); cheap to create, holds the scheme, challenge and tokens. */
export class RegistryClient {
  readonly host: string;
  readonly timeoutMs: number;
  readonly retries: number;
  private baseUrl?: string;
  private challenge?: Challenge;
  private readonly tokens = new TokenCache();
  private readonly credentials: Credentials | undefined;
  private readonly httpClient?: Deno.HttpClient;
  private pinging?: Promise<void>;

  constructor(readonly domain: string, readonly settings: RegistrySettings, opts: ClientOptions = {}) {
    this.host = registryHost(domain, settings.dockerHubHost);
    this.timeoutMs = opts.timeoutMs ?? settings.timeoutMs;
    this.retries = opts.retries ?? settings.retries;
    this.credentials = opts.credentials === undefined
      ? readCredentials(settings.dockerConfigDir, domain)
      : (opts.credentials ?? undefined);
    this.httpClient = httpClientFor(settings.certsDir, this.host);
  }

  close(): void {
    this.httpClient?.close();
  }

  /**
   * GET of any URL on this client's host with its HTTP stack (certs.d CAs and client certificate,
   * timeouts, docker's connection error wording), redirects followed, no registry credentials sent:
   * `build`'s ADD of a URL. The body is read whole, each chunk within the timeout.
   */
  async fetchUrl(
    url: string,
  ): Promise<{ status: number; statusText: string; body: Uint8Array; headers: Headers }> {
    const res = await this.rawFetch(url, { redirect: "follow" });
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = res.body?.getReader();
    for (;;) {
      if (!reader) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new TimeoutError(`${url}: no data within ${this.timeoutMs} ms`)),
            this.timeoutMs,
          );
        }),
      ]).catch(async (e) => {
        await reader.cancel().catch(() => {});
        throw e;
      }).finally(() => clearTimeout(timer));
      if (next.done) break;
      chunks.push(next.value);
      total += next.value.length;
    }
    const body = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      body.set(c, off);
      off += c.length;
    }
    return { status: res.status, statusText: res.statusText, body, headers: res.headers };
  }

  /** fetch with the registry's CA set and a timeout for the response headers. */
  private async rawFetch(url: string, init: RequestInit, outer?: AbortSignal): Promise<Response> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(outer?.reason);
    outer?.addEventListener("abort", onOuterAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new TimeoutError("timed out")), this.timeoutMs);
    try {
      return await fetch(url, {
        ...init,
        signal: controller.signal,
        ...(this.httpClient ? { client: this.httpClient } : {}),
      } as RequestInit);
    } catch (e) {
      if (controller.signal.aborted && controller.signal.reason instanceof TimeoutError) {
        throw new TimeoutError(
          `${this.host}: the registry did not answer within ${Math.round(this.timeoutMs / 1000)} s`,
        );
      }
      if (outer?.aborted) throw e;
      throw connectError(e);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuterAbort);
    }
  }

  /** Finds the scheme and the auth challenge with GET /v2/ (docker's ping). */
  private ensureBase(): Promise<void> {
    this.pinging ??= (async () => {
      // docker tries HTTPS first, then HTTP, for insecure registries; on loopback plain HTTP is
      // the common case and a TLS client setup costs tens of ms, so HTTP goes first there
      const hostname = this.host.startsWith("[")
        ? this.host.slice(0, this.host.indexOf("]") + 1)
        : this.host.split(":")[0];
      const schemes = !isInsecure(this.host, this.settings.insecure)
        ? ["https"]
        : isLoopback(hostname)
        ? ["http", "https"]
        : ["https", "http"];
      let lastError: unknown;
      for (const scheme of schemes) {
        const base = `${scheme}://${this.host}`;
        for (let attempt = 0;; attempt++) {
          try {
            const res = await this.rawFetch(`${base}/v2/`, { method: "GET" });
            await res.body?.cancel();
            if ((res.status >= 500 || res.status === 429) && attempt < this.retries) {
              await sleep(retryAfterMs(res) ?? this.backoff(attempt));
              continue;
            }
            // an HTTPS port answers a plain request with 400: try the other scheme
            if (
              res.status === 400 && scheme === "http" && schemes.includes("https") && schemes[0] === "http"
            ) break;
            this.baseUrl = base;
            if (res.status === 401) {
              this.challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
            }
            return;
          } catch (e) {
            lastError = e;
            if (e instanceof TimeoutError) throw e;
            // a TLS handshake against a plain-HTTP port (or the reverse) fails at once: next scheme
            if (scheme !== schemes.at(-1)) break;
            if (attempt >= this.retries || e instanceof CertificateError) break;
            await sleep(this.backoff(attempt));
          }
        }
      }
      const detail = lastError instanceof Error ? lastError.message : String(lastError);
      throw new SkiffError(`cannot reach registry ${this.host}: ${detail}`);
    })();
    this.pinging.catch(() => {
      this.pinging = undefined;
    });
    return this.pinging;
  }

  private backoff(attempt: number): number {
    return Math.min(200 * 2 ** attempt, 4000) * (0.75 + Math.random() * 0.5);
  }

  private async authHeader(scopes: string[]): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === "basic") return this.credentials ? basicAuthHeader(this.credentials) : undefined;
    if (ch.scheme !== "bearer") return undefined;
    const realm = ch.params.realm ?? "";
    const service = ch.params.service ?? "";
    const scopeKey = scopes.join(" ");
    let token = this.tokens.get(realm, service, scopeKey);
    if (!token) {
      const got = await fetchBearerToken(
        ch,
        scopes,
        this.credentials,
        (url, init) => this.rawFetch(url, init),
      );
      this.tokens.set(realm, service, scopeKey, got.token, got.expiresIn);
      token = got.token;
    }
    return `Bearer ${token}`;
  }

  /** Absolute URL for an API path (or a Location header, which may be relative). */
  async url(pathOrLocation: string): Promise<string> {
    await this.ensureBase();
    return new URL(pathOrLocation, this.baseUrl).toString();
  }

  /**
   * Sends one API request with authentication and retries. 2xx and `accept` statuses are
   * returned; anything else throws a RegistryError (or UnauthorizedError).
   */
  async request(method: string, pathOrUrl: string, opts: RequestOptions = {}): Promise<Response> {
    await this.ensureBase();
    const url = new URL(pathOrUrl, this.baseUrl).toString();
    const scopes = [...(opts.scopes ?? [])]; // a challenge may add to it: never the caller's array
    const retry = opts.retry ?? true;
    let authRetried = false;
    for (let attempt = 0;; attempt++) {
      const headers: Record<string, string> = { ...opts.headers };
      const auth = await this.authHeader(scopes);
      if (auth) headers.Authorization = auth;
      let res: Response;
      try {
        res = await this.rawFetch(url, { method, headers, body: opts.body }, opts.signal);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        if (
          retry && attempt < this.retries && !(e instanceof TimeoutError && attempt >= 1) &&
          !(e instanceof CertificateError)
        ) {
          await sleep(this.backoff(attempt));
          continue;
        }
        if (e instanceof SkiffError) throw e;
        throw new SkiffError(`${method} ${url}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (res.status === 401 && !authRetried) {
        const ch = parseChallenge(res.headers.get("www-authenticate") ?? "");
        await res.body?.cancel();
        if (ch && (ch.scheme === "bearer" || (ch.scheme === "basic" && this.credentials))) {
          this.challenge = ch;
          if (ch.scheme === "bearer") {
            // the challenge may ask for more scope than we had, or our token went stale
            for (const s of (ch.params.scope ?? "").split(" ")) if (s && !scopes.includes(s)) scopes.push(s);
            this.tokens.delete(ch.params.realm ?? "", ch.params.service ?? "", scopes.join(" "));
          }
          authRetried = true;
          attempt--;
          continue;
        }
        throw new UnauthorizedError(
          this.credentials
            ? `${this.host}: unauthorized: incorrect username or password`
            : `${this.host}: unauthorized: authentication required`,
        );
      }
      if (res.status === 401) {
        await res.body?.cancel();
        // Basic credentials refused twice are wrong; a bearer token refused lacks the access
        const refusedBasic = this.challenge?.scheme === "basic" && headers.Authorization !== undefined;
        throw new UnauthorizedError(
          `${this.host}: unauthorized: ${
            refusedBasic ? "incorrect username or password" : "authentication required"
          }`,
        );
      }
      if (res.ok || opts.accept?.includes(res.status)) return res;
      if (retry && (res.status >= 500 || res.status === 429) && attempt < this.retries) {
        const wait = retryAfterMs(res) ?? this.backoff(attempt);
        await res.body?.cancel();
        await sleep(wait);
        continue;
      }
      if (res.status === 403) {
        const err = await registryErrorOf(res, `${method} ${new URL(url).pathname}`);
        throw new UnauthorizedError(`denied: ${err.message.replace(/^[^:]*: /, "")}`);
      }
      throw await registryErrorOf(res, `${method} ${new URL(url).pathname}`);
    }
  }

  /**
   * A GET whose body is read whole by `read` (a manifest, an index, a config, a tag list). A
   * connection dropped or stalled while the body arrives is retried as a blob stream's is; what the
   * registry meant (404, 401, too large, bad digest: SkiffErrors from `read`) is final.
   */
  async getWhole<T>(
    path: string,
    opts: RequestOptions,
    read: (res: Response) => Promise<T>,
  ): Promise<{ res: Response; body: T }> {
    for (let failures = 0;; failures++) {
      const res = await this.request("GET", path, opts);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`${this.host}: the body of GET ${path} stalled`)),
          this.timeoutMs,
        );
      });
      const reading = read(res);
      reading.catch(() => {}); // after a stall it rejects once the body is cancelled: handled below
      try {
        return { res, body: await Promise.race([reading, stalled]) };
      } catch (e) {
        await res.body?.cancel().catch(() => {});
        const transient = e instanceof TimeoutError || !(e instanceof SkiffError);
        if (!transient) throw e;
        if (failures >= this.retries) {
          throw new SkiffError(`GET ${new URL(path, this.baseUrl).pathname}: ${oneLine(e)}`);
        }
        await sleep(this.backoff(failures));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Checks the credentials against the registry: the request `docker login` makes. */
  async verifyLogin(): Promise<void> {
    await this.ensureBase();
    await this.request("GET", "/v2/", { retry: true });
  }

  /**
   * A blob as a stream that survives dropped connections: on a read error or an early end it
   * asks again with `Range: bytes=<received>-`, and when the registry ignores Range it skips the
   * bytes already delivered. The caller verifies the digest.
   */
  blobStream(repo: string, digest: string, size?: number): ReadableStream<Uint8Array> {
    let delivered = 0;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let skip = 0;
    let failures = 0;
    const path = `/v2/${repo}/blobs/${digest}`;
    const scopes = [`repository:${repo}:pull`];
    const open = async () => {
      const headers: Record<string, string> = {};
      if (delivered > 0) headers.Range = `bytes=${delivered}-`;
      const res = await this.request("GET", path, { headers, scopes });
      skip = 0;
      if (delivered > 0) {
        const range = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
        if (res.status !== 206 || !range || Number(range[1]) !== delivered) skip = delivered;
      }
      if (!res.body) throw new SkiffError(`GET ${path}: empty response`);
      reader = res.body.getReader();
    };
    const readWithTimeout = async (r: ReadableStreamDefaultReader<Uint8Array>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`${this.host}: blob download stalled`)),
          this.timeoutMs,
        );
      });
      try {
        return await Promise.race([r.read(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          try {
            if (!reader) await open();
            const { done, value } = await readWithTimeout(reader!);
            if (done) {
              if (size !== undefined && delivered < size) throw new SkiffError("connection closed early");
              controller.close();
              return;
            }
            let chunk = value;
            if (skip > 0) {
              const drop = Math.min(skip, chunk.length);
              skip -= drop;
              chunk = chunk.subarray(drop);
              if (chunk.length === 0) continue;
            }
            if (size !== undefined && delivered + chunk.length > size) {
              throw new RegistryError(`${digest}: the registry sent more than ${size} bytes`, 0);
            }
            delivered += chunk.length;
            failures = 0;
            controller.enqueue(chunk);
            return;
          } catch (e) {
            reader?.cancel().catch(() => {});
            reader = undefined;
            // errors the registry meant (404, 401, size) are final; dropped connections are not
            if (e instanceof RegistryError || e instanceof UnauthorizedError || failures >= this.retries) {
              throw e instanceof SkiffError
                ? e
                : new SkiffError(`${digest}: download failed: ${(e as Error).message}`);
            }
            await sleep(this.backoff(failures++));
          }
        }
      },
      cancel: async () => {
        await reader?.cancel().catch(() => {});
      },
    });
  }
}
