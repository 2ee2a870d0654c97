// `save`: images → one tarball that `docker load`, `podman load` and `skiff load` accept. It holds
// both docker's layout (manifest.json, repositories) and the OCI image layout newer docker writes
// (oci-layout, index.json, blobs/sha256/): configs, OCI manifests, and every layer as an
// uncompressed tar named by its diffID, as both formats need.
//
// Every layer tar is checked against its diffID before the archive is written: a stored gzip blob
// is gunzipped to a temp file first; a layer with no stored blob cannot be saved (its tar is gone).

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { removeIfExists } from "../state/fsutil.ts";
import type { ImageRecord } from "../state/types.ts";
import { hexOf, Sha256, sha256Digest } from "./digest.ts";
import { familiarName, familiarString, parseReference, splitTagged, withDefaultTag } from "./reference.ts";
import type { ImageStore } from "./store.ts";
import { fileChunks, openDecompressed } from "./stream.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";

/** What to write, resolved before a byte goes out (a bad name fails with nothing written). */
export interface SavePlan {
  images: { image: ImageRecord; tags: string[] }[];
}

/** A member of the archive: in memory, or a file streamed from disk. */
type Member = { name: string; data: Uint8Array } | { name: string; path: string; size: number };

/**
 * Resolves the references `save` was given. A name saves that tag only; an id saves the image
 * with every tag it has (docker's rule). The same image named twice is saved once.
 */
export function planSave(store: ImageStore, refs: string[]): SavePlan {
  const byId = new Map<string, { image: ImageRecord; tags: string[] }>();
  for (const ref of refs) {
    const image = store.find(ref);
    if (!image) {
      let shown = ref;
      try {
        shown = familiarString(withDefaultTag(parseReference(ref)));
      } catch { /* as given */ }
      throw new SkiffError(`No such image: ${shown}`, 1);
    }
    const entry = byId.get(image.id) ?? { image, tags: [] };
    byId.set(image.id, entry);
    const tagged = tagNamed(ref, image);
    for (const t of tagged ?? image.repoTags) if (!entry.tags.includes(t)) entry.tags.push(t);
  }
  return { images: [...byId.values()] };
}

/** The tag `ref` names on the image, or undefined when ref is an id. */
function tagNamed(ref: string, image: ImageRecord): string[] | undefined {
  if (ref.startsWith("sha256:") || /^[0-9a-f]{64}$/.test(ref)) return undefined;
  try {
    const parsed = parseReference(ref);
    if (parsed.digest) return [];
    const wanted = `${familiarName(parsed)}:${parsed.tag ?? "latest"}`;
    return image.repoTags.includes(wanted) ? [wanted] : undefined;
  } catch {
    return undefined; // a short id
  }
}

/** Where a layer's uncompressed tar is: the stored blob, or a gunzipped temp copy (verified). */
async function layerTarPath(
  store: ImageStore,
  image: ImageRecord,
  index: number,
  workDir: string,
): Promise<{ path: string; size: number }> {
  const layer = image.layers[index];
  const blob = layer.blobDigest ? store.blobPath(layer.blobDigest) : undefined;
  const missing = () =>
    new SkiffError(
      `cannot save ${image.id}: the tar of layer ${layer.diffId} is not stored (pull or load the image again)`,
    );
  if (!blob) throw missing();
  let size: number;
  try {
    size = Deno.statSync(blob).size;
  } catch {
    throw missing();
  }
  if (layer.blobDigest === layer.diffId) return { path: blob, size };
  const out = join(workDir, hexOf(layer.diffId));
  const file = Deno.openSync(out, { write: true, create: true, truncate: true, mode: 0o600 });
  const hash = new Sha256();
  try {
    const source = await openDecompressed({ path: blob });
    for await (const chunk of source.plain) {
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += file.writeSync(chunk.subarray(off));
    }
  } finally {
    file.close();
  }
  if (hash.digest() !== layer.diffId) {
    throw new SkiffError(
      `cannot save ${image.id}: layer blob ${layer.blobDigest} does not unpack to ${layer.diffId} (run 'skiff system check')`,
    );
  }
  return { path: out, size: hash.size };
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Lists the archive's members, preparing layer tars in `workDir` (removed by the caller). */
export async function saveMembers(store: ImageStore, plan: SavePlan, workDir: string): Promise<Member[]> {
  const members: Member[] = [];
  const written = new Set<string>();
  const add = (m: Member) => {
    if (written.has(m.name)) return;
    written.add(m.name);
    members.push(m);
  };
  const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] =
    [];

  for (const { image, tags } of plan.images) {
    const configPath = store.blobPath(image.id);
    let configSize: number;
    try {
      configSize = Deno.statSync(configPath).size;
    } catch {
      throw new SkiffError(`cannot save ${image.id}: its config blob is missing (run 'skiff system check')`);
    }
    add({ name: `blobs/sha256/${hexOf(image.id)}`, path: configPath, size: configSize });
    const layerDescs = [];
    for (let i = 0; i < image.layers.length; i++) {
      const tar = await layerTarPath(store, image, i, workDir);
      add({ name: `blobs/sha256/${hexOf(image.layers[i].diffId)}`, ...tar });
      layerDescs.push({ mediaType: OCI_LAYER_TAR, digest: image.layers[i].diffId, size: tar.size });
    }
    const manifest = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: image.id, size: configSize },
      layers: layerDescs,
    });
    const manifestDigest = sha256Digest(manifest);
    add({ name: `blobs/sha256/${hexOf(manifestDigest)}`, data: manifest });
    manifestJson.push({
      Config: `blobs/sha256/${hexOf(image.id)}`,
      RepoTags: tags.length ? tags : null,
      Layers: image.layers.map((l) => `blobs/sha256/${hexOf(l.diffId)}`),
    });
    const desc = { mediaType: OCI_MANIFEST, digest: manifestDigest, size: manifest.length };
    if (tags.length === 0) index.push(desc);
    for (const t of tags) {
      const { repository, tag } = splitTagged(t);
      (repositories[repository] ??= {})[tag] = hexOf(image.layers.at(-1)?.chainId ?? image.id);
      index.push({
        ...desc,
        annotations: {
          "io.containerd.image.name": fullTagged(t),
          "org.opencontainers.image.ref.name": tag,
        },
      });
    }
  }
  add({ name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) });
  add({ name: "index.json", data: json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: index }) });
  add({ name: "manifest.json", data: json(manifestJson) });
  if (Object.keys(repositories).length) add({ name: "repositories", data: json(repositories) });
  return members;
}

