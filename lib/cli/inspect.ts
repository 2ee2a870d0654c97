// skiff inspect [-f FORMAT] [-s] [--type container|image] NAME|ID...
// Containers are looked up first, then images (unless --type). Output as docker prints it: a JSON
// array indented with four spaces, `-f json` compact, or one template line per object. Objects
// that were found are printed even when others were not; each miss is one line on stderr, exit 1.

import { NoSuchContainerError, NotFoundError, UsageError } from "../errors.ts";
import { goJson, inspectTemplate, type Template, TemplateExecError } from "../format/template.ts";
import { ImageStore } from "../image/store.ts";
import { inspectContainer } from "../inspect/container.ts";
import { inspectImage } from "../inspect/image.ts";
import { containerRwSize } from "../inspect/ps.ts";
import { BrokenContainerError, findContainer } from "../state/containers.ts";
import { reconcile } from "../state/reconcile.ts";
import type { StateRoot } from "../state/root.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

type ObjectType = "container" | "image";

const inspect: Verb = (args, ctx) => {
  const p = parseArgs(args, {
    verb: "inspect",
    options: [
      { name: "format", short: "f", kind: "string" },
      { name: "size", short: "s", kind: "bool" },
      { name: "type", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return Promise.resolve(0);
  }
  requireArgs(p, "inspect", 1);
  const type = str(p, "type");
  if (type !== undefined && type !== "container" && type !== "image") {
    throw new UsageError(`"${type}" is not a valid value for --type`, "inspect");
  }
  const format = str(p, "format") ?? "";
  // a bad template is reported before anything is looked up
  const template = format === "" || format === "json" ? undefined : inspectTemplate(format);

  const images = new ImageStore(ctx.root);
  const found: Record<string, unknown>[] = [];
  const errors: string[] = [];
  for (const ref of p.positionals) {
    try {
      found.push(lookup(ctx.root, images, ref, type as ObjectType | undefined, bool(p, "size")));
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }

  let output: string;
  if (template) {
    const lines: string[] = [];
    for (const obj of found) {
      try {
        lines.push(executeLikeDocker(template, obj) + "\n");
      } catch (e) {
        errors.push(`template parsing error: ${(e as Error).message}`);
      }
    }
    output = lines.length ? lines.join("") : "\n";
  } else if (format === "json") {
    output = escapeHtml(`[${found.map(goJson).join(",")}]`) + "\n";
  } else {
    output = found.length ? escapeHtml(JSON.stringify(found, null, 4)) + "\n" : "[]\n";
  }
  writeAll(output);
  for (const e of errors) console.error(e);
  return Promise.resolve(errors.length ? 1 : 0);
};
export default inspect;

function lookup(
  root: StateRoot,
  images: ImageStore,
  ref: string,
  type: ObjectType | undefined,
  withSize: boolean,
): Record<string, unknown> {
  if (type !== "image") {
    try {
      const record = reconcile(root, findContainer(root, ref));
      let sizes;
      if (withSize) {
        const rw = containerRwSize(root, record);
        sizes = { rw, rootFs: rw + (images.get(record.Image)?.size ?? 0) };
      }
      return inspectContainer(root, record, sizes);
    } catch (e) {
      if (e instanceof BrokenContainerError) throw new Error(`Error: ${e.message}`);
      if (!(e instanceof NotFoundError)) throw e;
      if (type === "container") throw new Error(`Error: ${new NoSuchContainerError(ref).message}`);
    }
  }
  let image;
  try {
    image = images.find(ref);
  } catch { /* not a valid reference: no such object */ }
  if (image) return inspectImage(image, images.layerDirs(image));
  throw new Error(type === "image" ? `Error: No such image: ${ref}` : `Error: No such object: ${ref}`);
}

/**
 * docker runs the template against the typed object first and, when that fails, against the raw
 * JSON with missingkey=error, so a misspelt field reads `map has no entry for key "X"`.
 */
function executeLikeDocker(template: Template, obj: Record<string, unknown>): string {
  try {
    return template.execute(obj);
  } catch (e) {
    if (!(e instanceof TemplateExecError)) throw e;
    return template.execute(JSON.parse(goJson(obj)), { missingKeyError: true });
  }
}

/** Go's json.Marshal escapes <, > and & (docker's API output carries them that way). */
function escapeHtml(json: string): string {
  return json.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/** Writes all of it; a reader that went away (`| head`) ends the output quietly, as in docker. */
function writeAll(text: string): void {
  const bytes = new TextEncoder().encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

const USAGE = `Usage:  skiff inspect [OPTIONS] NAME|ID [NAME|ID...]

Return low-level information on containers or images

Options:
  -f, --format string   Format output using a custom template:
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given Go template
  -s, --size            Display total file sizes if the type is container
      --type string     Only inspect objects of the given type (container or image)`;
