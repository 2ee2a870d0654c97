// COPY and ADD: the build context (or a stage's image) read through directory fds, the files a
// step copies as tar entries with their destination names, a hash of them for the cache key, and
// the step's layer (the entries plus the destination's parent directories as the image has them).
// A context symlink is copied as the link: it is never followed out of the context; the image's
// own symlinks along the destination are resolved as paths of the image (union.ts).

import { SkiffError } from "../errors.ts";
import { closeFd, openHostDir, readDirNames } from "../fs/at.ts";
import { readNode, tarEntryOf } from "../fs/tree.ts";
import { readFdFully } from "../fs/at.ts";
import { type FileHashCache, type FileIdentity, fileIdentity, sha256Hex } from "./hash.ts";
import type { TarWriteEntry } from "../image/tar.ts";
import { cleanPath } from "./plan.ts";
import { UnionView } from "./union.ts";

export interface Ignorer {
  ignores(path: string): boolean;
}

/** The build context: a directory read through fds, with its .dockerignore. */
export class BuildContext {
  readonly view: UnionView | undefined;
  private readonly rootFd: number;

  constructor(readonly dir: string | undefined, private readonly ignore: Ignorer | undefined) {
    this.view = dir === undefined ? undefined : new UnionView([dir]);
    this.rootFd = dir === undefined ? -1 : openHostDir(dir);
  }

  /** Reads `.dockerignore` (docker's rules, @balena/dockerignore) and opens the context. */
  static async open(dir: string | undefined): Promise<BuildContext> {
    if (dir === undefined) return new BuildContext(undefined, undefined);
    const probe = new UnionView([dir]);
    let patterns: string[] = [];
    try {
      const data = probe.readFile(".dockerignore");
      if (data) {
        patterns = new TextDecoder().decode(data).split("\n").map((l) => l.trim())
          .filter((l) => l !== "" && !l.startsWith("#"));
      }
    } finally {
      probe.close();
    }
    if (patterns.length === 0) return new BuildContext(dir, undefined);
    // a CommonJS module: its default export is the factory (the bundled types say otherwise)
    const mod = await import("@balena/dockerignore");
    const make = mod.default as unknown as (o: { ignorecase: boolean }) => { add(p: string[]): Ignorer };
    return new BuildContext(dir, make({ ignorecase: false }).add(patterns));
  }

  close(): void {
    this.view?.close();
    if (this.rootFd >= 0) closeFd(this.rootFd);
  }

  isIgnored(rel: string): boolean {
    return rel !== "" && (this.ignore?.ignores(rel) ?? false);
  }

  get fd(): number {
    if (this.rootFd < 0) throw new SkiffError("no build context: COPY and ADD need a context directory");
    return this.rootFd;
  }
}

/** One thing to copy, with its destination (relative to the image root, no leading slash). */
export interface CopyEntry extends TarWriteEntry {
  /** the name in the source tree (for the ignore check) */
  source: string;
  /** a regular file's content hash (hex); its data may then be absent (FileHashCache hit) */
  digest?: string;
  /** the source file's identity, to record its hash under */
  identity?: FileIdentity;
}

export interface CopyOwner {
  uid: number;
  gid: number;
}

export interface CollectOptions {
  owner?: CopyOwner;
  chmod?: number;
  /** docker keeps the source owner for COPY --from, else 0:0 */
  keepOwner?: boolean;
  /** apply .dockerignore */
  ignore?: BuildContext;
  /** known content hashes: a file found there is not read (its entry has a digest and no data) */
  hashes?: FileHashCache;
}

const GLOB_CHARS = /[*?[]/;

/** Go's filepath.Match for one path (`*` and `?` never match `/`). */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else if (ch === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) throw new SkiffError(`syntax error in pattern`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith("^")) cls = "!" + cls.slice(1);
      re += "[" + (cls.startsWith("!") ? "^" + cls.slice(1) : cls).replace(/\\/g, "\\\\") + "]";
      i = end;
    } else if (ch === "\\" && i + 1 < pattern.length) re += "\\" + pattern[++i];
    else re += ch.replace(/[.+^${}()|\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** A source path relative to the source root; outside it is docker's "forbidden path" error. */
export function cleanSource(src: string): string {
  const parts: string[] = [];
  for (const p of src.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) throw new SkiffError(`forbidden path outside the build context: ${src} ()`);
      parts.pop();
    } else parts.push(p);
  }
  return parts.join("/");
}

/** Opens the directory `rel` under `root` without following anything; -1 when it is not one. */
function openDirPath(rootFd: number, parts: string[]): number {
  let fd = rootFd;
  let owned = -1;
  for (const p of parts) {
    const node = readNode({ dir: fd, name: p });
    if (owned >= 0) closeFd(owned);
    if (!node || node.dirFd === undefined) return -1;
    owned = fd = node.dirFd;
  }
  return owned >= 0 ? owned : rootFd;
}

