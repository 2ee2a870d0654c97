// docker's copy-up, at create as docker's daemon does it: a new container's volume that is still
// empty gets the image's files at its destination (owners, modes, times), so another container
// that mounts the volume sees them before the first start. No root filesystem is mounted for it:
// the files are read from the image's layer directories, merged as overlayfs would merge them
// (build/union.ts: top-most layer first, whiteouts and opaque directories honoured), and the
// destination is resolved inside the image (a symlink, absolute or with `..`, never leads out of
// it). Every name is read through directory fds with O_NOFOLLOW and written into the volume
// relative to its directory fd (lib/fs/tree.ts): a container that shares the volume may swap
// any name in it for a symlink meanwhile, and nothing is followed. The layers themselves are the
// image store's, which no container writes to. The copy gives the event loop a turn every few
// hundred entries: in the supervisor, a hostile image's many files must not hold up the others.

import { UnionView } from "../build/union.ts";
import { SkiffError } from "../errors.ts";
import { closeFd, openHostDir, readDirNames, releaseReopen } from "../fs/at.ts";
import { copyUpAsync } from "../fs/tree.ts";

/**
 * Copies the image's files at `destination` (its layers `layerDirs`, top-most first, or an open
 * view of them) into the volume at `volumePath` when the volume is empty and the image has a
 * directory there. Returns whether it copied (the volume's root then has that directory's owner
 * and mode, as docker's does).
 */
export async function copyUpIfEmpty(
  volumePath: string,
  image: string[] | UnionView,
  destination: string,
): Promise<boolean> {
  const volume = openHostDir(volumePath); // skiff's own path (<root>/volumes/NAME/_data)
  const view = Array.isArray(image) ? new UnionView(image) : image;
  let dirs: number[] = [];
  try {
    if (readDirNames(volume).length > 0) return false;
    try {
      dirs = view.openDir(destination);
    } catch (e) {
      // a loop of symlinks in the image: nothing to copy (the mount at start says why)
      if (e instanceof SkiffError) return false;
      throw e;
    }
    if (dirs.length === 0) return false;
    await copyUpAsync(dirs, volume);
    return true;
  } finally {
    for (const fd of dirs) closeFd(fd);
    if (view !== image) view.close();
    closeFd(volume);
    releaseReopen(); // the host's /proc/self/fd, opened to read the image's files
  }
}

/**
 * The copy-up of every volume of a container just made that docker would fill (`mounts`, already
 * filtered by mountplan.ts getsImageFiles), from the image's layers: one after the other, in the
 * order of its Mounts.
 */
export async function copyUpVolumes(
  mounts: { Source: string; Destination: string }[],
  layerDirs: string[],
): Promise<void> {
  const view = new UnionView(layerDirs);
  try {
    for (const m of mounts) await copyUpIfEmpty(m.Source, view, m.Destination);
  } finally {
    view.close();
  }
}
