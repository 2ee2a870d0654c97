// `system check` for the state outside the image store: container records, volume records, and
// writeFileAtomic temps left in container directories. One bad record is reported on its own; with
// `repair`, what cannot be read is removed once what it holds is released (a dead container's
// cgroup and mounts) or rebuilt when it can be (a volume's record, from its directory).

import { join } from "../path.ts";
import { scanContainers } from "../state/containers.ts";
import { cgroupBusy, incompleteContainers, removeBrokenContainer } from "./remove.ts";
import { sweepAtomicTemps, writeJsonAtomic } from "../state/fsutil.ts";
import type { StateRoot } from "../state/root.ts";
import { type BrokenVolumeError, listVolumes, volumesDir } from "../volume/store.ts";
import { blobSourcesShape, InvalidState, parseState } from "../state/validate.ts";
import { generatedIndexSchema, parseWith } from "../state/schemas.ts";

export interface StateProblem {
  kind: "container" | "volume" | "cache";
  subject: string;
  detail: string;
}

export interface StateCheckResult {
  problems: StateProblem[];
  repaired: string[];
  checked: { containers: number; volumes: number };
}

/**
 * The registry's bookkeeping under <root>/registry/ (lib/registry/pull.ts, push.ts): caches, which
 * pull and push read as empty when unreadable and write anew; --repair removes an unreadable one.
 */
const CACHES: [string, (text: string) => unknown][] = [
  ["blob-sources.json", (text) => parseState(text, blobSourcesShape)],
  ["generated-layers.json", (text) => parseWith(text, generatedIndexSchema)],
];

export async function checkState(root: StateRoot, repair: boolean): Promise<StateCheckResult> {
  const result: StateCheckResult = { problems: [], repaired: [], checked: { containers: 0, volumes: 0 } };
  const { records, broken } = scanContainers(root);
  const incomplete = await incompleteContainers(root, false);
  result.checked.containers = records.length + broken.length + incomplete.length;
  for (const c of records) sweepAtomicTemps(root.container(c.Id));
  for (const b of broken) {
    const busy = cgroupBusy(root, b.id);
    result.problems.push({
      kind: "container",
      subject: b.id,
      detail: `container.json is unreadable (${b.detail})${
        busy ? "; processes still run in its cgroup: skiff rm -f removes it" : ""
      }`,
    });
    if (repair && !busy) {
      await removeBrokenContainer(root, b.id, { force: false });
      result.repaired.push(`removed dead container ${b.id}`);
    }
  }
  for (const id of incomplete) {
    result.problems.push({
      kind: "container",
      subject: id,
      detail: "no container.json: its creation never finished",
    });
  }
  if (repair && incomplete.length) {
    for (const id of await incompleteContainers(root, true)) {
      result.repaired.push(`removed incomplete container ${id}`);
    }
  }

  for (const [name, check] of CACHES) {
    const path = join(root.path, "registry", name);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue; // none yet
    }
    try {
      check(text);
    } catch (e) {
      if (!(e instanceof InvalidState)) throw e;
      result.problems.push({
        kind: "cache",
        subject: `registry/${name}`,
        detail: `unreadable (${e.message})`,
      });
      if (repair) {
        Deno.removeSync(path);
        result.repaired.push(`removed registry/${name} (a cache: pull and push write it anew)`);
      }
    }
  }

  const badVolumes: BrokenVolumeError[] = [];
  result.checked.volumes = listVolumes(root, badVolumes).length + badVolumes.length;
  for (const v of badVolumes) {
    result.problems.push({
      kind: "volume",
      subject: v.volume,
      detail: `volume.json is unreadable (${v.detail})`,
    });
    if (!repair) continue;
    // the data is the volume; its record holds only what can be rebuilt (labels are lost)
    const dir = join(volumesDir(root), v.volume);
    let created = new Date();
    try {
      created = Deno.statSync(dir).mtime ?? created;
    } catch { /* now */ }
    writeJsonAtomic(join(dir, "volume.json"), {
      CreatedAt: created.toISOString().replace(/\.\d+Z$/, "Z"),
      Driver: "local",
      Labels: {},
      Mountpoint: join(dir, "_data"),
      Name: v.volume,
      Options: {},
      Scope: "local",
    });
    result.repaired.push(`rebuilt volume ${v.volume} (its labels are lost)`);
  }
  return result;
}
