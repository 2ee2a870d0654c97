// Registry credentials and tokens: docker's ~/.docker/config.json (`auths` → base64 "user:pass"),
// the WWW-Authenticate challenge, and the bearer token flow with a per-scope cache.
// Credentials never appear in an error message.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { writeFileAtomic } from "../state/fsutil.ts";
import { InvalidState, object, optional, parseState, record, str } from "../state/validate.ts";
import { DEFAULT_DOMAIN } from "../image/reference.ts";
import { credentialKey } from "./reference.ts";

export interface Credentials {
  username: string;
  password: string;
}

/** docker's config.json in its directory (RegistrySettings.dockerConfigDir). */
export function dockerConfigPath(configDir: string): string {
  return join(configDir, "config.json");
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  /** A docker-credential-<name> helper for every registry, or per registry. */
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** True when credentials for the domain live in a docker-credential-* helper, not in the file. */
export function usesCredentialHelper(configDir: string, domain: string): boolean {
  return helperFor(readConfig(configDir), domain) !== undefined;
}

/** The credential helper docker would use for a domain, if the config names one. */
function helperFor(config: DockerConfigFile, domain: string): string | undefined {
  const key = credentialKey(domain);
  const helper = config.credHelpers?.[key] ?? config.credHelpers?.[domain] ?? config.credsStore;
  return helper && /^[A-Za-z0-9._-]+$/.test(helper) ? helper : undefined;
}

/**
 * Runs `docker-credential-<helper> get|erase` with the server URL on stdin (docker's credential
 * helper protocol). Its output carries a secret: it never goes into an error message.
 */
function runHelper(helper: string, action: "get" | "erase", serverUrl: string): string | undefined {
  const program = `docker-credential-${helper}`;
  // the input is only the server's name, so a shell pipe may carry it (outputSync has no stdin)
  const out = new Deno.Command("sh", {
    args: [
      "-c",
      'command -v "$0" >/dev/null || exit 127; printf "%s" "$2" | exec "$0" "$1"',
      program,
      action,
      serverUrl,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (out.code === 127) {
    throw new SkiffError(
      `error getting credentials - err: exec: "${program}": executable file not found in $PATH`,
    );
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    if (action === "get" && /credentials not found/i.test(text + new TextDecoder().decode(out.stderr))) {
      return undefined;
    }
    throw new SkiffError(`${program} ${action} failed (exit ${out.code})`);
  }
  return text;
}

/** `docker-credential-<helper> store` with the credentials as JSON on a pipe (never in argv). */
async function storeWithHelper(helper: string, serverUrl: string, creds: Credentials): Promise<void> {
  const program = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, { args: ["store"], stdin: "piped", stdout: "null", stderr: "null" })
      .spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SkiffError(
        `error storing credentials - err: exec: "${program}": executable file not found in $PATH`,
      );
    }
    throw e;
  }
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(
      JSON.stringify({ ServerURL: serverUrl, Username: creds.username, Secret: creds.password }),
    ),
  ).catch(() => {});
  await writer.close().catch(() => {});
  const status = await child.status;
  if (!status.success) throw new SkiffError(`${program} store failed (exit ${status.code})`);
}

/**
 * The docker config file as far as skiff reads it. Hand-checked, not zod: this module is on every
 * pull's path, the fast one too (a second pull is one HEAD, ~44 ms).
 */
const dockerConfigShape = object<DockerConfigFile>({
  auths: optional(record(object({
    auth: optional(str),
    username: optional(str),
    password: optional(str),
    identitytoken: optional(str),
  }))),
  credsStore: optional(str),
  credHelpers: optional(record(str)),
});

function readConfig(configDir: string): DockerConfigFile {
  const path = dockerConfigPath(configDir);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  if (text.trim() === "") return {};
  try {
    return parseState(text, dockerConfigShape);
  } catch (e) {
    if (!(e instanceof InvalidState)) throw e;
    throw new SkiffError(`${path}: invalid docker config file: ${e.message}`);
  }
}

/** The keys under which a domain's credentials may be stored (docker accepts URL forms too). */
function candidateKeys(domain: string): string[] {
  const key = credentialKey(domain);
  if (domain === DEFAULT_DOMAIN) return [key, "index.docker.io", "docker.io", "registry-1.docker.io"];
  return [key, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}

export function readCredentials(configDir: string, domain: string): Credentials | undefined {
  const config = readConfig(configDir);
  const helper = helperFor(config, domain);
  if (helper) {
    const text = runHelper(helper, "get", credentialKey(domain));
    if (text === undefined || text === "") return undefined;
    try {
      const got = JSON.parse(text);
      if (typeof got.Username === "string" && typeof got.Secret === "string") {
        return { username: got.Username, password: got.Secret };
      }
    } catch { /* fall through */ }
    throw new SkiffError(`docker-credential-${helper} get: invalid answer`);
  }
  const auths = config.auths ?? {};
  for (const key of candidateKeys(domain)) {
    const entry = auths[key];
    if (!entry) continue;
    if (entry.auth) {
      let decoded: string;
      try {
        decoded = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)));
      } catch {
        throw new SkiffError(`${dockerConfigPath(configDir)}: invalid auth entry for ${key}`);
      }
      const colon = decoded.indexOf(":");
      if (colon === -1) throw new SkiffError(`${dockerConfigPath(configDir)}: invalid auth entry for ${key}`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username !== undefined && entry.password !== undefined) {
      return { username: entry.username, password: entry.password };
    }
  }
  return undefined;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export function basicAuthHeader(creds: Credentials): string {
  return `Basic ${base64(`${creds.username}:${creds.password}`)}`;
}

