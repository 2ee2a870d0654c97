// docker's health checks as data (no I/O): the probe a container's config names, the state a start
// gives, and what one probe's result does to it (docker 20.10's daemon/health.go). The monitor that
// runs the probes is health.ts.

import type { ContainerConfig, HealthResult, HealthState } from "../state/types.ts";

export const DEFAULT_INTERVAL_NS = 30e9;
export const DEFAULT_TIMEOUT_NS = 30e9;
export const DEFAULT_RETRIES = 3;
/** docker keeps the last five results and 4096 bytes of each one's output. */
export const MAX_LOG_ENTRIES = 5;
export const MAX_OUTPUT_BYTES = 4096;

/**
 * The probe's argv: CMD's arguments, or CMD-SHELL's through the container's shell (/bin/sh -c);
 * undefined for NONE, an empty test or a type docker ignores (then nothing runs and there is no
 * State.Health).
 */
export function probeCommand(
  config: Pick<ContainerConfig, "Healthcheck"> & { Shell?: string[] },
): string[] | undefined {
  const test = config.Healthcheck?.Test;
  if (!test?.length) return undefined;
  const args = test.slice(1);
  if (test[0] === "CMD") return args.length ? args : undefined;
  if (test[0] === "CMD-SHELL") return [...(config.Shell?.length ? config.Shell : ["/bin/sh", "-c"]), ...args];
  return undefined;
}

/** A start (docker's initHealthMonitor): starting, no failures, the earlier results kept. */
export function startingHealth(previous: HealthState | undefined): HealthState {
  return { Status: "starting", FailingStreak: 0, Log: previous?.Log ?? [] };
}

export interface ProbeRules {
  /** --health-retries (0: docker's 3). */
  retries: number;
  /** --health-start-period in ns: failures before the first success do not count within it. */
  startPeriodNs: number;
  /** State.StartedAt of the run the probe belongs to. */
  startedAt: string;
}

export function probeRules(config: Pick<ContainerConfig, "Healthcheck">, startedAt: string): ProbeRules {
  const hc = config.Healthcheck ?? {};
  return {
    retries: hc.Retries && hc.Retries > 0 ? hc.Retries : DEFAULT_RETRIES,
    startPeriodNs: hc.StartPeriod ?? 0,
    startedAt,
  };
}

/**
 * One result applied (docker's handleProbeResult): exit 0 is healthy and resets the streak; any
 * other result counts a failure, except while still starting within the start period; `retries`
 * failures in a row make it unhealthy.
 */
export function applyProbeResult(health: HealthState, result: HealthResult, rules: ProbeRules): HealthState {
  const Log = [...health.Log, result].slice(-MAX_LOG_ENTRIES);
  if (result.ExitCode === 0) return { Status: "healthy", FailingStreak: 0, Log };
  const sinceStartMs = Date.parse(result.Start) - Date.parse(rules.startedAt);
  if (health.Status === "starting" && sinceStartMs < rules.startPeriodNs / 1e6) return { ...health, Log };
  const FailingStreak = health.FailingStreak + 1;
  return { Status: FailingStreak >= rules.retries ? "unhealthy" : health.Status, FailingStreak, Log };
}
