// skiff pull [-q] [--platform OS/ARCH[/VARIANT]] [-a] NAME[:TAG|@DIGEST]

import type { CliContext, Verb } from "./context.ts";
import type { ImageStore } from "../image/store.ts";
import type { ImageRecord } from "../state/types.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import { oneLine, SkiffError, UsageError } from "../errors.ts";
import { isatty } from "../../ffi/libc.ts";
import { formatPlatform, parsePlatform, type Platform, platformMatches } from "../registry/mediatypes.ts";
import { ProgressRenderer } from "../registry/progress.ts";
import { registrySettingsFromEnvironment } from "./registry_settings.ts";
import {
  familiarName,
  familiarString,
  fullName,
  fullString,
  parsePullReference,
} from "../image/reference.ts";

const HELP = `Usage:  skiff pull [OPTIONS] NAME[:TAG|@DIGEST]

Download an image from a registry

Options:
  -a, --all-tags                      Download all tagged images in the repository
      --disable-content-trust         Skip image verification (default true)
      --max-concurrent-downloads int  Layers downloaded at once (default 3, or $SKIFF_MAX_CONCURRENT_DOWNLOADS)
      --platform string               Set platform if server is multi-platform capable
  -q, --quiet                         Suppress verbose output
`;

const pull: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "pull",
    options: [
      { name: "all-tags", short: "a", kind: "bool" },
      { name: "quiet", short: "q", kind: "bool" },
      { name: "platform", kind: "string" },
      { name: "max-concurrent-downloads", kind: "string" },
      { name: "disable-content-trust", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "pull", 1, 1);
  const quiet = bool(p, "quiet");
  const allTags = bool(p, "all-tags");
  const platformFlag = str(p, "platform");
  const platform = platformFlag ? parsePlatform(platformFlag) : undefined;
  let maxConcurrent: number | undefined;
  const mcd = str(p, "max-concurrent-downloads");
  if (mcd !== undefined) {
    maxConcurrent = Number(mcd);
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new UsageError(
        `invalid argument "${mcd}" for "--max-concurrent-downloads" flag: must be a positive integer`,
        "pull",
      );
    }
  }
  const { ref, defaulted } = parsePullReference(p.positionals[0]);
  if (allTags && (ref.digest || !defaulted)) {
    throw new SkiffError("tag can't be used with --all-tags/-a");
  }

  // the second pull of a tag: one HEAD decides, before the registry modules are even loaded
  if (!allTags && !platform) {
    const { upToDate } = await import("../registry/uptodate.ts");
    const fast = await upToDate(
      ctx.root,
      ref,
      registrySettingsFromEnvironment(ctx.insecureRegistries).dockerHubHost,
    );
    if (fast) {
      if (!quiet) {
        const lines = [
          ...(defaulted ? ["Using default tag: latest"] : []),
          `${ref.tag}: Pulling from ${ref.path}`,
          `Digest: ${fast.digest}`,
          `Status: Image is up to date for ${familiarString(ref)}`,
        ];
        console.log(lines.join("\n"));
      }
      console.log(fullString(ref));
      return 0;
    }
  }

  // validated everything: now load the engine
  const { pullImage, listTags } = await import("../registry/pull.ts");
  const { RegistryClient } = await import("../registry/client.ts");
  const renderer = quiet ? undefined : new ProgressRenderer(Deno.stdout, isatty(1));
  const say = (text: string) => renderer?.sink({ kind: "message", text });
  let client: InstanceType<typeof RegistryClient> | undefined;
  try {
    // reads credentials: may fail like the daemon would
    client = new RegistryClient(ref.domain, registrySettingsFromEnvironment(ctx.insecureRegistries));
    if (allTags) {
      const tags = await listTags(client, ref.path);
      let lastDigest = "";
      let downloaded = false;
      for (const tag of tags) {
        const result = await pullImage(ctx.root, { ...ref, tag }, {
          platform,
          maxConcurrent,
          onEvent: renderer?.sink,
          client,
        });
        renderer?.flush();
        lastDigest = result.digest;
        downloaded ||= result.downloaded;
      }
      if (tags.length) say(`Digest: ${lastDigest}`);
      say(
        `Status: ${downloaded ? "Downloaded newer image" : "Image is up to date"} for ${familiarName(ref)}`,
      );
      console.log(fullName(ref));
      return 0;
    }
    if (defaulted) say("Using default tag: latest");
    const result = await pullImage(ctx.root, ref, {
      platform,
      maxConcurrent,
      onEvent: renderer?.sink,
      client,
    });
    renderer?.flush();
    say(`Digest: ${result.digest}`);
    say(
      `Status: ${result.downloaded ? "Downloaded newer image" : "Image is up to date"} for ${
        familiarString(ref)
      }`,
    );
    console.log(fullString(ref));
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
export default pull;

export type PullPolicy = "missing" | "always" | "never";

/** `run --pull`: docker's three policies and its wording for anything else. */
export function parsePullPolicy(value: string | undefined): PullPolicy {
  const policy = value ?? "missing";
  if (policy !== "missing" && policy !== "always" && policy !== "never") {
    throw new SkiffError(`invalid pull option: '${policy}': must be one of "always", "missing" or "never"`);
  }
  return policy;
}

/**
 * The image `run`/`create` start from: pulled first when it is missing (or always), with docker's
 * "Unable to find image ... locally" and the pull progress on stderr (stdout is the container's).
 * Failures are the run's own (exit 125).
 */
export async function imageForRun(
  ctx: CliContext,
  store: ImageStore,
  name: string,
  pullFlag: string | undefined,
  platform?: Platform,
): Promise<ImageRecord> {
  const policy = parsePullPolicy(pullFlag);
  const here = policy === "always" ? undefined : store.find(name);
  // --platform: an image of another platform counts as missing (docker 20.10 pulls that platform's)
  const present = here && (!platform || platformMatches(platform, here.config)) ? here : undefined;
  if (present) return present;
  if (policy === "never") {
    const found = store.resolve(name); // throws docker's "Unable to find image"
    throw new SkiffError(
      `image with reference ${name} was found but does not match the specified platform: wanted ${
        formatPlatform(platform!)
      }, actual: ${
        formatPlatform({ os: found.config.os ?? "linux", architecture: found.config.architecture ?? "" })
      }`,
    );
  }
  const { ref } = parsePullReference(name);
  if (policy === "missing") console.error(`Unable to find image '${familiarString(ref)}' locally`);
  const { pullImage } = await import("../registry/pull.ts");
  const { RegistryClient } = await import("../registry/client.ts");
  const renderer = new ProgressRenderer(Deno.stderr, isatty(2));
  const say = (text: string) => renderer.sink({ kind: "message", text });
  let client: InstanceType<typeof RegistryClient> | undefined;
  try {
    client = new RegistryClient(ref.domain, registrySettingsFromEnvironment(ctx.insecureRegistries));
    const result = await pullImage(ctx.root, ref, { onEvent: renderer.sink, client, platform });
    renderer.flush();
    say(`Digest: ${result.digest}`);
    say(
      `Status: ${result.downloaded ? "Downloaded newer image" : "Image is up to date"} for ${
        familiarString(ref)
      }`,
    );
    return result.image;
  } catch (e) {
    // the verb's code (run 125, create 1), whatever the pull's own would be
    if (e instanceof SkiffError && e.exitCodeGiven) {
      throw new SkiffError(e.message, undefined, { kind: e.kind, cause: e });
    }
    throw e;
  } finally {
    renderer.flush();
    client?.close();
  }
}
