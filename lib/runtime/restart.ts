// Restart policies (--restart no|on-failure[:N]|always|unless-stopped) and docker's back-off: the
// first restart waits 100 ms, each further one twice as long (at most 1 min), and the delay starts
// over once the container has run for 10 s.

import { ClientCheckError, SkiffError } from "../errors.ts";
import type { HostConfig } from "../state/types.ts";

export type RestartPolicy = NonNullable<HostConfig["RestartPolicy"]>;

export const NO_RESTART: RestartPolicy = { Name: "no", MaximumRetryCount: 0 };
const INITIAL_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run at least this long resets the back-off. */
export const RESET_AFTER_MS = 10_000;

/** Parses --restart with docker's wording. */
export function parseRestartPolicy(value: string | undefined): RestartPolicy {
  if (value === undefined || value === "") return NO_RESTART;
  const [name, count, ...rest] = value.split(":");
  if (rest.length) throw new SkiffError(`invalid restart policy format: ${value}`);
  const known = ["no", "always", "on-failure", "unless-stopped"];
  if (!known.includes(name)) {
    throw new SkiffError(
      `invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`,
    );
  }
  if (count === undefined) return { Name: name as RestartPolicy["Name"], MaximumRetryCount: 0 };
  if (/^-\d+$/.test(count)) throw new SkiffError("maximum retry count cannot be negative");
  if (!/^\d+$/.test(count)) {
    throw new ClientCheckError("invalid restart policy format: maximum retry count must be an integer");
  }
  if (name !== "on-failure") {
    throw new SkiffError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
  return { Name: "on-failure", MaximumRetryCount: Number(count) };
}

/**
 * Whether the monitor starts the container again after an exit. `stoppedByUser`: stop/kill/rm
 * asked for this exit (no policy restarts it then).
 */
export function shouldRestart(
  policy: RestartPolicy,
  exitCode: number,
  restartCount: number,
  stoppedByUser: boolean,
): boolean {
  if (stoppedByUser) return false;
  switch (policy.Name) {
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      return exitCode !== 0 && (policy.MaximumRetryCount === 0 || restartCount < policy.MaximumRetryCount);
    default:
      return false;
  }
}

/** Back-off state of one container: next delay given how long the last run lasted. */
export class Backoff {
  private delay = 0;

  next(ranMs: number): number {
    this.delay = ranMs >= RESET_AFTER_MS || this.delay === 0
      ? INITIAL_DELAY_MS
      : Math.min(this.delay * 2, MAX_DELAY_MS);
    return this.delay;
  }
}
