// `skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]`: run a command in a running container.

import { bool, list, type OptionSpec, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { environment, readListFile } from "./envflags.ts";
import { SkiffError } from "../errors.ts";
import { execTarget, spawnInContainer } from "../runtime/exec.ts";
import { containerConfinement } from "../seccomp/mod.ts";
import { execEvents } from "../state/events.ts";

const OPTIONS: OptionSpec[] = [
  { name: "detach", short: "d", kind: "bool" },
  { name: "detach-keys", kind: "string" },
  { name: "env", short: "e", kind: "list" },
  { name: "env-file", kind: "list" },
  { name: "interactive", short: "i", kind: "bool" },
  { name: "privileged", kind: "bool" },
  { name: "tty", short: "t", kind: "bool" },
  { name: "user", short: "u", kind: "string" },
  { name: "workdir", short: "w", kind: "string" },
];

const USAGE = `Usage:  skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]

Execute a command in a running container

Options:
  -d, --detach               Detached mode: run command in the background
      --detach-keys string   Override the key sequence for detaching a container
  -e, --env list             Set environment variables
      --env-file list        Read in a file of environment variables
  -i, --interactive          Keep STDIN open even if not attached
      --privileged           Give extended privileges to the command
  -t, --tty                  Allocate a pseudo-TTY
  -u, --user string          Username or UID (format: "<name|uid>[:<group|gid>]")
  -w, --workdir string       Working directory inside the container`;

const exec: Verb = async (args, ctx) => {
  const parsed = parseArgs(args, { verb: "exec", options: OPTIONS, stopAtPositional: 1 });
  if (bool(parsed, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(parsed, "exec", 2);
  const [ref, ...command] = parsed.positionals;
  const detach = bool(parsed, "detach"), interactive = bool(parsed, "interactive");
  const tty = bool(parsed, "tty");
  if (tty && interactive && !detach && !Deno.stdin.isTerminal()) {
    throw new SkiffError("the input device is not a TTY", 1);
  }
  const request = {
    command,
    env: environment([...list(parsed, "env-file").flatMap(readListFile), ...list(parsed, "env")]),
    workingDir: str(parsed, "workdir"),
    user: str(parsed, "user"),
    privileged: bool(parsed, "privileged"),
    tty,
  };
  const record = execTarget(ctx.root, ref);
  const events = execEvents(ctx.root, record, command);
  const code = await execIn(record, request, detach, interactive, tty, ctx.root.path);
  if (!detach) events.died(code);
  return code;
};

async function execIn(
  record: ReturnType<typeof execTarget>,
  request: Parameters<typeof spawnInContainer>[1],
  detach: boolean,
  interactive: boolean,
  tty: boolean,
  rootPath: string,
): Promise<number> {
  // the container's own filter and no-new-privileges, from its record (docker: exec --privileged too)
  const confinement = await containerConfinement(record.HostConfig, rootPath);
  if (tty && !detach) {
    const { execWithTerminal } = await import("../runtime/exec_tty.ts");
    return await execWithTerminal(record, request, interactive, confinement);
  }
  const stdio = {
    stdin: interactive && !detach ? "inherit" : "null",
    stdout: detach ? "null" : "inherit",
    stderr: detach ? "null" : "inherit",
  } as const;
  if (confinement.seccompFilter) {
    const { detachedStart, spawnConfinedExec } = await import("../runtime/exec_confined.ts");
    const child = spawnConfinedExec(record, request, confinement, stdio, detach);
    return detach ? await detachedStart(child) : (await child.status).code;
  }
  const { child } = await spawnInContainer(record, request, stdio);
  if (detach) {
    child.unref(); // it lives on in the container (its PID 1 reaps it)
    return 0;
  }
  return (await child.status).code;
}

export default exec;
