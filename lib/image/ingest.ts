// Getting content into the store: unpacking a layer into layers/<chainid>, writing verified blobs,
// and `import` (a rootfs tarball → a one-layer image).

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { exists, removeIfExists, writeFileAtomic } from "../state/fsutil.ts";
import type { ImageConfigBlob, ImageRecord, ImageRunConfig, LayerRef } from "../state/types.ts";
import { Sha256, sha256Digest } from "./digest.ts";
import { normalizeTag } from "./reference.ts";
import type { ImageStore, LayerInfo } from "./store.ts";
import { unpackLayer, type UnpackResult } from "./unpack.ts";
import { type ByteSource, fileChunks, stdinChunks } from "./stream.ts";

export interface StoredLayer extends UnpackResult {
  chainId: string;
  /** False when the layer was already in the store and this copy was discarded. */
  created: boolean;
  /** The input as stored in blobs/ (with `keepBlob`): spread it into the image's LayerRef. */
  blob?: { blobDigest: string; blobSize: number; blobMediaType: string };
}

/** docker's layer media types, by the compression of the stored blob. */
export const LAYER_MEDIA = {
  gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  none: "application/vnd.docker.image.rootfs.diff.tar",
} as const;

/** Copies every chunk of `source` into `file` while passing it on (the layer's blob, kept as given). */
async function* teeToFile(source: ByteSource, file: Deno.FsFile): AsyncGenerator<Uint8Array> {
  const input = "path" in source
    ? fileChunks(source.path)
    : "stdin" in source
    ? stdinChunks()
    : source.stream;
  for await (const chunk of input) {
    let off = 0;
    while (off < chunk.length) off += file.writeSync(chunk.subarray(off));
    yield chunk;
  }
}

/**
 * Unpacks a layer stream into the store on top of `parentChainId`. The files go to a private temp
 * dir first; only a complete layer whose diffID matched `expectedDiffId` (when given) is renamed
 * into layers/<chainid>. Anything else leaves no trace.
 */
export async function storeLayer(
  store: ImageStore,
  input: ByteSource,
  parentChainId: string | null,
  expectedDiffId?: string,
  options: { keepBlob?: boolean } = {},
): Promise<StoredLayer> {
  const tmp = store.makeTmpDir("layer");
  try {
    const diff = join(tmp, "diff");
    Deno.mkdirSync(diff);
    Deno.chmodSync(diff, 0o755);
    // keepBlob: the input is also written, as given, to a file that becomes blobs/sha256/<digest>
    // (save and push need the layer's tar; imported and committed layers would have none otherwise)
    const blobTmp = join(tmp, "blob");
    const blobFile = options.keepBlob
      ? Deno.openSync(blobTmp, { write: true, createNew: true, mode: 0o644 })
      : undefined;
    let result: UnpackResult;
    try {
      if (blobFile && "path" in input) {
        // a file keeps the threaded gunzip: unpack it, then copy it (from the page cache) and hash it
        result = await unpackLayer(input, diff);
        const hash = new Sha256();
        for await (const chunk of teeToFile(input, blobFile)) hash.update(chunk);
        result = { ...result, blobDigest: hash.digest(), blobSize: hash.size };
      } else {
        result = blobFile
          ? await unpackLayer({ stream: teeToFile(input, blobFile) }, diff, { hashBlob: true })
          : await unpackLayer(input, diff);
      }
    } finally {
      blobFile?.close();
    }
    if (expectedDiffId && result.diffId !== expectedDiffId) {
      throw new SkiffError(`layer digest mismatch: expected ${expectedDiffId}, got ${result.diffId}`);
    }
    const chainId = parentChainId === null
      ? result.diffId
      : sha256Digest(`${parentChainId} ${result.diffId}`);
    const created = !store.hasLayer(chainId);
    const info: LayerInfo = { diffId: result.diffId, chainId, parent: parentChainId, size: result.size };
    let blob: StoredLayer["blob"];
    if (blobFile && result.blobDigest) {
      // the blob goes in before the layer, so a layer that names it never lacks it
      const dest = store.blobPath(result.blobDigest);
      Deno.mkdirSync(store.root.blobs, { recursive: true });
      if (exists(dest)) Deno.removeSync(blobTmp);
      else Deno.renameSync(blobTmp, dest);
      blob = {
        blobDigest: result.blobDigest,
        blobSize: result.blobSize ?? 0,
        blobMediaType: LAYER_MEDIA[result.compression],
      };
    }
    if (created) store.commitLayer(tmp, info);
    return { ...result, chainId, created, ...(blob ? { blob } : {}) };
  } finally {
    removeIfExists(tmp); // gone already when it was committed
  }
}

