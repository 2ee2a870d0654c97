// `commit`: the container's upper dir becomes a new layer on top of its image, with a config built
// from the container's own (Cmd, Env, ...) plus `--change` instructions, and a history entry. The
// layer goes through the image store like any pulled layer (diffID computed while unpacking into
// layers/<chainid>). A running container is frozen meanwhile unless pause is false.

import { SkiffError } from "../errors.ts";
import { applyChanges, hostPlatform, storeLayer, writeBlob } from "../image/ingest.ts";
import { normalizeTag } from "../image/reference.ts";
import { ImageStore } from "../image/store.ts";
import { writeTar } from "../image/tar.ts";
import type { StateRoot } from "../state/root.ts";
import type { ImageConfigBlob, ImageRecord, ImageRunConfig, LayerRef } from "../state/types.ts";
import { upperDir, upperLayerEntries } from "./layers.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { whilePaused } from "./ops.ts";

export interface CommitOptions {
  /** REPOSITORY[:TAG] */
  tag?: string;
  message?: string;
  author?: string;
  /** Dockerfile instructions (CMD, ENV, ENTRYPOINT, WORKDIR, LABEL, USER, EXPOSE, ...) */
  changes?: string[];
  /** Freeze a running container while its files are read (default true). */
  pause?: boolean;
}

/** The changes in a container's upper dir as one layer tar, streamed (commit, a build's RUN step). */
export async function* upperLayerTar(upper: string): AsyncGenerator<Uint8Array> {
  for (const entry of upperLayerEntries(upper)) yield writeTar([entry], { endMarker: false });
  yield new Uint8Array(1024);
}

export async function commitContainer(
  root: StateRoot,
  ref: string,
  opts: CommitOptions = {},
): Promise<ImageRecord> {
  // check the arguments before reading anything
  const tag = opts.tag !== undefined ? normalizeTag(opts.tag) : undefined;
  const record = lookupContainer(root, ref);
  const store = new ImageStore(root);
  const parent = store.get(record.Image);
  if (!parent) throw new SkiffError(`No such image: ${record.Image} (the container's image was removed)`, 1);
  const c = record.Config;
  const base: ImageRunConfig = {
    ...(parent.config.config ?? {}),
    User: c.User,
    Env: c.Env,
    Cmd: c.Cmd,
    Entrypoint: c.Entrypoint,
    WorkingDir: c.WorkingDir,
    Labels: c.Labels,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
  };
  const runConfig = applyChanges(base, opts.changes ?? []);

  store.sweepTmp();
  const parentChain = parent.layers.at(-1)?.chainId ?? null;
  const read = () =>
    storeLayer(store, { stream: upperLayerTar(upperDir(root, record)) }, parentChain, undefined, {
      keepBlob: true,
    });
  const layer = opts.pause === false ? await read() : await whilePaused(root, record, read);

  const created = new Date().toISOString();
  const config: ImageConfigBlob = {
    ...hostPlatform(),
    ...parent.config,
    created,
    ...(opts.author ? { author: opts.author } : {}),
    config: runConfig,
    rootfs: { type: "layers", diff_ids: [...parent.config.rootfs.diff_ids, layer.diffId] },
    history: [
      ...(parent.config.history ?? []),
      {
        created,
        created_by: [record.Path, ...record.Args].join(" "),
        ...(opts.author ? { author: opts.author } : {}),
        ...(opts.message ? { comment: opts.message } : {}),
      },
    ],
  };
  if (!opts.author) delete config.author;
  const id = writeBlob(store, JSON.stringify(config));
  const layers: LayerRef[] = [...parent.layers, {
    diffId: layer.diffId,
    chainId: layer.chainId,
    ...layer.blob,
  }];
  return await store.commitImage(
    { id, repoDigests: [], layers, config, created, size: parent.size + layer.size },
    tag ? [tag] : [],
  );
}
