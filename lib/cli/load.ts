// skiff load [-i FILE] [-q]: images from a docker-archive or OCI-layout tarball (stdin by default).

import { imageEvent } from "../state/events.ts";
import type { Verb } from "./context.ts";
import { parseArgs, requireArgs, str } from "./args.ts";
import { ImageStore } from "../image/store.ts";
import { loadArchive } from "../image/archive.ts";
import { SkiffError } from "../errors.ts";
import { isatty } from "../../ffi/libc.ts";

const HELP = `Usage:  skiff load [OPTIONS]

Load an image from a tar archive or STDIN

Aliases:
  skiff image load, skiff load

Options:
  -i, --input string    Read from tar archive file, instead of STDIN
  -q, --quiet           Suppress the load output
`;

const load: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "load",
    options: [
      { name: "input", short: "i", kind: "string" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "platform", kind: "list" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "load", 0, 0);
  const file = str(p, "input");
  if (file === undefined && isatty(0)) {
    throw new SkiffError("requested load from stdin, but stdin is empty");
  }
  const input = file === undefined || file === "-" ? { stdin: true as const } : { path: file };
  const store = new ImageStore(ctx.root);
  const result = await loadArchive(store, input);
  const loaded = new Set([...result.tags.map((t) => store.find(t)?.id), ...result.untaggedIds]);
  for (const id of loaded) if (id) imageEvent(ctx.root, "load", id, { name: id });
  // docker prints these lines with and without -q (-q only hides progress bars)
  for (const { tag, from } of result.moved) {
    console.log(`The image ${tag} already exists, renaming the old one with ID ${from} to empty string`);
  }
  for (const tag of result.tags) console.log(`Loaded image: ${tag}`);
  for (const id of result.untaggedIds) console.log(`Loaded image ID: ${id}`);
  return 0;
};
export default load;
