// The rows of `skiff images --format`: docker's formatter.ImageContext (.ID .Repository .Tag
// .Digest .CreatedSince .CreatedAt .Size .VirtualSize .SharedSize .UniqueSize .Containers), ready
// for lib/format/list.ts: compileListFormat(flag, DEFAULT_IMAGES_FORMAT).render(rows, imagesHeaderRow()).

import { goStruct } from "../format/template.ts";
import { goTimeString, humanSize, shortId, timeAgo } from "../format/human.ts";
import type { ImageRecord } from "../state/types.ts";

export const DEFAULT_IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
export const DEFAULT_IMAGES_DIGESTS_FORMAT =
  "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

const IMAGES_HEADERS: Record<string, string> = {
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  VirtualSize: "SIZE",
  SharedSize: "SHARED SIZE",
  UniqueSize: "UNIQUE SIZE",
  Containers: "CONTAINERS",
};

export interface ImageRowInput {
  image: ImageRecord;
  /** "<none>" for dangling images, as docker shows them. */
  repository: string;
  tag: string;
  /** "sha256:..." or "<none>". */
  digest: string;
  noTrunc: boolean;
  /** Containers using the image, or undefined when not counted (docker prints "N/A"). */
  containers?: number;
  now?: number;
}

/** One `images` row as docker's ImageContext: a Go struct whose fields are strings. */
export function imageRow(input: ImageRowInput): Record<string, unknown> {
  const { image, noTrunc } = input;
  const fields: Record<string, string> = {
    ID: noTrunc ? image.id : shortId(image.id),
    Repository: input.repository,
    Tag: input.tag,
    Digest: input.digest,
    CreatedSince: timeAgo(image.created, input.now),
    CreatedAt: goTimeString(image.created),
    Size: humanSize(image.size),
    VirtualSize: humanSize(image.size),
    SharedSize: "N/A",
    UniqueSize: "N/A",
    Containers: input.containers === undefined ? "N/A" : String(input.containers),
  };
  return goStruct("*formatter.imageContext", { ...fields, toJSON: () => fields });
}

/** The data the `table` header row of `images` is rendered from. */
export function imagesHeaderRow(): Record<string, unknown> {
  return goStruct("*formatter.imageContext", { ...IMAGES_HEADERS });
}
