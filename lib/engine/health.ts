// The health monitor of one running container (docker's daemon/health.go): every --health-interval
// it runs the probe as an exec in the container (the container's user, confinement and cgroups, as
// `skiff exec` does; exec events as docker logs them), bounded by --health-timeout, and records the
// result in State.Health (health_state.ts says what a result does). The supervisor runs one for each
// detached container it owns, a foreground `run` for its own. Nothing of the probe's is trusted: its
// output is cut at 4096 bytes as it arrives, and a probe past its timeout is killed.

import { close, pidfdOpen, pidfdSignal } from "../../ffi/libc.ts";
import { formatGoDuration } from "../format/duration.ts";
import { nanoTimestamp } from "../runtime/logs.ts";
import type { ExecIO } from "../runtime/exec.ts";
import type { ByteSink } from "../runtime/stdio.ts";
import { containerEvent } from "../state/events.ts";
import { loadContainer, transition } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord, HealthResult } from "../state/types.ts";
import {
  applyProbeResult,
  DEFAULT_INTERVAL_NS,
  DEFAULT_TIMEOUT_NS,
  MAX_OUTPUT_BYTES,
  probeCommand,
  probeRules,
} from "./health_state.ts";

/** How long a killed probe's exec may take to wind up before the monitor goes on without it. */
const KILLED_PROBE_GRACE_MS = 1000;
/** The longest delay setTimeout takes as given (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** docker's MinimumDuration: an image's interval or timeout below it (its flags refuse them) is 1ms. */
const MIN_DURATION_MS = 1;

/** The probe's stdout and stderr together, the first 4096 bytes kept ("..." when there was more). */
class ProbeOutput implements ByteSink {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private truncated = false;

  /** Nothing more is kept: the exec may throw the rest away without handing it over. */
  get full(): boolean {
    return this.truncated;
  }

  write(chunk: Uint8Array): Promise<number> {
    const keep = Math.min(MAX_OUTPUT_BYTES - this.size, chunk.length);
    if (keep > 0) {
      this.chunks.push(chunk.slice(0, keep));
      this.size += keep;
    }
    if (keep < chunk.length) this.truncated = true;
    return Promise.resolve(chunk.length);
  }

  text(): string {
    const all = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) all.set(c, (at += c.length) - c.length);
    return new TextDecoder().decode(all) + (this.truncated ? "..." : "");
  }
}

export class HealthMonitor {
  private stopped = false;
  private wake: (() => void) | undefined;
  private killProbe: (() => void) | undefined;

  private constructor(private readonly root: StateRoot, private readonly record: ContainerRecord) {}

  /**
   * Starts probing the container's current run (its State as it started: Pid, StartedAt), when its
   * config has a probe; undefined when it has none. State.Health was set to starting with the run's
   * record (process.ts launchContainer).
   */
  static start(root: StateRoot, id: string): HealthMonitor | undefined {
    let record: ContainerRecord;
    try {
      record = loadContainer(root, id);
    } catch {
      return undefined; // removed (or broken) meanwhile: its run's end is the caller's to finish
    }
    if (!probeCommand(record.Config) || !record.State.Running || !record.State.Health) return undefined;
    const monitor = new HealthMonitor(root, record);
    monitor.loop().catch(() => {}); // a record that went away ends it
    return monitor;
  }

