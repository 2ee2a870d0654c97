// skiff save [-o FILE] IMAGE...: a docker-archive (with the OCI layout beside it) on stdout or in FILE.

import { imageEvent } from "../state/events.ts";
import type { Verb } from "./context.ts";
import { parseArgs, requireArgs, str } from "./args.ts";
import { ImageStore } from "../image/store.ts";
import { SkiffError } from "../errors.ts";
import { isatty } from "../../ffi/libc.ts";
import { dirname } from "../state/path.ts";

const HELP = `Usage:  skiff save [OPTIONS] IMAGE [IMAGE...]

Save one or more images to a tar archive (streamed to STDOUT by default)

Aliases:
  skiff image save, skiff save

Options:
  -o, --output string   Write to a file, instead of STDOUT
`;

const save: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "save",
    options: [
      { name: "output", short: "o", kind: "string" },
      { name: "platform", kind: "list" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "save", 1, Infinity);
  const output = str(p, "output");
  if ((output === undefined || output === "-") && isatty(1)) {
    throw new SkiffError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  if (output !== undefined && output !== "-") {
    const dir = dirname(output);
    let isDir = false;
    try {
      isDir = Deno.statSync(dir).isDirectory;
    } catch { /* absent */ }
    if (!isDir) {
      throw new SkiffError(`failed to save image: invalid output path: directory "${dir}" does not exist`);
    }
  }
  const { saveImages } = await import("../image/save.ts");
  const store = new ImageStore(ctx.root);
  const target = output === undefined || output === "-"
    ? {
      sink: async (chunk: Uint8Array) => {
        let off = 0;
        while (off < chunk.length) off += await Deno.stdout.write(chunk.subarray(off));
      },
    }
    : { path: output };
  await saveImages(store, p.positionals, target);
  const saved = new Set(p.positionals.map((ref) => store.find(ref)?.id));
  for (const id of saved) if (id) imageEvent(ctx.root, "save", id, { name: id });
  return 0;
};
export default save;
