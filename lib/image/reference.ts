// Image references the way docker reads them: [domain/]path[:tag][@digest], normalized to docker's
// "familiar" form (docker.io/library/busybox:latest → busybox:latest), which is how skiff stores tags.

import { SkiffError } from "../errors.ts";

export interface Reference {
  /** Registry host, e.g. "docker.io" or "localhost:5000". */
  domain: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
export const DEFAULT_DOMAIN = "docker.io";
export const DEFAULT_TAG = "latest";

export class InvalidReferenceError extends SkiffError {
  constructor(detail?: string) {
    super(detail ? `invalid reference format: ${detail}` : "invalid reference format");
  }
}

/** Parses and normalizes a reference; throws InvalidReferenceError with docker's wording. */
export function parseReference(ref: string): Reference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new InvalidReferenceError();
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new InvalidReferenceError();
  }
  if (rest === "") throw new InvalidReferenceError();
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (
      first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()
    ) {
      domain = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN.test(domain)) throw new InvalidReferenceError();
    }
  }
  if (domain === "index.docker.io") domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path && path.split("/").every((c) => PATH_COMPONENT.test(c.toLowerCase()))) {
    throw new InvalidReferenceError(
      `repository name (${
        domain === DEFAULT_DOMAIN && !path.includes("/") ? "library/" : ""
      }${path}) must be lowercase`,
    );
  }
  if (!path.split("/").every((c) => PATH_COMPONENT.test(c))) throw new InvalidReferenceError();
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = `library/${path}`;
  if (`${domain}/${path}`.length > 255) {
    throw new InvalidReferenceError("repository name must not be more than 255 characters");
  }
  return { domain, path, tag, digest };
}

/** The repository in familiar form: "busybox", "user/app", "localhost:5000/app". */
export function familiarName(ref: Reference): string {
  if (ref.domain === DEFAULT_DOMAIN) {
    return ref.path.startsWith("library/") && ref.path.split("/").length === 2 ? ref.path.slice(8) : ref.path;
  }
  return `${ref.domain}/${ref.path}`;
}

/** "repo:tag" in familiar form, with docker's default tag when the reference has neither tag nor digest. */
export function familiarTagged(ref: Reference): string {
  return `${familiarName(ref)}:${ref.tag ?? DEFAULT_TAG}`;
}

/** The familiar string of whatever was given: "busybox:latest", "app@sha256:...", "app:v1@sha256:...". */
export function familiarString(ref: Reference): string {
  let s = familiarName(ref);
  if (ref.tag || !ref.digest) s += `:${ref.tag ?? DEFAULT_TAG}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** Normalizes NAME[:TAG] for storage as a tag; refuses digests and 64-hex names as docker does. */
export function normalizeTag(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest) throw new SkiffError("refusing to create a tag with a digest reference");
  if (/^[0-9a-f]{64}$/.test(familiarName(parsed))) {
    throw new SkiffError(
      `invalid repository name (${familiarName(parsed)}), cannot specify 64-byte hexadecimal strings`,
    );
  }
  return familiarTagged(parsed);
}

/** Splits a stored familiar "repo:tag" into its two parts. */
export function splitTagged(tagged: string): { repository: string; tag: string } {
  const i = tagged.lastIndexOf(":");
  return i > tagged.lastIndexOf("/")
    ? { repository: tagged.slice(0, i), tag: tagged.slice(i + 1) }
    : { repository: tagged, tag: DEFAULT_TAG };
}