/** Every path in the tree under `rootFd` (for globs), names relative to it, parents first. */
function allPaths(rootFd: number, rel = ""): string[] {
  const out: string[] = [];
  const fd = rel === "" ? rootFd : openDirPath(rootFd, rel.split("/"));
  if (fd < 0) return out;
  try {
    for (const name of readDirNames(fd).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      out.push(path);
      const node = readNode({ dir: fd, name });
      if (node?.dirFd !== undefined) {
        closeFd(node.dirFd);
        out.push(...allPaths(rootFd, path));
      }
    }
  } finally {
    if (fd !== rootFd) closeFd(fd);
  }
  return out;
}

/**
 * The entries a COPY makes: `sources` (relative to `rootFd`, globs expanded) to `dest` (absolute,
 * cleaned, with a trailing slash when the instruction had one). Names in the entries are the
 * destination paths relative to the image root.
 */
export function collectCopy(
  rootFd: number,
  sources: string[],
  dest: string,
  destIsDir: (path: string) => boolean,
  opts: CollectOptions,
): CopyEntry[] {
  const expanded: string[] = [];
  for (const src of sources) {
    const clean = cleanSource(src);
    if (GLOB_CHARS.test(clean)) {
      const re = globToRegExp(clean);
      const matches = allPaths(rootFd).filter((p) => re.test(p) && !opts.ignore?.isIgnored(p));
      expanded.push(...matches);
    } else expanded.push(clean);
  }
  if (expanded.length === 0) throw new SkiffError("no source files were specified");
  const trailing = dest.endsWith("/");
  if ((sources.length > 1 || expanded.length > 1) && !trailing) {
    throw new SkiffError(
      "When using COPY with more than one source file, the destination must be a directory and end with a /",
    );
  }
  const destClean = cleanPath(dest).slice(1);
  const out: CopyEntry[] = [];
  const links = new Map<string, string>();
  const own = (e: TarWriteEntry, isDir: boolean): TarWriteEntry => {
    const owner = opts.owner ?? (opts.keepOwner ? undefined : { uid: 0, gid: 0 });
    const withOwner = owner ? { ...e, uid: owner.uid, gid: owner.gid } : e;
    return opts.chmod !== undefined && e.type !== "symlink" && (isDir || e.type === "file")
      ? { ...withOwner, mode: opts.chmod }
      : withOwner;
  };
  const join = (a: string, b: string) => (a ? (b ? `${a}/${b}` : a) : b);
  // walks a node's tree: `srcRel` in the source, `destRel` in the image
  const walk = (dirFd: number, name: string, srcRel: string, destRel: string, top: boolean) => {
    const node = readNode({ dir: dirFd, name }, opts.hashes !== undefined);
    let digest: string | undefined;
    let identity: FileIdentity | undefined;
    if (node?.fileFd !== undefined) {
      try {
        identity = fileIdentity(node.fileFd);
        digest = opts.hashes!.get(identity);
        if (digest === undefined) node.data = readFdFully(node.fileFd, node.stat.size);
      } finally {
        closeFd(node.fileFd);
      }
    }
    if (!node) {
      if (top) {
        throw new SkiffError(
          `file not found in build context or excluded by .dockerignore: stat ${srcRel}: file does not exist`,
        );
      }
      return;
    }
    try {
      if (!top && opts.ignore?.isIgnored(srcRel) && node.dirFd === undefined) return;
      const entry = tarEntryOf(node, destRel, links);
      if (node.dirFd === undefined) {
        if (entry) {
          const file = entry.type === "file" ? { ...(digest ? { digest } : {}), identity } : {};
          out.push({ ...own(entry, false), source: srcRel, ...file } as CopyEntry);
        }
        return;
      }
      // a directory: itself (unless it is the copied source, whose contents go to dest), then its contents
      const mark = out.length;
      if (!top && entry) out.push({ ...own(entry, true), source: srcRel } as CopyEntry);
      let kept = 0;
      for (const child of readDirNames(node.dirFd).sort()) {
        const before = out.length;
        walk(node.dirFd, child, join(srcRel, child), join(destRel, child), false);
        kept += out.length - before;
      }
      // an ignored directory stays only for children an exception keeps
      if (!top && opts.ignore?.isIgnored(srcRel) && kept === 0) out.splice(mark, 1);
    } finally {
      if (node.dirFd !== undefined) closeFd(node.dirFd);
    }
  };
  for (const src of expanded) {
    if (src !== "" && opts.ignore?.isIgnored(src)) {
      throw new SkiffError(
        `file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`,
      );
    }
    const parts = src === "" ? [] : src.split("/");
    const parentFd = openDirPath(rootFd, parts.slice(0, -1));
    if (parentFd < 0) {
      throw new SkiffError(
        `file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`,
      );
    }
    try {
      const name = parts.at(-1) ?? "";
      const probe = readNode({ dir: parentFd, name }, true);
      if (probe?.fileFd !== undefined) closeFd(probe.fileFd);
      if (probe?.dirFd !== undefined && probe.dirFd !== parentFd) closeFd(probe.dirFd);
      if (!probe) {
        throw new SkiffError(
          `file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`,
        );
      }
      const isDir = probe.stat.type === "dir";
      // a file goes into dest when dest ends with / or is a directory in the image, else becomes dest
      const target = isDir
        ? destClean
        : trailing || destIsDir(destClean)
        ? join(destClean, parts.at(-1) ?? "")
        : destClean;
      walk(parentFd, name, src, target, isDir);
    } finally {
      if (parentFd !== rootFd) closeFd(parentFd);
    }
  }
  return out;
}

