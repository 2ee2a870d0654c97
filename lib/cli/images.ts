// skiff images [-a] [-q] [--no-trunc] [REPOSITORY[:TAG]]

import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import { ImageStore, shortId } from "../image/store.ts";
import { createdSince, formatTable, humanSize } from "../image/human.ts";
import { splitTagged } from "../image/reference.ts";
import { familiarName, parseReference } from "../image/reference.ts";

const HELP = `Usage:  skiff images [OPTIONS] [REPOSITORY[:TAG]]

List images

Aliases:
  skiff image ls, skiff image list, skiff images

Options:
  -a, --all             Show all images (default hides intermediate images)
      --digests         Show digests
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
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return Promise.resolve(0);
  }
  requireArgs(p, "images", 0, 1);
  const noTrunc = bool(p, "no-trunc");
  const digests = bool(p, "digests");

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

  const rows: { repo: string; tag: string; digest: string; id: string; created: string; size: string }[] = [];
  const now = Date.now();
  for (const image of new ImageStore(ctx.root).list()) {
    const id = noTrunc ? image.id : shortId(image.id);
    const created = createdSince(image.created, now);
    const size = humanSize(image.size);
    const digestFor = (repo: string) =>
      image.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split("@")[1] ?? "<none>";
    if (image.repoTags.length === 0) {
      if (repoFilter) continue; // a reference filter never matches untagged images
      rows.push({ repo: "<none>", tag: "<none>", digest: "<none>", id, created, size });
      continue;
    }
    for (const tagged of image.repoTags) {
      const { repository, tag } = splitTagged(tagged);
      if (repoFilter && !repoFilter.test(repository)) continue;
      if (tagFilter && !tagFilter.test(tag)) continue;
      rows.push({ repo: repository, tag, digest: digestFor(repository), id, created, size });
    }
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
