// skiff push [-q] NAME[:TAG]

import { imageEvent } from "../state/events.ts";
import { registrySettingsFromEnvironment } from "./registry_settings.ts";
import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import { oneLine, SkiffError } from "../errors.ts";
import { isatty } from "../../ffi/libc.ts";
import { ProgressRenderer } from "../registry/progress.ts";
import { familiarName, parseReference } from "../image/reference.ts";

const HELP = `Usage:  skiff push [OPTIONS] NAME[:TAG]

Upload an image to a registry

Options:
  -a, --all-tags                Push all tags of an image to the repository
      --disable-content-trust   Skip image signing (default true)
  -q, --quiet                   Suppress verbose output
`;

const push: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "push",
    options: [
      { name: "all-tags", short: "a", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "disable-content-trust", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "push", 1, 1);
  const ref = parseReference(p.positionals[0]);
  if (ref.digest) throw new SkiffError("cannot push a digest reference", 125);
  const quiet = bool(p, "quiet");
  const { pushImage } = await import("../registry/push.ts");
  const { RegistryClient } = await import("../registry/client.ts");
  const { ImageStore } = await import("../image/store.ts");
  let tags = [ref.tag ?? "latest"];
  if (bool(p, "all-tags")) {
    if (ref.tag) throw new SkiffError("tag can't be used with --all-tags/-a", 125);
    const name = familiarName(ref);
    tags = Object.keys(new ImageStore(ctx.root).tags())
      .filter((t) => t.slice(0, t.lastIndexOf(":")) === name)
      .map((t) => t.slice(t.lastIndexOf(":") + 1));
    if (!tags.length) throw new SkiffError(`An image does not exist locally with the tag: ${name}`, 1);
  }
  const renderer = quiet ? undefined : new ProgressRenderer(Deno.stdout, isatty(1));
  let client: InstanceType<typeof RegistryClient> | undefined;
  try {
    // reads credentials: may fail like the daemon would
    client = new RegistryClient(ref.domain, registrySettingsFromEnvironment(ctx.insecureRegistries));
    for (const tag of tags) {
      const result = await pushImage(ctx.root, { ...ref, tag }, { onEvent: renderer?.sink, client });
      renderer?.flush();
      const pushed = `${familiarName(ref)}:${tag}`;
      imageEvent(ctx.root, "push", pushed, { name: familiarName(ref) });
      console.log(
        quiet
          ? `${familiarName(ref)}:${tag}`
          : `${result.tag}: digest: ${result.digest} size: ${result.size}`,
      );
    }
    return 0;
  } catch (e) {
    // past argument checks every failure is the "daemon's": docker exits 1 for those, one line
    if (e instanceof SkiffError && e.exitCode !== 125) throw e;
    throw new SkiffError(oneLine(e), 1);
  } finally {
    renderer?.flush();
    client?.close();
  }
};
export default push;
