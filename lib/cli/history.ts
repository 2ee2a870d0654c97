// skiff history [--no-trunc] [-q] [-H=false] [--format] IMAGE

import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import { ImageStore } from "../image/store.ts";
import { imageHistory } from "../image/history.ts";
import { compileListFormat } from "../format/list.ts";
import { goStruct } from "../format/template.ts";
import { ellipsis, humanSize, shortId, timeAgo } from "../format/human.ts";
import { SkiffError } from "../errors.ts";
import { familiarString, parseReference, withDefaultTag } from "../image/reference.ts";

const HELP = `Usage:  skiff history [OPTIONS] IMAGE

Show the history of an image

Aliases:
  skiff image history, skiff history

Options:
      --format string   Format output using a custom template ('table', 'table TEMPLATE',
                        'json', or a Go template)
  -H, --human           Print sizes and dates in human readable format (default true)
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`;

const DEFAULT_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HEADERS = {
  ID: "IMAGE",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  CreatedBy: "CREATED BY",
  Size: "SIZE",
  Comment: "COMMENT",
};

/** RFC 3339 in UTC without fractions, as Go's time.RFC3339 prints it. */
const rfc3339 = (iso: string) => {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().replace(/\.\d+Z$/, "Z") : "";
};

const history: Verb = (args, ctx) => {
  const p = parseArgs(args, {
    verb: "history",
    options: [
      { name: "human", short: "H", kind: "bool" },
      { name: "no-trunc", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "format", kind: "string" },
      { name: "platform", kind: "string" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return Promise.resolve(0);
  }
  requireArgs(p, "history", 1, 1);
  const human = p.options.human === undefined ? true : bool(p, "human");
  const trunc = !bool(p, "no-trunc");
  const quiet = bool(p, "quiet");
  const format = compileListFormat(quiet ? "{{.ID}}" : str(p, "format") ?? "", DEFAULT_FORMAT);
  const store = new ImageStore(ctx.root);
  const image = store.find(p.positionals[0]);
  if (!image) {
    let shown = p.positionals[0];
    try {
      shown = familiarString(withDefaultTag(parseReference(shown)));
    } catch { /* as given */ }
    throw new SkiffError(`No such image: ${shown}`, 1);
  }
  const now = Date.now();
  const rows = imageHistory(store, image).map((h) => {
    const createdBy = h.createdBy.replaceAll("\t", " ");
    const fields = {
      ID: trunc && h.id !== "<missing>" ? shortId(h.id) : h.id,
      CreatedSince: !h.created ? "N/A" : human ? timeAgo(h.created, now) : rfc3339(h.created),
      CreatedAt: h.created ? rfc3339(h.created) : "",
      CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
      Size: human ? humanSize(h.size) : String(h.size),
      Comment: h.comment,
    };
    return goStruct("*image.historyContext", { ...fields, toJSON: () => fields });
  });
  Deno.stdout.writeSync(
    new TextEncoder().encode(format.render(rows, goStruct("*image.historyContext", { ...HEADERS }))),
  );
  return Promise.resolve(0);
};
export default history;
