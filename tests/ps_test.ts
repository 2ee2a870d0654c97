// skiff ps: columns, default/-a/-q/-l/-n/--no-trunc, filters, --format/table/json, reconciliation
// of stale records, and end to end with `skiff run`.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createContainer, loadContainer, processStartTime } from "../lib/state/containers.ts";
import { StateRoot } from "../lib/state/root.ts";
import {
  type ContainerRecord,
  type ContainerState,
  initialState,
  ZERO_TIME as ZERO,
} from "../lib/state/types.ts";
import { type TestRoot, withBusybox, withRoot } from "./helpers.ts";

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

interface Fake {
  name: string;
  state?: Partial<ContainerState>;
  created?: string;
  path?: string;
  args?: string[];
  image?: string;
  imageId?: string;
  labels?: Record<string, string>;
}

/** Writes a container record the way the runtime would, without running anything. */
async function fakeContainer(root: TestRoot, f: Fake): Promise<ContainerRecord> {
  const state = new StateRoot(root.path);
  state.ensure();
  return await createContainer(state, f.name, (id, name, dir) => {
    for (const sub of ["upper", "work", "merged"]) Deno.mkdirSync(join(dir, sub));
    return {
      Id: id,
      Created: f.created ?? new Date().toISOString(),
      Path: f.path ?? "sleep",
      Args: f.args ?? ["100"],
      State: {
        ...initialState(),
        ...f.state,
      },
      Image: f.imageId ?? `sha256:${"ab".repeat(32)}`,
      Name: `/${name}`,
      RestartCount: 0,
      Driver: "overlay2",
      HostConfig: {
        AutoRemove: false,
        Privileged: false,
        ReadonlyRootfs: false,
        CapAdd: null,
        CapDrop: null,
        NetworkMode: "none",
        Memory: 0,
        MemorySwap: 0,
        NanoCpus: 0,
        CpuShares: 0,
        CpuPeriod: 0,
        CpuQuota: 0,
        CpusetCpus: "",
        CpusetMems: "",
        PidsLimit: null,
        BlkioWeight: 0,
        MaskedPaths: [],
        ReadonlyPaths: [],
      },
      Config: {
        Hostname: id.slice(0, 12),
        Domainname: "",
        User: "",
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        OpenStdin: false,
        StdinOnce: false,
        Env: ["PATH=/bin"],
        Cmd: [f.path ?? "sleep", ...(f.args ?? ["100"])],
        Image: f.image ?? "busybox",
        Volumes: null,
        WorkingDir: "",
        Entrypoint: null,
        Labels: f.labels ?? {},
      },
      LowerDirs: ["/layers/b/diff", "/layers/a/diff"],
    };
  });
}

