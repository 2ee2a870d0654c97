// `pull`: manifest (or index → the platform's manifest), config, then the layers, each streamed
// download → sha256 → gunzip → untar in one pass into a private temp dir and committed only when
// its digest, size and diffID match. The image record comes last, so a failed pull leaves no image.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { exists, withLock, writeFileAtomic, writeJsonAtomic } from "../state/fsutil.ts";
import { blobSourcesShape, InvalidState, parseState } from "../state/validate.ts";
import type { StateRoot } from "../state/root.ts";
import type { ImageConfigBlob, ImageRecord, LayerRef } from "../state/types.ts";
import { ImageStore } from "../image/store.ts";
import { type RegistryClient, RegistryError } from "./client.ts";
import type { Descriptor, ImageManifest, ParsedManifest } from "./manifest.ts";
import {
  CONFIG_SIZE_LIMIT,
  formatPlatform,
  hostPlatform,
  MANIFEST_ACCEPT,
  MANIFEST_SIZE_LIMIT,
  MEDIA,
  type Platform,
  selectPlatform,
} from "./mediatypes.ts";
import { type ProgressSink, shortId } from "./progress.ts";
import { familiarName, familiarString, fullString, type Reference } from "../image/reference.ts";
import { imageEvent, imageLabels } from "../state/events.ts";

export interface PullOptions {
  /** The platform to pick from a multi-platform index (default: the host's). */
  platform?: Platform;
  /** Layers downloaded at once (default: the client's settings). */
  maxConcurrent?: number;
  onEvent?: ProgressSink;
  client: RegistryClient;
}

export interface PullResult {
  image: ImageRecord;
  /** Digest of what the reference named (the index for a multi-platform image). */
  digest: string;
  /** False when every layer was already present and the tag already pointed at this image. */
  downloaded: boolean;
}

