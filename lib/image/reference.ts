// Image references exactly as docker parses them (distribution/reference's grammar and its
// "normalized" rules): `busybox` is docker.io/library/busybox:latest, a first component with a `.`
// or `:` or equal to `localhost` (or with upper case) is a registry host, the rest is Docker Hub.
// The one parser for every caller: local tags are stored in docker's familiar form
// (docker.io/library/busybox:latest → busybox:latest), pull and push use the same grammar.

import { type ErrorKind, SkiffError } from "../errors.ts";

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
export const DEFAULT_TAG = "latest";
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar from distribution/reference, as regular expressions.
const alphaNumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const pathComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const ipv6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tag = "[\\w][\\w.-]{0,127}";
const digestPattern = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const namePattern = `(?:${domainAndPort}/)?${pathComponent}(?:/${pathComponent})*`;
const REFERENCE = new RegExp(`^(${namePattern})(?::(${tag}))?(?:@(${digestPattern}))?$`);
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;

/** A fully qualified reference: registry domain, repository path, and a tag and/or digest. */
export interface Reference {
  /** Registry host[:port] as written; docker.io for Docker Hub. */
  domain: string;
  /** Repository path inside the registry, e.g. library/busybox. */
  path: string;
  tag?: string;
  /** "sha256:<64 hex>". */
  digest?: string;
}

/** Raised for every malformed reference; the CLI prints it and exits 125. */
export class InvalidReferenceError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "invalid-argument";
  constructor(detail?: string) {
    // the verb's code: run 125, pull/tag/import 1 (docker's CLI)
    super(detail ? `invalid reference format: ${detail}` : "invalid reference format");
    this.name = "InvalidReferenceError";
  }
}

/** Checks an algorithm:hex digest; sha256 only, 64 lower-case hex digits. */
export function validateDigest(digest: string): string {
  const i = digest.indexOf(":");
  if (i <= 0) throw new InvalidReferenceError("invalid checksum digest format");
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  if (algorithm !== "sha256") {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/.test(algorithm)) {
      throw new InvalidReferenceError("invalid checksum digest format");
    }
    throw new InvalidReferenceError("unsupported digest algorithm");
  }
  if (hex.length !== 64) throw new InvalidReferenceError("invalid checksum digest length");
  if (!/^[a-f0-9]{64}$/.test(hex)) throw new InvalidReferenceError("invalid checksum digest format");
  return digest;
}

function splitDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf("/");
  let domain: string;
  let remainder: string;
  const first = i === -1 ? "" : name.slice(0, i);
  if (
    i === -1 ||
    (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)
  ) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parses a reference the way `docker pull` does (ParseNormalizedNamed). Does not add a default
 * tag: use withDefaultTag() for that.
 */
export function parseReference(input: string): Reference {
  if (ANCHORED_IDENTIFIER.test(input)) {
    throw new SkiffError(
      `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`,
    );
  }
  if (input === "") throw new InvalidReferenceError();
  const { domain, remainder } = splitDomain(input);
  // the remote name ends at the tag (a `:` after the last `/`) or the digest
  let remoteName = remainder;
  const at = remoteName.indexOf("@");
  if (at !== -1) remoteName = remoteName.slice(0, at);
  const colon = remoteName.lastIndexOf(":");
  if (colon !== -1 && colon > remoteName.lastIndexOf("/")) remoteName = remoteName.slice(0, colon);
  if (remoteName.toLowerCase() !== remoteName) {
    throw new InvalidReferenceError(`repository name (${remoteName}) must be lowercase`);
  }
  const full = `${domain}/${remainder}`;
  const m = REFERENCE.exec(full);
  if (!m) {
    if (REFERENCE.test(full.toLowerCase())) {
      throw new InvalidReferenceError("repository name must be lowercase");
    }
    throw new InvalidReferenceError();
  }
  const [, name, tagPart, digestPart] = m;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidReferenceError(
      `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`,
    );
  }
  const ref: Reference = { domain, path: name.slice(domain.length + 1) };
  if (tagPart !== undefined) ref.tag = tagPart;
  if (digestPart !== undefined) ref.digest = validateDigest(digestPart);
  return ref;
}

/** docker's TagNameOnly: a reference with neither tag nor digest gets `latest`. */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: DEFAULT_TAG } : ref;
}

/** Parses and adds the default tag; `defaulted` tells whether `latest` was added. */
export function parsePullReference(input: string): { ref: Reference; defaulted: boolean } {
  const parsed = parseReference(input);
  const ref = withDefaultTag(parsed);
  return { ref, defaulted: ref !== parsed };
}

/** Fully qualified name without tag/digest: docker.io/library/busybox. */
export function fullName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The short name docker shows: busybox, user/app, localhost:5000/app. */
export function familiarName(ref: Reference): string {
  if (ref.domain === DEFAULT_DOMAIN) {
    return ref.path.startsWith(OFFICIAL_REPO_PREFIX) &&
        !ref.path.slice(OFFICIAL_REPO_PREFIX.length).includes("/")
      ? ref.path.slice(OFFICIAL_REPO_PREFIX.length)
      : ref.path;
  }
  return fullName(ref);
}

/** busybox:latest, busybox@sha256:…, localhost:5000/app:v1@sha256:… */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
}

/** docker.io/library/busybox:latest: what `docker pull` prints last. */
export function fullString(ref: Reference): string {
  return fullName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
}

/** "repo:tag" in familiar form, with docker's default tag when the reference has neither tag nor digest. */
export function familiarTagged(ref: Reference): string {
  return `${familiarName(ref)}:${ref.tag ?? DEFAULT_TAG}`;
}

/** Normalizes NAME[:TAG] for storage as a tag; refuses digests and 64-hex names as docker does. */
export function normalizeTag(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest) throw new SkiffError("refusing to create a tag with a digest reference");
  if (ANCHORED_IDENTIFIER.test(familiarName(parsed))) {
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
