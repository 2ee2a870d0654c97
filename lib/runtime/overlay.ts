// Mounting an overlay plan (mountplan.ts): the executor the init stage and `cp` of a stopped
// container share. Sync APIs and FFI only: the init stage runs it after unshare.

import { chdir, mount } from "../../ffi/mod.ts";
import { overlayMountData, type OverlayPlan } from "./mountplan.ts";

/**
 * Mounts the overlay at `plan.target` with `flags` (MS_*). Lowerdirs too long for the mount data
 * are named through symlinks in `linkDir` (made here; the working directory is restored after).
 */
export function mountOverlay(plan: OverlayPlan, linkDir: string, flags = 0): void {
  const { data, links } = overlayMountData(plan);
  if (!links) {
    mount("overlay", plan.target, "overlay", flags, data);
    return;
  }
  Deno.mkdirSync(linkDir, { recursive: true });
  links.forEach((dir, i) => {
    try {
      Deno.removeSync(`${linkDir}/${i}`);
    } catch { /* first use */ }
    Deno.symlinkSync(dir, `${linkDir}/${i}`);
  });
  const cwd = Deno.cwd();
  chdir(linkDir);
  try {
    mount("overlay", plan.target, "overlay", flags, data);
  } finally {
    chdir(cwd);
  }
}
