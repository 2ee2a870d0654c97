// skiff: a Docker-compatible container engine. This file only dispatches: global flags, then the
// verb module, loaded on demand so a verb pays only for what it uses.

import { SkiffError, UsageError } from "./lib/errors.ts";
import { resolveRoot } from "./lib/state/root.ts";
import type { CliContext, Verb } from "./lib/cli/context.ts";
import { SysError } from "./ffi/errors.ts";

import { VERSION } from "./lib/version.ts";

type VerbLoader = () => Promise<{ default: Verb }>;
const VERBS: Record<string, VerbLoader> = {
  run: () => import("./lib/cli/run.ts"),
  exec: () => import("./lib/cli/exec.ts"),
  images: () => import("./lib/cli/images.ts"),
  rmi: () => import("./lib/cli/rmi.ts"),
  tag: () => import("./lib/cli/tag.ts"),
  load: () => import("./lib/cli/load.ts"),
  save: () => import("./lib/cli/save.ts"),
  history: () => import("./lib/cli/history.ts"),
  "image-prune": () => import("./lib/cli/image_prune.ts"),
  system: () => import("./lib/cli/system.ts"),
  info: () => import("./lib/cli/info.ts"),
  builder: () => import("./lib/cli/builder.ts"),
  import: () => import("./lib/cli/import.ts"),
  ps: () => import("./lib/cli/ps.ts"),
  rm: () => import("./lib/cli/rm.ts"),
  inspect: () => import("./lib/cli/inspect.ts"),
  version: () => import("./lib/cli/version.ts"),
  pull: () => import("./lib/cli/pull.ts"),
  push: () => import("./lib/cli/push.ts"),
  login: () => import("./lib/cli/login.ts"),
  logout: () => import("./lib/cli/logout.ts"),
  volume: () => import("./lib/cli/volume.ts"),
  network: () => import("./lib/cli/network.ts"),
  cp: () => import("./lib/cli/cp.ts"),
  export: () => import("./lib/cli/export.ts"),
  diff: () => import("./lib/cli/diff.ts"),
  build: () => import("./lib/cli/build.ts"),
  commit: () => import("./lib/cli/commit.ts"),
  pause: () => import("./lib/cli/pause.ts"),
  unpause: () => import("./lib/cli/unpause.ts"),
  rename: () => import("./lib/cli/rename.ts"),
  top: () => import("./lib/cli/top.ts"),
  stats: () => import("./lib/cli/stats.ts"),
  update: () => import("./lib/cli/update.ts"),
  "container-prune": () => import("./lib/cli/container_prune.ts"),
  __cp: () => import("./lib/container/cphelper.ts"), // cp's helper inside a running container
  "__cp-stopped": () => import("./lib/cli/cp_stopped.ts"), // cp of a stopped container
  logs: () => import("./lib/cli/logs.ts"),
  start: () => import("./lib/cli/start.ts"),
  attach: () => import("./lib/cli/attach.ts"),
  stop: () => import("./lib/cli/stop.ts"),
  kill: () => import("./lib/cli/kill.ts"),
  restart: () => import("./lib/cli/restart.ts"),
  wait: () => import("./lib/cli/wait.ts"),
  create: () => import("./lib/cli/create.ts"),
  events: () => import("./lib/cli/events.ts"),
  port: () => import("./lib/cli/port.ts"),
  // `container`/`image` with no known subcommand: docker's help (the subcommands are ALIASES)
  container: () => import("./lib/cli/management.ts").then((m) => ({ default: m.containerVerb })),
  image: () => import("./lib/cli/management.ts").then((m) => ({ default: m.imageVerb })),
  __supervisor: () => import("./lib/engine/monitor.ts"), // owns detached containers (run -d, start)
};
// docker's management-command spellings
const ALIASES: Record<string, string[]> = {
  "container run": ["run"],
  "container create": ["create"],
  "container attach": ["attach"],
  "system events": ["events"],
  "container exec": ["exec"],
  "container ls": ["ps"],
  "container list": ["ps"],
  "container ps": ["ps"],
  "container port": ["port"],
  "container kill": ["kill"],
  "container logs": ["logs"],
  "container restart": ["restart"],
  "container start": ["start"],
  "container stop": ["stop"],
  "container wait": ["wait"],
  "container rm": ["rm"],
  "container inspect": ["inspect", "--type", "container"],
  "container cp": ["cp"],
  "container export": ["export"],
  "container diff": ["diff"],
  "container commit": ["commit"],
  "container pause": ["pause"],
  "container unpause": ["unpause"],
  "container rename": ["rename"],
  "container top": ["top"],
  "container stats": ["stats"],
  "container update": ["update"],
  "container prune": ["container-prune"],
  "image build": ["build"],
  "image ls": ["images"],
  "image list": ["images"],
  "image rm": ["rmi"],
  "image tag": ["tag"],
  "image load": ["load"],
  "image save": ["save"],
  "image history": ["history"],
  "image prune": ["image-prune"],
  "system fsck": ["system", "check"],
  "system info": ["info"],
  "image import": ["import"],
  "image pull": ["pull"],
  "image push": ["push"],
  "image inspect": ["inspect", "--type", "image"],
};