function writeConfig(configDir: string, config: DockerConfigFile): void {
  Deno.mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const path = dockerConfigPath(configDir);
  writeFileAtomic(path, JSON.stringify(config, null, "\t") + "\n", 0o600);
  Deno.chmodSync(path, 0o600); // the umask may have narrowed or the file pre-existed wider
}

/**
 * Stores credentials like `docker login`: auths[key].auth = base64(user:pass), file mode 0600, or
 * in the credential helper the config names (then the file keeps an empty entry, as docker's does).
 */
export async function saveCredentials(configDir: string, domain: string, creds: Credentials): Promise<void> {
  const config = readConfig(configDir);
  const auths = config.auths ?? {};
  for (const key of candidateKeys(domain)) delete auths[key];
  const helper = helperFor(config, domain);
  if (helper) {
    // docker keeps an empty entry in the file and the secret in the helper's store
    await storeWithHelper(helper, credentialKey(domain), creds);
    auths[credentialKey(domain)] = {};
  } else auths[credentialKey(domain)] = { auth: base64(`${creds.username}:${creds.password}`) };
  config.auths = auths;
  writeConfig(configDir, config);
}

/** Removes a domain's credentials; returns false when there were none. */
export function removeCredentials(configDir: string, domain: string): boolean {
  const config = readConfig(configDir);
  const auths = config.auths ?? {};
  let found = false;
  const helper = helperFor(config, domain);
  if (helper && readCredentials(configDir, domain)) {
    runHelper(helper, "erase", credentialKey(domain));
    found = true;
  }
  for (const key of candidateKeys(domain)) {
    if (key in auths) {
      delete auths[key];
      found = true;
    }
  }
  if (found) {
    config.auths = auths;
    writeConfig(configDir, config);
  }
  return found;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (quoted values may contain commas). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (const p of m[2].matchAll(re)) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** A registry's answer when credentials are missing or wrong. */
export class UnauthorizedError extends SkiffError {
  constructor(message: string) {
    super(message, 1);
    this.name = "UnauthorizedError";
  }
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens per realm+service+scope, kept until shortly before they expire. */
export class TokenCache {
  private tokens = new Map<string, CachedToken>();

  private key(realm: string, service: string, scope: string) {
    return `${realm}\n${service}\n${scope}`;
  }

  get(realm: string, service: string, scope: string): string | undefined {
    const k = this.key(realm, service, scope);
    const hit = this.tokens.get(k);
    if (!hit) return undefined;
    if (Date.now() >= hit.expiresAt) {
      this.tokens.delete(k);
      return undefined;
    }
    return hit.token;
  }

  delete(realm: string, service: string, scope: string) {
    this.tokens.delete(this.key(realm, service, scope));
  }

  set(realm: string, service: string, scope: string, token: string, expiresInSec: number) {
    // renew 10 s early so a token never expires between the cache check and the registry's check
    const ttl = Math.max(1, expiresInSec - 10) * 1000;
    this.tokens.set(this.key(realm, service, scope), { token, expiresAt: Date.now() + ttl });
  }
}

/**
 * Asks the challenge's realm for a token for `scope` (anonymous when creds is undefined), as the
 * distribution token spec describes: GET realm?service=…&scope=…, Basic auth when we have creds.
 */
export async function fetchBearerToken(
  challenge: Challenge,
  scopes: string[],
  creds: Credentials | undefined,
  fetchFn: (url: string, init: RequestInit) => Promise<Response>,
): Promise<{ token: string; expiresIn: number }> {
  const realm = challenge.params.realm;
  if (!realm) throw new SkiffError("registry asked for a bearer token without a realm");
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new SkiffError(`registry gave an invalid token realm: ${realm}`);
  }
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  for (const scope of scopes) if (scope) url.searchParams.append("scope", scope);
  const headers: Record<string, string> = {};
  if (creds) headers.Authorization = basicAuthHeader(creds);
  const res = await fetchFn(url.toString(), { headers });
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    throw new UnauthorizedError(
      creds ? "unauthorized: incorrect username or password" : "unauthorized: authentication required",
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new SkiffError(`token server ${url.origin} answered ${res.status} ${res.statusText}`);
  }
  let body: { token?: string; access_token?: string; expires_in?: number };
  try {
    body = await res.json();
  } catch {
    throw new SkiffError(`token server ${url.origin} sent an invalid answer`);
  }
  const token = body.token ?? body.access_token;
  if (!token) throw new SkiffError(`token server ${url.origin} sent no token`);
  const expiresIn = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
  return { token, expiresIn };
}
