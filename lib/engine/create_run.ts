// A container made from a parsed `run` request: the image's layers, the volumes and mounts, the
// record. Shared by the CLI's own path (foreground runs, and `run -d` when the image must be pulled
// first) and by the supervisor, which creates `run -d` containers itself: its modules are loaded and
// compiled already, which takes that work off the CLI's start (see MONITOR.md for the figures).

import { type ErrorKind, SkiffError } from "../errors.ts";
import { type CgroupLimits, validateLimits } from "../cgroups/mod.ts";
import { limitsOfRequest } from "./request_limits.ts";
import { ImageStore } from "../image/store.ts";
import { newContainerId } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord, ImageRecord } from "../state/types.ts";
import { createContainerFromImage, type CreateRequest } from "../runtime/container.ts";
import { discardVolumes, mountsFrom, prepareMounts } from "../runtime/mounts.ts";
import { parseVolumesFrom } from "../runtime/mountflag.ts";
import { getsImageFiles } from "../runtime/mountplan.ts";
import type { VolumeFlag } from "../runtime/mountflag.ts";
import { type Platform, platformMatches } from "../registry/mediatypes.ts";

/** `run`'s flags, parsed and checked by the CLI (in its own environment: -e VAR, --env-file). */
export interface RunRequest {
  imageRef: string;
  container: Omit<CreateRequest, "image" | "imageRef" | "lowerDirs">;
  volumes: VolumeFlag[];
  signalProxy: boolean;
  /** --platform: an image here of another platform counts as missing (docker 20.10 pulls it). */
  platform?: Platform;
  /** The id the container gets, when the CLI chose it first (--cidfile); else a new one. */
  id?: string;
}

/** The image is not in the store: the CLI pulls it (with its progress on the user's terminal). */
export class ImageNotPresentError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "not-found";
}

export { limitsOfRequest };

/** Checks the limits before anything is made (docker's wording); returns them. */
export function checkLimits(request: RunRequest): CgroupLimits {
  const limits = limitsOfRequest(request);
  validateLimits(limits);
  return limits;
}

/**
 * Volumes, the image's files copied into the empty ones (docker does that at create, not at
 * start), then the record: a container appears (ps, start) only once its volumes are filled, as
 * docker registers it only then. The volumes this made are removed again when the copy or the
 * record fails. (Made first, the record could be started while the copy ran, and a failed copy
 * then removed a running container's directory: its process, cgroups and veth were left to no one.)
 */
export async function createForRun(
  root: StateRoot,
  request: RunRequest,
  image: ImageRecord,
  layerDirs: string[],
  id: string,
): Promise<{ record: ContainerRecord; createdVolumes: string[] }> {
  const inherited = mountsFrom(root, (request.container.volumesFrom ?? []).map(parseVolumesFrom));
  const { mounts, createdVolumes } = await prepareMounts(
    root,
    request.volumes,
    Object.keys(image.config.config?.Volumes ?? {}),
    Object.keys(request.container.tmpfs ?? {}),
    inherited,
  );
  try {
    const filled = mounts.filter(getsImageFiles);
    if (filled.length) await (await import("../volume/copyup.ts")).copyUpVolumes(filled, layerDirs);
    const record = await createContainerFromImage(root, {
      ...request.container,
      id,
      image,
      imageRef: request.imageRef,
      lowerDirs: layerDirs,
      mounts,
    });
    return { record, createdVolumes };
  } catch (e) {
    await discardVolumes(root, createdVolumes);
    throw e;
  }
}

/** `run -d`'s create (the supervisor's, or the CLI's after a pull): the image given, or found here. */
export async function createDetached(
  root: StateRoot,
  request: RunRequest,
  given?: ImageRecord,
): Promise<ContainerRecord> {
  checkLimits(request);
  const store = new ImageStore(root);
  const image = given ?? findForRun(store, request.imageRef, request.platform);
  if (!image) throw new ImageNotPresentError(`Unable to find image '${request.imageRef}' locally`);
  if (request.id !== undefined && !/^[0-9a-f]{64}$/.test(request.id)) {
    throw new SkiffError("invalid container id");
  }
  return (await createForRun(root, request, image, store.layerDirs(image), request.id ?? newContainerId()))
    .record;
}

/** The image `run`/`create` names, when it is here (and of the --platform given). */
export function findForRun(store: ImageStore, ref: string, platform?: Platform): ImageRecord | undefined {
  const image = store.find(ref);
  return image && (!platform || platformMatches(platform, image.config)) ? image : undefined;
}
