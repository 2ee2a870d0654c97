// The content-addressed image store.
//
//   <root>/images/<id-hex>.json       ImageRecord (id = sha256 of the config blob)
//   <root>/repositories.json          { "busybox:latest": "sha256:<id>" }: the one truth about tags
//   <root>/layers/<chainid-hex>/      diff/ (the unpacked files) + layer.json
//   <root>/blobs/sha256/<hex>         configs, manifests, layer blobs
//
// Reading needs no lock (every file is replaced atomically). Every change to images, tags, layers or
// blobs happens under the "images" lock. This module stays light: run and inspect import it, so the
// hashing and unpacking code lives in ingest.ts/archive.ts.

import { join } from "../path.ts";
import { imageEvent, imageLabels } from "../state/events.ts";
import { NotFoundError, SkiffError } from "../errors.ts";
import { exists, makeTmpDir, removeIfExists, sweepTmp, withLock, writeJsonAtomic } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import type { ImageRecord, LayerRef } from "../state/types.ts";
import {
  imageRecord,
  InvalidState,
  nullable,
  num,
  object,
  parseState,
  str,
  tagIndex,
} from "../state/validate.ts";
import { isProcessAlive, listContainersWithDead } from "../state/containers.ts";
import {
  familiarName,
  familiarString,
  familiarTagged,
  normalizeTag,
  parseReference,
  withDefaultTag,
} from "./reference.ts";

/** What layers/<hex>/layer.json holds. */
export interface LayerInfo {
  diffId: string;
  chainId: string;
  parent: string | null;
  /** Bytes of regular file data in diff/. */
  size: number;
}

/** One line of `rmi` output. */
export type RemoveRecord = { untagged: string } | { deleted: string };

const layerInfo = object<LayerInfo>({ diffId: str, chainId: str, parent: nullable(str), size: num });

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);

/** Docker's "short" id: 12 hex digits without the algorithm. */
export const shortId = (id: string) => hexOf(id).slice(0, 12);

export class ImageStore {
  constructor(readonly root: StateRoot) {}

  // ---- read side ----

  /**
   * State files found unreadable while reading (path → why). Reads go on without them, with what
   * can be known; the CLI reports them on stderr and `system check --repair` mends them.
   */
  readonly problems = new Map<string, string>();

  /**
   * Tag → image id. When repositories.json is unreadable, the tags that can still be known: the
   * whole entries left in a truncated file, and the tags each image record keeps as a hint.
   */
  tags(): Record<string, string> {
    const read = this.readTags();
    if (read.broken === undefined) return read.tags;
    this.problems.set(this.root.repositories, read.broken);
    return this.recoverTags(read.text);
  }