/** sha256 through WebCrypto: small blobs only, and it avoids loading node:crypto on the fast path. */
export async function sha256Of(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Reads a response body, refusing more than `limit` bytes. */
async function readCapped(res: Response, limit: number, what: string): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (declared > limit) {
    await res.body?.cancel();
    throw new SkiffError(`${what} too large: ${declared} bytes (limit ${limit})`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > limit) {
      throw new SkiffError(`${what} too large: more than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export interface FetchedManifest {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string | null;
  digest: string;
}

/** GET a manifest by tag or digest; verifies a digest reference and the registry's digest header. */
export async function fetchManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  displayRef: string,
): Promise<FetchedManifest> {
  let res: Response, bytes: Uint8Array<ArrayBuffer>;
  try {
    ({ res, body: bytes } = await client.getWhole(`/v2/${repo}/manifests/${reference}`, {
      headers: { Accept: MANIFEST_ACCEPT },
      scopes: [`repository:${repo}:pull`],
    }, (res) => readCapped(res, MANIFEST_SIZE_LIMIT, "manifest")));
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404) {
      throw new RegistryError(
        `manifest for ${displayRef} not found: manifest unknown: ${
          e.code === "NAME_UNKNOWN" ? "repository name not known to registry" : "manifest unknown"
        }`,
        404,
        e.code,
      );
    }
    throw e;
  }
  const digest = await sha256Of(bytes);
  if (reference.startsWith("sha256:") && digest !== reference) {
    throw new SkiffError(`manifest verification failed for digest ${reference}: got ${digest}`);
  }
  const header = res.headers.get("docker-content-digest");
  if (header && header.startsWith("sha256:") && header !== digest) {
    throw new SkiffError(
      `manifest verification failed: the registry says ${header}, the content is ${digest}`,
    );
  }
  return { bytes, contentType: res.headers.get("content-type"), digest };
}

/** A small blob (config) verified by digest and size, from the store when present (stored later). */
async function fetchSmallBlob(
  client: RegistryClient,
  store: ImageStore,
  repo: string,
  desc: Descriptor,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const path = store.blobPath(desc.digest);
  try {
    const local = Deno.readFileSync(path);
    if (local.length === desc.size && await sha256Of(local) === desc.digest) return local;
  } catch { /* not stored yet */ }
  if (desc.size > limit) {
    throw new SkiffError(`blob ${desc.digest} too large: ${desc.size} bytes (limit ${limit})`);
  }
  let bytes: Uint8Array<ArrayBuffer>;
  for (let attempt = 1;; attempt++) {
    ({ body: bytes } = await client.getWhole(
      `/v2/${repo}/blobs/${desc.digest}`,
      { scopes: [`repository:${repo}:pull`] },
      (res) => readCapped(res, limit, `blob ${desc.digest}`),
    ));
    const digest = await sha256Of(bytes);
    if (digest === desc.digest && bytes.length === desc.size) break;
    // corrupted on the way: fetch again a couple of times before giving up
    if (attempt >= 3) {
      throw new SkiffError(
        `blob verification failed for ${desc.digest}: got ${digest} (${bytes.length} bytes)`,
      );
    }
  }
  return bytes;
}

/**
 * Records which repositories a blob is known to live in on a registry, so push can mount it
 * from there instead of uploading it (<root>/registry/blob-sources.json).
 */
export function blobSourcesPath(root: StateRoot): string {
  return join(root.path, "registry", "blob-sources.json");
}

export type BlobSources = Record<string, Record<string, string[]>>;

export async function recordBlobSources(root: StateRoot, domain: string, repo: string, digests: string[]) {
  if (!digests.length) return;
  const path = blobSourcesPath(root);
  Deno.mkdirSync(join(root.path, "registry"), { recursive: true, mode: 0o700 });
  await withLock(root.lock("registry"), () => {
    const all = readBlobSources(root);
    const forDomain = all[domain] ??= {};
    let changed = false;
    for (const d of digests) {
      const repos = forDomain[d] ??= [];
      if (!repos.includes(repo)) {
        repos.unshift(repo);
        repos.length = Math.min(repos.length, 5);
        changed = true;
      }
    }
    if (changed) writeJsonAtomic(path, all);
  });
}

/**
 * registry/blob-sources.json, checked. It is only a hint (where a blob may be mounted from on a
 * push), so an unreadable one counts as empty and the next pull writes it anew. Hand-checked, not
 * zod: this module is on the fast path of a second pull (~44 ms).
 */
export function readBlobSources(root: StateRoot): BlobSources {
  try {
    return parseState(Deno.readTextFileSync(blobSourcesPath(root)), blobSourcesShape);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof InvalidState) return {};
    throw e;
  }
}

/** Runs tasks with at most `limit` at once; waits for all, then throws the first failure. */
async function runBounded(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failure: unknown;
  let failed = false;
  const worker = async () => {
    while (next < tasks.length && !failed) {
      const task = tasks[next++];
      try {
        await task();
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failed) throw failure;
}

/**
 * Parses a manifest. One whose blob is already in the store was validated when it was stored (the
 * file is named by its digest), so it skips the zod schemas and their load time: the fast path of
 * a second pull.
 */
async function parseTrusted(
  store: ImageStore,
  fetched: FetchedManifest,
  contentType: string | null,
): Promise<ParsedManifest> {
  if (exists(store.blobPath(fetched.digest))) {
    const json = JSON.parse(new TextDecoder().decode(fetched.bytes));
    const mediaType = json.mediaType ?? (Array.isArray(json.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest);
    return Array.isArray(json.manifests)
      ? { kind: "index", mediaType, index: json }
      : { kind: "image", mediaType, manifest: json };
  }
  const { parseManifest } = await import("./manifest.ts");
  return parseManifest(fetched.bytes, contentType);
}

/** Resolves the reference to one image manifest (following an index to the platform's entry). */
async function resolveManifest(
  store: ImageStore,
  client: RegistryClient,
  ref: Reference,
  platform: Platform,
): Promise<
  { top: FetchedManifest; manifestDigest: string; manifestBytes: Uint8Array; manifest: ImageManifest }
> {
  const display = fullString(ref).replace(/^docker\.io\/library\//, "").replace(/^docker\.io\//, "");
  const top = await fetchManifest(client, ref.path, ref.digest ?? ref.tag!, display);
  const parsed = await parseTrusted(store, top, top.contentType);
  if (parsed.kind === "image") {
    return { top, manifestDigest: top.digest, manifestBytes: top.bytes, manifest: parsed.manifest };
  }
  const entry = selectPlatform(parsed.index, platform);
  if (!entry) {
    throw new SkiffError(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
  }
  const child = await fetchManifest(client, ref.path, entry.digest, display);
  if (child.bytes.length !== entry.size) {
    throw new SkiffError(
      `manifest verification failed for ${entry.digest}: size ${child.bytes.length}, expected ${entry.size}`,
    );
  }
  const childParsed = await parseTrusted(store, child, child.contentType ?? entry.mediaType);
  if (childParsed.kind !== "image") {
    throw new SkiffError(`${entry.digest}: nested manifest lists are not supported`);
  }
  return { top, manifestDigest: child.digest, manifestBytes: child.bytes, manifest: childParsed.manifest };
}

/** Pulls one image by tag or digest into the store. */
export async function pullImage(
  root: StateRoot,
  ref: Reference,
  opts: PullOptions,
): Promise<PullResult> {
  const emit: ProgressSink = opts.onEvent ?? (() => {});
  const store = new ImageStore(root);
  const client = opts.client;
  const platform = opts.platform ?? hostPlatform();
  const repo = ref.path;
  emit({ kind: "message", text: `${ref.digest ?? ref.tag}: Pulling from ${repo}` });

  const { top, manifestDigest, manifestBytes, manifest } = await resolveManifest(
    store,
    client,
    ref,
    platform,
  );
  const configBytes = await fetchSmallBlob(client, store, repo, manifest.config, CONFIG_SIZE_LIMIT);
  let configJson: unknown;
  try {
    configJson = JSON.parse(new TextDecoder().decode(configBytes));
  } catch {
    throw new SkiffError(`invalid image config ${manifest.config.digest}: not JSON`);
  }
  let config: ImageConfigBlob;
  if (store.get(manifest.config.digest)) {
    config = configJson as ImageConfigBlob; // validated when that image was stored
  } else {
    const { configSchema } = await import("./manifest.ts");
    const checked = configSchema.safeParse(configJson);
    if (!checked.success) {
      throw new SkiffError(
        `invalid image config ${manifest.config.digest}: ${checked.error.issues[0].message}`,
      );
    }
    config = checked.data as unknown as ImageConfigBlob;
  }
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new SkiffError(
      `invalid image: the manifest has ${manifest.layers.length} layers, the config ${diffIds.length}`,
    );
  }
  if (opts.platform && (config.os !== platform.os || config.architecture !== platform.architecture)) {
    throw new SkiffError(
      `image with reference ${fullString(ref)} was found but does not match the specified platform: wanted ${
        formatPlatform(platform)
      }, actual: ${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ""}`,
    );
  }

  // chain IDs come from the (verified) config, so every layer's place is known before download
  const chain: string[] = [];
  for (const diffId of diffIds) {
    chain.push(
      chain.length === 0 ? diffId : await sha256Of(new TextEncoder().encode(`${chain.at(-1)} ${diffId}`)),
    );
  }
  const missing: number[] = [];
  // a layer whose blob is gone (a pull killed between unpacking and keeping the blob, or a blob
  // that system check --repair removed) is fetched again: the unpack is discarded, the blob kept
  for (let i = 0; i < manifest.layers.length; i++) {
    if (!store.hasLayer(chain[i]) || !exists(store.blobPath(manifest.layers[i].digest))) missing.push(i);
  }
  const hadImage = store.get(manifest.config.digest) !== undefined;
  // docker lists shared layers as "Already exists", but says nothing of them for an image it has
  if (!hadImage || missing.length) {
    for (let i = 0; i < manifest.layers.length; i++) {
      if (!missing.includes(i)) {
        emit({ kind: "layer", id: shortId(manifest.layers[i].digest), status: "Already exists" });
      }
    }
  }
  for (const i of missing) {
    emit({ kind: "layer", id: shortId(manifest.layers[i].digest), status: "Pulling fs layer" });
  }

  if (missing.length) {
    store.sweepTmp();
    const { downloadLayer } = await import("./download.ts");
    const limit = opts.maxConcurrent ?? client.settings.maxConcurrentDownloads;
    await runBounded(
      missing.map((i) => () =>
        downloadLayer({
          client,
          store,
          repo,
          desc: manifest.layers[i],
          diffId: diffIds[i],
          parentChainId: i === 0 ? null : chain[i - 1],
          emit,
        })
      ),
      limit,
    );
  }

  const name = familiarName(ref);
  // NAME:TAG@DIGEST pulls by digest and, like docker, does not move the tag
  const tagged = ref.tag !== undefined && ref.digest === undefined ? `${name}:${ref.tag}` : undefined;
  const repoDigest = `${name}@${top.digest}`;
  if (!missing.length) {
    // the common second pull: nothing to write, no lock to take
    const existing = store.get(manifest.config.digest);
    if (
      existing && existing.manifestDigest === manifestDigest && existing.repoDigests.includes(repoDigest) &&
      (!tagged || existing.repoTags.includes(tagged)) && exists(store.blobPath(top.digest))
    ) {
      pulled(root, ref, existing);
      return { image: existing, digest: top.digest, downloaded: false };
    }
  }

  // config and manifests go in only now that the layers are: a failed pull leaves none of them;
  // manifests are kept so push can send them unchanged and inspect can show them
  Deno.mkdirSync(store.root.blobs, { recursive: true });
  for (const bytes of [configBytes, manifestBytes, top.bytes]) {
    const path = store.blobPath(await sha256Of(bytes as Uint8Array<ArrayBuffer>));
    if (!exists(path)) writeFileAtomic(path, bytes);
  }

  const layers: LayerRef[] = manifest.layers.map((l, i) => ({
    diffId: diffIds[i],
    chainId: chain[i],
    blobDigest: l.digest,
    blobMediaType: l.mediaType,
    blobSize: l.size,
  }));
  let size = 0;
  for (const l of layers) {
    size += store.layerSize(l.chainId);
  }
  const before = tagged ? store.tags()[tagged] : undefined;
  const image = await store.commitImage(
    {
      id: manifest.config.digest,
      repoDigests: [repoDigest],
      manifestDigest,
      layers,
      config,
      created: config.created ?? new Date().toISOString(),
      size,
    },
    tagged ? [tagged] : [],
  );
  await recordBlobSources(
    root,
    ref.domain,
    repo,
    manifest.layers.map((l) => l.digest).concat(manifest.config.digest),
  );
  const downloaded = missing.length > 0 || !hadImage || (tagged !== undefined && before !== image.id);
  pulled(root, ref, image);
  return { image, digest: top.digest, downloaded };
}

/** docker's pull event: the reference as pulled, named by its repository, with the image's labels. */
function pulled(root: StateRoot, ref: Reference, image: ImageRecord): void {
  imageEvent(root, "pull", familiarString(ref), { ...imageLabels(image), name: familiarName(ref) });
}

/** `pull -a`: the repository's tags, sorted as the registry lists them. */
export async function listTags(client: RegistryClient, repo: string): Promise<string[]> {
  const tags: string[] = [];
  let path: string | null = `/v2/${repo}/tags/list?n=1000`;
  while (path) {
    const got: { res: Response; body: Uint8Array<ArrayBuffer> } = await client.getWhole(
      path as string,
      { scopes: [`repository:${repo}:pull`] },
      (res) => readCapped(res, MANIFEST_SIZE_LIMIT, "tag list"),
    );
    const body = JSON.parse(new TextDecoder().decode(got.body));
    tags.push(...((body.tags ?? []) as string[]));
    const link: string | null = got.res.headers.get("link");
    const m: RegExpExecArray | null = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
    path = m ? m[1] : null;
  }
  return tags;
}
