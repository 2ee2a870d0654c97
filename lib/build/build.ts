// `build`'s executor: runs a plan (plan.ts) step by step against the store. Every step's result is
// an image (untagged until the end), found again through the build cache (a step's key → the image
// it made). RUN steps are containers created, started and waited for by the engine; their upper dir
// becomes the step's layer. COPY/ADD and a WORKDIR that must be made write a layer without a process.
// Tags move only once the whole build succeeded. Nothing here prints: progress goes to `out`.

import { join } from "../path.ts";
import { SkiffError } from "../errors.ts";
import { normalizeTag } from "../image/reference.ts";
import { ImageStore, shortId } from "../image/store.ts";
import { type TarWriteEntry, writeTar } from "../image/tar.ts";
import { exists, writeFileAtomic } from "../state/fsutil.ts";
import { ownBuildContainer, releaseBuildContainer, sweepDeadBuilders } from "./containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ImageConfigBlob, ImageRecord, ImageRunConfig } from "../state/types.ts";
import type { ByteSink } from "../runtime/stdio.ts";
import type { RunRequest } from "../engine/create_run.ts";
import { DockerfileSyntaxError, type Instruction, parseDockerfile } from "./parse.ts";
import {
  type BuildPlan,
  cacheKey,
  cleanPath,
  commandOf,
  configStep,
  findStage,
  nop,
  planBuild,
  runBuildArgs,
  runHistoryCommand,
  type Stage,
  type StageState,
  substitutionVars,
} from "./plan.ts";
import { processWord, processWords } from "./shell.ts";
import {
  BuildContext,
  cleanSource,
  collectCopy,
  contentHash,
  type CopyEntry,
  copyLayerEntries,
  type CopyOwner,
  globToRegExp,
  resolveChown,
} from "./copy.ts";
import { UnionView } from "./union.ts";
import { FileHashCache } from "./hash.ts";

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1);

export interface BuildOptions {
  dockerfile: string;
  /** the Dockerfile's name in errors */
  file: string;
  contextDir?: string;
  tags: string[];
  buildArgs: Map<string, string | undefined>;
  target?: string;
  noCache: boolean;
  labels: Record<string, string>;
  /** remove intermediate containers (default true) */
  rm: boolean;
  network?: string;
  /**
   * `run` flags every RUN step's container gets (build's --add-host, --ulimit, --shm-size,
   * --security-opt, the resource limits), checked by the CLI before the build starts.
   */
  runFlags?: string[];
  /** progress lines (docker's classic builder output) */
  out(line: string): void;
  /** something wrong that did not stop the build (a damaged cache file) */
  warn?(line: string): void;
  /** where RUN steps' output goes */
  runOutput: ByteSink;
  /** ADD of a URL: its body and Last-Modified header, through the registry client's HTTP stack */
  fetchUrl?(url: string): Promise<{ data: Uint8Array; lastModified?: string | null }>;
  /** a base image not in the store: pulled by the CLI (its progress on stderr) */
  pullBase(store: ImageStore, ref: string): Promise<ImageRecord>;
  /**
   * A RUN step's container request from `run`'s flags and the image and command (the CLI's own flag
   * parser, handed in: the engine side does not load the CLI's modules).
   */
  runRequest(args: string[]): RunRequest;
}

/** A RUN whose command failed: docker's message, and its exit code as the build's. */
export class RunStepError extends SkiffError {}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const SCRATCH: ImageRecord = {
  id: "",
  repoTags: [],
  repoDigests: [],
  layers: [],
  config: { rootfs: { type: "layers", diff_ids: [] }, history: [] },
  created: "",
  size: 0,
};

/** The build cache: a step's key → the image it made. */
class BuildCache {
  constructor(private readonly root: StateRoot) {}
  private path(key: string) {
    return join(this.root.path, "build-cache", hexOf(key));
  }
  get(store: ImageStore, key: string): ImageRecord | undefined {
    try {
      return store.get(Deno.readTextFileSync(this.path(key)).trim());
    } catch {
      return undefined;
    }
  }
  set(key: string, id: string): void {
    const dir = join(this.root.path, "build-cache");
    if (!exists(dir)) Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path(key), id, 0o600);
  }
}

interface StageResult {
  image: ImageRecord;
}

async function* tarStream(entries: Iterable<TarWriteEntry>): AsyncGenerator<Uint8Array> {
  for (const e of entries) yield writeTar([e], { endMarker: false });
  yield new Uint8Array(1024);
}

