// `history`: an image's config history, newest first, with each layer's size, as docker's daemon
// builds it (ImageHistory): the top entry carries the image id, the ones below "<missing>" (skiff
// keeps no parent images), entries marked empty_layer have size 0.

import type { ImageRecord } from "../state/types.ts";
import type { ImageStore } from "./store.ts";

export interface HistoryEntry {
  /** The image id on the top entry, "<missing>" on the others. */
  id: string;
  /** ISO time, or "" when the entry has none. */
  created: string;
  createdBy: string;
  /** Bytes the entry's layer adds (0 for an empty layer). */
  size: number;
  comment: string;
  /** Tags of the image, on the top entry only. */
  tags: string[];
}

export function imageHistory(store: ImageStore, image: ImageRecord): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  let layer = 0;
  for (const h of image.config.history ?? []) {
    let size = 0;
    if (!h.empty_layer) {
      const ref = image.layers[layer++];
      if (ref) {
        size = store.layerSize(ref.chainId);
      }
    }
    entries.push({
      id: "<missing>",
      created: h.created ?? "",
      createdBy: h.created_by ?? "",
      size,
      comment: h.comment ?? "",
      tags: [],
    });
  }
  entries.reverse();
  // as docker: the newest entry is the image, each older one its parent's (a built image's steps
  // are its parents); past the first image without a parent in the store, "<missing>"
  let at: ImageRecord | undefined = image;
  for (const entry of entries) {
    if (!at) break;
    entry.id = at.id;
    entry.tags = at.repoTags;
    at = at.parent ? store.get(at.parent) : undefined;
  }
  return entries;
}
