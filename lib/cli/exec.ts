// `skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]`: run a command in a running container.

import { bool, list, type OptionSpec, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";
import { environment, readListFile } from "./envflags.ts";
import { NoSuchContainerError, SkiffError } from "../errors.ts";
import type { ExecStdio } from "../runtime/exec.ts";

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
  const detach = bool(parsed, "detach"), tty = bool(parsed, "tty");
  const interactive = bool(parsed, "interactive");
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
  const stdio: ExecStdio = detach ? "detached" : tty ? "tty" : "pipes";
  const { Engine } = await import("../engine/engine.ts");
  try {
    return await new Engine({ root: ctx.root }).exec(ref, { request, stdio, interactive });
  } catch (e) {
    // a missing container is docker's CLI's own lookup (the verb's 1); a code given stays
    if (e instanceof NoSuchContainerError || (e instanceof SkiffError && e.exitCodeGiven)) throw e;
    // anything else failed the exec itself: docker 20.10's "OCI runtime exec failed: …" exits 126
    throw new SkiffError((e as Error).message, 126, { cause: e });
  }
};

export default exec;
