// skiff events: the log written by every state change (lib/state/events.ts) read back in docker's
// format: the order of a create/start/stop/start/rm sequence with docker's Type/Action/attributes,
// --since/--until, --filter, --format, following a live run, and a damaged log line skipped.

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot } from "./helpers.ts";
import { eventually, withDetached } from "./detach_helpers.ts";
import { eventMatches, parseEventFilters, prettyEvent } from "../lib/cli/events.ts";
import {
  appendEvent,
  decodeEvent,
  encodeEvent,
  eventMessage,
  EVENTS_CAP_BYTES,
  EventsReader,
} from "../lib/state/events.ts";
import { StateRoot } from "../lib/state/root.ts";
import { parseEventTime } from "../lib/format/filters.ts";

interface Ev {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
}

/** Every kept event up to now, as docker's JSON lines (timeNano checked as an exact integer). */
async function allEvents(root: TestRoot, ...flags: string[]): Promise<Ev[]> {
  const now = (Date.now() / 1000 + 1).toFixed(3);
  const out = await root.ok([
    "events",
    "--since",
    "0",
    "--until",
    now,
    "--format",
    "{{json .}}",
    ...(flags.length ? flags : ["--filter", "type=container"]),
  ]);
  return out.split("\n").filter((l) => l).map((l) => {
    assert.match(l, /"timeNano":\d{19}\}$/);
    return JSON.parse(l);
  });
}

const actions = (evs: Ev[]) =>
  evs.map((e) =>
    [
      e.Action,
      e.Actor.Attributes.exitCode && `exitCode=${e.Actor.Attributes.exitCode}`,
      e.Actor.Attributes.signal &&
      `signal=${e.Actor.Attributes.signal}`,
    ].filter(Boolean).join(" ")
  );

Deno.test("events: create/start/stop/start/rm -f in order, with docker's message shape", async () => {
  await withDetached(async (root) => {
    const id = (await root.ok(["create", "--name", "seq", "-l", "team=a", "busybox", "sleep", "100"])).trim();
    await root.ok(["start", "seq"]);
    await root.ok(["stop", "-t", "0", "seq"]);
    await root.ok(["start", "seq"]);
    await root.ok(["rm", "-f", "seq"]);
    const evs = await allEvents(root, "--filter", "container=seq");
    assert.deepEqual(actions(evs), [
      "create",
      "start",
      "kill signal=15",
      "kill signal=9",
      "die exitCode=137",
      "stop",
      "start",
      "kill signal=9",
      "die exitCode=137",
      "destroy",
    ]);
    for (const e of evs) {
      assert.equal(e.Type, "container");
      assert.equal(e.status, e.Action);
      assert.equal(e.id, id);
      assert.equal(e.from, "busybox");
      assert.equal(e.scope, "local");
      assert.equal(e.Actor.ID, id);
      assert.equal(e.Actor.Attributes.name, "seq");
      assert.equal(e.Actor.Attributes.image, "busybox");
      assert.equal(e.Actor.Attributes.team, "a"); // the container's labels, as docker
      assert.equal(e.time, Math.floor(e.timeNano / 1e9));
    }
    const times = evs.map((e) => e.timeNano);
    assert.deepEqual([...times].sort((a, b) => a - b), times, "in time order");
    // the JSON keys in docker's order (the struct's, json tags)
    const line = (await root.ok([
      "events",
      "--since",
      "0",
      "--until",
      String(Date.now() / 1000 + 1),
      "--format",
      "json",
      "--filter",
      "type=container",
    ]))
      .split("\n")[0];
    assert.deepEqual(Object.keys(JSON.parse(line)), [
      "status",
      "id",
      "from",
      "Type",
      "Action",
      "Actor",
      "scope",
      "time",
      "timeNano",
    ]);
  });
});

