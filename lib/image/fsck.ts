// `system check`: verifies the image store. Every blob is re-hashed against its name; every layer
// dir must hold a layer.json whose chain ID matches the dir and its diff/; every image must find its
// config (hashing right, its diff_ids those of the record), its layers and the blobs it names; every
// tag must point at an image. With `repair`, corrupt blobs and layers are removed, then the images
// that depend on them and the tags that point nowhere, so a later pull fetches them again.

import { join } from "../path.ts";
import { atomicTempOwner, withLock } from "../state/fsutil.ts";
import { layerInfoSchema, parseWith } from "../state/schemas.ts";
import { imageConfigBlob } from "../state/validate.ts";
import { InvalidState, parseState } from "../state/validate.ts";
import { listContainersWithDead } from "../state/containers.ts";
import type { ImageConfigBlob, ImageRecord } from "../state/types.ts";
import { chainIds, hexOf, Sha256, sha256Digest } from "./digest.ts";
import type { ImageStore, LayerInfo } from "./store.ts";
import { fileChunks } from "./stream.ts";

export interface Problem {
  kind: "blob" | "layer" | "image" | "tag";
  /** The digest, image id or tag concerned. */
  subject: string;
  detail: string;
}

export interface CheckResult {
  problems: Problem[];
  /** What --repair removed, one line each ("removed blob sha256:..."). */
  repaired: string[];
  checked: { blobs: number; layers: number; images: number; tags: number };
}

const HEX64 = /^[0-9a-f]{64}$/;

function listDir(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
}

async function hashFile(path: string): Promise<string> {
  const hash = new Sha256();
  for await (const chunk of fileChunks(path)) hash.update(chunk);
  return hash.digest();
}

export async function checkStore(
  store: ImageStore,
  options: { repair?: boolean } = {},
): Promise<CheckResult> {
  store.sweepTmp(); // what dead processes left in tmp/ is nobody's: not a problem, just gone
  // the lock keeps pulls and rmis from changing the store while it is judged (and repaired)
  return await withLock(store.root.lock("images"), () => checkLocked(store, options.repair ?? false));
}

