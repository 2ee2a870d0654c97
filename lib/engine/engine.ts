// The container engine: the one place that creates, starts, waits for, signals, stops and removes
// containers. The CLI's verbs parse flags, call it and print; the supervisor (monitor.ts) runs
// detached containers through the same create (create_run.ts), launch and finish (process.ts) and
// the same resource list (resources.ts); a later HTTP API or a build's RUN step calls it unchanged.
//
// Everything that enters a namespace or a cgroup runs in a child (the init stage, exec's forked program),
// never in the engine's own process. The one namespace call on the engine's thread is stage.ts's
// unshare(CLONE_NEWPID) + setns back around the init stage's spawn: it only sets the namespace of
// children spawned next from this thread, and both calls run synchronously around the spawn with no
// await between them, so no other request's spawn can fall between them. Not yet so: `cp` of a
// stopped container (container/cp.ts) unshares a mount namespace on its own thread for good; it
// must move into a child before one long-lived process serves cp requests.
//
// Modules are loaded per call (dynamic imports), but for the init stage's start: a verb loads what
// its call needs.

// static: the foreground run starts its init stage first thing, without another module round trip
import { abortInitStage, type InitStage, startInitStage } from "../runtime/stage.ts";
import { close as closeFd } from "../../ffi/libc.ts";
import { plainNetworkNamespaces } from "../runtime/spec.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord, ImageRecord } from "../state/types.ts";
import type { ImageStore } from "../image/store.ts";
import type { RunRequest } from "./create_run.ts";
import type { RunOutcome } from "./process.ts";
import type { CgroupHandle } from "./resources.ts";
import type { ContainerIO } from "../runtime/stdio.ts";
import type { StopOptions } from "./lifecycle.ts";
import type { AttachOptions, AttachSession } from "./attach_client.ts";
import { NoSuchContainerError, SkiffError } from "../errors.ts";
import type { ExecIO, ExecRequest, ExecStdio } from "../runtime/exec.ts";

/** What an engine serves: explicit, never read from the environment. */
export interface EngineConfig {
  root: StateRoot;
}

export interface RemoveOptions {
  /** rm -f: kill a running container first. */
  force?: boolean;
  /** rm -v: its anonymous volumes go too. */
  volumes?: boolean;
}

/** How a foreground run starts its container (decided by the caller before the image is known). */
export interface ForegroundRun {
  request: RunRequest;
  /** The image for the request (the CLI pulls a missing one, showing its progress). */
  image(store: ImageStore): Promise<ImageRecord>;
  io: ContainerIO;
  /** Keep the json log of the run (not for --rm, nor --log-driver none). */
  keepLog: boolean;
  /** The container's id, when the caller names it before it exists (a build's `Running in ID`). */
  id?: string;
  /**
   * An init stage the caller started already (the CLI starts it as soon as it has parsed its command
   * line), with the stdio run.ts gives it; from here on the engine owns it (and aborts it on failure).
   */
  stage?: InitStage;
}

/** One exec: the command and its flags, and how its stdio is made. */
export interface ExecSpec {
  request: ExecRequest;
  /** pipes copied to the caller (docker's attach), a pty (-t), or nothing (-d). */
  stdio: ExecStdio;
  /** -i: the caller's input reaches the command (else its stdin is the container's /dev/null). */
  interactive: boolean;
}

export class Engine {
  constructor(readonly config: EngineConfig) {}

  private get root(): StateRoot {
    return this.config.root;
  }

  /** The container an id, id prefix or name names; NoSuchContainerError else. */
  async find(ref: string | ContainerRecord): Promise<ContainerRecord> {
    if (typeof ref !== "string") return ref;
    const { findContainer } = await import("../state/containers.ts");
    return findContainer(this.root, ref);
  }

  /** A container from a request: of `image`, else of the image the request names, which must be here. */
  async create(request: RunRequest, image?: ImageRecord): Promise<string> {
    const { createDetached } = await import("./create_run.ts");
    return (await createDetached(this.root, request, image)).Id;
  }