/** "busybox:latest" → "docker.io/library/busybox:latest" (containerd's image name). */
function fullTagged(tag: string): string {
  const { repository, tag: t } = splitTagged(tag);
  const first = repository.split("/")[0];
  const hasDomain = repository.includes("/") && (/[.:]/.test(first) || first === "localhost");
  const full = hasDomain
    ? repository
    : repository.includes("/")
    ? `docker.io/${repository}`
    : `docker.io/library/${repository}`;
  return `${full}:${t}`;
}

// ---- the tar stream ----

const encoder = new TextEncoder();

function octal(block: Uint8Array, offset: number, length: number, value: number): void {
  block.set(encoder.encode(value.toString(8).padStart(length - 1, "0")), offset);
}

function header(name: string, size: number, dir: boolean, mtime: number): Uint8Array {
  const b = new Uint8Array(512);
  b.set(encoder.encode(name), 0);
  octal(b, 100, 8, dir ? 0o755 : 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, mtime);
  b.fill(0x20, 148, 156);
  b[156] = dir ? 0x35 : 0x30;
  b.set(encoder.encode("ustar\u000000"), 257);
  let sum = 0;
  for (const x of b) sum += x;
  b.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

/** Streams the archive to `write` (directories first, then members in order, then the end marker). */
export async function writeSaveArchive(
  members: Member[],
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const mtime = Math.floor(Date.now() / 1000);
  if (members.some((m) => m.name.startsWith("blobs/"))) {
    await write(header("blobs/", 0, true, mtime));
    await write(header("blobs/sha256/", 0, true, mtime));
  }
  for (const m of members) {
    const size = "data" in m ? m.data.length : m.size;
    await write(header(m.name, size, false, mtime));
    let written = 0;
    if ("data" in m) {
      await write(m.data);
      written = m.data.length;
    } else {
      for await (const chunk of fileChunks(m.path)) {
        const take = chunk.subarray(0, Math.min(chunk.length, size - written));
        await write(take);
        written += take.length;
        if (written >= size) break;
      }
      if (written !== size) throw new SkiffError(`${m.path} changed while it was saved`);
    }
    const pad = (512 - (size % 512)) % 512;
    if (pad) await write(new Uint8Array(pad));
  }
  await write(new Uint8Array(1024));
}

/**
 * Writes the archive of `refs` to a file (via a temp file renamed into place) or to `sink`.
 * Every name is resolved and every layer tar verified before the first byte is written.
 */
export async function saveImages(
  store: ImageStore,
  refs: string[],
  target: { path: string } | { sink: (chunk: Uint8Array) => Promise<void> },
): Promise<void> {
  const plan = planSave(store, refs);
  store.sweepTmp();
  const work = store.makeTmpDir("save");
  try {
    const members = await saveMembers(store, plan, work);
    if ("sink" in target) {
      await writeSaveArchive(members, target.sink);
      return;
    }
    const tmp = `${target.path}.skiff-${Deno.pid}.tmp`;
    const file = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o644 });
    try {
      await writeSaveArchive(members, async (chunk) => {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      });
      file.close();
      Deno.renameSync(tmp, target.path);
    } catch (e) {
      try {
        file.close();
      } catch { /* closed */ }
      removeIfExists(tmp);
      throw e;
    }
  } finally {
    removeIfExists(work);
  }
}
