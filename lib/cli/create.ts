// skiff create [OPTIONS] IMAGE [COMMAND] [ARG...]: every `run` flag (lib/cli/run_flags.ts), the
// image pulled when missing as `run` does, the container made in state "created" and its full id
// printed. `start` runs it. Bad input: docker's line, exit 125, nothing made.

import { bool, parseArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { UsageError } from "../errors.ts";
import { checkSeccompProfiles } from "./security_opt.ts";
import { adaptLimitsToHost, RUN_OPTIONS, runRequest, warnAboutPorts } from "./run_flags.ts";

/** `run`'s flags less those about attaching to a run (docker's create has no -d, --sig-proxy). */
const OPTIONS = RUN_OPTIONS.filter((o) => o.name !== "detach" && o.name !== "sig-proxy");

/** A usage error of the shared flag parsing, pointed at `create --help`. */
function asCreate<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.message, "create");
    throw e;
  }
}

const create: Verb = async (args, ctx) => {
  const parsed = asCreate(() => parseArgs(args, { verb: "create", options: OPTIONS, stopAtPositional: 1 }));
  if (bool(parsed, "help")) {
    const { USAGE } = await import("./run.ts");
    console.log(
      USAGE.replace("skiff run", "skiff create").replace(
        "Create and run a new container from an image",
        "Create a new container",
      ).split("\n").filter((l) => !/^ +(-d, --detach|--sig-proxy) /.test(l)).join("\n"),
    );
    return 0;
  }
  if (parsed.positionals.length === 0) {
    throw new UsageError(`"skiff create" requires at least 1 argument.`, "create", true);
  }
  const request = asCreate(() => runRequest(parsed, false));
  warnAboutPorts(request);
  await checkSeccompProfiles(request.container.securityOpt ?? []);
  await adaptLimitsToHost(request);
  const [{ ImageStore }, { Engine }] = await Promise.all([
    import("../image/store.ts"),
    import("../engine/engine.ts"),
  ]);
  const engine = new Engine({ root: ctx.root });
  // the limits are checked before a pull (docker's order)
  (await import("../engine/create_run.ts")).checkLimits(request);
  const store = new ImageStore(ctx.root);
  const pullFlag = str(parsed, "pull");
  // --cidfile: made before the pull and the container, written once the container exists
  const cid = (await import("./cidfile.ts")).CidFile.open(request.container.cidFile);
  let id;
  try {
    const image = (pullFlag === undefined || pullFlag === "missing") &&
        (await import("../engine/create_run.ts")).findForRun(store, request.imageRef, request.platform) ||
      await (await import("./pull.ts")).imageForRun(ctx, store, request.imageRef, pullFlag, request.platform);
    id = await engine.create(request, image);
  } catch (e) {
    cid.remove();
    throw e;
  }
  cid.write(id);
  cid.close();
  console.log(id);
  return 0;
};
export default create;