/**
 * The cache's content hash: names, types, modes, owners, link targets and each file's content
 * hash; not mtimes. Files read now get their digest set, and recorded in `hashes`.
 */
export async function contentHash(entries: CopyEntry[], hashes?: FileHashCache): Promise<string> {
  const lines: string[] = [];
  const enc = new TextEncoder();
  for (const e of entries) {
    if (e.digest === undefined && e.data !== undefined) {
      e.digest = await sha256Hex(e.data);
      if (e.identity && hashes) hashes.set(e.identity, e.digest);
    }
    const head = [
      e.name,
      e.type ?? "file",
      e.mode ?? 0,
      e.uid ?? 0,
      e.gid ?? 0,
      e.linkname ?? "",
      e.digest ?? "",
    ];
    // file capabilities are part of what is copied
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      head.push(
        `${k}=${Array.from(typeof v === "string" ? enc.encode(v) : v, (b) => b.toString(16)).join(".")}`,
      );
    }
    lines.push(JSON.stringify(head));
  }
  return `sha256:${await sha256Hex(lines.join("\n"))}`;
}

/** uid:gid of `--chown=user[:group]`, names looked up in the image's /etc/passwd and /etc/group. */
export function resolveChown(spec: string, image: UnionView | undefined): CopyOwner {
  const [user, group] = spec.split(":", 2);
  const table = (path: string) => {
    const data = image?.readFile(path);
    return data ? new TextDecoder().decode(data).split("\n").map((l) => l.split(":")) : [];
  };
  const lookup = (name: string, path: string, what: string): { id: number; gid?: number } => {
    if (/^\d+$/.test(name)) return { id: Number(name) };
    const row = table(path).find((r) => r[0] === name);
    if (!row) {
      throw new SkiffError(
        `unable to convert uid/gid chown string to host mapping: can't find ${what} for ${name}`,
      );
    }
    return { id: Number(row[2]), gid: Number(row[3]) };
  };
  const u = lookup(user, "/etc/passwd", "uid");
  if (group === undefined) return { uid: u.id, gid: u.gid ?? u.id };
  return { uid: u.id, gid: lookup(group, "/etc/group", "gid").id };
}

/**
 * The layer of a COPY: the destination's parent directories as they are in the image (owner and
 * mode kept; missing ones made 0755 with the copy's owner), then the entries. The entries' names
 * are moved under the destination as resolved in the image (its symlinks followed inside it).
 */
export function copyLayerEntries(
  image: UnionView | undefined,
  entries: TarWriteEntry[],
  destDir: string,
  newDirOwner: CopyOwner,
): TarWriteEntry[] {
  const wanted = cleanPath(destDir).slice(1);
  const resolved = image && wanted ? image.resolve(wanted).join("/") : wanted;
  const move = (name: string) =>
    wanted === ""
      ? (resolved ? `${resolved}/${name}` : name)
      : name === wanted
      ? resolved
      : name.startsWith(wanted + "/")
      ? resolved + name.slice(wanted.length)
      : name;
  const out: TarWriteEntry[] = [];
  const parts = resolved ? resolved.split("/") : [];
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i);
    const found = image?.lookup(prefix);
    const name = prefix.join("/");
    if (found && found.stat.type !== "dir") {
      if (i < parts.length || entries.some((e) => e.name.startsWith(wanted + "/"))) {
        throw new SkiffError(`cannot copy to non-directory: /${name}`);
      }
      continue;
    }
    if (i === parts.length && entries.some((e) => e.name === wanted)) continue; // the entry itself
    out.push(
      found
        ? {
          name: `${name}/`,
          type: "dir",
          mode: found.stat.perm,
          uid: found.stat.uid,
          gid: found.stat.gid,
          mtime: found.stat.mtime,
        }
        : {
          name: `${name}/`,
          type: "dir",
          mode: 0o755,
          ...newDirOwner,
          mtime: Math.floor(Date.now() / 1000),
        },
    );
  }
  for (const e of entries) {
    const { source: _s, ...rest } = e as CopyEntry;
    const name = move(e.name.replace(/\/$/, ""));
    out.push({
      ...rest,
      name: e.type === "dir" ? `${name}/` : name,
      ...(e.type === "link" && e.linkname ? { linkname: move(e.linkname) } : {}),
    });
  }
  return out;
}
