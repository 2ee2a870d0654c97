// `push`: blobs first (skipped when the registry has them, mounted across repositories when we know
// another repository on the same registry holds them, else uploaded: POST then one PUT for small
// blobs, PATCH chunks then PUT for large ones), the config, and the manifest last.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { withLock, writeFileAtomic, writeJsonAtomic } from "../state/fsutil.ts";
import { generatedIndexSchema, parseWith } from "../state/schemas.ts";
import { InvalidState } from "../state/validate.ts";
import type { StateRoot } from "../state/root.ts";
import type { ImageRecord } from "../state/types.ts";
import { ImageStore } from "../image/store.ts";
import { type RegistryClient, RegistryError } from "./client.ts";
import { MEDIA } from "./mediatypes.ts";
import { type ProgressSink, shortId } from "./progress.ts";
import { readBlobSources, recordBlobSources, sha256Of } from "./pull.ts";
import { familiarName, familiarString, type Reference } from "../image/reference.ts";

/** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size. */
export const CHUNK_SIZE = 8 * 1024 * 1024;
const UPLOAD_ATTEMPTS = 3;

export interface PushOptions {
  onEvent?: ProgressSink;
  client: RegistryClient;
}

export interface PushResult {
  tag: string;
  digest: string;
  size: number;
}

interface BlobToPush {
  digest: string;
  size: number;
  mediaType: string;
  /** Local file with the bytes. */
  path: string;
}

/** Layers made for images without a stored blob, by chain ID, so a second push sends the same blob. */
function generatedIndexPath(root: StateRoot) {
  return join(root.path, "registry", "generated-layers.json");
}
type GeneratedIndex = Record<string, { diffId: string; digest: string; size: number }>;

/**
 * registry/generated-layers.json, checked. A cache (the gzipped tars skiff made for earlier
 * pushes): an unreadable one counts as empty, and the layers are compressed again.
 */
function readGeneratedIndex(root: StateRoot): GeneratedIndex {
  try {
    return parseWith(Deno.readTextFileSync(generatedIndexPath(root)), generatedIndexSchema);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof InvalidState) return {};
    throw e;
  }
}

function fileExists(path: string, size?: number): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && (size === undefined || st.size === size);
  } catch {
    return false;
  }
}

/**
 * The manifest to push and the blobs it names. The stored manifest is sent unchanged when every
 * layer blob is at hand, so a pulled image keeps its digest; otherwise (an imported image) the
 * missing layers are made from the unpacked dirs and a new config and manifest written.
 */
async function planImage(
  root: StateRoot,
  store: ImageStore,
  image: ImageRecord,
): Promise<
  { manifest: Uint8Array<ArrayBuffer>; mediaType: string; config: BlobToPush; layers: BlobToPush[] }
