// Where skiff keeps its state, and the layout below that root.
//
//   <root>/blobs/sha256/<hex>        content store: manifests, configs, layer tarballs, by digest
//   <root>/layers/<chainid-hex>/     one unpacked layer: diff/ (the files), layer.json
//   <root>/images/<id-hex>.json      one image record (ImageRecord)
//   <root>/repositories.json         tag -> image id
//   <root>/containers/<id>/          container.json, upper/, work/, merged/, hostname, hosts, resolv.conf
//   <root>/tmp/                      partial writes, renamed into place when complete
//   <root>/locks/                    flock files

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";

export const DEFAULT_ROOT = "/var/lib/skiff";

export class StateRoot {
  constructor(readonly path: string) {}

  get blobs() {
    return join(this.path, "blobs", "sha256");
  }
  get layers() {
    return join(this.path, "layers");
  }
  get images() {
    return join(this.path, "images");
  }
  get repositories() {
    return join(this.path, "repositories.json");
  }
  get containers() {
    return join(this.path, "containers");
  }
  get tmp() {
    return join(this.path, "tmp");
  }
  lock(name: "images" | "containers" | "layers" | string) {
    return join(this.path, "locks", `${name}.lock`);
  }
  container(id: string) {
    return join(this.containers, id);
  }
  /** cgroup leaf name prefix, unique per state root so two roots never share cgroups. */
  get cgroupParent() {
    return "skiff";
  }

  /** Creates the layout. The root's parent must exist: a typo'd --root is an error, not a new tree. */
  ensure(): void {
    for (
      const d of [this.blobs, this.layers, this.images, this.containers, this.tmp, join(this.path, "locks")]
    ) {
      Deno.mkdirSync(d, { recursive: true, mode: 0o700 });
    }
  }
}

/** Resolves the state root from --root, then SKIFF_ROOT, then the default. */
export function resolveRoot(flag: string | undefined): StateRoot {
  const path = flag ?? Deno.env.get("SKIFF_ROOT") ?? DEFAULT_ROOT;
  if (!path) throw new SkiffError("the state root must not be empty");
  if (path !== DEFAULT_ROOT) {
    try {
      if (!Deno.statSync(path).isDirectory) throw new SkiffError(`state root ${path} is not a directory`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new SkiffError(`state root ${path} does not exist`);
      throw e;
    }
  }
  return new StateRoot(path.startsWith("/") ? path : join(Deno.cwd(), path));
}
