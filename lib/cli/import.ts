// skiff import FILE|- [REPOSITORY[:TAG]]: a rootfs tarball (plain or gzip) becomes a one-layer image.

import { imageEvent, imageLabels } from "../state/events.ts";
import type { Verb } from "./context.ts";
import { list, parseArgs, requireArgs, str } from "./args.ts";
import { ImageStore } from "../image/store.ts";
import { importRootfs } from "../image/ingest.ts";
import { SkiffError } from "../errors.ts";

const HELP = `Usage:  skiff import [OPTIONS] file|- [REPOSITORY[:TAG]]

Import the contents from a tarball to create a filesystem image

Options:
  -c, --change list       Apply Dockerfile instruction to the created image
  -m, --message string    Set commit message for imported image
      --platform string   Set platform if server is multi-platform capable
`;

const importVerb: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "import",
    options: [
      { name: "change", short: "c", kind: "list" },
      { name: "message", short: "m", kind: "string" },
      { name: "platform", kind: "string" },
    ],
  });
  if (p.options.help) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "import", 1, 2);
  const [source, tag] = p.positionals;

  const platform = str(p, "platform");
  if (platform && platform !== "linux" && !/^linux\/(amd64|x86_64|arm64|aarch64)/.test(platform)) {
    throw new SkiffError(`unsupported platform ${platform}`);
  }
  const store = new ImageStore(ctx.root);
  const input = source === "-"
    ? { stdin: true as const }
    : /^https?:\/\//.test(source)
    ? { stream: await download(source) }
    : { path: source };
  const image = await importRootfs(store, input, {
    tag,
    message: str(p, "message"),
    changes: list(p, "change"),
  });
  imageEvent(ctx.root, "import", image.id, { ...imageLabels(image), name: image.id });
  console.log(image.id);
  return 0;
};
export default importVerb;

/** docker import also takes an http(s) URL of the tarball. */
async function download(url: string): Promise<AsyncIterable<Uint8Array>> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new SkiffError(`Get "${url}": ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new SkiffError(`Get "${url}": ${response.status} ${response.statusText}`.trimEnd());
  }
  return response.body;
}
