// `system df`: docker's disk usage summary (images, containers, local volumes, build cache) with its
// CLI's arithmetic for ACTIVE and RECLAIMABLE (cli/command/formatter/disk_usage.go).

import { ImageStore } from "../image/store.ts";
import { listReconciled } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import { listVolumes, volumeDataSize, volumeUsers } from "../volume/store.ts";
import { containerRwSize } from "./ps.ts";
import type { ContainerRecord, ImageRecord } from "../state/types.ts";

export interface UsageRow {
  Type: string;
  TotalCount: number;
  Active: number;
  /** Bytes. */
  Size: number;
  /** Bytes, and whether docker shows its share of Size ("(70%)"). */
  Reclaimable: number;
  showPercent: boolean;
}

export function diskUsage(root: StateRoot): UsageRow[] {
  const store = new ImageStore(root);
  const images = store.list();
  // as ps sees them: reconciled with reality
  const containers = listReconciled(root);
  const usedImages = new Set(containers.map((c) => c.Image));
  // every layer once (images share them): docker's LayersSize
  const layerSizes = new Map<string, number>();
  for (const image of images) {
    for (const l of image.layers) {
      if (!layerSizes.has(l.chainId)) layerSizes.set(l.chainId, store.layerSize(l.chainId));
    }
  }
  const layersSize = [...layerSizes.values()].reduce((a, b) => a + b, 0);
  const users = new Map<string, number>(); // layer → images using it (SharedSize: layers of several)
  for (const image of images) {
    for (const l of image.layers) users.set(l.chainId, (users.get(l.chainId) ?? 0) + 1);
  }
  // docker: reclaimable = LayersSize - Σ(VirtualSize - SharedSize) of the images containers use
  let used = 0;
  for (const image of images) {
    if (!usedImages.has(image.id)) continue;
    for (const l of image.layers) if (users.get(l.chainId) === 1) used += layerSizes.get(l.chainId) ?? 0;
  }
  // docker's isActive: running, paused or restarting
  const rw = containers.map((c) => ({
    running: c.State.Running || c.State.Paused || c.State.Restarting,
    size: containerRwSize(root, c),
  }));
  const rwTotal = rw.reduce((a, c) => a + c.size, 0);
  const volumes = listVolumes(root).map((v) => ({
    inUse: volumeUsers(root, v.Name, containers).length > 0,
    size: volumeDataSize(v.Mountpoint),
  }));
  const volumeTotal = volumes.reduce((a, v) => a + v.size, 0);
  return [
    {
      Type: "Images",
      TotalCount: images.length,
      Active: images.filter((i) => usedImages.has(i.id)).length,
      Size: layersSize,
      Reclaimable: layersSize - used,
      showPercent: layersSize > 0,
    },
    {
      Type: "Containers",
      TotalCount: containers.length,
      Active: rw.filter((c) => c.running).length,
      Size: rwTotal,
      Reclaimable: rw.filter((c) => !c.running).reduce((a, c) => a + c.size, 0),
      showPercent: rwTotal > 0,
    },
    {
      Type: "Local Volumes",
      TotalCount: volumes.length,
      Active: volumes.filter((v) => v.inUse).length,
      Size: volumeTotal,
      Reclaimable: volumes.filter((v) => !v.inUse).reduce((a, v) => a + v.size, 0),
      showPercent: volumeTotal > 0,
    },
    // skiff's build cache is its step images, counted above
    { Type: "Build Cache", TotalCount: 0, Active: 0, Size: 0, Reclaimable: 0, showPercent: false },
  ];
}

export interface ImageUsage {
  image: ImageRecord;
  /** Bytes of its layers that other images have too (docker's SharedSize). */
  shared: number;
  containers: number;
}

export interface UsageDetails {
  images: ImageUsage[];
  containers: { record: ContainerRecord; size: number }[];
  volumes: { name: string; links: number; size: number }[];
}

/** `system df -v`: each image, container and volume with the figures docker shows for it. */
export function diskUsageDetails(root: StateRoot): UsageDetails {
  const store = new ImageStore(root);
  const images = store.list();
  const containers = listReconciled(root);
  const users = new Map<string, number>();
  for (const image of images) {
    for (const l of image.layers) users.set(l.chainId, (users.get(l.chainId) ?? 0) + 1);
  }
  return {
    images: images.map((image) => ({
      image,
      shared: image.layers.filter((l) => (users.get(l.chainId) ?? 0) > 1)
        .reduce((a, l) => a + store.layerSize(l.chainId), 0),
      containers: containers.filter((c) => c.Image === image.id).length,
    })),
    containers: containers.map((record) => ({ record, size: containerRwSize(root, record) })),
    volumes: listVolumes(root).map((v) => ({
      name: v.Name,
      links: volumeUsers(root, v.Name, containers).length,
      size: volumeDataSize(v.Mountpoint),
    })),
  };
}
