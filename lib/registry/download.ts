// One layer from the registry into the store in a single pass: the blob stream is hashed, kept as
// a blob file (for push) and fed to the image store's unpacker, all while it arrives. A digest or
// size mismatch throws before the unpacker finishes, so a bad layer is never committed.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { exists, removeIfExists } from "../state/fsutil.ts";
import { Sha256 } from "../image/digest.ts";
import { storeLayer } from "../image/ingest.ts";
import type { ImageStore } from "../image/store.ts";
import { type RegistryClient, RegistryError, TimeoutError } from "./client.ts";
import { UnauthorizedError } from "./auth.ts";
import type { Descriptor } from "./manifest.ts";
import { type ProgressSink, shortId } from "./progress.ts";

export interface LayerDownload {
  client: RegistryClient;
  store: ImageStore;
  repo: string;
  desc: Descriptor;
  diffId: string;
  parentChainId: string | null;
  emit: ProgressSink;
}

/** Digest or size of a downloaded layer blob did not match its descriptor: worth another try. */
export class BlobMismatchError extends SkiffError {}

/** Whole-layer attempts: a corrupted download (bad digest) is fetched again from the start. */
const LAYER_ATTEMPTS = 3;

async function* verified(
  stream: ReadableStream<Uint8Array>,
  desc: Descriptor,
  blobFile: Deno.FsFile,
  onBytes: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  const hash = new Sha256();
  for await (const chunk of stream) {
    hash.update(chunk);
    let off = 0;
    while (off < chunk.length) off += blobFile.writeSync(chunk.subarray(off));
    onBytes(hash.size);
    yield chunk;
  }
  const digest = hash.digest();
  if (hash.size !== desc.size || digest !== desc.digest) {
    throw new BlobMismatchError(
      `filesystem layer verification failed for digest ${desc.digest}: got ${digest} (${hash.size} of ${desc.size} bytes)`,
    );
  }
}

export async function downloadLayer(d: LayerDownload): Promise<void> {
  const id = shortId(d.desc.digest);
  for (let attempt = 1;; attempt++) {
    const tmp = d.store.makeTmpDir("blob");
    const blobTmp = join(tmp, "blob");
    const blobFile = Deno.openSync(blobTmp, { write: true, create: true, truncate: true, mode: 0o644 });
    let lastShown = 0;
    try {
      const stream = d.client.blobStream(d.repo, d.desc.digest, d.desc.size);
      const input = verified(stream, d.desc, blobFile, (n) => {
        if (n === d.desc.size || n - lastShown >= 512 * 1024 || lastShown === 0) {
          lastShown = n;
          d.emit({ kind: "layer", id, status: "Downloading", current: n, total: d.desc.size });
        }
      });
      await storeLayer(d.store, { stream: input }, d.parentChainId, d.diffId);
      blobFile.close();
      d.emit({ kind: "layer", id, status: "Verifying Checksum" });
      d.emit({ kind: "layer", id, status: "Download complete" });
      const dest = d.store.blobPath(d.desc.digest);
      if (!exists(dest)) Deno.renameSync(blobTmp, dest);
      d.emit({ kind: "layer", id, status: "Pull complete" });
      return;
    } catch (e) {
      try {
        blobFile.close();
      } catch { /* closed already */ }
      // corruption shows as a digest mismatch or as a gzip/tar error before the digest is known;
      // what the registry said (404, 401, timeouts after their own retries) is final
      const retryable = e instanceof SkiffError &&
        !(e instanceof RegistryError || e instanceof UnauthorizedError || e instanceof TimeoutError);
      if (!retryable || attempt >= LAYER_ATTEMPTS) throw e;
      d.emit({ kind: "layer", id, status: "Retrying" });
    } finally {
      removeIfExists(tmp);
    }
  }
}