/** Writes bytes whose digest is known to blobs/sha256/<hex> (no-op when present). */
export function writeBlob(store: ImageStore, data: Uint8Array | string): string {
  const digest = sha256Digest(data);
  const path = store.blobPath(digest);
  if (!exists(path)) {
    Deno.mkdirSync(store.root.blobs, { recursive: true });
    writeFileAtomic(path, data, 0o644);
  }
  return digest;
}

/** The platform in OCI terms. */
export function hostPlatform(): { os: string; architecture: string } {
  const arch = { x86_64: "amd64", aarch64: "arm64" }[Deno.build.arch] ?? Deno.build.arch;
  return { os: "linux", architecture: arch };
}

export interface ImportOptions {
  /** NAME[:TAG] to tag the image with. */
  tag?: string;
  /** Commit message (history comment). */
  message?: string;
  /** Dockerfile instructions to apply to the config (`import -c`). */
  changes?: string[];
}

/** `import`: a rootfs tarball (plain or gzip) becomes a one-layer image. */
export async function importRootfs(
  store: ImageStore,
  input: ByteSource,
  options: ImportOptions = {},
): Promise<ImageRecord> {
  // validate everything before reading input: bad arguments change nothing
  const tag = options.tag !== undefined ? normalizeTag(options.tag) : undefined;
  const runConfig = applyChanges({}, options.changes ?? []);
  store.sweepTmp();
  const layer = await storeLayer(store, input, null, undefined, { keepBlob: true });
  const created = new Date().toISOString();
  const config: ImageConfigBlob = {
    ...hostPlatform(),
    created,
    config: runConfig,
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created, ...(options.message ? { comment: options.message } : {}) }],
  };
  const id = writeBlob(store, JSON.stringify(config));
  const ref: LayerRef = { diffId: layer.diffId, chainId: layer.chainId, ...layer.blob };
  return await store.commitImage(
    { id, repoDigests: [], layers: [ref], config, created, size: layer.size },
    tag ? [tag] : [],
  );
}

/**
 * Applies `--change` instructions (the subset docker allows for import/commit: CMD, ENTRYPOINT,
 * ENV, EXPOSE, LABEL, ONBUILD is refused, STOPSIGNAL, USER, VOLUME, WORKDIR).
 */
export function applyChanges(config: ImageRunConfig, changes: string[]): ImageRunConfig {
  const out: ImageRunConfig = { ...config };
  for (const change of changes) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(change);
    if (!m) throw new SkiffError(`dockerfile parse error: invalid change "${change}"`);
    const instruction = m[1].toUpperCase();
    const rest = m[2].trim();
    switch (instruction) {
      case "CMD":
        out.Cmd = execForm(rest, true);
        break;
      case "ENTRYPOINT":
        out.Entrypoint = execForm(rest, true);
        break;
      case "ENV":
        out.Env = mergeEnv(out.Env ?? [], keyValues(rest, "ENV"));
        break;
      case "LABEL":
        out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(keyValues(rest, "LABEL")) };
        break;
      case "EXPOSE":
        out.ExposedPorts = { ...(out.ExposedPorts ?? {}) };
        for (const p of rest.split(/\s+/).filter(Boolean)) {
          out.ExposedPorts[p.includes("/") ? p : `${p}/tcp`] = {};
        }
        break;
      case "VOLUME":
        out.Volumes = { ...(out.Volumes ?? {}) };
        for (const v of rest.startsWith("[") ? execForm(rest, false) : rest.split(/\s+/).filter(Boolean)) {
          out.Volumes[v] = {};
        }
        break;
      case "USER":
        out.User = rest;
        break;
      case "WORKDIR":
        out.WorkingDir = rest;
        break;
      case "STOPSIGNAL":
        out.StopSignal = rest;
        break;
      default:
        throw new SkiffError(`${instruction} is not a valid change command`);
    }
  }
  return out;
}

/** JSON array form, or shell form wrapped in /bin/sh -c. */
function execForm(value: string, shell: boolean): string[] {
  if (value.startsWith("[")) {
    try {
      const parsed = JSON.parse(value);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) return parsed;
    } catch { /* fall through to shell form, as docker does */ }
  }
  return shell ? ["/bin/sh", "-c", value] : [value];
}

function keyValues(value: string, instruction: string): [string, string][] {
  const out: [string, string][] = [];
  if (!value.includes("=")) {
    // legacy form: ENV KEY value with spaces
    const m = /^(\S+)\s+(.*)$/s.exec(value);
    if (!m) throw new SkiffError(`${instruction} requires at least one argument`);
    return [[m[1], m[2]]];
  }
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of value.matchAll(re)) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out.push([m[1], v]);
  }
  return out;
}

function mergeEnv(env: string[], pairs: [string, string][]): string[] {
  const out = [...env];
  for (const [k, v] of pairs) {
    const i = out.findIndex((e) => e.split("=")[0] === k);
    if (i === -1) out.push(`${k}=${v}`);
    else out[i] = `${k}=${v}`;
  }
  return out;
}
