// `image prune`: removes dangling images (no tag, no digest reference, no image built from them)
// with the untagged build steps they were made from, or with `all` every image no container uses, then the layers and blobs no image or container refers to any more (what a pull
// or load killed half-way left behind). Orphans younger than ORPHAN_GRACE_MS are kept: they may
// belong to a pull that is still running (it stores layers before it records the image).

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { pruneFilter } from "../format/filters.ts";
import { removeIfExists } from "../state/fsutil.ts";
import { listContainersWithDead } from "../state/containers.ts";
import type { ImageRecord } from "../state/types.ts";
import type { ImageStore, RemoveRecord } from "./store.ts";

export const ORPHAN_GRACE_MS = 10 * 60_000;

export interface ImagePruneOptions {
  all?: boolean;
  /** docker's --filter values: until=…, label=…, label!=…. */
  filters?: string[];
  now?: number;
  /** Age an unreferenced layer or blob must have to go (default ORPHAN_GRACE_MS). */
  orphanGraceMs?: number;
}

export interface ImagePruneResult {
  records: RemoveRecord[];
  /** Bytes of the layers and blobs deleted. */
  reclaimed: number;
}

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);

/** Parses --filter values up front (a bad filter changes nothing). */
export function imagePruneFilter(filters: string[], now = Date.now()): (i: ImageRecord) => boolean {
  return pruneFilter<ImageRecord>(filters, {
    created: (i) => Date.parse(i.created),
    labels: (i) => i.config.config?.Labels,
    // dangling= is the verb's mode (-a), not a per-image check: validated here, applied by the caller
    extra: (key, op, value) => {
      if (key !== "dangling" || op !== "=") return false;
      if (!["true", "false", "1", "0"].includes(value)) {
        throw new SkiffError(`invalid filter 'dangling=${value}'`);
      }
      return true;
    },
  }, now);
}

function layerSize(store: ImageStore, chainId: string): number {
  return store.layerSize(chainId);
}

export async function pruneImages(
  store: ImageStore,
  options: ImagePruneOptions = {},
): Promise<ImagePruneResult> {
  const now = options.now ?? Date.now();
  // a filters value of dangling=false means "all", as in docker
  const danglingFalse = (options.filters ?? []).some((f) => /^dangling=(false|0)$/.test(f));
  const all = options.all || danglingFalse;
  const keep = imagePruneFilter(options.filters ?? [], now);
  store.sweepTmp();
  const result: ImagePruneResult = { records: [], reclaimed: 0 };
  const used = new Set(listContainersWithDead(store.root).map((c) => c.Image));
  const images = new Map(store.list().map((i) => [i.id, i]));
  // a build step's image is the parent of the next step's: docker keeps an image while another
  // image was built from it, and removing an image also removes the untagged parents it leaves
  // childless (the intermediate images of a build), as docker's `rmi` does
  const children = new Map<string, number>();
  for (const i of images.values()) if (i.parent) children.set(i.parent, (children.get(i.parent) ?? 0) + 1);
  const tagged = (i: ImageRecord) => i.repoTags.length > 0 || i.repoDigests.length > 0;
  const removable = (i: ImageRecord) => !used.has(i.id) && !children.get(i.id);
  const remove = async (image: ImageRecord): Promise<boolean> => {
    const sizes = new Map(image.layers.map((l) => [l.chainId, layerSize(store, l.chainId)]));
    let records: RemoveRecord[];
    try {
      records = await store.remove(image.id, true, false); // its parents: removeWithParents
    } catch {
      return false; // a container started using it meanwhile, or it is gone
    }
    images.delete(image.id);
    if (image.parent) children.set(image.parent, (children.get(image.parent) ?? 1) - 1);
    for (const r of records) if ("deleted" in r) result.reclaimed += sizes.get(r.deleted) ?? 0;
    result.records.push(...records);
    return true;
  };
  const removeWithParents = async (image: ImageRecord) => {
    let at: ImageRecord | undefined = image;
    while (at && await remove(at)) {
      const parent: ImageRecord | undefined = at.parent ? images.get(at.parent) : undefined;
      at = parent && !tagged(parent) && removable(parent) ? parent : undefined;
    }
  };
  if (all) {
    // every unused image, leaves first, until nothing more goes
    for (let progress = true; progress;) {
      progress = false;
      for (const image of [...images.values()]) {
        if (images.has(image.id) && removable(image) && keep(image) && await remove(image)) progress = true;
      }
    }
  } else {
    for (const image of [...images.values()]) {
      if (images.has(image.id) && !tagged(image) && removable(image) && keep(image)) {
        await removeWithParents(image);
      }
    }
  }
  if (result.records.length) forgetBuildSteps(store);
  result.reclaimed += await removeOrphans(store, now - (options.orphanGraceMs ?? ORPHAN_GRACE_MS));
  return result;
}

/** Deletes layers and blobs nothing refers to, older than `before`; returns the bytes freed. */
export async function removeOrphans(store: ImageStore, before: number): Promise<number> {
  return await store.locked(() => {
    let freed = 0;
    const images = store.list();
    const usedLayers = new Set(images.flatMap((i) => i.layers.map((l) => hexOf(l.chainId))));
    for (const c of listContainersWithDead(store.root)) {
      for (const dir of c.LowerDirs ?? []) usedLayers.add(dir.split("/").at(-2) ?? "");
    }
    const usedBlobs = new Set(
      images.flatMap((i) => [
        i.id,
        i.manifestDigest,
        ...i.layers.map((l) => l.blobDigest),
        ...i.repoDigests.map((d) => d.slice(d.indexOf("@") + 1)),
      ]).filter((d): d is string => !!d).map(hexOf),
    );
    const old = (path: string) => {
      try {
        return (Deno.lstatSync(path).mtime?.getTime() ?? 0) < before;
      } catch {
        return false;
      }
    };
    for (const name of listDir(store.root.layers)) {
      if (usedLayers.has(name) || !old(join(store.root.layers, name))) continue;
      const size = layerSize(store, `sha256:${name}`);
      if (store.removeLayer(`sha256:${name}`)) freed += size;
    }
    for (const name of listDir(store.root.blobs)) {
      const path = join(store.root.blobs, name);
      if (usedBlobs.has(name) || !old(path)) continue;
      try {
        freed += Deno.lstatSync(path).size;
      } catch { /* gone */ }
      removeIfExists(path);
    }
    return freed;
  });
}

/** Drops the build cache's entries (a step's key → its image, build-cache/<hex>) whose image is gone. */
function forgetBuildSteps(store: ImageStore): void {
  const dir = join(store.root.path, "build-cache");
  for (const name of listDir(dir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue; // files.json: the sources' hashes
    try {
      if (!store.get(Deno.readTextFileSync(join(dir, name)).trim())) removeIfExists(join(dir, name));
    } catch { /* gone meanwhile */ }
  }
}

function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}