  /** repositories.json as it is on disk: its tags, or why it is unreadable. */
  readTags(): { tags: Record<string, string>; broken?: string; text: string } {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.root.repositories);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { tags: {}, text: "" };
      throw e;
    }
    try {
      return { tags: parseState(text, tagIndex), text };
    } catch (e) {
      if (!(e instanceof InvalidState)) throw e;
      return { tags: {}, broken: e.message, text };
    }
  }

  /**
   * The tags that can be known without a readable repositories.json: the complete `"tag": "id"`
   * lines of the damaged text first, then the hints the image records keep (see saveTags), for
   * images that are still there.
   */
  recoverTags(damaged: string): Record<string, string> {
    const images = new Map<string, string[]>();
    for (const hex of this.imageHexes()) {
      const record = this.loadRecord(hex);
      if (record) images.set(record.id, record.repoTags ?? []);
    }
    const out: Record<string, string> = {};
    for (const m of damaged.matchAll(/^\s*"([^"\\]+)": "(sha256:[0-9a-f]{64})",?$/gm)) {
      if (images.has(m[2])) out[m[1]] = m[2];
    }
    for (const [id, hinted] of images) for (const t of hinted) out[t] ??= id;
    return sortKeys(out);
  }

  /** Tag → image id for a change: refused while repositories.json is unreadable (no tag is lost). */
  private tagsForChange(): Record<string, string> {
    const read = this.readTags();
    if (read.broken !== undefined) {
      throw new SkiffError(
        `${this.root.repositories} is unreadable (${read.broken}): "skiff system check --repair" rebuilds it`,
      );
    }
    return read.tags;
  }

  /**
   * Writes repositories.json, then has every image record keep its own tags as a hint, so that a
   * lost or damaged repositories.json can be rebuilt from the image store. Call under the lock.
   */
  saveTags(all: Record<string, string>): void {
    writeJsonAtomic(this.root.repositories, sortKeys(all));
    const byImage = new Map<string, string[]>();
    for (const [tag, id] of Object.entries(all)) byImage.set(id, [...(byImage.get(id) ?? []), tag]);
    for (const hex of this.imageHexes()) {
      const record = this.loadRecord(hex);
      if (!record) continue;
      const want = (byImage.get(record.id) ?? []).sort();
      if (JSON.stringify(record.repoTags ?? []) !== JSON.stringify(want)) {
        writeJsonAtomic(this.imagePath(record.id), { ...record, repoTags: want });
      }
    }
  }

  private imagePath(id: string): string {
    return join(this.root.images, `${hexOf(id)}.json`);
  }

  /** The hex ids of every image record file. */
  imageHexes(): string[] {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(this.root.images)];
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return entries.filter((e) => e.isFile && /^[0-9a-f]{64}\.json$/.test(e.name)).map((e) =>
      e.name.slice(0, 64)
    );
  }

  /**
   * The record as stored (its repoTags are the hint), checked: undefined when it is missing, and when
   * it is unreadable (then noted in problems).
   */
  loadRecord(hex: string): ImageRecord | undefined {
    const path = join(this.root.images, `${hex}.json`);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    try {
      const record = parseState(text, imageRecord);
      if (record.id !== `sha256:${hex}`) throw new InvalidState(`it names another image, ${record.id}`);
      return record;
    } catch (e) {
      if (!(e instanceof InvalidState)) throw e;
      this.problems.set(path, e.message);
      return undefined;
    }
  }

  /** The image with exactly this id ("sha256:<hex>"), tags filled in, or undefined. */
  get(id: string, tags = this.tags()): ImageRecord | undefined {
    const record = this.loadRecord(hexOf(id));
    if (!record) return undefined;
    record.repoTags = Object.keys(tags).filter((t) => tags[t] === record.id).sort();
    return record;
  }

  /** Every image, newest first. */
  list(): ImageRecord[] {
    const tags = this.tags();
    const out: ImageRecord[] = [];
    for (const hex of this.imageHexes()) {
      const record = this.get(`sha256:${hex}`, tags);
      if (record) out.push(record);
    }
    // by time, not by string: configs write "Z", "+02:00" and 0 to 9 fraction digits
    const time = (i: ImageRecord) => Date.parse(i.created) || 0;
    return out.sort((a, b) => time(b) - time(a));
  }

  /**
   * Finds an image by name[:tag] (default tag latest, docker.io/library/ optional), by full or
   * short id, or by "sha256:<hex>" (or a prefix of it). Throws NotFoundError otherwise.
   */
  resolve(ref: string): ImageRecord {
    const found = this.find(ref);
    if (found) return found;
    let normalized = ref;
    try {
      normalized = familiarString(withDefaultTag(parseReference(ref)));
    } catch { /* not a name: report it as given */ }
    throw new NotFoundError(`Unable to find image '${normalized}' locally`);
  }

  /** Like resolve() but returns undefined when nothing matches. */
  find(ref: string): ImageRecord | undefined {
    const tags = this.tags();
    if (ref.startsWith("sha256:")) {
      const hex = ref.slice(7);
      return /^[0-9a-f]+$/.test(hex) ? this.byIdPrefix(hex, tags) : undefined;
    }
    if (/^[0-9a-f]{64}$/.test(ref)) return this.get(`sha256:${ref}`, tags);
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch (e) {
      if (/^[0-9a-f]+$/.test(ref)) return this.byIdPrefix(ref, tags);
      throw e;
    }
    if (parsed.digest) {
      const wanted = `${familiarName(parsed)}@${parsed.digest}`;
      const match = this.list().find((i) =>
        i.repoDigests.includes(wanted) || i.manifestDigest === parsed.digest
      );
      if (match) return match;
    } else {
      const id = tags[familiarTagged(parsed)];
      if (id) {
        const record = this.get(id, tags);
        if (record) return record;
      }
    }
    if (/^[0-9a-f]+$/.test(ref)) return this.byIdPrefix(ref, tags);
    return undefined;
  }

  private byIdPrefix(hexPrefix: string, tags: Record<string, string>): ImageRecord | undefined {
    let entries: string[] = [];
    try {
      entries = [...Deno.readDirSync(this.root.images)].map((e) => e.name);
    } catch { /* no images yet */ }
    const matches = entries.filter((n) => /^[0-9a-f]{64}\.json$/.test(n) && n.startsWith(hexPrefix));
    if (matches.length > 1) throw new SkiffError(`multiple IDs found with provided prefix: ${hexPrefix}`);
    return matches.length ? this.get(`sha256:${matches[0].slice(0, 64)}`, tags) : undefined;
  }

  /** The directory of an unpacked layer (holding diff/ and layer.json). */
  layerPath(chainId: string): string {
    return join(this.root.layers, hexOf(chainId));
  }

  /**
   * Bytes of regular file data in an unpacked layer (its layer.json, checked); 0 when the layer is
   * missing or its layer.json unreadable (a size is informational: `system check` reports those).
   */
  layerSize(chainId: string): number {
    try {
      return parseState(Deno.readTextFileSync(join(this.layerPath(chainId), "layer.json")), layerInfo).size;
    } catch {
      return 0;
    }
  }

  /** True when the layer is unpacked and complete. */
  hasLayer(chainId: string): boolean {
    return exists(join(this.layerPath(chainId), "layer.json"));
  }

  /** Absolute paths of the image's unpacked layer dirs, top-most first (overlay's lowerdir order). */
  layerDirs(image: ImageRecord): string[] {
    return image.layers.map((l) => join(this.layerPath(l.chainId), "diff")).reverse();
  }

  blobPath(digest: string): string {
    return join(this.root.blobs, hexOf(digest));
  }

  // ---- temp dirs ----

  /** A new private directory under <root>/tmp, named so a sweep can tell when its owner died. */
  makeTmpDir(kind: string): string {
    return makeTmpDir(this.root, kind);
  }

  /** Removes temp dirs left by skiff processes that died (an interrupted unpack, load, cp or rm). */
  sweepTmp(): void {
    sweepTmp(this.root);
  }

  // ---- changes ----

  /** Runs fn under the images lock. */
  locked<T>(fn: () => T | Promise<T>): Promise<T> {
    return withLock(this.root.lock("images"), fn);
  }

  /**
   * Moves a completely unpacked layer (a temp dir holding diff/ and layer.json) into place. When
   * another process got the same layer in first, ours is discarded and theirs used.
   */
  commitLayer(tmpDir: string, info: LayerInfo): void {
    const dest = this.layerPath(info.chainId);
    writeJsonAtomic(join(tmpDir, "layer.json"), info);
    try {
      Deno.renameSync(tmpDir, dest);
    } catch (e) {
      if (!exists(join(dest, "layer.json"))) throw e;
      removeIfExists(tmpDir); // same content already there
    }
  }

  /**
   * Records an image and points `tags` at it. Call after its config blob and layers are stored.
   * Fails if a layer vanished meanwhile (an rmi that ran while this image was being unpacked).
   */
  async commitImage(image: Omit<ImageRecord, "repoTags">, tags: string[]): Promise<ImageRecord> {
    return await this.locked(() => {
      for (const layer of image.layers) {
        if (!this.hasLayer(layer.chainId)) {
          throw new SkiffError(`layer ${layer.chainId} was removed while the image was stored; try again`);
        }
      }
      const current = this.tagsForChange();
      const existing = this.get(image.id, current);
      // the same image stored again (another archive format, a pull after a load): what the new
      // copy does not say (no manifest, layers without blob digests) is kept from the first
      const record: ImageRecord = {
        ...image,
        manifestDigest: image.manifestDigest ?? existing?.manifestDigest,
        layers: image.layers.map((l, i) => (l.blobDigest ? l : existing?.layers[i] ?? l)),
        repoTags: Object.keys(current).filter((t) => current[t] === image.id).sort(),
        repoDigests: [...new Set([...(existing?.repoDigests ?? []), ...image.repoDigests])],
      };
      writeJsonAtomic(this.imagePath(record.id), record);
      if (tags.length) {
        const all = this.tagsForChange();
        for (const t of tags) all[t] = record.id;
        this.saveTags(all);
      }
      return this.get(record.id)!;
    });
  }

  /** `tag SOURCE TARGET`: points TARGET at SOURCE's image (moving it off another image if needed). */
  async tag(source: string, target: string): Promise<void> {
    const normalizedTarget = normalizeTag(target);
    await this.locked(() => {
      const all = this.tagsForChange();
      const image = this.resolveForChange(source);
      all[normalizedTarget] = image.id;
      this.saveTags(all);
      imageEvent(this.root, "tag", image.id, { ...imageLabels(image), name: normalizedTarget });
    });
  }

  /** resolve() with docker's wording for verbs that change an image (exit 1, "No such image"). */
  private resolveForChange(ref: string): ImageRecord {
    const found = this.find(ref);
    if (found) return found;
    let shown = ref;
    try {
      shown = familiarString(withDefaultTag(parseReference(ref)));
    } catch { /* as given */ }
    throw new SkiffError(`No such image: ${shown}`, 1);
  }

  /**
   * `rmi`: untags and/or deletes one image, following docker's rules. By name: untag; delete when
   * that was its last tag. By id: delete, refused when it has several tags unless forced. A container
   * using the image blocks it (a running one even with force), and so does an image built from it
   * (never forced). Layers and blobs no other image or container uses are deleted too, and, unless
   * `prune` is false (`--no-prune`), the untagged parents the deletion leaves unused, as docker.
   */
  async remove(ref: string, force: boolean, prune = true): Promise<RemoveRecord[]> {
    this.sweepTmp();
    let subject: ImageRecord | undefined;
    const deletedImages: ImageRecord[] = [];
    const done = await this.locked(() => {
      const all = this.tagsForChange();
      const image = subject = this.resolveForChange(ref);
      const records: RemoveRecord[] = [];
      const imageTags = Object.keys(all).filter((t) => all[t] === image.id).sort();
      const everyContainer = listContainersWithDead(this.root);
      const containers = everyContainer.filter((c) => c.Image === image.id);
      const images = this.list();
      const hasChildren = (id: string) =>
        images.some((i) => i.parent === id && !deletedImages.some((d) => d.id === i.id));
      const running = containers.find((c) =>
        c.State.Running && isProcessAlive(c.State.Pid, c.State.PidStartTime)
      );
      const stopped = containers.find((c) => c !== running);
      const byId = !namesTag(ref, all, image.id);
      const conflict = (hard: boolean, message: string) =>
        new SkiffError(
          `conflict: unable to delete ${shortId(image.id)} (${
            hard ? "cannot" : "must"
          } be forced) - ${message}`,
          1,
        );

      const digestRef = namesDigest(ref, image);
      const untagDigests = (digests: string[]) => {
        if (digests.length === 0) return;
        for (const d of digests) records.push({ untagged: d });
        const left = image.repoDigests.filter((d) => !digests.includes(d));
        image.repoDigests = left;
        const hint = Object.keys(all).filter((t) => all[t] === image.id).sort();
        writeJsonAtomic(this.imagePath(image.id), { ...image, repoTags: hint });
      };

      if (!byId || digestRef) {
        if (!force && imageTags.length <= 1 && containers.length) {
          throw new SkiffError(
            `conflict: unable to remove repository reference "${ref}" (must force) - container ${
              containers[0].Id.slice(0, 12)
            } is using its referenced image ${shortId(image.id)}`,
            1,
          );
        }
        if (digestRef) untagDigests([digestRef]);
        else {
          const tagged = familiarTagged(parseReference(ref));
          delete all[tagged];
          this.saveTags(all);
          records.push({ untagged: tagged });
        }
        const tagsLeft = Object.keys(all).filter((t) => all[t] === image.id);
        if (tagsLeft.length > 0) return records; // other tags keep the image
        // no tag left: the digest references go too (docker cleans them up), then the image, but
        // never under a running container (docker leaves it dangling); a stopped one got here with force
        untagDigests([...image.repoDigests]);
        // an image other images were built from stays (docker: "not dangling", quietly)
        if (running || hasChildren(image.id)) return records;
      } else {
        // docker checks this first, and no force overrides it
        if (hasChildren(image.id)) throw conflict(true, "image has dependent child images");
        if (running) {
          throw conflict(true, `image is being used by running container ${running.Id.slice(0, 12)}`);
        }
        if (!force && imageTags.length > 1) {
          throw conflict(false, "image is referenced in multiple repositories");
        }
        if (!force && stopped) {
          throw conflict(false, `image is being used by stopped container ${stopped.Id.slice(0, 12)}`);
        }
        for (const t of imageTags) {
          delete all[t];
          records.push({ untagged: t });
        }
        if (imageTags.length) this.saveTags(all);
        for (const d of image.repoDigests) records.push({ untagged: d });
      }
      records.push(...this.deleteImage(image));
      deletedImages.push(image);
      // docker's prune of the parents: each untagged one that nothing else uses goes too, quietly
      // stopping at the first that has a tag, a digest, another child or a container
      for (let at = image; prune && at.parent;) {
        const parent = images.find((i) => i.id === at.parent);
        if (
          !parent || parent.repoTags.length || parent.repoDigests.length || hasChildren(parent.id) ||
          everyContainer.some((c) => c.Image === parent.id)
        ) break;
        records.push(...this.deleteImage(parent));
        deletedImages.push(parent);
        at = parent;
      }
      return records;
    });
    // docker's events: an untag per reference removed, a delete for the image itself
    for (const r of done) {
      if ("untagged" in r) {
        imageEvent(this.root, "untag", subject!.id, { ...imageLabels(subject!), name: subject!.id });
      } else {
        const image = deletedImages.find((i) => i.id === r.deleted);
        if (image) imageEvent(this.root, "delete", image.id, { name: image.id });
      }
    }
    return done;
  }

  /** Deletes an unpacked layer; false when it was not there. Call under the lock. */
  removeLayer(chainId: string): boolean {
    const dir = this.layerPath(chainId);
    if (!exists(dir)) return false;
    // move it aside first so a half-deleted layer never looks complete
    const trash = this.makeTmpDir("gc");
    Deno.renameSync(dir, join(trash, "layer"));
    removeIfExists(trash);
    return true;
  }

  /** Deletes the image record, then layers and blobs nothing else uses. Call under the lock. */
  private deleteImage(image: ImageRecord): RemoveRecord[] {
    const records: RemoveRecord[] = [];
    Deno.removeSync(this.imagePath(image.id));
    records.push({ deleted: image.id });
    const others = this.list();
    const usedLayers = new Set(others.flatMap((i) => i.layers.map((l) => hexOf(l.chainId))));
    for (const c of listContainersWithDead(this.root)) {
      for (const dir of c.LowerDirs ?? []) usedLayers.add(dir.split("/").at(-2) ?? "");
    }
    // an image's blobs: config, manifest, layer blobs, and the index/manifest its repo digests name
    const blobsOf = (i: ImageRecord) =>
      [
        i.id,
        i.manifestDigest,
        ...i.layers.map((l) => l.blobDigest),
        ...i.repoDigests.map((d) => d.slice(d.indexOf("@") + 1)),
      ].filter((d): d is string => !!d && /^sha256:[0-9a-f]{64}$/.test(d));
    const usedBlobs = new Set(others.flatMap(blobsOf));
    // top-most first, as docker lists released layers
    for (const layer of [...image.layers].reverse()) {
      if (usedLayers.has(hexOf(layer.chainId))) continue;
      usedLayers.add(hexOf(layer.chainId)); // an image may list one layer twice
      if (this.removeLayer(layer.chainId)) records.push({ deleted: layer.chainId });
    }
    for (const digest of blobsOf(image)) {
      if (!usedBlobs.has(digest)) removeIfExists(this.blobPath(digest));
    }
    return records;
  }
}

/** The image's "name@sha256:..." entry that `ref` names, if it is a digest reference to it. */
function namesDigest(ref: string, image: ImageRecord): string | undefined {
  try {
    const parsed = parseReference(ref);
    if (!parsed.digest) return undefined;
    const wanted = `${familiarName(parsed)}@${parsed.digest}`;
    return image.repoDigests.includes(wanted) ? wanted : undefined;
  } catch {
    return undefined;
  }
}

/** True when `ref` found the image through a tag rather than by its id. */
function namesTag(ref: string, tags: Record<string, string>, id: string): boolean {
  if (ref.startsWith("sha256:") || /^[0-9a-f]{64}$/.test(ref)) return false;
  try {
    return tags[familiarTagged(parseReference(ref))] === id;
  } catch {
    return false;
  }
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export type { ImageRecord, LayerRef };