/** A live process standing in for a container's init (killed by the test or by rm -f). */
function liveProcess(): { pid: number; start: number; done: Promise<Deno.CommandStatus>; kill(): void } {
  const child = new Deno.Command("sleep", { args: ["1000"], stdout: "null", stderr: "null" }).spawn();
  return {
    pid: child.pid,
    start: processStartTime(child.pid)!,
    done: child.status,
    kill: () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}

const exited = (code: number, finishedMsAgo: number): Partial<ContainerState> => ({
  Status: "exited",
  ExitCode: code,
  StartedAt: ago(finishedMsAgo + 1000),
  FinishedAt: ago(finishedMsAgo),
});

const lines = (s: string) => s.split("\n").filter((l) => l !== "");

Deno.test("ps: default shows running only, docker's columns and alignment", async () => {
  await withRoot(async (root) => {
    const proc = liveProcess();
    try {
      const run = await fakeContainer(root, {
        name: "up",
        path: "sh",
        args: ["-c", "while true; do echo hello; sleep 1; done"],
        created: ago(5000),
        state: {
          Status: "running",
          Running: true,
          Pid: proc.pid,
          PidStartTime: proc.start,
          StartedAt: ago(3000),
        },
      });
      await fakeContainer(root, { name: "old", state: exited(3, 120_000), created: ago(200_000) });
      const out = lines(await root.ok(["ps"]));
      assert.equal(out.length, 2, out.join("\n"));
      assert.equal(
        out[0],
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES",
      );
      const id = run.Id.slice(0, 12);
      assert.equal(
        out[1],
        `${id}   busybox   "sh -c 'while true; …"   5 seconds ago   Up 3 seconds             up`,
      );
      // columns start where the header's do
      for (const h of ["IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]) {
        const col = out[0].indexOf(h);
        assert.notEqual(out[1][col - 1], undefined);
        assert.equal(out[1][col - 1], " ", `column ${h}`);
        assert.notEqual(out[1][col], " ", `column ${h}`);
      }
      const all = lines(await root.ok(["ps", "-a"]));
      assert.equal(all.length, 3);
      assert.match(all[2], /Exited \(3\) 2 minutes ago\s+old$/);
    } finally {
      proc.kill();
      await proc.done;
    }
  });
});

Deno.test("ps: -q, --no-trunc, -l, -n, ordering newest first, Created status", async () => {
  await withRoot(async (root) => {
    const a = await fakeContainer(root, { name: "aa", created: ago(30_000), state: exited(0, 20_000) });
    const b = await fakeContainer(root, { name: "bb", created: ago(20_000), state: exited(1, 10_000) });
    const c = await fakeContainer(root, { name: "cc", created: ago(10_000) });
    assert.equal(await root.ok(["ps", "-q"]), "");
    assert.deepEqual(lines(await root.ok(["ps", "-aq"])), [c, b, a].map((x) => x.Id.slice(0, 12)));
    assert.deepEqual(lines(await root.ok(["ps", "-a", "-q", "--no-trunc"])), [c, b, a].map((x) => x.Id));
    assert.deepEqual(lines(await root.ok(["ps", "-lq"])), [c.Id.slice(0, 12)]);
    assert.deepEqual(lines(await root.ok(["ps", "-n", "2", "--format", "{{.Names}}"])), ["cc", "bb"]);
    assert.deepEqual(lines(await root.ok(["ps", "-a", "--format", "{{.Names}} {{.Status}}"])), [
      "cc Created",
      "bb Exited (1) 10 seconds ago",
      "aa Exited (0) 20 seconds ago",
    ]);
    const full = await root.ok(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
    assert.ok(full.includes(`${a.Id} "sleep 100"`), full);
    const bad = await root.skiff(["ps", "-n", "x"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid argument "x" for "-n, --last" flag/);
    const extra = await root.skiff(["ps", "foo"]);
    assert.equal(extra.code, 1); // docker's CLI: 1 for a wrong number of arguments
    assert.match(extra.stderr, /"skiff ps" accepts no arguments/);
  });
});

Deno.test("ps: filters", async () => {
  await withRoot(async (root) => {
    const web = await fakeContainer(root, {
      name: "web1",
      created: ago(30_000),
      state: exited(0, 20_000),
      labels: { app: "web", tier: "front" },
      image: "nginx:1.25",
      imageId: `sha256:${"cd".repeat(32)}`,
    });
    await fakeContainer(root, {
      name: "db",
      created: ago(20_000),
      state: exited(3, 10_000),
      labels: { app: "db" },
    });
    await fakeContainer(root, { name: "web2", created: ago(10_000), labels: { app: "web" } });
    const names = async (...f: string[]) =>
      lines(await root.ok(["ps", "-a", "--format", "{{.Names}}", ...f.flatMap((x) => ["-f", x])]));
    assert.deepEqual(await names("name=web"), ["web2", "web1"]);
    assert.deepEqual(await names("name=^web1$"), ["web1"]);
    assert.deepEqual(await names("name=db", "name=web2"), ["web2", "db"]); // same key: OR
    assert.deepEqual(await names("label=app=web"), ["web2", "web1"]);
    assert.deepEqual(await names("label=tier"), ["web1"]);
    assert.deepEqual(await names("label=app=web", "label=tier=front"), ["web1"]); // labels: AND
    assert.deepEqual(await names("exited=3"), ["db"]);
    assert.deepEqual(await names("exited=0"), ["web1"]);
    assert.deepEqual(await names("status=created"), ["web2"]);
    assert.deepEqual(await names(`id=${web.Id.slice(0, 8)}`), ["web1"]);
    assert.deepEqual(await names("before=web2"), ["db", "web1"]);
    assert.deepEqual(await names("since=web1"), ["web2", "db"]);
    assert.deepEqual(await names("ancestor=nginx:1.25"), ["web1"]);
    assert.deepEqual(await names("ancestor=busybox"), ["web2", "db"]);
    assert.deepEqual(await names("name=web", "status=exited"), ["web1"]); // different keys: AND
    // status implies -a, as in docker
    assert.deepEqual(lines(await root.ok(["ps", "-f", "status=exited", "--format", "{{.Names}}"])), [
      "db",
      "web1",
    ]);

    const badKey = await root.skiff(["ps", "-f", "colour=red"]);
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /invalid filter 'colour'/);
    const badStatus = await root.skiff(["ps", "-f", "status=sleepy"]);
    assert.equal(badStatus.code, 1);
    assert.match(badStatus.stderr, /invalid filter 'status=sleepy'/);
    const badFormat = await root.skiff(["ps", "-f", "nameweb"]);
    assert.equal(badFormat.code, 125);
    assert.match(badFormat.stderr, /bad format of filter \(expected name=value\)/);
    const noSuch = await root.skiff(["ps", "-f", "before=ghost"]);
    assert.notEqual(noSuch.code, 0);
    assert.match(noSuch.stderr, /No such container: ghost/);
  });
});

Deno.test("ps: --format placeholders, table directive, json, template errors", async () => {
  await withRoot(async (root) => {
    const c = await fakeContainer(root, {
      name: "fmt",
      created: ago(7200_000),
      state: exited(2, 3600_000),
      labels: { b: "2", a: "1" },
    });
    const one = (f: string) => root.ok(["ps", "-a", "--format", f]);
    assert.equal(
      await one("{{.ID}}|{{.Image}}|{{.Command}}|{{.State}}"),
      `${c.Id.slice(0, 12)}|busybox|"sleep 100"|exited\n`,
    );
    assert.equal(await one("{{.RunningFor}}|{{.Status}}"), "2 hours ago|Exited (2) About an hour ago\n");
    assert.equal(
      await one('{{.Labels}}|{{.Label "a"}}|{{.Label "zz"}}|{{.Networks}}|{{.Ports}}|{{.Mounts}}'),
      "a=1,b=2|1||none||\n",
    );
    assert.match(await one("{{.CreatedAt}}"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\n$/);
    assert.equal(await one("{{.Names | upper}}"), "FMT\n");
    assert.equal(await one("{{.Size}}"), "0B\n"); // no files written, image unknown
    const table = lines(await one('table {{.Names}}\\t{{.State}}\\t{{.Label "a"}}'));
    assert.deepEqual(table, ["NAMES     STATE     LABEL", "fmt       exited    1"]);
    const json = JSON.parse(await one("json"));
    assert.equal(json.Names, "fmt");
    assert.equal(json.State, "exited");
    assert.equal(json.Command, '"sleep 100"');
    assert.deepEqual(JSON.parse(await one("{{json .}}")), json);
    // -s adds docker's SIZE column to the default table
    const sized = lines(await root.ok(["ps", "-a", "-s"]));
    assert.match(sized[0], /NAMES {5}SIZE$/);
    assert.match(sized[1], /fmt {7}0B$/);
    // -q wins over --format, as in docker
    assert.equal(await root.ok(["ps", "-aq", "--format", "{{.Names}}"]), `${c.Id.slice(0, 12)}\n`);

    const parse = await root.skiff(["ps", "--format", "{{.Names"]);
    assert.equal(parse.code, 1); // docker 20.10's ps: "failed to parse template: …", exit 1
    assert.match(parse.stderr, /failed to parse template: template: :1: unclosed action/); // docker 20.10's ps
    assert.equal(parse.stdout, "");
    const exec = await root.skiff(["ps", "-a", "--format", "{{.Nope}}"]);
    assert.equal(exec.code, 1);
    assert.match(exec.stderr, /can't evaluate field Nope/);
  });
});

Deno.test("ps: a running record whose process and monitor are gone is shown (and saved) as exited", async () => {
  await withRoot(async (root) => {
    const proc = liveProcess();
    proc.kill();
    await proc.done;
    const c = await fakeContainer(root, {
      name: "ghost",
      state: {
        Status: "running",
        Running: true,
        Pid: proc.pid,
        PidStartTime: proc.start,
        MonitorPid: proc.pid, // gone as well
        StartedAt: ago(4000),
      },
    });
    assert.equal(await root.ok(["ps", "--format", "{{.Names}}"]), "");
    const out = await root.ok(["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    assert.equal(out, "ghost exited Exited (137) Less than a second ago\n");
    const saved = loadContainer(new StateRoot(root.path), c.Id);
    assert.equal(saved.State.Status, "exited");
    assert.equal(saved.State.Running, false);
    assert.equal(saved.State.ExitCode, 137);
    assert.equal(saved.State.Pid, 0);
    assert.notEqual(saved.State.FinishedAt, ZERO);
    assert.match(saved.State.Error, /monitor/);
  });
});

Deno.test("ps: a running record whose process lives is left alone, even without a monitor", async () => {
  await withRoot(async (root) => {
    const proc = liveProcess();
    try {
      await fakeContainer(root, {
        name: "alive",
        state: {
          Status: "running",
          Running: true,
          Pid: proc.pid,
          PidStartTime: proc.start,
          StartedAt: ago(1000),
        },
      });
      assert.equal(await root.ok(["ps", "--format", "{{.Names}} {{.State}}"]), "alive running\n");
      // a reused pid (start time differs) is not the container
    } finally {
      proc.kill();
      await proc.done;
    }
    const again = await root.ok(["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    assert.match(again, /^alive exited Exited \(137\)/);
  });
});

Deno.test("ps: end to end with skiff run: exited container shows its exit code, IMAGE as typed", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff(["run", "--name", "three", "busybox", "sh", "-c", "exit 3"]);
    assert.equal(r.code, 3, r.stderr);
    const out = lines(await root.ok(["ps", "-a"]));
    assert.equal(out.length, 2);
    assert.match(
      out[1],
      /^[0-9a-f]{12} {3}busybox {3}"sh -c 'exit 3'"\s+.* ago\s+Exited \(3\) .* ago\s+three$/,
    );
    assert.equal(await root.ok(["ps"]), lines(await root.ok(["ps"]))[0] + "\n"); // header only
    assert.equal(await root.ok(["ps", "-a", "-f", "exited=3", "--format", "{{.Names}}"]), "three\n");
  });
});

Deno.test("ps: PORTS of a running container from what it published, docker's grouping", async () => {
  const { formatPorts } = await import("../lib/inspect/ps.ts");
  await withRoot(async (root) => {
    const c = await fakeContainer(root, { name: "ports" });
    const running = {
      ...c,
      State: { ...c.State, Running: true, Status: "running" as const },
      Config: { ...c.Config, ExposedPorts: { "80/tcp": {}, "53/udp": {}, "443/tcp": {}, "444/tcp": {} } },
      PublishedPorts: [
        { proto: "tcp" as const, hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80 },
        { proto: "udp" as const, hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53 },
        { proto: "tcp" as const, hostIp: "0.0.0.0", hostPort: 9000, containerPort: 9000 },
      ],
    };
    // docker's DisplayablePorts: unpublished and same-port groups first, then the mappings
    assert.equal(
      formatPorts(running),
      "443-444/tcp, 0.0.0.0:9000->9000/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp",
    );
    // a stopped container shows no ports, as docker's list does
    assert.equal(formatPorts({ ...running, State: c.State }), "");
    assert.equal(formatPorts(c), "");
  });
});
