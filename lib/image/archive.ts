// `load`: docker-archive (`docker save`: manifest.json, config JSON, layers as <id>/layer.tar or
// blobs/sha256/<hex>) and OCI image-layout tarballs (oci-layout, index.json, blobs/).
//
// The archive's members can come in any order (manifest.json is usually last), so it is first
// spooled into a private staging dir, hashing every member as it is written. Then every blob is
// checked against the digest it is named by, before anything is unpacked; layers are unpacked and
// checked against the config's diff_ids; only then are blobs moved into the store and the images
// recorded. A failure removes the layers this load added and leaves the store as it was.

import { dirname, join, normalize } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { readJson, removeIfExists } from "../state/fsutil.ts";
import type { ImageConfigBlob, LayerRef } from "../state/types.ts";
import { chainIds, DIGEST_RE, hexOf, Sha256 } from "./digest.ts";
import { hostPlatform, storeLayer } from "./ingest.ts";
import { normalizeTag } from "./reference.ts";
import type { ImageStore } from "./store.ts";
import { type ByteSource, openDecompressed } from "./stream.ts";
import { TarReader } from "./tar.ts";
import { cleanEntryPath } from "./unpack.ts";

interface StagedFile {
  path: string;
  digest: string;
  size: number;
}

export interface LoadResult {
  /** Tags now pointing at loaded images ("busybox:latest"). */
  tags: string[];
  /** Ids of loaded images that have no tag. */
  untaggedIds: string[];
  /** Tags that moved off another image (docker says so: "renaming the old one ... to empty string"). */
  moved: { tag: string; from: string }[];
}

const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
};

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

/** One image found in the archive, with every file it needs already verified. */
interface PlannedImage {
  config: StagedFile;
  configJson: ImageConfigBlob;
  manifest?: StagedFile;
  layers: { file: StagedFile; mediaType?: string }[];
  tags: string[];
}

const invalid = (detail: string) => new SkiffError(`invalid archive: ${detail}`);

class StagedArchive {
  readonly files = new Map<string, StagedFile>();
  readonly links = new Map<string, string>();
  constructor(readonly dir: string) {}

  /** Follows the archive's own symlinks/hardlinks (docker save links duplicate layers). */
  lookup(name: string): StagedFile | undefined {
    let rel = cleanEntryPath(name, name);
    for (let hops = 0; hops < 16; hops++) {
      const file = this.files.get(rel);
      if (file) return file;
      const target = this.links.get(rel);
      if (target === undefined) return undefined;
      rel = target;
    }
    throw invalid(`too many links resolving ${name}`);
  }

  need(name: string): StagedFile {
    const file = this.lookup(name);
    if (!file) throw invalid(`${name} is missing`);
    return file;
  }

