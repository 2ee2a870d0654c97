// skiff attach [--no-stdin] [--sig-proxy=true|false] [--detach-keys KEYS] CONTAINER: the caller's
// terminal attached to a running container, as docker's. Also home of the terminal adapter that
// `start -a` shares: raw mode and window size for a -t container, the detach keys, the signal proxy.

import { SkiffError, withExitCode } from "../errors.ts";
import type { Engine } from "../engine/engine.ts";
import type { AttachSession } from "../engine/attach_client.ts";
import { DEFAULT_DETACH_KEYS, EscapeDetector, parseDetachKeys } from "../engine/attach_stream.ts";
import type { ContainerRecord } from "../state/types.ts";
import type { ByteSource } from "../runtime/stdio.ts";
import { PROXIED_SIGNALS } from "../runtime/signals.ts";
import { callerWindowSize, rawStdin } from "../runtime/pty.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

export interface TerminalAttach {
  /** start -a: start the container, attached before its command runs. */
  start?: boolean;
  /** Attach the caller's stdin (only when the container has an open stdin). */
  stdin: boolean;
  /** --detach-keys, docker's format; undefined: ctrl-p,ctrl-q. */
  detachKeys?: string;
  /** Forward the signals this process gets to the container (never with -t, as docker). */
  sigProxy: boolean;
}

/** docker's detach keys from --detach-keys, or its error (the daemon's wording, exit 1). */
export function detachKeysOf(spec: string | undefined): Uint8Array {
  if (!spec) return DEFAULT_DETACH_KEYS;
  const keys = parseDetachKeys(spec);
  if (!keys) throw new SkiffError(`Invalid detach keys (${spec}) provided`, 1);
  return keys;
}

/**
 * The caller's stdin with the detach keys taken out: the sequence calls `onDetach` and ends the
 * input; a started but broken sequence is passed on (docker's escape proxy).
 */
function escapingStdin(keys: Uint8Array, onDetach: () => void): ByteSource {
  const detector = new EscapeDetector(keys);
  let pending: Uint8Array = new Uint8Array(0);
  let detached = false;
  return {
    async read(buf) {
      while (pending.length === 0) {
        if (detached) return null;
        const n = await Deno.stdin.read(buf);
        if (n === null) return null;
        const { pass, detach } = detector.feed(buf.subarray(0, n));
        pending = pass;
        if (detach) {
          detached = true;
          onDetach();
          return null;
        }
      }
      const n = Math.min(buf.length, pending.length);
      buf.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
  };
}

/**
 * Attaches the caller's terminal to `record` through the engine: raw mode and the window size for
 * a -t container, detach keys on its input, signals forwarded otherwise. Resolves "detached", or
 * with the container's exit code once it is down.
 */
export async function attachTerminal(
  engine: Engine,
  record: ContainerRecord,
  options: TerminalAttach,
): Promise<"detached" | number> {
  const keys = detachKeysOf(options.detachKeys);
  const tty = record.Config.Tty;
  let session: AttachSession | undefined;
  let detachNow = false;
  const escape = () => {
    detachNow = true;
    session?.detach();
  };
  // docker watches for the detach keys only with a tty (its escape proxy); without one they are data
  const stdin = options.stdin && tty ? escapingStdin(keys, escape) : Deno.stdin;
  const restoreTerminal = options.stdin && tty ? rawStdin() : () => {};
  const forward = (signal: Deno.Signal) => () => void engine.kill(record, signal).catch(() => {});
  const proxied = options.sigProxy && !tty ? PROXIED_SIGNALS.map((s) => [s, forward(s)] as const) : [];
  for (const [s, fn] of proxied) Deno.addSignalListener(s, fn);
  const onWinch = () => {
    const size = callerWindowSize();
    if (size) session?.resize(size.rows, size.cols);
  };
  let how: "ended" | "detached";
  try {
    session = await engine.attach(record, {
      stdin,
      stdout: Deno.stdout,
      stderr: Deno.stderr,
      terminal: true,
    }, { start: options.start, stdin: options.stdin, size: tty ? callerWindowSize() : undefined });
    if (detachNow) session.detach();
    if (tty) Deno.addSignalListener("SIGWINCH", onWinch);
    how = await session.done;
  } finally {
    if (tty && session) Deno.removeSignalListener("SIGWINCH", onWinch);
    restoreTerminal();
  }
  try {
    if (how === "detached") return "detached";
    return await engine.waitRun(record, session!.pid);
  } finally {
    for (const [s, fn] of proxied) Deno.removeSignalListener(s, fn);
  }
}

const attach: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "attach",
    options: [
      { name: "no-stdin", kind: "bool" },
      { name: "sig-proxy", kind: "bool" },
      { name: "detach-keys", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(USAGE);
    return 0;
  }
  requireArgs(p, "attach", 1, 1);
  const { Engine } = await import("../engine/engine.ts");
  const engine = new Engine({ root: ctx.root });
  let record;
  try {
    record = await engine.attachable(p.positionals[0]);
  } catch (e) {
    throw e instanceof SkiffError ? withExitCode(e, 1) : e; // docker attach's errors exit 1
  }
  const noStdin = bool(p, "no-stdin");
  if (!noStdin && record.Config.Tty && !Deno.stdin.isTerminal()) {
    throw new SkiffError("the input device is not a TTY", 1); // docker's CheckTty
  }
  const outcome = await attachTerminal(engine, record, {
    stdin: !noStdin && record.Config.OpenStdin,
    detachKeys: str(p, "detach-keys"),
    sigProxy: p.options["sig-proxy"] !== false,
  });
  if (outcome === "detached") {
    console.error("read escape sequence"); // docker's attach reports the detach this way, exit 1
    return 1;
  }
  return outcome;
};
export default attach;

const USAGE = `Usage:  skiff attach [OPTIONS] CONTAINER

Attach local standard input, output, and error streams to a running container

Options:
      --detach-keys string   Override the key sequence for detaching a container
      --no-stdin             Do not attach STDIN
      --sig-proxy            Proxy all received signals to the process (default true)`;