const USAGE = `Usage:  skiff [OPTIONS] COMMAND

A Docker-compatible container engine, one binary, no daemon.

Options:
      --insecure-registry list   A registry (host[:port] or IPv4 CIDR) to reach over plain HTTP;
                                 repeatable (also /etc/docker/daemon.json "insecure-registries")
      --root string              State directory (default /var/lib/skiff, or $SKIFF_ROOT)
  -D, --debug                    Show stack traces of errors
  -v, --version                  Print version information and quit

Commands:
  run        Create and run a new container from an image
  create     Create a new container
  exec       Execute a command in a running container
  attach     Attach local standard input, output, and error streams to a running container
  ps         List containers
  rm         Remove one or more containers
  inspect    Return low-level information on containers or images
  images     List images
  build      Build an image from a Dockerfile
  rmi        Remove one or more images
  tag        Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  load       Load an image from a tar archive (docker-archive or OCI layout)
  save       Save one or more images to a tar archive
  history    Show the history of an image
  import     Import the contents of a tarball to create a filesystem image
  pull       Download an image from a registry
  push       Upload an image to a registry
  login      Log in to a registry
  logout     Log out from a registry
  logs       Fetch the logs of a container
  start      Start one or more stopped containers
  stop       Stop one or more running containers
  restart    Restart one or more containers
  kill       Kill one or more running containers
  wait       Block until one or more containers stop, then print their exit codes
  events     Get real time events from the server
  port       List port mappings or a specific mapping for the container
  version    Show the skiff version
  info       Display system-wide information
  builder    Manage builds (prune: remove build cache)
  cp         Copy files/folders between a container and the local filesystem
  export     Export a container's filesystem as a tar archive
  diff       Inspect changes to files or directories on a container's filesystem
  commit     Create a new image from a container's changes
  pause      Pause all processes within one or more containers
  unpause    Unpause all processes within one or more containers
  rename     Rename a container
  top        Display the running processes of a container
  stats      Display a live stream of container(s) resource usage statistics
  update     Update configuration of one or more containers
  volume     Manage volumes (create, ls, inspect, rm, prune)
  network    Manage networks (create, ls, inspect, rm, prune)
  container  Manage containers (docker's management commands: container ls, container stop, ...)
  image      Manage images (image ls, image pull, image rm, ...)
  system     Manage skiff (df, events, prune, info; check: verify the state)
`;

/** The verb being run (docker's spellings resolved): the exit code of a failure that names none. */
let runningVerb: string | undefined;

/**
 * docker's CLI exits 125 for its own usage errors and for whatever `run` fails with; every other
 * command exits 1 for what its daemon refuses. A failure that names its code keeps it.
 */
export function exitCodeOf(e: unknown, verb: string | undefined): number {
  if (e instanceof SkiffError && e.exitCodeGiven) return e.exitCode;
  return verb === undefined || verb === "run" || verb.startsWith("__") ? 125 : 1;
}

export async function main(argv: string[]): Promise<number> {
  let rootFlag: string | undefined;
  let debug = false;
  const insecure: string[] = [];
  let i = 0;
  const value = (flag: string) => {
    if (i + 1 >= argv.length || argv[i + 1] === "") throw new UsageError(`flag needs an argument: ${flag}`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--root") rootFlag = value("--root");
    else if (a.startsWith("--root=")) rootFlag = a.slice(7);
    else if (a === "--insecure-registry") insecure.push(value("--insecure-registry"));
    else if (a.startsWith("--insecure-registry=")) {
      if (a.length === 20) throw new UsageError("flag needs an argument: --insecure-registry");
      insecure.push(a.slice(20));
    } else if (a === "-D" || a === "--debug") debug = true;
    else if (a === "-v" || a === "--version") {
      console.log(`skiff version ${VERSION}`);
      return 0;
    } else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith("-")) throw new UsageError(`unknown flag: ${a}`);
    else break;
  }
  let rest = argv.slice(i);
  if (rest.length === 0) {
    console.log(USAGE);
    return 0;
  }
  const alias = ALIASES[`${rest[0]} ${rest[1]}`];
  if (alias) rest = [...alias, ...rest.slice(2)];
  runningVerb = rest[0];
  const loader = VERBS[rest[0]];
  if (!loader) throw new UsageError(`'${rest[0]}' is not a skiff command. See 'skiff --help'`);
  if (Deno.uid() !== 0 && rest[0] !== "version") {
    throw new SkiffError("skiff needs root: run it as root (rootless mode is not supported yet)");
  }
  const ctx: CliContext = { root: resolveRoot(rootFlag), debug, insecureRegistries: insecure };
  if (rest[0] !== "version") ctx.root.ensure();
  // a detached container whose supervisor is gone wakes a new one in any command that sees it
  const [{ default: verb }] = await Promise.all([loader(), import("./lib/engine/wake.ts")]);
  return await verb(rest.slice(1), ctx);
}

/** One line on stderr, docker's exit code. */
export function reportError(e: unknown, debug: boolean, verb = runningVerb): number {
  if (e instanceof UsageError) {
    console.error(`skiff: ${e.message}${e.verb ? ` (see 'skiff ${e.verb} --help')` : ""}`);
    return e.exitCode;
  }
  if (e instanceof SkiffError || e instanceof SysError || e instanceof Error) {
    console.error(`skiff: ${e.message}`);
    if (debug) console.error(e.stack);
    return exitCodeOf(e, verb);
  }
  console.error(`skiff: ${String(e)}`);
  return exitCodeOf(e, verb);
}

if (import.meta.main) {
  // the default bridge's collector (lib/network/gc.ts): no state root, no CLI
  if (Deno.args[0] === "__netgc") {
    Deno.exit(await (await import("./lib/network/gc.ts")).netgcMain(Deno.args.slice(1)));
  }
  const debug = Deno.args.includes("-D") || Deno.args.includes("--debug");
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    code = reportError(e, debug);
  }
  Deno.exit(code);
}
