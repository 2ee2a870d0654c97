// --ulimit, --sysctl and --oom-score-adj: docker's parsing and checks (pure), shared by run's flags
// and the init stage that applies them. No imports: the init stage loads this.

/** docker's (go-units) names of the rlimits, with Linux's resource numbers (the same on arm64). */
export const RLIMIT_NUMBERS: Record<string, number> = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
};

/** HostConfig.Ulimits' entry: -1 is unlimited. */
export interface Ulimit {
  Name: string;
  Hard: number;
  Soft: number;
}

/** Go's strconv.ParseInt(text, 10, 64) as docker's messages quote it. */
function parseInt64(text: string): number {
  if (!/^[-+]?\d+$/.test(text)) throw new Error(`strconv.ParseInt: parsing "${text}": invalid syntax`);
  const value = BigInt(text);
  if (value > 2n ** 63n - 1n || value < -(2n ** 63n)) {
    throw new Error(`strconv.ParseInt: parsing "${text}": value out of range`);
  }
  return Number(value);
}

/** go-units ParseUlimit: NAME=SOFT[:HARD]; one value is both. Throws docker's reason. */
export function parseUlimit(text: string): Ulimit {
  const eq = text.indexOf("=");
  if (eq === -1) throw new Error(`invalid ulimit argument: ${text}`);
  const name = text.slice(0, eq);
  if (!Object.hasOwn(RLIMIT_NUMBERS, name)) throw new Error(`invalid ulimit type: ${name}`);
  const values = text.slice(eq + 1).split(":");
  if (values.length > 2) {
    throw new Error(
      `too many limit value arguments - ${text.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``,
    );
  }
  const hard = values.length === 2 ? parseInt64(values[1]) : undefined;
  const soft = parseInt64(values[0]);
  const effectiveHard = hard ?? soft;
  if (effectiveHard !== -1 && soft > effectiveHard) {
    throw new Error(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${effectiveHard}`);
  }
  return { Name: name, Hard: effectiveHard, Soft: soft };
}

/** An rlimit as the init stage sets it: decimal strings (JSON numbers lose precision past 2^53). */
export interface RlimitSetting {
  name: string;
  resource: number;
  soft: string;
  hard: string;
}

export function rlimitSettings(ulimits: Ulimit[]): RlimitSetting[] {
  return ulimits.map((u) => ({
    name: u.Name,
    resource: RLIMIT_NUMBERS[u.Name],
    soft: String(u.Soft),
    hard: String(u.Hard),
  }));
}

// ---- sysctls ----

/** The IPC namespace's sysctls docker lets through (besides fs.mqueue.*). */
const IPC_SYSCTLS = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

/** docker's CLI check (opts.ValidateSysctl) of one --sysctl KEY=VALUE; the reason when refused. */
export function sysctlFlagProblem(text: string): string | undefined {
  const parts = text.split("=");
  const key = parts[0];
  if (parts.length >= 2 && (IPC_SYSCTLS.has(key) || key.startsWith("net.") || key.startsWith("fs.mqueue."))) {
    return undefined;
  }
  return `sysctl '${text}' is not whitelisted`;
}

/**
 * The path of a sysctl below /proc/sys, as runc makes it: every "." and "/" separates, empty
 * components vanish. No component can be ".." (dots are separators), so the path stays below
 * /proc/sys whatever the key says.
 */
export function sysctlComponents(key: string): string[] {
  return key.split(/[./]/).filter((c) => c !== "");
}

/**
 * runc's check of a sysctl against the container's namespaces (the key normalised as it is
 * written, so a key spelt with "/" or ".." gets the same verdict as its path): only sysctls of a
 * namespace the container has of its own. The reason when refused.
 */
export function sysctlNamespaceProblem(
  key: string,
  own: { ipc: boolean; ipcIsHost: boolean; network: boolean; networkIsHost: boolean; uts: boolean },
): string | undefined {
  const path = sysctlComponents(key);
  const normal = path.join(".");
  if (path.length === 0) return `sysctl "${key}" is not in a separate kernel namespace`;
  if (IPC_SYSCTLS.has(normal) || (path[0] === "fs" && path[1] === "mqueue" && path.length > 2)) {
    return own.ipc && !own.ipcIsHost
      ? undefined
      : `sysctl "${key}" is not allowed in the hosts ipc namespace`;
  }
  if (path[0] === "net" && path.length > 1) {
    return own.network && !own.networkIsHost
      ? undefined
      : `sysctl "${key}" not allowed in host network namespace`;
  }
  if (own.uts && normal === "kernel.domainname") return undefined;
  if (own.uts && normal === "kernel.hostname") {
    return `sysctl "${key}" is not allowed as it conflicts with the OCI "hostname" field`;
  }
  return `sysctl "${key}" is not in a separate kernel namespace`;
}

// ---- oom_score_adj ----

/** docker's daemon check of --oom-score-adj (exit 125, nothing created). */
export function oomScoreAdjProblem(value: number): string | undefined {
  if (value < -1000 || value > 1000) {
    return `Invalid value ${value}, range for oom score adj is [-1000, 1000]`;
  }
  return undefined;
}