  json<T>(file: StagedFile, name: string): T {
    try {
      return readJson<T>(file.path);
    } catch (e) {
      throw invalid(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** A blob referenced by descriptor: present, and its content hashes to the digest it claims. */
  blob(desc: Descriptor, what: string): StagedFile {
    if (!desc || typeof desc.digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(desc.digest)) {
      throw invalid(`${what} has no valid sha256 digest`);
    }
    const file = this.need(`blobs/sha256/${hexOf(desc.digest)}`);
    if (file.digest !== desc.digest) {
      throw invalid(`${what} blob ${desc.digest} does not match its content (${file.digest})`);
    }
    if (typeof desc.size === "number" && desc.size !== file.size) {
      throw invalid(`${what} blob ${desc.digest} has size ${file.size}, expected ${desc.size}`);
    }
    return file;
  }
}

/** Spools the (possibly gzip-compressed) archive into `dir`, hashing each member. */
async function stage(input: ByteSource, dir: string): Promise<StagedArchive> {
  const staged = new StagedArchive(dir);
  let count = 0;
  const reader = new TarReader((e) => {
    const rel = cleanEntryPath(e.name, e.name);
    if (e.type === "symlink") {
      const target = e.linkname.startsWith("/") ? e.linkname.slice(1) : join(dirname(rel), e.linkname);
      staged.links.set(rel, cleanEntryPath(normalize(target), e.name, "link target"));
      return undefined;
    }
    if (e.type === "link") {
      staged.links.set(rel, cleanEntryPath(e.linkname, e.name, "link target"));
      return undefined;
    }
    if (e.type !== "file") return undefined;
    const path = join(dir, `member-${count++}`);
    const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    const hash = new Sha256();
    return {
      data(chunk) {
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += file.writeSync(off === 0 ? chunk : chunk.subarray(off));
      },
      end() {
        file.close();
        staged.files.set(rel, { path, digest: hash.digest(), size: hash.size });
        staged.links.delete(rel);
      },
    };
  });
  const source = await openDecompressed(input);
  for await (const chunk of source.plain) if (!reader.ended) reader.push(chunk);
  reader.finish();
  return staged;
}

/** Names an OCI index entry carries: containerd's full name, or a full ref.name. */
function ociNames(desc: Descriptor): string[] {
  const full = desc.annotations?.["io.containerd.image.name"];
  if (full) return [normalizeTag(full)];
  const refName = desc.annotations?.["org.opencontainers.image.ref.name"];
  // a bare "latest" is only a tag, with no repository to put it on
  if (refName && /[:/]/.test(refName)) {
    try {
      return [normalizeTag(refName)];
    } catch { /* not a reference */ }
  }
  return [];
}

function planDocker(staged: StagedArchive): PlannedImage[] {
  const manifest = staged.json<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(
    staged.need("manifest.json"),
    "manifest.json",
  );
  if (!Array.isArray(manifest) || manifest.length === 0) throw invalid("manifest.json lists no images");
  return manifest.map((entry) => {
    if (typeof entry.Config !== "string" || !Array.isArray(entry.Layers)) {
      throw invalid("manifest.json entry without Config or Layers");
    }
    const config = staged.need(entry.Config);
    // configs are named by their digest (<hex>.json or blobs/sha256/<hex>): check it
    const named = /([0-9a-f]{64})(?:\.json)?$/.exec(entry.Config);
    if (named && `sha256:${named[1]}` !== config.digest) {
      throw invalid(`config ${entry.Config} does not match its digest (content is ${config.digest})`);
    }
    const layers = entry.Layers.map((name) => {
      const file = staged.need(name);
      const blobName = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(cleanEntryPath(name));
      if (blobName && `sha256:${blobName[1]}` !== file.digest) {
        throw invalid(`layer blob ${name} does not match its content (${file.digest})`);
      }
      return { file };
    });
    return {
      config,
      configJson: staged.json<ImageConfigBlob>(config, entry.Config),
      layers,
      tags: (entry.RepoTags ?? []).map(normalizeTag),
    };
  });
}

function planOci(staged: StagedArchive): PlannedImage[] {
  const layout = staged.lookup("oci-layout");
  if (layout) {
    const v = staged.json<{ imageLayoutVersion?: string }>(layout, "oci-layout");
    if (typeof v.imageLayoutVersion !== "string") throw invalid("oci-layout has no imageLayoutVersion");
  }
  const index = staged.json<{ manifests?: Descriptor[] }>(staged.need("index.json"), "index.json");
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) {
    throw invalid("index.json lists no manifests");
  }
  const { os, architecture } = hostPlatform();
  const byConfig = new Map<string, PlannedImage>();
  const visit = (desc: Descriptor, names: string[], depth: number) => {
    const file = staged.blob(desc, "manifest");
    const doc = staged.json<
      { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }
    >(file, desc.digest);
    const mediaType = desc.mediaType ?? doc.mediaType;
    if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList || Array.isArray(doc.manifests)) {
      if (depth > 2) throw invalid("indexes nested too deep");
      const match = (doc.manifests ?? []).find((m) =>
        m.platform?.os === os && m.platform?.architecture === architecture
      ) ?? (doc.manifests ?? []).find((m) =>
        !m.platform
      );
      if (!match) throw invalid(`no image for ${os}/${architecture} in ${desc.digest}`);
      visit(match, names, depth + 1);
      return;
    }
    if (!doc.config || !Array.isArray(doc.layers)) {
      throw invalid(`manifest ${desc.digest} has no config or layers`);
    }
    const config = staged.blob(doc.config, "config");
    const layers = doc.layers.map((l) => {
      if (l.mediaType?.includes("nondistributable") || l.mediaType?.includes("foreign")) {
        throw invalid(`foreign layer ${l.digest} is not included in the archive`);
      }
      return { file: staged.blob(l, "layer"), mediaType: l.mediaType };
    });
    const planned = byConfig.get(config.digest);
    if (planned) planned.tags.push(...names);
    else {
      byConfig.set(config.digest, {
        config,
        configJson: staged.json<ImageConfigBlob>(config, doc.config.digest),
        manifest: file,
        layers,
        tags: [...names],
      });
    }
  };
  for (const desc of index.manifests) visit(desc, ociNames(desc), 0);
  return [...byConfig.values()];
}

/** Moves a staged, verified file into blobs/sha256/ (keeps the existing copy when present). */
function storeBlob(store: ImageStore, file: StagedFile): void {
  const dest = store.blobPath(file.digest);
  try {
    Deno.lstatSync(dest);
    return;
  } catch { /* absent */ }
  Deno.mkdirSync(store.root.blobs, { recursive: true });
  try {
    Deno.renameSync(file.path, dest);
  } catch (e) {
    // a second reference to the same member (already moved) or a racing loader: both fine if present
    try {
      Deno.lstatSync(dest);
    } catch {
      throw e;
    }
  }
}

/** Loads every image in a docker-archive or OCI-layout tarball into the store. */
export async function loadArchive(store: ImageStore, input: ByteSource): Promise<LoadResult> {
  store.sweepTmp();
  const dir = store.makeTmpDir("load");
  const createdLayers: string[] = [];
  try {
    const staged = await stage(input, dir);
    let plans: PlannedImage[];
    if (staged.lookup("manifest.json")) plans = planDocker(staged);
    else if (staged.lookup("index.json")) plans = planOci(staged);
    else throw invalid("no manifest.json (docker save) or index.json (OCI layout) found");

    // every blob was checked while planning; now unpack, checking each layer against its diff_id
    for (const plan of plans) {
      const diffIds = plan.configJson?.rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== plan.layers.length) {
        throw invalid(
          `config ${plan.config.digest} lists ${
            diffIds?.length ?? 0
          } layers, the image has ${plan.layers.length}`,
        );
      }
      if (!diffIds.every((d) => typeof d === "string" && DIGEST_RE.test(d))) {
        throw invalid(`config ${plan.config.digest} has a malformed diff_id`);
      }
      const chains = chainIds(diffIds);
      for (let i = 0; i < plan.layers.length; i++) {
        if (store.hasLayer(chains[i])) continue;
        const layer = await storeLayer(
          store,
          { path: plan.layers[i].file.path },
          i ? chains[i - 1] : null,
          diffIds[i],
        )
          .catch((e) => {
            throw e instanceof SkiffError
              ? new SkiffError(`layer ${i + 1} of ${plan.config.digest}: ${e.message}`)
              : e;
          });
        if (layer.created) createdLayers.push(layer.chainId);
      }
    }

    const result: LoadResult = { tags: [], untaggedIds: [], moved: [] };
    for (const plan of plans) {
      const diffIds = plan.configJson.rootfs.diff_ids;
      const chains = chainIds(diffIds);
      const layers: LayerRef[] = plan.layers.map((l, i) => ({
        diffId: diffIds[i],
        chainId: chains[i],
        blobDigest: l.file.digest,
        blobSize: l.file.size,
        ...(l.mediaType ? { blobMediaType: l.mediaType } : {}),
      }));
      storeBlob(store, plan.config);
      if (plan.manifest) storeBlob(store, plan.manifest);
      for (const l of plan.layers) storeBlob(store, l.file);
      const size = chains.reduce((n, c) => n + layerSize(store, c), 0);
      const created = plan.configJson.created ?? new Date(0).toISOString();
      const before = store.tags();
      for (const tag of plan.tags) {
        if (before[tag] && before[tag] !== plan.config.digest) result.moved.push({ tag, from: before[tag] });
      }
      const record = await store.commitImage({
        id: plan.config.digest,
        repoDigests: [],
        manifestDigest: plan.manifest?.digest,
        layers,
        config: plan.configJson,
        created,
        size,
      }, plan.tags);
      if (plan.tags.length) result.tags.push(...plan.tags);
      else result.untaggedIds.push(record.id);
    }
    return result;
  } catch (e) {
    // leave nothing behind: drop the layers this load added unless an image uses them by now
    if (createdLayers.length) {
      await store.locked(() => {
        const used = new Set(store.list().flatMap((i) => i.layers.map((l) => l.chainId)));
        for (const c of createdLayers) if (!used.has(c)) store.removeLayer(c);
      });
    }
    throw e;
  } finally {
    removeIfExists(dir);
  }
}

function layerSize(store: ImageStore, chainId: string): number {
  return store.layerSize(chainId);
}
