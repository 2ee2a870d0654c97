// `skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]`: create a container from an image and run it in the
// foreground. Parses and validates every flag before anything is created (docker's wording, exit
// 125), then hands over to the engine. Kept lean: this is the hot path of `run --rm IMAGE true`.

import { bool, parseArgs, type Parsed, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { SkiffError } from "../errors.ts";
import type { RunRequest } from "../engine/create_run.ts";
import type { StartReply } from "../engine/detach.ts";
import type { ImageStore } from "../image/store.ts";
import { RUN_OPTIONS as OPTIONS } from "./run_options.ts";
import { abortInitStage, type InitStage, startInitStage } from "../runtime/stage.ts";

export const USAGE = `Usage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]

Create and run a new container from an image

Options:
      --add-host list           Add a custom host-to-IP mapping (host:ip)
      --blkio-weight uint16     Block IO (relative weight), between 10 and 1000, or 0 to disable
      --blkio-weight-device list
                                Block IO weight (relative device weight) (default [])
      --cap-add list            Add Linux capabilities
      --cap-drop list           Drop Linux capabilities
      --cgroup-parent string    Optional parent cgroup for the container
      --cgroupns string         Cgroup namespace to use (host|private)
  -c, --cpu-shares int          CPU shares (relative weight)
      --cpu-period int          Limit CPU CFS (Completely Fair Scheduler) period
      --cpu-quota int           Limit CPU CFS (Completely Fair Scheduler) quota
      --cpus decimal            Number of CPUs
      --cpuset-cpus string      CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string      MEMs in which to allow execution (0-3, 0,1)
  -d, --detach                  Run container in background and print container ID
      --device list             Add a host device to the container
      --device-cgroup-rule list Add a rule to the cgroup allowed devices list
      --device-read-bps list    Limit read rate (bytes per second) from a device (default [])
      --device-read-iops list   Limit read rate (IO per second) from a device (default [])
      --device-write-bps list   Limit write rate (bytes per second) to a device (default [])
      --device-write-iops list  Limit write rate (IO per second) to a device (default [])
      --dns list                Set custom DNS servers
      --dns-option list         Set DNS options
      --dns-search list         Set custom DNS search domains
      --entrypoint string       Overwrite the default ENTRYPOINT of the image
      --expose list             Expose a port or a range of ports
  -e, --env list                Set environment variables
      --env-file list           Read in a file of environment variables
  -a, --attach list             Attach to STDIN, STDOUT or STDERR
      --cidfile string          Write the container ID to the file
      --disable-content-trust   Skip image verification (default true)
      --domainname string       Container NIS domain name
      --group-add list          Add additional groups to join
      --health-cmd string       Command to run to check health
      --health-interval duration
                                Time between running the check (ms|s|m|h) (default 0s)
      --health-retries int      Consecutive failures needed to report unhealthy
      --health-start-period duration
                                Start period for the container to initialize before starting
                                health-retries countdown (ms|s|m|h) (default 0s)
      --health-timeout duration
                                Maximum time to allow one check to run (ms|s|m|h) (default 0s)
  -h, --hostname string         Container host name
      --init                    Run an init inside the container that forwards signals and reaps processes
      --gpus gpu-request        GPU devices to add to the container (refused: no GPU driver here)
      --isolation string        Container isolation technology (Linux: default only)
      --kernel-memory bytes     Kernel memory limit (deprecated: taken with a warning, not applied)
      --no-healthcheck          Disable any container-specified HEALTHCHECK
  -i, --interactive             Keep STDIN open even if not attached
      --ip string               IPv4 address (e.g., 172.30.100.104), on a user-defined network
      --ip6 string              IPv6 address (taken; skiff's networks are IPv4)
      --ipc string              IPC mode to use
  -l, --label list              Set meta data on a container
      --label-file list         Read in a line delimited file of labels
      --link list               Add link to another container
      --log-driver string       Logging driver for the container (json-file, local, none)
      --log-opt list            Log driver options (max-size, max-file)
      --mac-address string      Container MAC address (e.g., 92:d0:c6:0a:29:33)
  -m, --memory bytes            Memory limit
      --memory-reservation bytes Memory soft limit
      --memory-swap bytes       Swap limit equal to memory plus swap: '-1' to enable unlimited swap
      --memory-swappiness int   Tune container memory swappiness (0 to 100) (default -1)
      --name string             Assign a name to the container
      --network network         Connect a container to a network (bridge, none, host, container:NAME)
      --network-alias list      Add network-scoped alias for the container
      --oom-kill-disable        Disable OOM Killer
      --oom-score-adj int       Tune host's OOM preferences (-1000 to 1000)
      --pid string              PID namespace to use
      --pids-limit int          Tune container pids limit (set -1 for unlimited)
      --privileged              Give extended privileges to this container
  -p, --publish list            Publish a container's port(s) to the host
  -P, --publish-all             Publish all exposed ports to random ports
      --read-only               Mount the container's root filesystem as read only
      --restart string          Restart policy to apply when a container exits (default "no")
      --pull string             Pull image before running ("always", "missing", "never") (default "missing")
      --rm                      Automatically remove the container when it exits
      --runtime string          Runtime to use for this container (skiff; "runc" is taken as it)
      --security-opt list       Security Options
      --shm-size bytes          Size of /dev/shm
      --sig-proxy               Proxy received signals to the process (default true)
      --stop-signal string      Signal to stop the container
      --stop-timeout int        Timeout (in seconds) to stop a container
      --storage-opt list        Storage driver options for the container (refused: overlay over xfs only)
      --sysctl map              Sysctl options (default map[])
      --tmpfs list              Mount a tmpfs directory (PATH[:OPTIONS])
  -t, --tty                     Allocate a pseudo-TTY
  -u, --user string             Username or UID (format: <name|uid>[:<group|gid>])
      --ulimit ulimit           Ulimit options (default [])
      --userns string           User namespace to use
      --uts string              UTS namespace to use
      --platform string         Set platform if server is multi-platform capable
  -v, --volume list             Bind mount a volume ([SOURCE:]DESTINATION[:MODE])
      --volume-driver string    Optional volume driver for the container (local)
      --volumes-from list       Mount volumes from the specified container(s)
      --mount mount             Attach a filesystem mount to the container
  -w, --workdir string          Working directory inside the container
`;

/** run -d: the supervisor starts the created container; prints its id once its command runs. */
async function runDetached(ctx: Parameters<Verb>[1], id: string): Promise<number> {
  const { startDetached } = await import("../engine/detach.ts");
  return reportDetached(await startDetached(ctx.root, id), id);
}

/**
 * docker's CLI picks the code of a failed start from the error's words (cli/command/container/run.go
 * runStartContainerErr): 127 for a missing file, 126 for permission denied or a directory, else 125.
 */
export function startErrorCode(error: string): number {
  if (
    /executable file not found|no such file or directory|system cannot find the file specified/.test(error)
  ) {
    return 127;
  }
  return /permission denied|is a directory/.test(error) ? 126 : 125;
}

/** Prints the id as `run -d` does (the supervisor's, or the one this process created), or fails. */
function reportDetached(reply: StartReply, createdId?: string): number {
  if (!reply.ok) {
    // the supervisor could not create it: the same line and code as when the CLI fails to
    if (reply.phase === "create") throw new SkiffError(reply.error, reply.exitCode);
    // made, not started: docker prints the id first, then the error with its CLI's exit code
    const id = reply.id ?? createdId;
    if (id) console.log(id);
    const line = reply.phase === "setup" ? reply.error : `unable to start container process: ${reply.error}`;
    console.error(`skiff: ${line}`);
    return startErrorCode(line);
  }
  console.log(reply.id ?? createdId);
  return 0;
}

/**
 * run -d of an image that is here: the supervisor creates and starts the container, so this
 * process loads next to nothing. undefined: the image must be pulled first (the CLI's own path).
 */
async function runDetachedBySupervisor(
  ctx: Parameters<Verb>[1],
  request: RunRequest,
  made?: (id: string) => void,
): Promise<number | undefined> {
  const { runDetachedRequest } = await import("../engine/detach.ts");
  const reply = await runDetachedRequest(ctx.root, request);
  if (!reply.ok && reply.imageMissing) return undefined;
  if (reply.id) made?.(reply.id);
  return reportDetached(reply);
}

const run: Verb = async (args, ctx) => {
  const parsed = parseArgs(args, { verb: "run", options: OPTIONS, stopAtPositional: 1 });
  if (bool(parsed, "help")) {
    console.log(USAGE);
    return 0;
  }
  const detach = bool(parsed, "detach");
  // the foreground run's init stage starts now, before the flags' parsers and the engine load: its
  // Deno start-up (~15 ms) overlaps with all of that; bad input below kills it again. The container
  // gets pipes that skiff copies, never the caller's own stdio (docker's attach); with -t the pty
  // replaces all three before the container's command runs
  const tty = bool(parsed, "tty"), interactive = bool(parsed, "interactive");
  // a warm supervisor runs it, when one is up and the run is of the kind it serves (foreground.ts);
  // one with a restart policy always ("start": once its flags are checked, a supervisor is started
  // if none is up), as docker's daemon restarts it after the exit this run reports
  const served = !detach && servedBySupervisor(parsed);
  const warm = served ? await connectSupervisor(ctx) ?? (restarts(parsed) ? "start" : undefined) : undefined;
  // --pid host / container:NAME: the engine spawns it in that PID namespace once NAME is checked
  const stage = detach || warm || str(parsed, "pid")
    ? undefined
    : startInitStage(interactive && !tty ? "piped" : "null", tty ? "inherit" : "piped");
  try {
    return await runWithStage(parsed, ctx, detach, stage, warm);
  } catch (e) {
    if (stage && !stage.taken) await abortInitStage(stage);
    throw e;
  } finally {
    try {
      if (typeof warm === "object") warm.close();
    } catch { /* closed by the run */ }
  }
};

/**
 * The state root's supervisor, when one listens now (nothing is started when none does). Inline,
 * not engine/foreground.ts's: a run that finds none must not wait for a module before its fork.
 */
async function connectSupervisor(ctx: Parameters<Verb>[1]): Promise<Deno.UnixConn | undefined> {
  try {
    // engine/detach.ts supervisorSocket
    return await Deno.connect({ transport: "unix", path: `${ctx.root.path}/supervisor/sock` });
  } catch {
    return undefined; // none (or one on its way out): the run is this process's own
  }
}

/**
 * Whether a warm supervisor may run this foreground run for the CLI (engine/foreground.ts): one
 * without a terminal or stdin to relay, --cidfile or a pull.
 */
function servedBySupervisor(parsed: Parsed): boolean {
  const pull = str(parsed, "pull");
  return !bool(parsed, "tty") && !bool(parsed, "interactive") && !str(parsed, "cidfile") &&
    (pull === undefined || pull === "missing");
}

/** A restart policy (its value is checked with the other flags). */
function restarts(parsed: Parsed): boolean {
  const restart = str(parsed, "restart");
  return restart !== undefined && restart !== "no";
}

async function runWithStage(
  parsed: Parsed,
  ctx: Parameters<Verb>[1],
  detach: boolean,
  stage: InitStage | undefined,
  warm: Deno.UnixConn | "start" | undefined,
): Promise<number> {
  const [{ adaptLimitsToHost, runRequest, warnAboutPorts }, { checkSeccompProfiles }] = await Promise.all([
    import("./run_flags.ts"),
    import("./security_opt.ts"),
  ]);
  const request = runRequest(parsed, !detach); // docker checks the terminal only when it attaches
  warnAboutPorts(request);
  await checkSeccompProfiles(request.container.securityOpt ?? []);
  await adaptLimitsToHost(request);
  if (!request.container.cidFile) return await runRequested(request, parsed, ctx, detach, stage, warm);
  // --cidfile: made now, the id chosen here and written before the container is made; it goes
  // again if the container never came to be
  const { CidFile } = await import("./cidfile.ts");
  const { newContainerId } = await import("../state/containers.ts");
  const cid = CidFile.open(request.container.cidFile);
  request.id = newContainerId();
  cid.write(request.id);
  try {
    // a supervisor of an older skiff (one outlives an upgrade while it owns containers) makes its
    // own id: the file then names the container it made
    return await runRequested(
      request,
      parsed,
      ctx,
      detach,
      stage,
      undefined,
      (id) => id !== request.id && cid.write(id),
    );
  } catch (e) {
    if (!(await import("../state/fsutil.ts")).exists(ctx.root.container(request.id))) cid.remove();
    throw e;
  } finally {
    cid.close();
  }
}

async function runRequested(
  request: RunRequest,
  parsed: Parsed,
  ctx: Parameters<Verb>[1],
  detach: boolean,
  stage: InitStage | undefined,
  warm?: Deno.UnixConn | "start",
  made?: (id: string) => void,
): Promise<number> {
  const pullFlag = str(parsed, "pull");
  const io = {
    stdout: request.container.attach?.stdout === false ? DISCARD : Deno.stdout,
    stderr: request.container.attach?.stderr === false ? DISCARD : Deno.stderr,
  };
  if (warm) {
    const { runThroughSupervisor, startSupervisor } = await import("../engine/foreground.ts");
    const conn = warm === "start" ? await startSupervisor(ctx.root) : warm;
    // undefined: nothing was made (no supervisor could be started, it was on its way out, or the
    // image must be pulled first): this process runs it itself
    const outcome = conn &&
      await runThroughSupervisor(ctx.root, conn, request, {
        ...io,
        signalProxy: request.signalProxy !== false,
      });
    if (outcome) return reportForeground(outcome);
  }
  if (detach && (pullFlag === undefined || pullFlag === "missing")) {
    const code = await runDetachedBySupervisor(ctx, request, made);
    if (code !== undefined) return code;
  }

  const { Engine } = await import("../engine/engine.ts");
  const engine = new Engine({ root: ctx.root });
  // a missing image is pulled first (docker's --pull=missing); pull.ts loads only then
  const image = async (store: ImageStore) =>
    (pullFlag === undefined || pullFlag === "missing") && await presentImage(store, request) ||
    await (await import("./pull.ts")).imageForRun(ctx, store, request.imageRef, pullFlag, request.platform);
  if (detach) {
    // the image had to be pulled (or --pull always): this process creates, the supervisor starts
    const { ImageStore } = await import("../image/store.ts");
    const id = await engine.create(request, await image(new ImageStore(ctx.root)));
    return await runDetached(ctx, id);
  }
  const outcome = await engine.runForeground({
    request,
    image,
    stage,
    // skiff's own stdio, its terminal following the container's pty (runtime/stdio.ts ContainerIO)
    // -a: a stream not attached is not shown (the container still writes it: its log keeps it)
    io: { stdin: Deno.stdin, ...io, terminal: true },
    // a --rm container is not logged: docker logs it, but nobody can read that log once it is
    // removed, and skipping it keeps `run --rm` as fast as before
    keepLog: !request.container.autoRemove && request.container.logConfig?.Type !== "none",
  });
  // no supervisor was up: one is started to stay a while (monitor.ts LINGER_MS), so that the next
  // run of a script finds it warm; it costs this run the spawn (~1 ms), after its container ended
  if (!warm && servedBySupervisor(parsed)) {
    (await import("../engine/detach.ts")).spawnSupervisor(ctx.root, true);
  }
  return reportForeground(outcome);
}

/** The start's error in docker's words, if any; the code to exit with. */
function reportForeground(outcome: { exitCode: number; error?: string; daemonError?: boolean }): number {
  if (outcome.error) {
    console.error(
      `skiff: ${outcome.daemonError ? "" : "unable to start container process: "}${outcome.error}`,
    );
  }
  return outcome.exitCode;
}

export default run;

/** Where a stream that -a leaves out goes. */
const DISCARD = { write: (chunk: Uint8Array) => Promise.resolve(chunk.length) };

/** The image named, when it is here (of the --platform given: create_run.ts loads only then). */
export async function presentImage(store: ImageStore, request: RunRequest) {
  if (!request.platform) return store.find(request.imageRef);
  return (await import("../engine/create_run.ts")).findForRun(store, request.imageRef, request.platform);
}
