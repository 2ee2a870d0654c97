// The RUN containers of builds in progress: build-cache/containers/<id> names the builder that owns
// the container (pid and start time). docker's daemon kills and removes a RUN container when its
// build is cancelled (the client killed); skiff has no daemon, so whoever looks next does it: the
// next build, and the listing commands (`ps`, `container prune`). Light on purpose: `ps` imports it,
// and the common case (no build ever killed) is one failed readdir; the engine loads only when a dead
// builder's container must go.

import { join } from "../path.ts";
import {
  exists,
  isProcessAlive,
  processStartTime,
  removeIfExists,
  writeFileAtomic,
} from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";

const dirOf = (root: StateRoot) => join(root.path, "build-cache", "containers");

/** Records that this process owns the RUN container `id` (before the container exists). */
export function ownBuildContainer(root: StateRoot, id: string): void {
  const dir = dirOf(root);
  if (!exists(dir)) Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const owner = { pid: Deno.pid, start: processStartTime(Deno.pid) };
  writeFileAtomic(join(dir, id), JSON.stringify(owner), 0o600, false);
}

/** The container is gone, or kept on purpose (`--rm=false`): no longer the builder's to remove. */
export function releaseBuildContainer(root: StateRoot, id: string): void {
  removeIfExists(join(dirOf(root), id));
}

/** The RUN containers whose builder is gone. */
export function deadBuildContainers(root: StateRoot): string[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dirOf(root))].map((e) => e.name).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return []; // no build ever ran a step here
  }
  return names.filter((id) => {
    let owner: { pid?: unknown; start?: unknown } = {};
    try {
      owner = JSON.parse(Deno.readTextFileSync(join(dirOf(root), id)));
    } catch { /* unreadable: its writer died mid-write */ }
    return !(typeof owner.pid === "number" &&
      isProcessAlive(owner.pid, typeof owner.start === "number" ? owner.start : undefined));
  });
}

/** Removes the RUN containers of dead builders, as docker's daemon does on a cancelled build. */
export async function sweepDeadBuilders(root: StateRoot): Promise<void> {
  const dead = deadBuildContainers(root);
  if (!dead.length) return;
  const { Engine } = await import("../engine/engine.ts");
  for (const id of dead) {
    try {
      await new Engine({ root }).remove(id, { force: true, volumes: true });
    } catch { /* already removed */ }
    releaseBuildContainer(root, id);
  }
}