  /** The container's run ended (or it is no longer ours): no more probes, a running one is killed. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
    this.killProbe?.();
  }

  /** Sleeps `ms` (a stop wakes it), in steps a timer can take: setTimeout fires at once past 2^31-1 ms. */
  private async sleep(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopped && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(until - Date.now(), MAX_TIMER_MS));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
    }
  }

  /** This run of the container, still running: a record of another run (a restart) is not ours. */
  private ours(r: ContainerRecord): boolean {
    return r.State.Running && r.State.Pid === this.record.State.Pid &&
      r.State.StartedAt === this.record.State.StartedAt;
  }

  private async loop(): Promise<void> {
    const hc = this.record.Config.Healthcheck ?? {};
    const intervalMs = Math.max(MIN_DURATION_MS, (hc.Interval || DEFAULT_INTERVAL_NS) / 1e6);
    const timeoutNs = Math.max(MIN_DURATION_MS * 1e6, hc.Timeout || DEFAULT_TIMEOUT_NS);
    const rules = probeRules(this.record.Config, this.record.State.StartedAt);
    const id = this.record.Id;
    while (!this.stopped) {
      await this.sleep(intervalMs);
      if (this.stopped) return;
      const current = loadContainer(this.root, id);
      if (!this.ours(current)) return;
      if (current.State.Paused) continue; // docker does not probe a paused container
      const result = await this.probe(current, timeoutNs);
      if (this.stopped) return;
      if (!result) continue;
      let before: string | undefined, after: string | undefined;
      const saved = transition(this.root, id, null, (r) => {
        if (!this.ours(r) || !r.State.Health) return false;
        before = r.State.Health.Status;
        r.State.Health = applyProbeResult(r.State.Health, result, rules);
        after = r.State.Health.Status;
      });
      if (!saved) return;
      if (after && after !== before) containerEvent(this.root, saved, `health_status: ${after}`);
    }
  }

  /** One probe: its result, or undefined when the container could not take an exec (paused, stopped). */
  private async probe(record: ContainerRecord, timeoutNs: number): Promise<HealthResult | undefined> {
    const command = probeCommand(record.Config)!;
    const output = new ProbeOutput();
    let pidfd = -1, timedOut = false;
    const kill = () => {
      if (pidfd < 0) return;
      try {
        pidfdSignal(pidfd, 9);
      } catch { /* exited meanwhile */ }
    };
    this.killProbe = () => {
      timedOut = true;
      kill();
    };
    const io: ExecIO = {
      stdin: { read: () => Promise.resolve(null) },
      stdout: output,
      stderr: output,
      terminal: false,
      letGoAfterExit: true,
      started: (pid) => {
        try {
          pidfd = pidfdOpen(pid); // our child, not reaped yet: the pidfd names this very process
        } catch { /* gone already */ }
        if (timedOut) kill(); // the timeout came while it was being forked
      },
    };
    const Start = nanoTimestamp();
    const [{ Engine }, { ExecRefused }] = await Promise.all([
      import("./engine.ts"),
      import("../runtime/exec.ts"),
    ]);
    const exec = new Engine({ root: this.root }).exec(record, {
      request: { command, env: [], privileged: false, tty: false },
      stdio: "pipes",
      interactive: false,
    }, io);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = Date.now() + timeoutNs / 1e6;
    const timeout = new Promise<"timeout">((resolve) => {
      const arm = () => {
        const left = deadline - Date.now();
        if (left <= 0) resolve("timeout");
        else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      };
      arm();
    });
    try {
      const outcome = await Promise.race([exec, timeout]);
      if (outcome !== "timeout") {
        return { Start, End: nanoTimestamp(), ExitCode: outcome, Output: output.text() };
      }
      this.killProbe();
      const wound = exec.catch(() => {});
      await Promise.race([wound, new Promise((r) => setTimeout(r, KILLED_PROBE_GRACE_MS))]);
      return {
        Start,
        End: nanoTimestamp(),
        ExitCode: -1,
        Output: `Health check exceeded timeout (${formatGoDuration(timeoutNs)})`,
      };
    } catch (e) {
      if (e instanceof ExecRefused) return undefined;
      return { Start, End: nanoTimestamp(), ExitCode: -1, Output: (e as Error).message };
    } finally {
      clearTimeout(timer);
      this.killProbe = undefined;
      // the exec may still be winding up after a kill: the pidfd goes when it is done
      exec.finally(() => pidfd >= 0 && close(pidfd)).catch(() => {});
    }
  }
}
