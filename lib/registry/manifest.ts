// Manifests as registries serve them: docker schema2 manifest and manifest list, OCI manifest and
// index, as zod schemas. Everything is validated (and size-capped) before any blob it names is
// fetched. zod takes ~50 ms to load, so the fast paths use mediatypes.ts and load this lazily.

import { z } from "zod";
import { SkiffError } from "../errors.ts";
import { CONFIG_SIZE_LIMIT, MANIFEST_SIZE_LIMIT, MEDIA } from "./mediatypes.ts";

export * from "./mediatypes.ts";

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, "invalid digest");

export const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z.object({
    architecture: z.string(),
    os: z.string(),
    variant: z.string().optional(),
    "os.version": z.string().optional(),
    "os.features": z.array(z.string()).optional(),
  }).optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof indexSchema>;

export const configSchema = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  variant: z.string().optional(),
  created: z.string().optional(),
  author: z.string().optional(),
  config: z.record(z.string(), z.unknown()).nullable().optional(),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(digest) }),
  history: z.array(z.record(z.string(), z.unknown())).optional(),
}).passthrough();

export type ParsedManifest =
  | { kind: "image"; mediaType: string; manifest: ImageManifest }
  | { kind: "index"; mediaType: string; index: ImageIndex };

const LAYER_TYPES: ReadonlySet<string> = new Set([
  MEDIA.dockerLayerGzip,
  MEDIA.dockerLayer,
  MEDIA.ociLayerGzip,
  MEDIA.ociLayer,
  MEDIA.ociLayerNondistributableGzip,
  MEDIA.dockerForeignLayer,
]);

export function isGzipLayer(mediaType: string): boolean {
  return mediaType.endsWith("gzip");
}

function zodDetail(e: z.ZodError): string {
  const issue = e.issues[0];
  return `${issue.path.join(".") || "(root)"}: ${issue.message}`;
}

/**
 * Parses a manifest body. The media type comes from the body when it names one, else from the
 * Content-Type header; schema1 and unknown types are refused.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | null): ParsedManifest {
  if (bytes.length > MANIFEST_SIZE_LIMIT) {
    throw new SkiffError(`manifest too large: ${bytes.length} bytes (limit ${MANIFEST_SIZE_LIMIT})`);
  }
  let json: any;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new SkiffError("invalid manifest: not JSON");
  }
  if (json === null || typeof json !== "object") throw new SkiffError("invalid manifest: not an object");
  if (json.schemaVersion === 1) {
    throw new SkiffError(
      "unsupported manifest format: docker schema1 manifests are no longer supported; push the image again with a newer client",
    );
  }
  const header = (contentType ?? "").split(";")[0].trim();
  let mediaType: string = typeof json.mediaType === "string" ? json.mediaType : header;
  if (!mediaType || mediaType === "application/json" || mediaType === "text/plain") {
    // OCI allows mediaType to be absent: tell by shape
    mediaType = Array.isArray(json.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest;
  }
  if (mediaType === MEDIA.dockerManifestList || mediaType === MEDIA.ociIndex) {
    const r = indexSchema.safeParse(json);
    if (!r.success) throw new SkiffError(`invalid manifest list: ${zodDetail(r.error)}`);
    return { kind: "index", mediaType, index: r.data };
  }
  if (mediaType === MEDIA.dockerManifest || mediaType === MEDIA.ociManifest) {
    const r = imageManifestSchema.safeParse(json);
    if (!r.success) throw new SkiffError(`invalid manifest: ${zodDetail(r.error)}`);
    for (const layer of r.data.layers) {
      if (layer.mediaType === MEDIA.ociLayerZstd) {
        throw new SkiffError(`unsupported layer compression (zstd) in layer ${layer.digest}`);
      }
      if (!LAYER_TYPES.has(layer.mediaType)) {
        throw new SkiffError(`unsupported layer media type ${layer.mediaType} in layer ${layer.digest}`);
      }
    }
    if (r.data.config.size > CONFIG_SIZE_LIMIT) {
      throw new SkiffError(
        `image config too large: ${r.data.config.size} bytes (limit ${CONFIG_SIZE_LIMIT})`,
      );
    }
    return { kind: "image", mediaType, manifest: r.data };
  }
  throw new SkiffError(`unsupported manifest media type ${mediaType}`);
}
