// skiff build [OPTIONS] PATH | -
// docker's classic builder (DOCKER_BUILDKIT=0): its flags, its output, its exit codes. The work is
// lib/build/build.ts's; this parses, reads the Dockerfile and the context's path, and prints.

import { join } from "../path.ts";
import { SkiffError, UsageError } from "../errors.ts";
import { bool, list, parseArgs, type Parsed, str } from "./args.ts";
import type { Verb } from "./context.ts";
import type { StateRoot } from "../state/root.ts";

const USAGE = `Usage:  skiff build [OPTIONS] PATH | -

Build an image from a Dockerfile

Options:
      --add-host list           Add a custom host-to-IP mapping (host:ip)
      --build-arg list          Set build-time variables
      --cache-from strings      Images to consider as cache sources (taken; skiff's own step cache is used)
      --cgroup-parent string    Optional parent cgroup for the container
      --compress                Compress the build context using gzip (taken; the context is not sent)
      --cpu-period int          Limit the CPU CFS (Completely Fair Scheduler) period
      --cpu-quota int           Limit the CPU CFS (Completely Fair Scheduler) quota
  -c, --cpu-shares int          CPU shares (relative weight)
      --cpuset-cpus string      CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string      MEMs in which to allow execution (0-3, 0,1)
      --disable-content-trust   Skip image verification (default true)
  -f, --file string             Name of the Dockerfile (Default is 'PATH/Dockerfile')
      --force-rm                Always remove intermediate containers
      --iidfile string          Write the image ID to the file
      --isolation string        Container isolation technology
      --label list              Set metadata for an image
  -m, --memory bytes            Memory limit
      --memory-swap bytes       Swap limit equal to memory plus swap: '-1' to enable unlimited swap
      --network string          Set the networking mode for the RUN instructions during build (default "default")
      --no-cache                Do not use cache when building the image
      --platform string         Set platform if server is multi-platform capable
      --pull                    Always attempt to pull a newer version of the image
  -q, --quiet                   Suppress the build output and print image ID on success
      --rm                      Remove intermediate containers after a successful build (default true)
      --security-opt strings    Security options
      --shm-size bytes          Size of /dev/shm
  -t, --tag list                Name and optionally a tag in the 'name:tag' format
      --target string           Set the target build stage to build.
      --ulimit ulimit           Ulimit options (default [])`;

/**
 * build's flags for its RUN containers, handed on as `run`'s (docker's classic builder gives them to
 * each intermediate container; they are not part of the cache key, as in docker).
 */
const RUN_CONTAINER_OPTIONS = [
  { name: "add-host", kind: "list" },
  { name: "cgroup-parent", kind: "string" },
  { name: "cpu-period", kind: "string" },
  { name: "cpu-quota", kind: "string" },
  { name: "cpu-shares", short: "c", kind: "string" },
  { name: "cpuset-cpus", kind: "string" },
  { name: "cpuset-mems", kind: "string" },
  { name: "isolation", kind: "string" },
  { name: "memory", short: "m", kind: "string" },
  { name: "memory-swap", kind: "string" },
  { name: "security-opt", kind: "list" },
  { name: "shm-size", kind: "string" },
  { name: "ulimit", kind: "list" },
] as const;

/** The RUN containers' flags as `run` arguments, in the order given per flag. */
function runContainerFlags(p: Parsed): string[] {
  const flags: string[] = [];
  for (const o of RUN_CONTAINER_OPTIONS) {
    if (o.kind === "list") { for (const v of list(p, o.name)) flags.push(`--${o.name}`, v); }
    else if (str(p, o.name) !== undefined) flags.push(`--${o.name}`, str(p, o.name)!);
  }
  return flags;
}

const OPTIONS = [
  ...RUN_CONTAINER_OPTIONS,
  { name: "cache-from", kind: "list" },
  { name: "compress", kind: "bool" },
  { name: "disable-content-trust", kind: "bool" },
  { name: "build-arg", kind: "list" },
  { name: "force-rm", kind: "bool" },
  { name: "file", short: "f", kind: "string" },
  { name: "iidfile", kind: "string" },
  { name: "label", kind: "list" },
  { name: "network", kind: "string" },
  { name: "no-cache", kind: "bool" },
  { name: "platform", kind: "string" },
  { name: "pull", kind: "bool" },
  { name: "quiet", short: "q", kind: "bool" },
  { name: "rm", kind: "bool" },
  { name: "tag", short: "t", kind: "list" },
  { name: "target", kind: "string" },
] as const;