> {
  const stored = image.manifestDigest ? store.blobPath(image.manifestDigest) : undefined;
  if (
    stored && fileExists(stored) &&
    image.layers.every((l) => l.blobDigest && fileExists(store.blobPath(l.blobDigest), l.blobSize))
  ) {
    const bytes = Deno.readFileSync(stored);
    const { parseManifest } = await import("./manifest.ts");
    const parsed = parseManifest(bytes, null);
    if (parsed.kind === "image" && parsed.manifest.config.digest === image.id) {
      return {
        manifest: bytes,
        mediaType: parsed.mediaType,
        config: { ...parsed.manifest.config, path: store.blobPath(image.id) },
        layers: parsed.manifest.layers.map((l) => ({ ...l, path: store.blobPath(l.digest) })),
      };
    }
  }
  const { generateLayerBlob } = await import("./layertar.ts");
  const generated = readGeneratedIndex(root);
  let changed = false;
  const layers: BlobToPush[] = [];
  // a blob skiff gzipped itself (kept beside the layer's own, see layertar.ts)
  const gzippedBlob = (g: { digest: string; size: number }): BlobToPush => ({
    digest: g.digest,
    size: g.size,
    mediaType: MEDIA.dockerLayerGzip,
    path: store.blobPath(g.digest),
  });
  const diffIds: string[] = [];
  for (const l of image.layers) {
    const plain = l.blobDigest === l.diffId || l.blobMediaType === MEDIA.dockerLayer ||
      l.blobMediaType === MEDIA.ociLayer;
    if (plain && l.blobDigest && fileExists(store.blobPath(l.blobDigest), l.blobSize)) {
      // an imported/committed layer kept as a plain tar: sent gzipped, as docker does; the diffID
      // (and so the config and the image ID) stays the same
      let g = generated[l.chainId];
      if (!g || g.diffId !== l.diffId || !fileExists(store.blobPath(g.digest), g.size)) {
        const { gzipBlob } = await import("./layertar.ts");
        g = { diffId: l.diffId, ...await gzipBlob(store, store.blobPath(l.blobDigest)) };
        generated[l.chainId] = g;
        changed = true;
      }
      layers.push(gzippedBlob(g));
      diffIds.push(l.diffId);
      continue;
    }
    if (l.blobDigest && fileExists(store.blobPath(l.blobDigest), l.blobSize)) {
      layers.push({
        digest: l.blobDigest,
        size: l.blobSize ?? Deno.statSync(store.blobPath(l.blobDigest)).size,
        mediaType: l.blobMediaType ?? MEDIA.dockerLayerGzip,
        path: store.blobPath(l.blobDigest),
      });
      diffIds.push(l.diffId);
      continue;
    }
    let g = generated[l.chainId];
    if (!g || !fileExists(store.blobPath(g.digest), g.size)) {
      g = await generateLayerBlob(store, join(store.layerPath(l.chainId), "diff"));
      generated[l.chainId] = g;
      changed = true;
    }
    layers.push(gzippedBlob(g));
    diffIds.push(g.diffId);
  }
  if (changed) {
    Deno.mkdirSync(join(root.path, "registry"), { recursive: true, mode: 0o700 });
    await withLock(root.lock("registry"), () => {
      const current = readGeneratedIndex(root);
      writeJsonAtomic(generatedIndexPath(root), { ...current, ...generated });
    });
  }
  // the config must name the layers as sent: diff_ids of regenerated tars differ from the import's
  let configBytes: Uint8Array<ArrayBuffer>;
  const configPath = store.blobPath(image.id);
  const sameDiffIds = diffIds.every((d, i) => d === image.config.rootfs.diff_ids[i]);
  if (sameDiffIds && fileExists(configPath)) configBytes = Deno.readFileSync(configPath);
  else {
    configBytes = new TextEncoder().encode(
      JSON.stringify({ ...image.config, rootfs: { type: "layers", diff_ids: diffIds } }),
    );
  }
  const configDigest = await sha256Of(configBytes);
  const newConfigPath = store.blobPath(configDigest);
  if (!fileExists(newConfigPath)) writeFileAtomic(newConfigPath, configBytes);
  const allGzip = layers.every((l) => l.mediaType.endsWith("gzip"));
  const mediaType = allGzip ? MEDIA.dockerManifest : MEDIA.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: allGzip ? MEDIA.dockerConfig : MEDIA.ociConfig,
      size: configBytes.length,
      digest: configDigest,
    },
    layers: layers.map((l) => ({
      mediaType: allGzip ? MEDIA.dockerLayerGzip : l.mediaType,
      size: l.size,
      digest: l.digest,
    })),
  };
  return {
    manifest: new TextEncoder().encode(JSON.stringify(manifest, null, 3)),
    mediaType,
    config: {
      digest: configDigest,
      size: configBytes.length,
      mediaType: manifest.config.mediaType,
      path: newConfigPath,
    },
    layers,
  };
}

async function* fileChunks(path: string, chunkSize: number): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  using file = await Deno.open(path);
  for (;;) {
    const buf = new Uint8Array(chunkSize);
    let filled = 0;
    while (filled < chunkSize) {
      const n = await file.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) return;
    yield filled === chunkSize ? buf : buf.slice(0, filled);
    if (filled < chunkSize) return;
  }
}

function withDigest(location: string, digest: string): string {
  return location + (location.includes("?") ? "&" : "?") + `digest=${encodeURIComponent(digest)}`;
}

