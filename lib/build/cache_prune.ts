// `builder prune`: skiff's build cache is its step index (<root>/build-cache/<key hex>: a step's key →
// the image it made) and the sources' hash cache (files.json). The step images themselves are images:
// `image prune` takes those. Without --all only the dangling entries go (their image is gone), as
// docker's "dangling build cache"; with it every entry, so the next build runs every step again.

import { join } from "../path.ts";
import type { ImageStore } from "../image/store.ts";

export interface CachePruneResult {
  /** The entries removed (their key's hex, docker's "build cache objects"). */
  deleted: string[];
  reclaimed: number;
}

export function pruneBuildCache(
  store: ImageStore,
  opts: { all: boolean; olderThanMs?: number },
): CachePruneResult {
  const dir = join(store.root.path, "build-cache");
  const result: CachePruneResult = { deleted: [], reclaimed: 0 };
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name);
  } catch {
    return result;
  }
  for (const name of names) {
    const path = join(dir, name);
    const isStep = /^[0-9a-f]{64}$/.test(name);
    if (!isStep && !(opts.all && name === "files.json")) continue;
    try {
      const st = Deno.lstatSync(path);
      if (opts.olderThanMs !== undefined && (st.mtime?.getTime() ?? 0) >= opts.olderThanMs) continue;
      if (isStep && !opts.all && store.get(Deno.readTextFileSync(path).trim())) continue; // still cached
      Deno.removeSync(path);
      result.reclaimed += st.size;
      if (isStep) result.deleted.push(name);
    } catch { /* gone meanwhile */ }
  }
  return result;
}