/** An absolute path (node:path's resolve without loading Deno's Node layer). */
const resolve = (p: string) => join(p.startsWith("/") ? "/" : Deno.cwd(), p);

const HOST_ARCH = ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch] ??
  Deno.build.arch;
const ARCH_ALIASES: Record<string, string> = { x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64" };

/** `--platform`: docker's syntax check; only the host's platform can be built (no emulation). */
function checkPlatform(spec: string): void {
  for (const part of spec.split("/")) {
    if (!/^[A-Za-z0-9_-]+$/.test(part)) {
      throw new SkiffError(
        `failed to parse platform ${spec}: "${part}" is an invalid component of "${spec}": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`,
        1,
      );
    }
  }
  const [os, arch] = spec.toLowerCase().split("/");
  // "linux", "linux/amd64", "linux/amd64/v2"; a bare "amd64" means linux/amd64, as containerd reads it
  const isArch = (a: string) => (ARCH_ALIASES[a] ?? a) === HOST_ARCH;
  const ok = arch === undefined ? os === "linux" || isArch(os) : os === "linux" && isArch(arch);
  if (!ok) {
    throw new SkiffError(
      `failed to build for platform ${spec}: this engine builds for linux/${HOST_ARCH} only (no emulation)`,
      1,
    );
  }
}

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

const build: Verb = async (args, ctx) => {
  const p = parseArgs(args, { verb: "build", options: [...OPTIONS] });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  if (p.positionals.length !== 1) {
    throw new UsageError(`"build" requires exactly 1 argument.`, "build", true);
  }
  const quiet = bool(p, "quiet");
  const contextArg = p.positionals[0];
  const fileFlag = str(p, "file");
  let dockerfile: string;
  let fileName: string;
  let contextDir: string | undefined;
  // `build -` with a tar on stdin: the context, unpacked into <root>/tmp for this build
  let stdinContext: string | undefined;
  try {
    if (contextArg === "-") {
      const input = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
      const { isArchive } = await import("../build/archive.ts");
      if (isArchive(input)) {
        stdinContext = await unpackContext(ctx.root, input);
        contextDir = stdinContext;
        fileName = fileFlag === undefined || fileFlag === "-" ? "Dockerfile" : fileFlag;
        const { UnionView } = await import("../build/union.ts");
        const view = new UnionView([stdinContext]);
        try {
          // read inside the context: a Dockerfile that is a symlink names a file of the context, never the host's
          const data = view.readFile(fileName);
          if (!data) {
            throw new SkiffError(
              `Cannot locate specified Dockerfile: ${fileName}`,
              1,
            );
          }
          dockerfile = new TextDecoder().decode(data);
        } finally {
          view.close();
        }
      } else {
        if (fileFlag !== undefined) {
          throw new SkiffError("can't use -f with a Dockerfile from stdin (use '-')", 1);
        }
        dockerfile = new TextDecoder().decode(input);
        fileName = "Dockerfile";
      }
    } else {
      contextDir = resolve(contextArg);
      try {
        if (!Deno.statSync(contextDir).isDirectory) throw new Error();
      } catch {
        throw new SkiffError(`unable to prepare context: path "${contextArg}" not found`, 1);
      }
      const path = fileFlag === "-"
        ? undefined
        : fileFlag !== undefined
        ? resolve(fileFlag)
        : `${contextDir}/Dockerfile`;
      fileName = fileFlag === undefined || fileFlag === "-" ? "Dockerfile" : fileFlag;
      try {
        dockerfile = path === undefined ? await readStdin() : Deno.readTextFileSync(path);
      } catch {
        throw new SkiffError(
          `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path}: no such file or directory`,
          1,
        );
      }
    }
    const buildArgs = new Map<string, string | undefined>();
    for (const a of list(p, "build-arg")) {
      const eq = a.indexOf("=");
      // `--build-arg K` takes K's value from skiff's environment (docker's rule), unset when absent
      if (eq < 0) buildArgs.set(a, Deno.env.get(a));
      else buildArgs.set(a.slice(0, eq), a.slice(eq + 1));
    }
    const labels: Record<string, string> = {};
    for (const l of list(p, "label")) {
      const eq = l.indexOf("=");
      labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
    }
    const platform = str(p, "platform");
    if (platform !== undefined && platform !== "") checkPlatform(platform);
    // RUN steps join the given network (docker's default: the bridge); a bad value fails before any step
    const network = str(p, "network");
    if (network !== undefined) {
      const { parseNetworkMode } = await import("../network/mode.ts");
      parseNetworkMode(network);
    }
    const enc = new TextEncoder();
    const out = (line: string) => {
      if (!quiet) Deno.stdout.writeSync(enc.encode(line + "\n"));
    };
    // the registry client loads only when a base image must be pulled
    const [{ Builder, RunStepError }, { RUN_OPTIONS, runRequest }] = await Promise.all([
      import("../build/build.ts"),
      import("./run_flags.ts"),
    ]);
    if (p.options["disable-content-trust"] === false) {
      throw new SkiffError("error contacting notary server: content trust is not supported by skiff", 1);
    }
    // the RUN containers' flags, checked now as `run` checks them: a bad value fails before any step
    const runFlags = runContainerFlags(p);
    if (runFlags.length) {
      const { checkIgnoredFlags } = await import("./run_flags.ts");
      const parsed = parseArgs([...runFlags, "scratch"], {
        verb: "run",
        options: RUN_OPTIONS,
        stopAtPositional: 1,
      });
      try {
        checkIgnoredFlags(parsed);
        runRequest(parsed);
      } catch (e) {
        // the words are run's; the help to see is build's
        if (e instanceof UsageError && e.verb === "run") throw new UsageError(e.message, "build");
        throw e;
      }
    }
    const builder = new Builder(ctx.root, {
      dockerfile,
      file: fileName,
      contextDir,
      tags: list(p, "tag"),
      buildArgs,
      target: str(p, "target"),
      noCache: bool(p, "no-cache"),
      labels,
      rm: p.options.rm !== false || bool(p, "force-rm"),
      network,
      runFlags,
      out,
      warn: (line) => console.error(`WARNING: ${line}`),
      runRequest: (args) =>
        runRequest(parseArgs(args, { verb: "run", options: RUN_OPTIONS, stopAtPositional: 1 })),
      runOutput: quiet ? { write: (c) => Promise.resolve(c.length) } : Deno.stdout,
      fetchUrl: async (url) => {
        const [{ RegistryClient }, { registrySettingsFromEnvironment }] = await Promise.all([
          import("../registry/client.ts"),
          import("./registry_settings.ts"),
        ]);
        const settings = registrySettingsFromEnvironment(ctx.insecureRegistries);
        const client = new RegistryClient(new URL(url).host, settings, { credentials: null });
        try {
          const r = await client.fetchUrl(url);
          if (r.status < 200 || r.status > 299) {
            const text = new TextDecoder().decode(r.body.subarray(0, 200)).trim();
            throw new SkiffError(`failed to GET ${url} with status ${r.status} ${r.statusText}: ${text}`, 1);
          }
          return { data: r.body, lastModified: r.headers.get("last-modified") };
        } finally {
          client.close();
        }
      },
      pullBase: async (store, ref) => {
        const { imageForRun } = await import("./pull.ts");
        return await imageForRun(ctx, store, ref, bool(p, "pull") ? "always" : undefined);
      },
    });
    const iidfile = str(p, "iidfile");
    // docker removes the file first (a failed build leaves no stale id), then creates it anew: a
    // symlink there is replaced, never written through
    if (iidfile) {
      try {
        Deno.removeSync(iidfile);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw new SkiffError(`Removing image ID file: ${(e as Error).message}`, 1);
        }
      }
    }
    try {
      const image = await builder.run();
      if (quiet) console.log(image.id);
      if (iidfile) Deno.writeTextFileSync(iidfile, image.id, { createNew: true, mode: 0o666 });
      return 0;
    } catch (e) {
      if (e instanceof RunStepError) {
        console.error(e.message);
        return e.exitCode;
      }
      if (e instanceof SkiffError && !(e instanceof UsageError)) throw new SkiffError(e.message, 1);
      throw e;
    }
  } finally {
    if (stdinContext) Deno.removeSync(stdinContext, { recursive: true });
  }
};

/** A context tar from stdin (plain, gzip, bzip2 or xz) unpacked as a layer is: nothing escapes the dir. */
async function unpackContext(root: StateRoot, input: Uint8Array): Promise<string> {
  const [{ makeTmpDir }, { unpackLayer }, { decompress }] = await Promise.all([
    import("../state/fsutil.ts"),
    import("../image/unpack.ts"),
    import("../build/archive.ts"),
  ]);
  const dir = makeTmpDir(root, "buildctx");
  try {
    const tar = await decompress(input);
    await unpackLayer({
      stream: (async function* () {
        yield tar;
      })(),
    }, dir);
    return dir;
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    if (e instanceof SkiffError) throw e;
    throw new SkiffError(`unable to prepare context: ${(e as Error).message}`, 1);
  }
}
export default build;