const flagOf = (instr: Instruction, name: string) => instr.flags.find((f) => f.name === name)?.value;

export class Builder {
  private readonly store: ImageStore;
  private readonly cache: BuildCache;
  private plan!: BuildPlan;
  private step = 0;
  private context!: BuildContext;
  private readonly results = new Map<number, StageResult>();
  private readonly hashes: FileHashCache;

  constructor(private readonly root: StateRoot, private readonly opts: BuildOptions) {
    this.store = new ImageStore(root);
    this.cache = new BuildCache(root);
    this.hashes = new FileHashCache(join(root.path, "build-cache"));
    for (const p of this.hashes.problems) opts.warn?.(p);
  }

  async run(): Promise<ImageRecord> {
    const o = this.opts;
    // tags are checked before anything runs
    const tags = o.tags.map((t) => normalizeTag(t));
    this.plan = planBuild(o.dockerfile, { file: o.file, buildArgs: o.buildArgs, target: o.target });
    const last = this.plan.build.at(-1)!;
    if (Object.keys(o.labels).length) {
      // docker's classic builder: --label becomes a LABEL step at the end of the last stage
      const text = Object.entries(o.labels).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(
        " ",
      );
      last.instructions.push({
        keyword: "LABEL",
        rest: text,
        flags: [],
        heredocs: [],
        line: 0,
        original: `LABEL ${text}`,
      });
      this.plan.totalSteps++;
    }
    await sweepDeadBuilders(this.root);
    this.context = await BuildContext.open(o.contextDir);
    try {
      for (const meta of this.plan.metaArgs) this.announce(meta);
      let image = SCRATCH;
      for (const stage of this.plan.build) {
        image = await this.buildStage(stage);
        this.results.set(stage.index, { image });
      }
      if (image === SCRATCH) throw new SkiffError("No image was generated. Is your Dockerfile empty?");
      o.out(`Successfully built ${shortId(image.id)}`);
      if (tags.length) {
        // a tag already on the image is not written again (an unchanged rebuild changes nothing)
        const current = this.store.readTags().tags;
        for (const t of tags) if (current[t] !== image.id) await this.store.tag(image.id, t);
        for (const t of o.tags) o.out(`Successfully tagged ${tags[o.tags.indexOf(t)]}`);
      }
      return this.store.get(image.id) ?? image;
    } finally {
      this.context.close();
      try {
        this.hashes.save();
      } catch (e) {
        o.warn?.(`the build's file hash cache was not saved: ${(e as Error).message}`);
      }
    }
  }

  private announce(instr: Instruction): void {
    this.step++;
    this.opts.out(`Step ${this.step}/${this.plan.totalSteps} : ${instr.original}`);
  }

  private fail(instr: Instruction, e: unknown): never {
    if (e instanceof RunStepError || e instanceof DockerfileSyntaxError || !(e instanceof SkiffError)) {
      throw e;
    }
    const prefix = ["COPY", "ADD"].includes(instr.keyword) ? `${instr.keyword} failed: ` : "";
    throw new SkiffError(`${prefix}${e.message}`, 1);
  }

  private async baseImage(stage: Stage): Promise<ImageRecord> {
    if (stage.base === "scratch") return SCRATCH;
    const ref = findStage(this.plan, stage.base, stage.index);
    if (ref) {
      const done = this.results.get(ref.index);
      if (!done) throw new SkiffError(`stage ${stage.base} was not built`);
      return done.image;
    }
    return this.store.find(stage.base) ?? await this.opts.pullBase(this.store, stage.base);
  }

