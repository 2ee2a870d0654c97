// How skiff starts itself again: for the supervisor of detached containers (`__supervisor`), cp's
// helpers (`__cp`, `__cp-stopped`) and the bridge collector (`__netgc`); its worker threads load
// their entries through ownEntryUrl. howToStartMyself() decides, once, and every re-execution goes
// through it:
//
// - "exe": one executable that takes skiff's arguments, `EXE __supervisor ...`: the binary of
//   `deno task compile` (Deno.build.standalone), or SKIFF_EXE when set (a wrapper that starts skiff the
//   way a compiled binary would; tests/self_exe_test.ts runs every stage through one).
// - "source": a checkout, also the unpacked cache of a dist file (scripts/dist.sh): `deno run -A
//   --no-config main.ts ARGS` (skipping the config saves ~30 ms of startup).

/**
 * skiff runs from a bundle (scripts/bundle.sh): this module's code then sits in one of the bundle's
 * .js chunks, at the bundle's top next to main.js, and the bundle's entries keep their paths.
 */
const BUNDLED = import.meta.url.endsWith(".js");

/**
 * One of skiff's entry files, named by its path in the checkout (`lib/image/file_worker.ts`): the
 * source, or the bundle's .js of it.
 */
export function ownEntryUrl(path: string): URL {
  return BUNDLED
    ? new URL(path.replace(/\.ts$/, ".js"), new URL("./", import.meta.url))
    : new URL(`../../${path}`, import.meta.url);
}

/** ownEntryUrl as a path (no node:url: it would load Node compatibility). */
const ownEntry = (path: string) => decodeURIComponent(ownEntryUrl(path).pathname);

/**
 * How skiff starts its Deno (scripts/skiff, scripts/bundle.sh's launcher, tests/helpers.ts): V8
 * compiles every function of a module when it loads it, so that Deno's code cache (made when a
 * module is compiled) holds them all, and a later start compiles none of the functions it calls
 * (exec ~10% less CPU, ps ~8%; run and version unchanged; the supervisor's memory unchanged).
 */
export const START_V8_FLAGS = "--v8-flags=--no-lazy";

let inheritedV8Flags: string[] | undefined;
/**
 * The `--v8-flags=` this process was started with (its command line before the entry file): skiff's
 * re-executions run with the same, whatever started skiff. V8 rejects a code cache made under other
 * flags and Deno then makes it again: a CLI and its init stage with different flags would both
 * recompile the modules they share at every start.
 */
function v8Flags(): string[] {
  if (inheritedV8Flags) return inheritedV8Flags;
  inheritedV8Flags = [];
  try {
    const argv = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    for (const arg of argv.slice(2)) {
      if (!arg.startsWith("-")) break; // the entry file
      if (arg.startsWith("--v8-flags=")) inheritedV8Flags.push(arg);
    }
  } catch { /* no /proc: V8's defaults */ }
  return inheritedV8Flags;
}

/**
 * Without this, `deno run` reads and analyses every module main.ts could import (its verb table:
 * ~120 files, ~12 ms of CPU) before running a line; deno.json sets the same for the CLI itself.
 */
const LAZY_IMPORTS = "--unstable-lazy-dynamic-imports";

export type SelfStart = { kind: "exe"; exe: string } | { kind: "source"; deno: string };

let chosen: SelfStart | undefined;

/** How this skiff starts itself (see the top of this file). */
export function howToStartMyself(): SelfStart {
  if (!chosen) {
    const exe = Deno.env.get("SKIFF_EXE");
    if (Deno.build.standalone) chosen = { kind: "exe", exe: Deno.execPath() };
    // absolute: helpers start in / (detach.ts spawnSupervisor), not in the caller's directory
    else if (exe) chosen = { kind: "exe", exe: exe.startsWith("/") ? exe : `${Deno.cwd()}/${exe}` };
    else chosen = { kind: "source", deno: Deno.execPath() };
  }
  return chosen;
}

/** The command line of `skiff ARGS` (the helpers: `__supervisor`, `__cp`, `__netgc`, ...). */
export function selfCommand(args: string[]): { cmd: string; args: string[] } {
  const self = howToStartMyself();
  if (self.kind === "exe") return { cmd: self.exe, args };
  return {
    cmd: self.deno,
    args: ["run", "-A", "--no-config", LAZY_IMPORTS, ...v8Flags(), ownEntry("main.ts"), ...args],
  };
}

/**
 * Environment of skiff's own re-executions: Deno's update check reads its cache file and arms a
 * timer at every start (~2 ms of the init stage's start-up); a helper process has no use for it.
 */
export const SELF_ENV: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1" };

/**
 * Whether `/proc/PID/exe` of a container's PID 1 still shows skiff (a fork of skiff that has not
 * execve()d the container's command yet): the Deno runtime, or SKIFF_EXE before it execs the runtime.
 */
export function isOwnExecutable(exe: string): boolean {
  ownExecutables ??= ownExecutablesNow();
  return ownExecutables.includes(exe);
}

let ownExecutables: string[] | undefined;

function ownExecutablesNow(): string[] {
  const own = [Deno.execPath()];
  const self = howToStartMyself();
  if (self.kind === "exe") {
    try {
      own.push(Deno.realPathSync(self.exe));
    } catch { /* gone: nothing of ours can run it */ }
  }
  return own;
}