Deno.test("events: rename, pause/unpause, exec and a run --rm's die/destroy", async () => {
  await withDetached(async (root) => {
    await root.ok(["run", "-d", "--name", "old", "busybox", "sleep", "100"]);
    await root.ok(["rename", "old", "new"]);
    await root.ok(["pause", "new"]);
    await root.ok(["unpause", "new"]);
    await root.ok(["update", "--pids-limit", "50", "new"]);
    assert.equal((await root.skiff(["exec", "new", "sh", "-c", "exit 3"])).code, 3);
    await root.ok(["run", "--rm", "--name", "gone", "busybox", "sh", "-c", "exit 5"]).catch(() => {});
    const evs = await allEvents(root);
    const rename = evs.find((e) => e.Action === "rename")!;
    assert.equal(rename.Actor.Attributes.oldName, "/old");
    assert.equal(rename.Actor.Attributes.name, "new");
    assert.deepEqual(
      actions(evs.filter((e) => e.Actor.Attributes.name === "new")),
      [
        "rename",
        "pause",
        "unpause",
        "update",
        "exec_create: sh -c exit 3",
        "exec_start: sh -c exit 3",
        "exec_die exitCode=3",
      ],
    );
    const execs = evs.filter((e) => e.Action.startsWith("exec_"));
    assert.equal(new Set(execs.map((e) => e.Actor.Attributes.execID)).size, 1);
    assert.match(execs[0].Actor.Attributes.execID, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      actions(evs.filter((e) => e.Actor.Attributes.name === "gone")),
      ["create", "start", "die exitCode=5", "destroy"],
    );
  });
});

Deno.test("events: --since and --until (timestamps, durations, dates), and until in the future", async () => {
  await withDetached(async (root) => {
    await root.ok(["create", "--name", "first", "busybox", "true"]);
    await new Promise((r) => setTimeout(r, 50));
    const between = (Date.now() / 1000).toFixed(6);
    await new Promise((r) => setTimeout(r, 50));
    await root.ok(["create", "--name", "second", "busybox", "true"]);
    const names = (evs: Ev[]) => evs.map((e) => e.Actor.Attributes.name);
    assert.deepEqual(names(await allEvents(root)), ["first", "second"]);
    assert.deepEqual(names(await allEvents(root, "--since", between)), ["second"]);
    const upTo = await root.ok([
      "events",
      "--since",
      "0",
      "--until",
      between,
      "--format",
      "{{.Actor.Attributes.name}}",
      "--filter",
      "type=container",
    ]);
    assert.equal(upTo, "first\n");
    // durations and dates: the last 10 minutes hold both; a date an hour ago too ("-1h" would be an
    // hour ahead: docker subtracts the duration from now)
    const recent = await root.ok([
      "events",
      "--since",
      "10m",
      "--until",
      String(Date.now() / 1000 + 1),
      "--format",
      "{{.Action}}",
      "--filter",
      "type=container",
    ]);
    assert.equal(recent, "create\ncreate\n");
    const date = new Date(Date.now() - 3600_000).toISOString();
    assert.equal(
      await root.ok([
        "events",
        "--since",
        date,
        "--until",
        String(Date.now() / 1000 + 1),
        "--format",
        "{{.Action}}",
        "--filter",
        "type=container",
      ]),
      "create\ncreate\n",
    );
    // until in the future: prints what is kept, follows, and returns by itself at that time
    const start = Date.now();
    const r = await root.ok([
      "events",
      "--since",
      "1h",
      "--until",
      ((Date.now() + 1500) / 1000).toFixed(3),
      "--filter",
      "type=container",
    ]);
    assert.equal(r.split("\n").filter((l) => l).length, 2);
    assert.ok(Date.now() - start >= 1000, "it waited for the until time");
    // docker's errors
    const bad = await root.skiff(["events", "--since", "yesterday"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /failed to parse value as time or duration: "yesterday"/);
    const order = await root.skiff(["events", "--since", "200", "--until", "100"]);
    assert.equal(order.code, 1);
    assert.match(order.stderr, /`since` time \(200\) cannot be after `until` time \(100\)/);
  });
});

Deno.test("events: --filter as docker's rules (same key OR, different keys AND, label AND)", async () => {
  await withDetached(async (root) => {
    await root.ok(["create", "--name", "fa", "-l", "app=x", "-l", "tier=web", "busybox", "true"]);
    await root.ok(["create", "--name", "fb", "-l", "app=y", "busybox", "true"]);
    await root.ok(["start", "fa"]);
    const q = async (...f: string[]) =>
      (await allEvents(root, ...f.flatMap((v) => ["--filter", v]))).map((e) =>
        `${e.Actor.Attributes.name}:${e.Action}`
      );
    assert.deepEqual(await q("container=fa"), ["fa:create", "fa:start", "fa:die"]);
    assert.deepEqual(await q("container=fa", "container=fb"), [
      "fa:create",
      "fb:create",
      "fa:start",
      "fa:die",
    ]);
    assert.deepEqual(await q("container=fa", "event=start"), ["fa:start"]);
    assert.deepEqual(await q("event=create"), ["fa:create", "fb:create"]);
    // the image import withBusybox made: docker's image message (id and name are the image's id)
    const images = await allEvents(root, "--filter", "type=image");
    assert.deepEqual(images.map((e) => e.Action), ["import"]);
    assert.match(images[0].Actor.ID, /^sha256:[0-9a-f]{64}$/);
    assert.equal(images[0].Actor.Attributes.name, images[0].Actor.ID);
    assert.equal(images[0].from, undefined);
    assert.deepEqual(await q("type=container", "event=create", "label=app=y"), ["fb:create"]);
    assert.deepEqual(await q("label=app", "label=tier=web", "event=create"), ["fa:create"]);
    assert.deepEqual(await q("image=busybox", "event=create"), ["fa:create", "fb:create"]);
    assert.deepEqual(await q("image=busybox:latest", "event=create"), []); // as docker: the name as given
    assert.deepEqual(await q("volume=nosuchvolume"), []);
    // docker's quirk kept: a volume= (or network=...) filter also matches any actor by its name
    assert.deepEqual(await q("volume=fb"), ["fb:create"]);
    // a container id prefix, as docker's fuzzy match
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "fb"])).trim();
    assert.deepEqual(await q(`container=${id.slice(0, 8)}`), ["fb:create"]);
    const bad = await root.skiff(["events", "--filter", "nonsense"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /bad format of filter \(expected name=value\)/);
  });
});