  private async buildStage(stage: Stage): Promise<ImageRecord> {
    this.announce(stage.from);
    let image: ImageRecord;
    try {
      image = await this.baseImage(stage);
    } catch (e) {
      this.fail(stage.from, e);
    }
    if (image !== SCRATCH) this.opts.out(` ---> ${shortId(image.id)}`);
    const state: StageState = {
      config: { ...(image.config.config ?? {}) },
      args: new Map(),
      escape: this.plan.escape,
      buildArgs: this.opts.buildArgs,
      metaValues: this.plan.metaValues,
    };
    // docker's classic builder gives every stage a PATH (its default) when the base has none
    if (!(state.config.Env ?? []).some((e) => e.startsWith("PATH="))) {
      state.config.Env = [...(state.config.Env ?? []), `PATH=${DEFAULT_PATH}`];
    }
    // ONBUILD triggers of the base run first; the child image does not inherit them
    const triggers = state.config.OnBuild ?? [];
    if (triggers.length) {
      this.opts.out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? "s" : ""}`);
      state.config.OnBuild = null;
      // a base image's config can hold any text: docker parses each trigger on its own, checks it
      // again, and runs it, in turn
      for (const text of triggers) {
        const parsed = parseDockerfile(text, this.opts.file).instructions;
        if (parsed.length !== 1) throw new SkiffError("onbuild trigger should be a single expression", 1);
        const t = parsed[0];
        if (t.keyword === "ONBUILD") {
          throw new SkiffError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", 1);
        }
        if (t.keyword === "FROM" || t.keyword === "MAINTAINER") {
          throw new SkiffError(`${t.keyword} isn't allowed as an ONBUILD trigger`, 1);
        }
        image = await this.runStep(stage, image, state, t, false);
      }
    }
    for (const instr of stage.instructions) {
      this.announce(instr);
      image = await this.runStep(stage, image, state, instr, true);
      this.opts.out(` ---> ${shortId(image.id)}`);
    }
    return image;
  }

  private async runStep(
    stage: Stage,
    image: ImageRecord,
    state: StageState,
    instr: Instruction,
    _shown: boolean,
  ): Promise<ImageRecord> {
    try {
      switch (instr.keyword) {
        case "RUN":
          return await this.runRun(image, state, instr);
        case "COPY":
        case "ADD":
          return await this.runCopy(stage, image, state, instr);
        case "WORKDIR":
          return await this.runWorkdir(image, state, instr);
        default: {
          const step = configStep(state, instr);
          state.config = step.config;
          return await this.cached(
            image,
            // the config too, as docker compares it: `LABEL a="b c=d"` and `LABEL a=b c=d` show alike
            await cacheKey(image.id, step.createdBy, { config: state.config }),
            () => this.commit(image, state.config, step.createdBy, undefined, step.author),
          );
        }
      }
    } catch (e) {
      this.fail(instr, e);
    }
  }

  /** The cached image for `key`, else `make()`'s (then remembered under `key`). */
  private async cached(
    _parent: ImageRecord,
    key: string,
    make: () => Promise<ImageRecord>,
  ): Promise<ImageRecord> {
    if (!this.opts.noCache) {
      const hit = this.cache.get(this.store, key);
      if (hit) {
        this.opts.out(" ---> Using cache");
        return hit;
      }
    }
    const made = await make();
    this.cache.set(key, made.id);
    return made;
  }

  /** A child image of `parent`: its config, and a layer from `entries` (none: an empty_layer step). */
  private async commit(
    parent: ImageRecord,
    runConfig: ImageRunConfig,
    createdBy: string,
    entries?: AsyncIterable<Uint8Array>,
    author?: string,
  ): Promise<ImageRecord> {
    const created = new Date().toISOString();
    const { hostPlatform, storeLayer, writeBlob } = await import("../image/ingest.ts");
    let layer;
    if (entries) {
      this.store.sweepTmp();
      layer = await storeLayer(
        this.store,
        { stream: entries },
        parent.layers.at(-1)?.chainId ?? null,
        undefined,
        {
          keepBlob: true,
        },
      );
    }
    const config: ImageConfigBlob = {
      ...hostPlatform(),
      ...parent.config,
      created,
      ...(author ? { author } : {}),
      // docker's classic builder records the step's parent image in the config
      config: { ...runConfig, Image: parent.id },
      rootfs: {
        type: "layers",
        diff_ids: [...parent.config.rootfs.diff_ids, ...(layer ? [layer.diffId] : [])],
      },
      history: [
        ...(parent.config.history ?? []),
        { created, created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
      ],
    };
    const id = writeBlob(this.store, JSON.stringify(config));
    const layers = layer
      ? [...parent.layers, { diffId: layer.diffId, chainId: layer.chainId, ...layer.blob }]
      : parent.layers;
    return await this.store.commitImage(
      {
        id,
        repoDigests: [],
        layers,
        config,
        created,
        size: parent.size + (layer?.size ?? 0),
        ...(parent.id ? { parent: parent.id } : {}),
      },
      [],
    );
  }

  private view(image: ImageRecord): UnionView | undefined {
    return image.layers.length ? new UnionView(this.store.layerDirs(image)) : undefined;
  }

  private async runWorkdir(image: ImageRecord, state: StageState, instr: Instruction): Promise<ImageRecord> {
    const step = configStep(state, instr);
    state.config = step.config;
    const dir = step.config.WorkingDir!;
    return await this.cached(image, await cacheKey(image.id, step.createdBy), async () => {
      // made when missing (as docker does), in a layer of its own
      const view = this.view(image);
      let entries: TarWriteEntry[] | undefined;
      try {
        const parts = view ? view.resolve(dir) : dir.split("/").filter(Boolean);
        if (parts.length && !(view?.lookup(parts)?.stat.type === "dir")) {
          entries = copyLayerEntries(view, [], "/" + parts.join("/"), { uid: 0, gid: 0 });
        }
      } finally {
        view?.close();
      }
      return await this.commit(image, state.config, step.createdBy, entries && tarStream(entries));
    });
  }

  private async runRun(image: ImageRecord, state: StageState, instr: Instruction): Promise<ImageRecord> {
    const argv = commandOf(instr, state.config);
    const buildArgs = runBuildArgs(state);
    const createdBy = runHistoryCommand(argv, buildArgs);
    // the argv and the args as lists, as docker compares them: their joined text can be alike
    const key = await cacheKey(image.id, createdBy, { argv, buildArgs });
    return await this.cached(image, key, async () => {
      if (image === SCRATCH) throw new SkiffError("no such file or directory: a RUN needs a base image");
      const id = await this.runContainer(image, state.config, argv, buildArgs);
      try {
        const { upperLayerEntries, upperDir } = await import("../container/layers.ts");
        const upper = upperDir(this.root, { Id: id } as Parameters<typeof upperDir>[1]);
        // an empty change is an empty_layer step, as docker's
        const parentView = this.view(image);
        const iter = asDockerLayer(upperLayerEntries(upper), parentView);
        let first;
        try {
          first = iter.next();
        } catch (e) {
          parentView?.close();
          throw e;
        }
        const entries = first.done ? undefined : (async function* () {
          yield writeTar([first.value], { endMarker: false });
          try {
            for (const e of iter) yield writeTar([e], { endMarker: false });
          } finally {
            parentView?.close();
          }
          yield new Uint8Array(1024);
        })();
        if (!entries) parentView?.close();
        return await this.commit(image, state.config, createdBy, entries);
      } finally {
        if (this.opts.rm) await this.removeContainer(id);
        else releaseBuildContainer(this.root, id); // kept, as asked
      }
    });
  }

  private async removeContainer(id: string): Promise<void> {
    const { Engine } = await import("../engine/engine.ts");
    await new Engine({ root: this.root }).remove(id, { force: true, volumes: true });
    releaseBuildContainer(this.root, id);
    this.opts.out(`Removing intermediate container ${id.slice(0, 12)}`);
  }

  /** Runs `argv` in a container of `image` through the engine; its id once it exited 0. */
  private async runContainer(
    image: ImageRecord,
    config: ImageRunConfig,
    argv: string[],
    buildArgs: string[],
  ): Promise<string> {
    const [{ Engine }, { newContainerId }] = await Promise.all([
      import("../engine/engine.ts"),
      import("../state/containers.ts"),
    ]);
    const flags = ["--entrypoint", ""];
    for (const e of buildArgs) flags.push("-e", e);
    if (config.User) flags.push("-u", config.User);
    if (config.WorkingDir) flags.push("-w", config.WorkingDir);
    if (this.opts.network) flags.push("--network", this.opts.network);
    flags.push(...this.opts.runFlags ?? []);
    const request = this.opts.runRequest([...flags, image.id, ...argv]);
    request.imageRef = image.id;
    const id = newContainerId();
    ownBuildContainer(this.root, id);
    this.opts.out(` ---> Running in ${id.slice(0, 12)}`);
    const engine = new Engine({ root: this.root });
    const outcome = await engine.runForeground({
      request,
      id,
      image: () => Promise.resolve(image),
      io: {
        stdin: { read: () => Promise.resolve(null) },
        stdout: this.opts.runOutput,
        stderr: this.opts.runOutput,
        terminal: false,
      },
      keepLog: false,
    });
    if (outcome.exitCode !== 0 || outcome.error) {
      if (this.opts.rm) await this.removeContainer(id).catch(() => {});
      else releaseBuildContainer(this.root, id);
      const detail = outcome.error ? `: ${outcome.error}` : "";
      throw new RunStepError(
        `The command '${argv.join(" ")}' returned a non-zero code: ${outcome.exitCode}${detail}`,
        outcome.exitCode || 1,
      );
    }
    return id;
  }

  /** ADD URL: the file, as docker makes it (mode 0600, the Last-Modified time; never extracted). */
  private async download(
    url: string,
    dest: string,
    destIsDir: (rel: string) => boolean,
    owner: CopyOwner | undefined,
    chmod: number | undefined,
  ): Promise<CopyEntry> {
    if (!this.opts.fetchUrl) throw new SkiffError(`ADD of a URL is not available here: ${url}`);
    const destClean = cleanPath(dest).slice(1);
    let name = destClean;
    if (dest.endsWith("/") || destIsDir(destClean)) {
      const base = decodeURIComponent(new URL(url).pathname.split("/").at(-1) ?? "");
      if (!base || base === "." || base === "..") {
        throw new SkiffError(`cannot determine filename from url: ${url}`);
      }
      name = [destClean, base].filter(Boolean).join("/");
    }
    const { data, lastModified } = await this.opts.fetchUrl(url);
    const modified = lastModified ? Date.parse(lastModified) : NaN;
    return {
      name,
      source: url,
      type: "file",
      mode: chmod ?? 0o600,
      uid: owner?.uid ?? 0,
      gid: owner?.gid ?? 0,
      mtime: Number.isFinite(modified) ? Math.floor(modified / 1000) : 0,
      data,
    };
  }

  private async runCopy(
    stage: Stage,
    image: ImageRecord,
    state: StageState,
    instr: Instruction,
  ): Promise<ImageRecord> {
    const vars = substitutionVars(state);
    const esc = state.escape;
    const words = instr.json
      ? instr.json.map((w) => processWord(w, vars, esc))
      : processWords(instr.rest, vars, esc);
    if (words.length < 2) throw new SkiffError(`${instr.keyword} requires at least two arguments`);
    let dest = words.at(-1)!;
    const sources = words.slice(0, -1);
    // relative to WORKDIR; a trailing slash (or ".") says "a directory"
    const trailing = dest.endsWith("/") || dest === "." || dest.endsWith("/.");
    dest = cleanPath(dest.startsWith("/") ? dest : `${state.config.WorkingDir || "/"}/${dest}`) +
      (trailing ? "/" : "");
    const view = this.view(image);
    try {
      const chown = flagOf(instr, "chown");
      const chmodText = flagOf(instr, "chmod");
      const chmod = chmodText === undefined ? undefined : parseInt(chmodText, 8);
      if (chmodText !== undefined && (!/^[0-7]{3,4}$/.test(chmodText))) {
        throw new SkiffError(`invalid chmod parameter: ${chmodText}`);
      }
      const owner: CopyOwner | undefined = chown !== undefined
        ? resolveChown(processWord(chown, vars, esc), view)
        : undefined;
      for (const f of instr.flags) {
        if (
          !["chown", "chmod", "from", "link"].includes(f.name) ||
          (f.name === "from" && instr.keyword === "ADD")
        ) {
          throw new SkiffError(`Unknown flag: ${f.name}`);
        }
      }
      const destIsDir = (rel: string) => {
        if (!view || rel === "") return rel === "";
        return view.lookup(view.resolve(rel))?.stat.type === "dir";
      };
      const from = flagOf(instr, "from");
      let entries: CopyEntry[];
      let fromId = "";
      const heredocs = new Map(instr.heredocs.map((h) => [`<<${h.name}`, h]));
      if (sources.every((s) => /^<<-?/.test(s))) {
        // COPY <<EOF /file: the heredoc is the file
        entries = sources.map((s) => {
          const h = heredocs.get(s.replace(/^<<-?["']?/, "<<").replace(/["']$/, ""));
          if (!h) throw new SkiffError(`unknown heredoc ${s}`);
          const name = (sources.length > 1 || trailing ? `${dest.replace(/\/$/, "")}/${h.name}` : dest).slice(
            1,
          );
          return {
            name,
            source: h.name,
            type: "file",
            mode: chmod ?? 0o644,
            uid: owner?.uid ?? 0,
            gid: owner?.gid ?? 0,
            mtime: 0,
            data: h.quoted ? h.content : processWord(h.content.replace(/"/g, '\\"'), vars, esc),
          } as CopyEntry;
        });
      } else if (from !== undefined) {
        const ref = processWord(from, vars, esc);
        const src = findStage(this.plan, ref, stage.index);
        let fromImage: ImageRecord | undefined;
        if (src) fromImage = this.results.get(src.index)?.image;
        else if (/^\d+$/.test(ref)) {
          throw new SkiffError(`invalid from flag value ${ref}: refers to current build stage`);
        } else {
          fromImage = this.store.find(ref);
          if (!fromImage) {
            try {
              fromImage = await this.opts.pullBase(this.store, ref);
            } catch {
              throw new SkiffError(
                `invalid from flag value ${ref}: pull access denied for ${ref}, repository does not exist or may require 'docker login'`,
              );
            }
          }
        }
        if (!fromImage) throw new SkiffError(`invalid from flag value ${ref}`);
        fromId = fromImage.id;
        entries = await collectFromImage(this.store, fromImage, sources, dest, destIsDir, { owner, chmod });
      } else {
        const urls = sources.filter(isUrl);
        const locals = sources.filter((s) => !isUrl(s));
        if (urls.length && instr.keyword === "COPY") throw new SkiffError("source can't be a URL for COPY");
        if (urls.length && sources.length > 1 && !trailing) {
          throw new SkiffError(
            `When using ${instr.keyword} with more than one source file, the destination must be a directory and end with a /`,
          );
        }
        entries = locals.length
          ? collectCopy(this.context.fd, locals, dest, destIsDir, {
            owner,
            chmod,
            ignore: this.context,
            hashes: instr.keyword === "COPY" ? this.hashes : undefined,
          })
          : [];
        if (instr.keyword === "ADD") entries = await expandArchives(entries, locals, dest, owner);
        for (const url of urls) entries.push(await this.download(url, dest, destIsDir, owner, chmod));
      }
      const single = entries.length === 1 && sources.length === 1;
      const kind = sources.length > 1 ? "multi" : single && entries[0].type !== "dir" ? "file" : "dir";
      const hash = await contentHash(entries, this.hashes);
      const createdBy = nop(`${instr.keyword} ${kind}:${hexOf(hash)} in ${dest} `);
      const key = await cacheKey(image.id, createdBy, { owner, chmod, fromId });
      return await this.cached(image, key, async () => {
        if (entries.some((e) => e.type === "file" && e.data === undefined)) {
          // files known by their hash were not read: read them now, and they must be what was hashed
          entries = collectCopy(this.context.fd, sources, dest, destIsDir, {
            owner,
            chmod,
            ignore: this.context,
          });
          if (await contentHash(entries) !== hash) {
            throw new SkiffError("the build context changed while the build was reading it");
          }
        }
        // the entries live under the destination directory: its parents come from the image
        const destDir = dest.endsWith("/") || entries.some((e) =>
            e.name.startsWith(dest.slice(1).replace(/\/$/, "") + "/")
          )
          ? dest
          : dest.slice(0, dest.lastIndexOf("/")) || "/";
        const layer = copyLayerEntries(view, entries, destDir, owner ?? { uid: 0, gid: 0 });
        return await this.commit(image, state.config, createdBy, tarStream(layer));
      });
    } finally {
      view?.close();
    }
  }
}

/** Directories the runtime writes into (its /etc/hosts, /etc/hostname, /etc/resolv.conf mount points). */
const RUNTIME_DIRS = new Set(["etc/"]);

/**
 * A RUN's upper dir as docker's classic builder would commit it: a runtime directory that holds
 * nothing of the step's and is as the image has it is left out (docker keeps those mount points in
 * a layer of its own, below the container's), and whiteouts carry docker's modes (0600, an opaque
 * marker its directory's).
 */
function* asDockerLayer(
  entries: Iterable<TarWriteEntry>,
  parent: UnionView | undefined,
): Generator<TarWriteEntry> {
  let held: TarWriteEntry | undefined;
  let dirMode = 0o755;
  const unchanged = (e: TarWriteEntry) => {
    const found = parent?.lookup(e.name.replace(/\/$/, "").split("/"));
    return found?.stat.type === "dir" && found.stat.perm === e.mode && found.stat.uid === e.uid &&
      found.stat.gid === e.gid;
  };
  for (const e of entries) {
    if (held) {
      if (e.name.startsWith(held.name) || !unchanged(held)) yield held;
      held = undefined;
    }
    if (e.type === "dir") dirMode = e.mode ?? 0o755;
    if (e.type === "dir" && RUNTIME_DIRS.has(e.name)) {
      held = e;
      continue;
    }
    const base = e.name.slice(e.name.lastIndexOf("/") + 1);
    if (base === ".wh..wh..opq") yield { ...e, mode: dirMode };
    else if (base.startsWith(".wh.")) yield { ...e, mode: 0o600 };
    else yield e;
  }
  if (held && !unchanged(held)) yield held;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** COPY --from: the files of another image (its merged tree), as collectCopy does for the context. */
async function collectFromImage(
  store: ImageStore,
  image: ImageRecord,
  sources: string[],
  dest: string,
  destIsDir: (rel: string) => boolean,
  opts: { owner?: CopyOwner; chmod?: number },
): Promise<CopyEntry[]> {
  const { unionEntries } = await import("../container/layers.ts");
  const view = new UnionView(store.layerDirs(image));
  const trailing = dest.endsWith("/");
  const destClean = cleanPath(dest).slice(1);
  const out: CopyEntry[] = [];
  try {
    const wanted = sources.map((s) => {
      const clean = cleanSource(s.replace(/^\/+/, ""));
      return /[*?[]/.test(clean)
        ? { glob: globToRegExp(clean) }
        : { path: view.resolve(clean, false).join("/") };
    });
    const all = [...unionEntries(store.layerDirs(image))].map((e) => ({
      ...e,
      name: e.name.replace(/\/$/, ""),
    }));
    let matched = 0;
    for (const w of wanted) {
      const glob = w.glob;
      const roots = glob ? all.filter((e) => glob.test(e.name)).map((e) => e.name) : [w.path!];
      for (const root of roots) {
        const top = all.find((e) => e.name === root);
        if (!top && root !== "") {
          throw new SkiffError(`failed to compute cache key: "/${root}" not found: not found`);
        }
        matched++;
        const isDir = root === "" || top!.type === "dir";
        const base = root.split("/").at(-1)!;
        const target = isDir
          ? destClean
          : trailing || destIsDir(destClean)
          ? [destClean, base].filter(Boolean).join("/")
          : destClean;
        const inside = all.filter((e) =>
          isDir ? (root === "" ? true : e.name.startsWith(root + "/")) : e.name === root
        );
        for (const e of inside) {
          const rel = isDir ? e.name.slice(root === "" ? 0 : root.length + 1) : "";
          const name = [target, rel].filter(Boolean).join("/");
          const mode = opts.chmod !== undefined && (e.type === "file" || e.type === "dir")
            ? opts.chmod
            : e.mode;
          const linkname = e.type === "link" && e.linkname
            ? [target, e.linkname.slice(root === "" ? 0 : root.length + 1)].filter(Boolean).join("/")
            : e.linkname;
          out.push({
            ...e,
            name: e.type === "dir" ? `${name}/` : name,
            linkname,
            mode,
            uid: opts.owner?.uid ?? 0,
            gid: opts.owner?.gid ?? 0,
            source: e.name,
          });
        }
      }
    }
    if (matched === 0) throw new SkiffError("no source files were specified");
  } finally {
    view.close();
  }
  return out;
}

/** ADD: a local tar archive (plain or gzip) among the sources is extracted into the destination. */
async function expandArchives(
  entries: CopyEntry[],
  sources: string[],
  dest: string,
  owner: CopyOwner | undefined,
): Promise<CopyEntry[]> {
  const tops = new Set(sources.map((s) => cleanSource(s)));
  // loaded here: it reads tars through the layer unpacker (node:zlib, node:crypto)
  const { extractArchive, isArchive } = await import("./archive.ts");
  const out: CopyEntry[] = [];
  for (const e of entries) {
    const data = typeof e.data === "string" ? new TextEncoder().encode(e.data) : e.data;
    const extracted = e.type === "file" && tops.has(e.source) && data && isArchive(data)
      ? await extractArchive(data)
      : undefined;
    if (extracted) {
      const dir = cleanPath(dest).slice(1);
      for (const x of extracted) {
        const name = [dir, x.name].filter(Boolean).join("/");
        out.push({
          ...x,
          name: x.type === "dir" ? `${name.replace(/\/$/, "")}/` : name,
          ...(x.type === "link" && x.linkname
            ? { linkname: [dir, x.linkname].filter(Boolean).join("/") }
            : {}),
          ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
          source: e.source,
        });
      }
      continue;
    }
    out.push(e);
  }
  return out;
}
