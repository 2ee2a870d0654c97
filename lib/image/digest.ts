// sha256 digests. node:crypto hashes incrementally in native code; it costs ~35 ms to load, so only
// the modules that ingest data import this file (the read side of the store does not).

import { createHash, type Hash } from "node:crypto";

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** An incremental sha256 that also counts bytes. */
export class Sha256 {
  private hash: Hash = createHash("sha256");
  size = 0;
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  /** "sha256:<hex>". */
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** OCI chain IDs: the first layer's is its diffID, then sha256("<parent chain> <diffID>"). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    out.push(out.length === 0 ? diffId : sha256Digest(`${out[out.length - 1]} ${diffId}`));
  }
  return out;
}

export const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);
