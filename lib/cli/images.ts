// skiff images [-a] [-q] [--no-trunc] [REPOSITORY[:TAG]]

import type { Verb } from "./context.ts";
import { bool, list, parseArgs, requireArgs, str } from "./args.ts";
import { ImageStore, shortId } from "../image/store.ts";
import { createdSince, humanSize } from "../format/human.ts";
import { formatTable } from "../format/table.ts";
import { splitTagged } from "../image/reference.ts";
import { familiarName, parseReference } from "../image/reference.ts";
import { compileListFormat } from "../format/list.ts";
import { DEFAULT_IMAGES_FORMAT, imageRow, imagesHeaderRow } from "../inspect/images.ts";
import { UsageError } from "../errors.ts";
import type { ImageRecord } from "../state/types.ts";

const HELP = `Usage:  skiff images [OPTIONS] [REPOSITORY[:TAG]]

List images

Aliases:
  skiff image ls, skiff image list, skiff images

Options:
  -a, --all             Show all images (default hides intermediate images)
      --digests         Show digests
  -f, --filter filter   Filter output based on conditions provided (dangling=true|false,
                        reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE])
      --format string   Format output using a custom template ('table', 'table TEMPLATE',
                        'json', or a Go template)
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`;

/** path.Match-style glob on one reference part ("*" does not cross "/"). */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]");
  return new RegExp(`^${escaped}$`);
}

