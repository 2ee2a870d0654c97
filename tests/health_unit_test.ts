// Health checks as data (lib/engine/health_state.ts) and Go's durations (lib/format/duration.ts):
// no root, no container.

import * as assert from "node:assert/strict";
import { applyProbeResult, probeCommand, probeRules, startingHealth } from "../lib/engine/health_state.ts";
import { formatGoDuration, parseGoDuration } from "../lib/format/duration.ts";
import { healthcheckOf } from "../lib/runtime/container.ts";
import type { HealthResult, HealthState } from "../lib/state/types.ts";

Deno.test("health: the probe a config names (CMD, CMD-SHELL through the image's shell, NONE)", () => {
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ["CMD", "curl", "-f", "x"] } }), ["curl", "-f", "x"]);
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ["CMD-SHELL", "exit 0"] } }), [
    "/bin/sh",
    "-c",
    "exit 0",
  ]);
  assert.deepEqual(
    probeCommand({ Healthcheck: { Test: ["CMD-SHELL", "exit 0"] }, Shell: ["/bin/ash", "-eo"] }),
    ["/bin/ash", "-eo", "exit 0"],
  );
  for (const Test of [["NONE"], [], ["CMD"], ["BOGUS", "x"]]) {
    assert.equal(probeCommand({ Healthcheck: { Test } }), undefined);
  }
  assert.equal(probeCommand({}), undefined);
});

Deno.test("health: results as docker's daemon applies them (streak, retries, start period, five kept)", () => {
  const startedAt = "2026-01-01T00:00:00.000Z";
  const at = (ms: number, ExitCode: number): HealthResult => {
    const t = new Date(Date.parse(startedAt) + ms).toISOString();
    return { Start: t, End: t, ExitCode, Output: "" };
  };
  const rules = probeRules({ Healthcheck: { Retries: 2, StartPeriod: 1e9 } }, startedAt);
  let h: HealthState = startingHealth(undefined);
  // within the start period a failure does not count while it is starting
  h = applyProbeResult(h, at(500, 1), rules);
  assert.deepEqual([h.Status, h.FailingStreak, h.Log.length], ["starting", 0, 1]);
  h = applyProbeResult(h, at(1500, 1), rules);
  assert.deepEqual([h.Status, h.FailingStreak], ["starting", 1]);
  h = applyProbeResult(h, at(1600, -1), rules);
  assert.deepEqual([h.Status, h.FailingStreak], ["unhealthy", 2]);
  h = applyProbeResult(h, at(1700, 0), rules);
  assert.deepEqual([h.Status, h.FailingStreak], ["healthy", 0]);
  // once healthy, one failure (of two retries) keeps it healthy
  h = applyProbeResult(h, at(1800, 1), rules);
  assert.deepEqual([h.Status, h.FailingStreak], ["healthy", 1]);
  assert.equal(h.Log.length, 5);
  h = applyProbeResult(h, at(1900, 3), rules);
  assert.deepEqual([h.Status, h.FailingStreak, h.Log.length], ["unhealthy", 2, 5]);
  assert.equal(h.Log[4].Start, at(1900, 3).Start, "the newest last, the oldest dropped");
  // a new start keeps the log and starts over
  assert.deepEqual(startingHealth(h), { Status: "starting", FailingStreak: 0, Log: h.Log });
  // retries 0 is docker's 3
  assert.equal(probeRules({ Healthcheck: {} }, startedAt).retries, 3);
});

Deno.test("health: --health-* over the image's HEALTHCHECK, field by field (docker's merge)", () => {
  const image = { Test: ["CMD-SHELL", "img"], Interval: 5e9, Retries: 4 };
  assert.deepEqual(healthcheckOf(undefined, image), { Healthcheck: image });
  assert.deepEqual(healthcheckOf({ Interval: 1e9 }, image), {
    Healthcheck: { Test: ["CMD-SHELL", "img"], Interval: 1e9, Retries: 4 },
  });
  assert.deepEqual(healthcheckOf({ Test: ["NONE"] }, image).Healthcheck?.Test, ["NONE"]);
  assert.deepEqual(healthcheckOf({ Test: ["CMD-SHELL", "mine"] }, undefined), {
    Healthcheck: { Test: ["CMD-SHELL", "mine"] },
  });
  assert.deepEqual(healthcheckOf(undefined, undefined), {});
});

Deno.test("Go durations: time.ParseDuration and Duration.String", () => {
  for (
    const [text, ns] of [["0", 0], ["300ms", 3e8], ["1m30s", 90e9], ["-1.5h", -5400e9], ["+2s", 2e9], [
      ".5s",
      5e8,
    ], [
      "1us",
      1e3,
    ], ["2µs", 2e3]] as const
  ) assert.equal(parseGoDuration(text), ns, text);
  assert.throws(() => parseGoDuration("bogus"), /time: invalid duration "bogus"/);
  assert.throws(() => parseGoDuration("5"), /time: missing unit in duration "5"/);
  assert.throws(() => parseGoDuration(""), /time: invalid duration ""/);
  assert.throws(() => parseGoDuration("1s "), /invalid duration/);
  for (
    const [ns, text] of [
      [0, "0s"],
      [2e8, "200ms"],
      [1.5e9, "1.5s"],
      [30e9, "30s"],
      [60e9, "1m0s"],
      [
        9930e9,
        "2h45m30s",
      ],
      [1500, "1.5µs"],
      [12, "12ns"],
      [-2e9, "-2s"],
    ] as const
  ) assert.equal(formatGoDuration(ns), text, String(ns));
});