Deno.test("events: --format templates, the default line, and a bad template", async () => {
  await withDetached(async (root) => {
    const id = (await root.ok(["create", "--name", "fmt", "-l", "b=2", "-l", "a=1", "busybox", "true"]))
      .trim();
    const until = String(Date.now() / 1000 + 1);
    const line = await root.ok(["events", "--since", "0", "--until", until, "--filter", "type=container"]);
    assert.match(
      line,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}(Z|[+-]\\d\\d:\\d\\d) container create ${id} ` +
          `\\(a=1, b=2, image=busybox, name=fmt\\)\\n$`,
      ),
    );
    const t = await root.ok([
      "events",
      "--since",
      "0",
      "--until",
      until,
      "--filter",
      "type=container",
      "--format",
      '{{.Type}}/{{.Status}}/{{.Actor.Attributes.name}}/{{index .Actor.Attributes "a"}}/{{.Scope}}',
    ]);
    assert.equal(t, "container/create/fmt/1/local\n");
    const bad = await root.skiff(["events", "--format", "{{.NoSuchField}}"]);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /Error parsing format: .*NoSuchField/);
    const unparsable = await root.skiff(["events", "--format", "{{.Action"]);
    assert.equal(unparsable.code, 64);
    const args = await root.skiff(["events", "extra"]);
    assert.equal(args.code, 1); // docker's CLI: 1 for a wrong number of arguments
    assert.match(args.stderr, /accepts no arguments/);
  });
});

/** Reads a child's stdout into `lines` as it arrives. */
function collect(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  return (async () => {
    for await (const chunk of stream) {
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
    }
  })();
}

Deno.test("events: follows a run --rm live (create, start, die, destroy in order), exit 0 on SIGTERM", async () => {
  await withDetached(async (root) => {
    // the log exists before the follower starts, so it begins at its end (no history without --since)
    await root.ok(["create", "--name", "before", "busybox", "true"]);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--root",
        root.path,
        "events",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const reading = collect(child.stdout, lines);
    try {
      // it follows once it has the log open
      await eventually("events opens the log", () => {
        try {
          return [...Deno.readDirSync(`/proc/${child.pid}/fd`)].some((e) =>
            Deno.readLinkSync(`/proc/${child.pid}/fd/${e.name}`) === join(root.path, "events.jsonl")
          );
        } catch {
          return false;
        }
      }, 20_000);
      await root.ok(["run", "--rm", "--name", "live", "busybox", "true"]);
      await eventually("the follower prints the run's events", () => lines.length >= 4);
      await new Promise((r) => setTimeout(r, 200)); // nothing more may come
      assert.deepEqual(lines, ["create live", "start live", "die live", "destroy live"]);
    } finally {
      child.kill("SIGTERM");
    }
    const status = await child.status;
    await reading;
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(status.code, 0, stderr);
    assert.equal(status.signal, null);
  });
});

Deno.test("events: a damaged line of the log is skipped and reported once, the rest is printed", async () => {
  await withDetached(async (root) => {
    await root.ok(["create", "--name", "one", "busybox", "true"]);
    const log = join(root.path, "events.jsonl");
    Deno.writeTextFileSync(log, 'not json\n{"Type":"container","Action":"x"}\n{"status":"cr', {
      append: true,
    });
    Deno.writeTextFileSync(log, "\n", { append: true });
    await root.ok(["create", "--name", "two", "busybox", "true"]);
    const r = await root.skiff([
      "events",
      "--since",
      "0",
      "--until",
      String(Date.now() / 1000 + 1),
      "--format",
      "{{.Actor.Attributes.name}}",
      "--filter",
      "type=container",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "one\ntwo\n");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /skipped 3 unreadable line\(s\)/);
  });
});

Deno.test("events (unit): docker's time forms, message encoding, filters, default line", () => {
  const now = Date.UTC(2026, 11, 6, 13, 20, 1, 500);
  assert.equal(parseEventTime("10m", now), BigInt(Math.floor(now / 1000) - 600) * 1_000_000_000n);
  assert.equal(parseEventTime("1h30m", now), BigInt(Math.floor(now / 1000) - 5400) * 1_000_000_000n);
  assert.equal(parseEventTime("1700000000.5", now), 1_700_000_000_500_000_000n);
  assert.equal(parseEventTime("0", now), 0n);
  assert.equal(parseEventTime("2026-12-06T13:20:01.123456789Z", now), 1796563201123456789n);
  assert.equal(parseEventTime("2026-12-06T14:20:01+01:00", now), 1796563201000000000n);
  assert.throws(() => parseEventTime("soon", now), /failed to parse value as time or duration: "soon"/);

  const ev = eventMessage(
    "container",
    "die",
    "c0ffee",
    { name: "n", image: "busybox", exitCode: "1" },
    1796563201123456789n,
  );
  const line = encodeEvent(ev);
  assert.match(line, /"timeNano":1796563201123456789\}\n$/);
  assert.deepEqual(decodeEvent(line.trim()), ev);
  assert.equal(
    decodeEvent(
      '{"Type":"container","Action":"x","Actor":{"ID":"a","Attributes":{"k":1}},"time":1,"timeNano":1}',
    ),
    undefined,
  );
  // image and volume messages: docker fills status/id for images only, from for containers only
  assert.deepEqual(Object.keys(eventMessage("image", "tag", "sha256:1", { name: "x:1" }, 1n)).slice(0, 3), [
    "status",
    "id",
    "Type",
  ]);
  assert.equal(eventMessage("volume", "create", "v", { driver: "local" }, 1n).status, undefined);

  const f = parseEventFilters(["event=exec_start", "container=ab"]);
  const exec = eventMessage("container", "exec_start: sh -c x", "abcdef", { name: "zz", image: "i" }, 1n);
  assert.equal(eventMatches(f, exec), true); // exec_start matches "exec_start: CMD" (docker #25798)
  assert.equal(eventMatches(parseEventFilters(["event=exec_die"]), exec), false);
  assert.equal(eventMatches(parseEventFilters(["container=zz"]), exec), true);
  assert.equal(eventMatches(parseEventFilters(["container=q"]), exec), false);

  Deno.env.set("TZ", "UTC");
  assert.equal(
    prettyEvent(
      eventMessage("container", "start", "c0ffee", { name: "n", image: "busybox" }, 1796563201000000042n),
    ),
    "2026-12-06T13:20:01.000000042Z container start c0ffee (image=busybox, name=n)\n",
  );
});

Deno.test("events (unit): the log rotates past its cap; a follower and the history lose nothing across it", () => {
  const dir = Deno.makeTempDirSync({ prefix: "skiff-events-" });
  try {
    const root = new StateRoot(dir);
    const follower = new EventsReader(root);
    follower.skipToEnd();
    const seen: string[] = [];
    const total = Math.ceil(EVENTS_CAP_BYTES / 200) + 500; // more than one generation's worth
    for (let i = 0; i < total; i++) {
      appendEvent(root, eventMessage("container", "start", `c${i}`, { name: `n${i}`, image: "busybox" }));
      if (i % 100 === 99) seen.push(...follower.drain().map((e) => e.Actor.ID));
    }
    seen.push(...follower.drain().map((e) => e.Actor.ID));
    follower.close();
    assert.ok(Deno.statSync(join(dir, "events.jsonl.1")).size > EVENTS_CAP_BYTES, "rotated");
    assert.ok(Deno.statSync(join(dir, "events.jsonl")).size <= EVENTS_CAP_BYTES);
    assert.deepEqual(seen, Array.from({ length: total }, (_, i) => `c${i}`));
    const reader = new EventsReader(root);
    const kept = reader.history().map((e) => Number(e.Actor.ID.slice(1)));
    reader.close();
    assert.equal(reader.bad.count, 0);
    assert.equal(kept.at(-1), total - 1);
    assert.deepEqual(
      kept,
      Array.from({ length: kept.length }, (_, i) => kept[0] + i),
      "in order, none missing",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("events: image tag/untag/delete/save and volume create/destroy, as docker names them", async () => {
  await withDetached(async (root) => {
    const id = (await root.ok(["inspect", "-f", "{{.Id}}", "busybox"])).trim();
    await root.ok(["tag", "busybox", "mine:1"]);
    await root.ok(["rmi", "mine:1"]);
    await root.ok(["save", "-o", join(root.path, "bb.tar"), "busybox"]);
    await root.ok(["volume", "create", "vol1"]);
    await root.ok(["volume", "rm", "vol1"]);
    const images = await allEvents(root, "--filter", "type=image");
    assert.deepEqual(images.map((e) => `${e.Action} ${e.Actor.ID} ${e.Actor.Attributes.name}`), [
      `import ${id} ${id}`,
      `tag ${id} mine:1`,
      `untag ${id} ${id}`,
      `save ${id} ${id}`,
    ]);
    for (const e of images) assert.equal(e.status, e.Action);
    // by the image's name (stripped of its tag) too, as docker's image= filter
    assert.equal((await allEvents(root, "--filter", "image=mine", "--filter", "type=image")).length, 1);
    const volumes = await allEvents(root, "--filter", "type=volume");
    assert.deepEqual(volumes.map((e) => `${e.Action} ${e.Actor.ID} ${e.Actor.Attributes.driver}`), [
      "create vol1 local",
      "destroy vol1 local",
    ]);
    assert.equal(volumes[0].status, undefined); // docker fills status/id/from for containers and images only
    // rmi by id: its tag goes (untag) and the image with it (delete)
    await root.ok(["rmi", "-f", id]);
    const last = (await allEvents(root, "--filter", "type=image")).slice(-2);
    assert.deepEqual(last.map((e) => e.Action), ["untag", "delete"]);
  });
});