const images: Verb = (args, ctx) => {
  const p = parseArgs(args, {
    verb: "images",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "no-trunc", kind: "bool" },
      { name: "digests", kind: "bool" },
      { name: "filter", short: "f", kind: "list" },
      { name: "format", kind: "string" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return Promise.resolve(0);
  }
  requireArgs(p, "images", 0, 1);
  const noTrunc = bool(p, "no-trunc");
  const digests = bool(p, "digests");
  const formatFlag = str(p, "format") ?? "";
  // a custom format is compiled before anything is read: a bad template changes nothing
  const custom = formatFlag && formatFlag !== "table"
    ? compileListFormat(formatFlag, DEFAULT_IMAGES_FORMAT)
    : undefined;
  const store = new ImageStore(ctx.root);
  const all = store.list();
  // docker: an untagged image that another image was built from is an intermediate image (a build
  // step's), listed only with -a, and never "dangling"
  const parents = new Set(all.map((i) => i.parent).filter((id) => id !== undefined));
  const filter = parseFilters(list(p, "filter"), store, parents);
  const showAll = bool(p, "all");

  let repoFilter: RegExp | undefined;
  let tagFilter: RegExp | undefined;
  if (p.positionals.length) {
    const arg = p.positionals[0];
    const { repository, tag } = splitTagged(arg);
    // normalize docker.io/library/x to x, keeping glob characters out of the parser
    let repo = repository;
    if (!/[*?]/.test(repo)) {
      try {
        repo = familiarName(parseReference(repo));
      } catch { /* filter as given: it simply matches nothing */ }
    }
    repoFilter = globToRegExp(repo);
    if (arg.lastIndexOf(":") > arg.lastIndexOf("/")) tagFilter = globToRegExp(tag);
  }

  const rows: {
    image: ImageRecord;
    repo: string;
    tag: string;
    digest: string;
    id: string;
    created: string;
    size: string;
  }[] = [];
  const now = Date.now();
  for (const image of all) {
    if (!filter.image(image)) continue;
    const untagged = image.repoTags.length === 0 && image.repoDigests.length === 0;
    if (untagged && !showAll && parents.has(image.id)) continue;
    const id = noTrunc ? image.id : shortId(image.id);
    const created = createdSince(image.created, now);
    const size = humanSize(image.size);
    const digestFor = (repo: string) =>
      image.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split("@")[1] ?? "<none>";
    if (image.repoTags.length === 0) {
      // pulled by digest only: docker shows "name <none>"; no name at all: "<none> <none>"
      const named = image.repoDigests.map((d) => d.split("@"));
      if (named.length === 0) {
        if (repoFilter || filter.hasReference) continue; // a reference filter never matches these
        rows.push({ image, repo: "<none>", tag: "<none>", digest: "<none>", id, created, size });
      }
      for (const [repository, digest] of named) {
        if (repoFilter && !repoFilter.test(repository)) continue;
        if (!filter.reference(repository, "<none>")) continue;
        rows.push({ image, repo: repository, tag: "<none>", digest, id, created, size });
      }
      continue;
    }
    for (const tagged of image.repoTags) {
      const { repository, tag } = splitTagged(tagged);
      if (repoFilter && !repoFilter.test(repository)) continue;
      if (tagFilter && !tagFilter.test(tag)) continue;
      if (!filter.reference(repository, tag)) continue;
      rows.push({ image, repo: repository, tag, digest: digestFor(repository), id, created, size });
    }
  }

  // an unreadable state file is one line each; the listing shows what can still be known
  for (const [path, detail] of store.problems) {
    console.error(`WARNING: ${path} is unreadable (${detail}); "skiff system check --repair" mends it`);
  }

  if (custom && !bool(p, "quiet")) {
    const rendered = rows.map((r) =>
      imageRow({ image: r.image, repository: r.repo, tag: r.tag, digest: r.digest, noTrunc, now })
    );
    Deno.stdout.writeSync(new TextEncoder().encode(custom.render(rendered, imagesHeaderRow())));
    return Promise.resolve(0);
  }
  if (bool(p, "quiet")) {
    for (const r of rows) console.log(r.id);
    return Promise.resolve(0);
  }
  const header = ["REPOSITORY", "TAG", ...(digests ? ["DIGEST"] : []), "IMAGE ID", "CREATED", "SIZE"];
  const table = [
    header,
    ...rows.map((r) => [r.repo, r.tag, ...(digests ? [r.digest] : []), r.id, r.created, r.size]),
  ];
  console.log(formatTable(table));
  return Promise.resolve(0);
};
export default images;

interface ImageFilter {
  image(image: ImageRecord): boolean;
  reference(repository: string, tag: string): boolean;
  hasReference: boolean;
}

/** docker's `images --filter`: dangling, reference, before, since, label. */
function parseFilters(filters: string[], store: ImageStore, parents: Set<string>): ImageFilter {
  const tests: ((image: ImageRecord) => boolean)[] = [];
  const references: { repo: RegExp; tag?: RegExp }[] = [];
  for (const f of filters) {
    const eq = f.indexOf("=");
    if (eq === -1) throw new UsageError(`bad format of filter (expected name=value)`, "images");
    const key = f.slice(0, eq), value = f.slice(eq + 1);
    switch (key) {
      case "dangling": {
        if (value !== "true" && value !== "false" && value !== "1" && value !== "0") {
          throw new UsageError(`invalid filter 'dangling=${value}'`, "images");
        }
        const want = value === "true" || value === "1";
        tests.push((i) => (i.repoTags.length === 0 && !parents.has(i.id)) === want);
        break;
      }
      case "reference": {
        const colon = value.lastIndexOf(":");
        const hasTag = colon > value.lastIndexOf("/");
        references.push({
          repo: globToRegExp(hasTag ? value.slice(0, colon) : value),
          tag: hasTag ? globToRegExp(value.slice(colon + 1)) : undefined,
        });
        break;
      }
      case "before":
      case "since": {
        const pivot = store.resolve(value);
        const at = (i: ImageRecord) => Date.parse(i.created) || 0;
        tests.push((i) => (key === "before" ? at(i) < at(pivot) : at(i) > at(pivot)));
        break;
      }
      case "label": {
        const [k, v] = value.split(/=(.*)/s, 2);
        tests.push((i) => {
          const labels = i.config.config?.Labels ?? {};
          return k in labels && (v === undefined || labels[k] === v);
        });
        break;
      }
      default:
        throw new UsageError(`invalid filter '${key}'`, "images");
    }
  }
  return {
    image: (i) => tests.every((t) => t(i)),
    reference: (repository, tag) =>
      references.length === 0 ||
      references.some((r) => r.repo.test(repository) && (!r.tag || r.tag.test(tag))),
    hasReference: references.length > 0,
  };
}