async function checkLocked(store: ImageStore, repair: boolean): Promise<CheckResult> {
  const problems: Problem[] = [];
  const result: CheckResult = {
    problems,
    repaired: [],
    checked: { blobs: 0, layers: 0, images: 0, tags: 0 },
  };
  const badBlobs = new Set<string>();
  const badLayers = new Set<string>();

  // ---- blobs ----
  for (const e of listDir(store.root.blobs)) {
    const path = join(store.root.blobs, e.name);
    if (atomicTempOwner(e.name)) continue; // being written (the sweep removed those of dead writers)
    result.checked.blobs++;
    if (!e.isFile || !HEX64.test(e.name)) {
      problems.push({ kind: "blob", subject: e.name, detail: "not a blob (unexpected name or type)" });
      badBlobs.add(e.name);
      continue;
    }
    const digest = await hashFile(path);
    if (digest !== `sha256:${e.name}`) {
      problems.push({ kind: "blob", subject: `sha256:${e.name}`, detail: `content hashes to ${digest}` });
      badBlobs.add(e.name);
    }
  }

  // ---- layers ----
  const layerInfo = new Map<string, LayerInfo>();
  for (const e of listDir(store.root.layers)) {
    result.checked.layers++;
    const dir = join(store.root.layers, e.name);
    const bad = (detail: string) => {
      problems.push({ kind: "layer", subject: HEX64.test(e.name) ? `sha256:${e.name}` : e.name, detail });
      badLayers.add(e.name);
    };
    if (!e.isDirectory || !HEX64.test(e.name)) {
      bad("not a layer (unexpected name or type)");
      continue;
    }
    let info: LayerInfo;
    try {
      info = parseWith(Deno.readTextFileSync(join(dir, "layer.json")), layerInfoSchema);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) bad("incomplete: no layer.json");
      else if (err instanceof InvalidState) bad(`layer.json is unreadable (${err.message})`);
      else throw err;
      continue;
    }
    const expectedChain = info.parent ? sha256Digest(`${info.parent} ${info.diffId}`) : info.diffId;
    if (info.chainId !== `sha256:${e.name}` || expectedChain !== info.chainId) {
      bad(`layer.json names chain ${info.chainId} (parent ${info.parent}, diff ${info.diffId})`);
      continue;
    }
    try {
      if (!Deno.statSync(join(dir, "diff")).isDirectory) throw new Error();
    } catch {
      bad("diff/ is missing");
      continue;
    }
    layerInfo.set(e.name, info);
  }

  // ---- images ----
  const badImages = new Map<string, ImageRecord | undefined>();
  const imageIds = new Set<string>();
  for (const e of listDir(store.root.images)) {
    if (atomicTempOwner(e.name)) continue; // being written (the sweep removed those of dead writers)
    result.checked.images++;
    const m = /^([0-9a-f]{64})\.json$/.exec(e.name);
    const bad = (subject: string, detail: string, record?: ImageRecord) => {
      problems.push({ kind: "image", subject, detail });
      badImages.set(e.name, record);
    };
    if (!m) {
      bad(e.name, "not an image record (unexpected name)");
      continue;
    }
    const id = `sha256:${m[1]}`;
    const record = store.loadRecord(m[1]);
    if (!record) {
      const why = store.problems.get(join(store.root.images, e.name));
      bad(id, why ? `record is unreadable (${why})` : "record vanished");
      continue;
    }
    imageIds.add(id);
    const blobOk = (digest: string) => !badBlobs.has(hexOf(digest)) && isFile(store.blobPath(digest));
    if (!blobOk(id)) {
      bad(id, `config blob ${id} is ${badBlobs.has(m[1]) ? "corrupt" : "missing"}`, record);
      continue;
    }
    let config: ImageConfigBlob;
    try {
      config = parseState(Deno.readTextFileSync(store.blobPath(id)), imageConfigBlob) as ImageConfigBlob;
    } catch (err) {
      if (!(err instanceof InvalidState)) throw err;
      bad(id, `config blob is unreadable (${err.message})`, record);
      continue;
    }
    const diffIds = config.rootfs?.diff_ids ?? [];
    const chains = chainIds(diffIds);
    if (
      diffIds.length !== record.layers.length ||
      record.layers.some((l, i) => l.diffId !== diffIds[i] || l.chainId !== chains[i])
    ) {
      bad(id, "its layers do not match the config's diff_ids", record);
      continue;
    }
    const brokenLayer = record.layers.findIndex((l) => {
      const hex = hexOf(l.chainId);
      return badLayers.has(hex) || layerInfo.get(hex)?.diffId !== l.diffId;
    });
    if (brokenLayer !== -1) {
      const l = record.layers[brokenLayer];
      const state = badLayers.has(hexOf(l.chainId)) ? "corrupt" : "missing";
      bad(id, `layer ${brokenLayer + 1} (${l.chainId}) is ${state}`, record);
      continue;
    }
    const named = [
      ...(record.manifestDigest ? [record.manifestDigest] : []),
      ...record.layers.flatMap((l) => (l.blobDigest ? [l.blobDigest] : [])),
    ];
    const brokenBlob = named.find((d) => !blobOk(d));
    if (brokenBlob) {
      bad(id, `blob ${brokenBlob} is ${badBlobs.has(hexOf(brokenBlob)) ? "corrupt" : "missing"}`, record);
    }
  }

  // ---- tags ----
  const read = store.readTags();
  let tags = read.tags;
  let rebuildTags = false;
  if (read.broken !== undefined) {
    problems.push({ kind: "tag", subject: "repositories.json", detail: `unreadable (${read.broken})` });
    tags = store.recoverTags(read.text);
    rebuildTags = true;
  }
  const badTags: string[] = [];
  for (const [tag, id] of Object.entries(tags)) {
    result.checked.tags++;
    if (!imageIds.has(id) || badImages.has(`${hexOf(id)}.json`)) {
      if (!imageIds.has(id)) {
        problems.push({ kind: "tag", subject: tag, detail: `points to missing image ${id}` });
      }
      badTags.push(tag);
    }
  }

  if (repair && problems.length) {
    const usedByContainers = new Set(listContainersWithDead(store.root).map((c) => c.Image));
    for (const hex of badBlobs) {
      Deno.removeSync(join(store.root.blobs, hex), { recursive: true });
      result.repaired.push(`removed blob ${HEX64.test(hex) ? `sha256:${hex}` : hex}`);
    }
    for (const hex of badLayers) {
      // a layer that is not a proper one cannot go through removeLayer's chain id path
      if (HEX64.test(hex)) store.removeLayer(`sha256:${hex}`);
      else Deno.removeSync(join(store.root.layers, hex), { recursive: true });
      result.repaired.push(`removed layer ${HEX64.test(hex) ? `sha256:${hex}` : hex}`);
    }
    for (const [file, record] of badImages) {
      Deno.removeSync(join(store.root.images, file));
      const named = /^([0-9a-f]{64})\.json$/.exec(file);
      const id = record?.id ?? (named ? `sha256:${named[1]}` : file);
      const note = record && usedByContainers.has(record.id) ? " (containers still use it)" : "";
      result.repaired.push(`removed image ${id}${note}`);
    }
    if (badTags.length || rebuildTags) {
      const left = { ...tags };
      for (const t of badTags) {
        delete left[t];
        result.repaired.push(`removed tag ${t}`);
      }
      store.saveTags(left);
      if (rebuildTags) {
        const n = Object.keys(left).length;
        result.repaired.push(
          `rebuilt repositories.json from the image store (${n} tag${n === 1 ? "" : "s"})`,
        );
      }
    }
  }
  return result;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