/** One blob to the registry: exists → skip; known elsewhere on this registry → mount; else upload. */
async function pushBlob(
  client: RegistryClient,
  repo: string,
  blob: BlobToPush,
  sources: string[],
  emit: ProgressSink,
  showId: boolean,
): Promise<void> {
  const id = shortId(blob.digest);
  const scopes = [`repository:${repo}:pull,push`];
  const head = await client.request("HEAD", `/v2/${repo}/blobs/${blob.digest}`, { scopes, accept: [404] });
  await head.body?.cancel();
  if (head.status === 200) {
    if (showId) emit({ kind: "layer", id, status: "Layer already exists" });
    return;
  }
  for (let attempt = 1;; attempt++) {
    try {
      let location: string | undefined;
      for (const from of sources.filter((s) => s !== repo)) {
        const res = await client.request(
          "POST",
          `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${
            encodeURIComponent(from)
          }`,
          { scopes: [...scopes, `repository:${from}:pull`], accept: [202] },
        );
        await res.body?.cancel();
        if (res.status === 201) {
          if (showId) emit({ kind: "layer", id, status: "Mounted from", detail: from });
          return;
        }
        location = res.headers.get("location") ?? undefined; // not mountable: an upload started instead
        break;
      }
      if (!location) {
        const res = await client.request("POST", `/v2/${repo}/blobs/uploads/`, { scopes, accept: [202] });
        await res.body?.cancel();
        location = res.headers.get("location") ?? undefined;
        if (!location) throw new SkiffError(`${client.host}: upload started without a Location`);
      }
      if (showId) emit({ kind: "layer", id, status: "Pushing", current: 0, total: blob.size });
      if (blob.size <= CHUNK_SIZE) {
        const body = Deno.readFileSync(blob.path);
        const res = await client.request("PUT", withDigest(location, blob.digest), {
          scopes,
          body,
          headers: { "Content-Type": "application/octet-stream", "Content-Length": String(body.length) },
          retry: false,
        });
        await res.body?.cancel();
      } else {
        let offset = 0;
        for await (const chunk of fileChunks(blob.path, CHUNK_SIZE)) {
          const res = await client.request("PATCH", location, {
            scopes,
            body: chunk,
            headers: {
              "Content-Type": "application/octet-stream",
              "Content-Range": `${offset}-${offset + chunk.length - 1}`,
              "Content-Length": String(chunk.length),
            },
            retry: false,
          });
          await res.body?.cancel();
          offset += chunk.length;
          location = res.headers.get("location") ?? location;
          if (showId) emit({ kind: "layer", id, status: "Pushing", current: offset, total: blob.size });
        }
        const res = await client.request("PUT", withDigest(location, blob.digest), {
          scopes,
          headers: { "Content-Length": "0" },
          retry: false,
        });
        await res.body?.cancel();
      }
      if (showId) emit({ kind: "layer", id, status: "Pushed" });
      return;
    } catch (e) {
      if (attempt >= UPLOAD_ATTEMPTS || (e instanceof RegistryError && e.status >= 400 && e.status < 500)) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}

/** Pushes the local image named by `ref` (a tag) to its registry. */
export async function pushImage(
  root: StateRoot,
  ref: Reference,
  opts: PushOptions,
): Promise<PushResult> {
  const emit: ProgressSink = opts.onEvent ?? (() => {});
  const store = new ImageStore(root);
  const tag = ref.tag ?? "latest";
  const local = familiarString({ ...ref, tag, digest: undefined });
  const image = store.find(local);
  if (!image) throw new SkiffError(`An image does not exist locally with the tag: ${familiarName(ref)}`, 1);
  const client = opts.client;
  const repo = ref.path;
  emit({ kind: "message", text: `The push refers to repository [${ref.domain}/${repo}]` });
  const plan = await planImage(root, store, image);
  for (const l of [...plan.layers].reverse()) {
    emit({ kind: "layer", id: shortId(l.digest), status: "Preparing" });
  }
  const sources = readBlobSources(root)[ref.domain] ?? {};
  // layers in parallel (bounded), config after them, the manifest last
  const queue = [...plan.layers];
  const failures: unknown[] = [];
  await Promise.all(Array.from({ length: Math.min(3, queue.length) }, async () => {
    for (let blob = queue.shift(); blob && !failures.length; blob = queue.shift()) {
      try {
        await pushBlob(client, repo, blob, sources[blob.digest] ?? [], emit, true);
      } catch (e) {
        failures.push(e);
      }
    }
  }));
  if (failures.length) throw failures[0];
  await pushBlob(client, repo, plan.config, sources[plan.config.digest] ?? [], emit, false);
  const res = await client.request("PUT", `/v2/${repo}/manifests/${tag}`, {
    scopes: [`repository:${repo}:pull,push`],
    body: plan.manifest,
    headers: { "Content-Type": plan.mediaType },
  });
  await res.body?.cancel();
  const digest = await sha256Of(plan.manifest);
  const told = res.headers.get("docker-content-digest");
  if (told && told !== digest) {
    throw new SkiffError(`the registry stored the manifest as ${told}, expected ${digest}`);
  }
  const manifestPath = store.blobPath(digest);
  if (!fileExists(manifestPath)) writeFileAtomic(manifestPath, plan.manifest);
  await recordBlobSources(root, ref.domain, repo, [...plan.layers.map((l) => l.digest), plan.config.digest]);
  // docker records the pushed digest as a RepoDigest when the image is the one that was pushed
  if (plan.config.digest === image.id) {
    await store.commitImage({ ...image, repoDigests: [`${familiarName(ref)}@${digest}`] }, []);
  }
  return { tag, digest, size: plan.manifest.length };
}