  /** Starts a created or stopped container in the background: the supervisor owns it. */
  async start(ref: string | ContainerRecord): Promise<void> {
    const [{ startContainer }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    await startContainer(this.root, record);
  }

  /**
   * The container as it is now, if it can be attached to: docker's error (exit 1) for one that is
   * stopped, paused or restarting.
   */
  async attachable(ref: string | ContainerRecord): Promise<ContainerRecord> {
    const [{ current }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    const now = current(this.root, record.Id);
    if (!now) throw new NoSuchContainerError(record.Id, 1);
    if (now.State.Status === "paused") {
      throw new SkiffError("You cannot attach to a paused container, unpause it first", 1);
    }
    if (now.State.Status === "restarting") {
      throw new SkiffError("You cannot attach to a restarting container, wait until it is running", 1);
    }
    if (!now.State.Running) {
      throw new SkiffError("You cannot attach to a stopped container, start it first", 1);
    }
    return now;
  }

  /**
   * Attaches `io` to a running container (options.start: starts it first, attached before its
   * command runs, as `start -a`). Output goes to io.stdout/io.stderr (one raw stream with -t),
   * io.stdin to the container when options.stdin. The supervisor owns the container: one that a
   * foreground `skiff run` started cannot be attached to.
   */
  async attach(
    ref: string | ContainerRecord,
    io: ContainerIO,
    options: AttachOptions,
  ): Promise<AttachSession> {
    const [{ openAttach, AttachRefusedError }, { current }, record] = await Promise.all([
      import("./attach_client.ts"),
      import("./lifecycle.ts"),
      this.find(ref),
    ]);
    if (options.start && current(this.root, record.Id)?.State.Status === "paused") {
      throw new SkiffError(`cannot start a paused container, try unpause instead`);
    }
    // nobody listening: its output goes to a foreground `skiff run` (or its supervisor died)
    const notOwned = () =>
      new SkiffError(
        "cannot attach: the container is not run by the skiff supervisor (a foreground `skiff run` owns its output)",
        1,
      );
    try {
      return await openAttach(this.root, record.Id, io, options, notOwned);
    } catch (e) {
      // docker's start -a exits 1 when the start fails (its plain error), whatever the reason
      if (e instanceof AttachRefusedError && e.phase === "setup") throw new SkiffError(e.message, 1);
      if (e instanceof AttachRefusedError && e.phase === "start") {
        throw new SkiffError(
          `failed to create task for container: failed to create shim task: OCI runtime create failed: ${e.message}: unknown`,
          1,
        );
      }
      throw e;
    }
  }

  /** After an attach (AttachSession.pid): the exit code of that run, a restart policy or not. */
  async waitRun(ref: string | ContainerRecord, pid: number): Promise<number> {
    const [{ waitRunEnd }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    return await waitRunEnd(this.root, record, pid);
  }

  /** Resolves with the exit code once the container is down (at once for a stopped one). */
  async wait(ref: string | ContainerRecord): Promise<number> {
    const [{ waitContainer }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    return await waitContainer(this.root, record);
  }

  async kill(ref: string | ContainerRecord, signal = "KILL"): Promise<void> {
    const [{ killContainer }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    await killContainer(this.root, record, signal);
  }

  async stop(ref: string | ContainerRecord, opts: StopOptions = {}): Promise<void> {
    const [{ stopContainer }, record] = await Promise.all([import("./lifecycle.ts"), this.find(ref)]);
    await stopContainer(this.root, record, opts);
  }

  /** Removes a container and releases what it holds (resources.ts). */
  async remove(ref: string | ContainerRecord, opts: RemoveOptions = {}): Promise<void> {
    const [{ removeContainer }, record] = await Promise.all([import("./remove.ts"), this.find(ref)]);
    await removeContainer(this.root, record, { force: opts.force ?? false, volumes: opts.volumes });
  }

  /**
   * Runs a command in a running container (lib/runtime/exec.ts): resolves with its exit code (0 at
   * once with -d), throws ExecRefused, ExecFailed (126, 127) or a SkiffError when it cannot start.
   * Everything about its privileges comes from the container's record, never from its processes.
   */
  async exec(ref: string | ContainerRecord, spec: ExecSpec, io?: ExecIO): Promise<number> {
    const [{ execTarget, execInContainer }, { containerConfinement }, { execEvents }] = await Promise.all([
      import("../runtime/exec.ts"),
      import("../seccomp/mod.ts"),
      import("../state/events.ts"),
    ]);
    const record = await execTarget(this.root, typeof ref === "string" ? ref : ref.Id);
    // the container's own filter and no-new-privileges (docker: exec --privileged keeps them)
    const confinement = await containerConfinement(record.HostConfig, this.root.path);
    const events = execEvents(this.root, record, spec.request.command);
    const code = await execInContainer(
      this.root,
      record,
      spec.request,
      spec.stdio,
      spec.interactive,
      confinement,
      io,
    );
    if (spec.stdio !== "detached") events.died(code); // a detached command's exit is nobody's to see
    return code;
  }

  /**
   * Creates a container and runs it in the foreground with the caller's I/O; resolves once it has
   * exited. The init stage is started first, before the image is even looked up: its start-up
   * overlaps with all the rest. Its cgroup is created and joined (on Deno's blocking pool) while
   * the record is made and the stage sets up the rootfs; on any failure what was made is released
   * again.
   */
  async runForeground(run: ForegroundRun): Promise<RunOutcome> {
    const root = this.root;
    const { request } = run;
    const { tty, interactive } = request.container;
    // the container gets pipes that skiff copies, never the caller's own stdio (docker's attach);
    // with -t the pty replaces all three before the container's command runs
    // --pid host or container:NAME: the stage is spawned in that PID namespace (run.ts left it to us)
    const pidMode = request.container.namespaceModes?.PidMode;
    const pidNs = !run.stage && pidMode
      ? await (await import("./namespaces.ts")).stagePidNamespace(root, pidMode)
      : undefined;
    let stage: InitStage;
    try {
      stage = run.stage ??
        startInitStage(interactive && !tty ? "piped" : "null", tty ? "inherit" : "piped", pidNs);
    } finally {
      if (typeof pidNs === "object") closeFd(pidNs.fd);
    }
    stage.taken = true;
    let cgroup: CgroupHandle | undefined, record: ContainerRecord | undefined;
    let joined: Promise<void> | undefined;
    let ready;
    try {
      // the cgroup first, before the rest loads: the first cgroup.procs write sleeps for an RCU
      // grace period (~10-15 ms), on Deno's blocking pool while the modules load, the record is
      // made and the stage sets up the rootfs
      const [cgroups, { limitsOfRequest }, { newContainerId }] = await Promise.all([
        import("../cgroups/mod.ts"),
        import("./request_limits.ts"),
        import("../state/ids.ts"),
      ]);
      const id = run.id ?? request.id ?? newContainerId();
      // checks them first; in the request's --cgroup-parent, which its record keeps
      const placement = request.container.resources;
      const made = cgroups.createCgroup(root, id, limitsOfRequest(request), placement);
      cgroup = {
        addProcess: (pid) => made.addProcess(pid),
        oomKilled: () => made.oomKilled(),
        // what a run's end releases (resources.ts), loaded with the rest below
        destroy: () => made.destroy(),
      };
      joined = made.addProcessAsync(stage.child.pid);
      joined.catch(() => {}); // awaited by launchContainer, or below on failure
      // the network code (bridge, netlink, NAT: ~130 KB of modules) only for a network it sets up;
      // what the run's end releases with (resources.ts) loads once the container runs (process.ts)
      const plainMode = plainNetworkNamespaces(request.container.networkMode ?? "bridge") !== undefined;
      const [{ ImageStore }, foreground, { createForRun }, networkCode] = await Promise.all([
        import("../image/store.ts"),
        import("./process.ts"),
        import("./create_run.ts"),
        plainMode ? undefined : import("./network.ts"),
      ]);
      cgroup.destroy = async () =>
        (await foreground.releaseCodeFor(record)).releaseExitResources({
          root,
          id,
          record,
          cgroupPlacement: placement,
        });
      const cgroupView = cgroups.containerCgroupView(root, id, placement);
      const store = new ImageStore(root);
      const image = await run.image(store);
      ({ record } = await createForRun(root, request, image, store.layerDirs(image), id));
      // the network while the cgroup join waits for the kernel (~10 ms); a failure is launch's to report
      let network;
      try {
        const plain = plainNetworkNamespaces(record.HostConfig.NetworkMode);
        network = plain ? { namespaces: plain } : (networkCode ?? await import("./network.ts")).setupNetwork(
          root,
          record,
        );
      } catch (e) {
        network = e instanceof Error ? e : new Error(String(e));
      }
      ready = { foreground, record, cgroup, cgroupView, joined, network };
    } catch (e) {
      await joined?.catch(() => {});
      await cgroup?.destroy();
      await abortInitStage(stage);
      throw e;
    }
    // from here on launchContainer undoes what it must itself
    return await ready.foreground.runForeground(root, ready.record, ready.cgroup, stage, {
      cgroupView: ready.cgroupView,
      signalProxy: request.signalProxy,
      keepLog: run.keepLog,
      // the join goes on while the stage sets up the rootfs; launchContainer waits for it
      cgroupJoin: ready.joined,
      network: ready.network,
      io: run.io,
    });
  }
}
