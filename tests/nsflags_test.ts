// --ipc, --pid, --uts, --userns, --cgroupns (lib/runtime/nsmodes.ts, lib/engine/namespaces.ts)
// against docker. Every expected output below came from docker 20.10.24 (dockerd, runc) on this
// machine (cgroup v1 hybrid, kernel 6.18) with the same busybox image, 2026-12-06; the tests run
// without docker. docker's lines start "docker: Error response from daemon: " or "docker: " and end
// with "."; skiff prints the message itself after "skiff: ".

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { eventually, inspect, runDetached, withDetached } from "./detach_helpers.ts";
import { applyNamespaceModes, parseNamespaceFlags, shmPlan } from "../lib/runtime/nsmodes.ts";
import { DEFAULT_NAMESPACES } from "../lib/runtime/spec.ts";

const MODES = "{{json .HostConfig.IpcMode}} {{json .HostConfig.PidMode}} {{json .HostConfig.UTSMode}} " +
  "{{json .HostConfig.UsernsMode}} {{json .HostConfig.CgroupnsMode}}";
const hostNs = (kind: string) => Deno.readLinkSync(`/proc/self/ns/${kind}`);
const unifiedCgroups = () => {
  try {
    return Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").trim() !== "";
  } catch {
    return false;
  }
};

Deno.test("nsmodes: docker's checks and the stage's namespaces (no root)", () => {
  assert.deepEqual(parseNamespaceFlags({}), {
    IpcMode: "private",
    PidMode: "",
    UTSMode: "",
    UsernsMode: "",
    CgroupnsMode: "",
  });
  for (
    const [flags, message] of [
      [{ ipc: "bogus" }, "Invalid IPC mode: bogus"],
      [{ pid: "bogus" }, "--pid: invalid PID mode"],
      [{ pid: "container:" }, "--pid: invalid PID mode"],
      [{ pid: "container:a:b" }, "--pid: invalid PID mode"],
      [{ uts: "private" }, "--uts: invalid UTS mode"],
      [{ userns: "private" }, "--userns: invalid USER mode"],
      [{ cgroupns: "x" }, "--cgroupns: invalid CGROUP mode"],
    ] as const
  ) {
    assert.throws(() => parseNamespaceFlags(flags), { message });
  }
  const ns = (modes: Parameters<typeof applyNamespaceModes>[1], path?: string) =>
    applyNamespaceModes(DEFAULT_NAMESPACES, modes, path).map((n) => n.path ? `${n.type}=${n.path}` : n.type);
  assert.deepEqual(ns({}), ["mount", "uts", "ipc", "network"]);
  assert.deepEqual(ns({ UTSMode: "host", IpcMode: "host" }), ["mount", "network"]);
  assert.deepEqual(ns({ IpcMode: "container:abc" }, "/proc/1/fd/9"), [
    "mount",
    "uts",
    "ipc=/proc/1/fd/9",
    "network",
  ]);
  assert.deepEqual(ns({ CgroupnsMode: "private" }), ["mount", "uts", "ipc", "network", "cgroup"]);
  assert.deepEqual(shmPlan("none", "/c/shm"), { kind: "none" });
  assert.deepEqual(shmPlan("host", "/c/shm"), { kind: "bind", source: "/dev/shm" });
  assert.deepEqual(shmPlan("shareable", "/c/shm"), { kind: "bind", source: "/c/shm" });
  assert.deepEqual(shmPlan("container:x", "/c/shm", "/x/shm"), { kind: "bind", source: "/x/shm" });
  assert.deepEqual(shmPlan("private", "/c/shm"), { kind: "own" });
});

Deno.test("namespace flags: bad values and conflicts get docker's line and exit 125, nothing made", async () => {
  await withBusybox(async (root) => {
    for (
      const [args, line] of <[string[], string][]> [
        // docker: Error response from daemon: Invalid IPC mode: bogus.
        [["--ipc", "bogus"], "Invalid IPC mode: bogus"],
        // docker: Error response from daemon: No such container: missing.
        [["--ipc", "container:missing"], "No such container: missing"],
        // docker: --pid: invalid PID mode.
        [["--pid", "bogus"], "--pid: invalid PID mode"],
        [["--pid", "container:missing"], "No such container: missing"],
        // docker: --uts: invalid UTS mode.
        [["--uts", "private"], "--uts: invalid UTS mode"],
        // docker: --userns: invalid USER mode.
        [["--userns", "foo"], "--userns: invalid USER mode"],
        // docker: --cgroupns: invalid CGROUP mode.
        [["--cgroupns", "x"], "--cgroupns: invalid CGROUP mode"],
        // docker: Error response from daemon: conflicting options: hostname and the UTS mode.
        [["--uts", "host", "-h", "foo"], "conflicting options: hostname and the UTS mode"],
      ]
    ) {
      const r = await root.skiff(["run", "--rm", ...args, "busybox", "true"]);
      assert.equal(r.code, 125, args.join(" "));
      assert.equal(r.stderr, `skiff: ${line}\n`, args.join(" "));
    }
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("namespace flags: inspect's HostConfig modes as docker keeps them", async () => {
  await withBusybox(async (root) => {
    // docker 20.10 here, `docker create FLAGS busybox true` then inspect -f MODES:
    const cgroupns = unifiedCgroups() ? "private" : "host"; // dockerd's default by cgroup version
    const expected: [string[], string][] = [
      [[], `"private" "" "" "" "${cgroupns}"`],
      [["--ipc", "host"], `"host" "" "" "" "${cgroupns}"`],
      [["--ipc", "none"], `"none" "" "" "" "${cgroupns}"`],
      [["--ipc", "shareable"], `"shareable" "" "" "" "${cgroupns}"`],
      [["--ipc", ""], `"private" "" "" "" "${cgroupns}"`],
      [["--pid", "host"], `"private" "host" "" "" "${cgroupns}"`],
      [["--uts", "host"], `"private" "" "host" "" "${cgroupns}"`],
      [["--userns", "host"], `"private" "" "" "host" "${cgroupns}"`],
      [["--cgroupns", "private"], `"private" "" "" "" "private"`],
      [["--cgroupns", "host"], `"private" "" "" "" "host"`],
    ];
    for (const [flags, line] of expected) {
      const id = (await root.ok(["create", ...flags, "busybox", "true"])).trim();
      assert.equal(await inspect(root, id, MODES), line, flags.join(" "));
      await root.ok(["rm", id]);
    }
    // container:NAME is kept as container:<full id>
    const x = (await root.ok(["create", "--name", "xx", "busybox", "true"])).trim();
    const j = (await root.ok(["create", "--ipc", "container:xx", "--pid", "container:xx", "busybox", "true"]))
      .trim();
    assert.equal(await inspect(root, j, MODES), `"container:${x}" "container:${x}" "" "" "${cgroupns}"`);
  });
});

Deno.test("--ipc: private, shareable, none and host as docker makes /dev/shm and the namespace", async () => {
  await withBusybox(async (root) => {
    const script = "mount | grep -e shm -e mqueue; ls -d /dev/shm /dev/mqueue; readlink /proc/self/ns/ipc";
    const run = async (mode: string) => {
      const r = await root.skiff(["run", "--rm", "--ipc", mode, "busybox", "sh", "-c", script]);
      return { ...r, lines: r.stdout.trim().split("\n") };
    };
    // docker 20.10, --ipc private (and shareable):
    //   mqueue on /dev/mqueue type mqueue (rw,nosuid,nodev,noexec,relatime)
    //   shm on /dev/shm type tmpfs (rw,nosuid,nodev,noexec,relatime,size=65536k)
    //   /dev/mqueue  /dev/shm  ipc:[<a namespace of its own>]
    for (const mode of ["private", "shareable"]) {
      const r = await run(mode);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        r.lines.includes("shm on /dev/shm type tmpfs (rw,nosuid,nodev,noexec,relatime,size=65536k)"),
        mode,
      );
      assert.ok(
        r.lines.includes("mqueue on /dev/mqueue type mqueue (rw,nosuid,nodev,noexec,relatime)"),
        mode,
      );
      assert.notEqual(r.lines.at(-1), hostNs("ipc"), mode);
    }
    // docker 20.10, --ipc none: no /dev/shm at all ("ls: /dev/shm: No such file or directory"),
    // /dev/mqueue mounted, a namespace of its own
    const none = await run("none");
    assert.equal(none.code, 0);
    assert.match(none.stderr, /ls: \/dev\/shm: No such file or directory/);
    assert.ok(!none.stdout.includes("/dev/shm"));
    assert.ok(none.lines.includes("/dev/mqueue"));
    assert.notEqual(none.lines.at(-1), hostNs("ipc"));
    // docker 20.10, --ipc host: the host's /dev/shm (its own mount line: "tmpfs on /dev/shm type
    // tmpfs (rw,relatime,size=…)") and the host's namespace
    const host = await run("host");
    assert.equal(host.code, 0, host.stderr);
    assert.equal(host.lines.at(-1), hostNs("ipc"));
    const hostShm = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .find((l) => l.split(" ")[4] === "/dev/shm");
    if (hostShm) {
      assert.ok(host.lines.some((l) => l.startsWith(`${hostShm.split(" - ")[1].split(" ")[1]} on /dev/shm`)));
    }
    // the host sees what a container writes there
    const name = `skiff-nsflags-${crypto.randomUUID()}`;
    try {
      await root.ok(["run", "--rm", "--ipc", "host", "busybox", "sh", "-c", `echo hi > /dev/shm/${name}`]);
      assert.equal(Deno.readTextFileSync(`/dev/shm/${name}`), "hi\n");
    } finally {
      try {
        Deno.removeSync(`/dev/shm/${name}`);
      } catch { /* not made */ }
    }
  });
});

Deno.test("--ipc container:NAME joins a shareable container's namespace and /dev/shm; docker's refusals", async () => {
  await withDetached(async (root) => {
    const shareable = await runDetached(root, [
      "--name",
      "donor",
      "--ipc",
      "shareable",
      "busybox",
      "sleep",
      "300",
    ]);
    const privateId = await runDetached(root, ["--name", "priv", "busybox", "sleep", "300"]);
    await root.ok(["exec", "donor", "sh", "-c", "echo hi > /dev/shm/f"]);
    const donorNs = (await root.ok(["exec", "donor", "readlink", "/proc/self/ns/ipc"])).trim();
    // docker 20.10: "hi", "shm on /dev/shm type tmpfs (rw,nosuid,nodev,noexec,relatime,size=65536k)",
    // and the donor's ipc:[…]
    const out = await root.ok([
      "run",
      "--rm",
      "--ipc",
      "container:donor",
      "busybox",
      "sh",
      "-c",
      "cat /dev/shm/f; mount | grep shm; readlink /proc/self/ns/ipc",
    ]);
    assert.equal(
      out,
      `hi\nshm on /dev/shm type tmpfs (rw,nosuid,nodev,noexec,relatime,size=65536k)\n${donorNs}\n`,
    );
    // the shareable /dev/shm is a tmpfs below the container's directory while it runs (docker's
    // ShmPath), and goes when it stops
    const shmMount = () =>
      Deno.readTextFileSync("/proc/self/mountinfo").includes(`${root.path}/containers/${shareable}/shm `);
    assert.ok(shmMount());
    // docker: Error response from daemon: can't join IPC of container <id>: non-shareable IPC (hint:
    // use IpcMode:shareable for the donor container).
    let r = await root.skiff(["run", "--rm", "--ipc", "container:priv", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.equal(
      r.stderr,
      `skiff: can't join IPC of container ${privateId}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)\n`,
    );
    await root.ok(["stop", "-t", "0", "donor"]);
    assert.ok(!shmMount());
    // docker: Error response from daemon: can't join IPC of container <id>: container <id> is not running.
    r = await root.skiff(["run", "--rm", "--ipc", "container:donor", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.equal(
      r.stderr,
      `skiff: can't join IPC of container ${shareable}: container ${shareable} is not running\n`,
    );
  });
});

Deno.test("--pid host and container:NAME: the processes docker shows; a stopped NAME refused", async () => {
  await withDetached(async (root) => {
    // docker 20.10, --pid host: `ps` lists the host's PID 1 (here /process_api) and kthreadd as 2
    const host = await root.ok([
      "run",
      "--rm",
      "--pid",
      "host",
      "busybox",
      "sh",
      "-c",
      "ps -o pid,comm; echo $$",
    ]);
    const hostComm = Deno.readTextFileSync("/proc/1/comm").trim();
    assert.match(
      host,
      new RegExp(`^\\s*1 ${hostComm.slice(0, 15).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "m"),
    );
    const ownPid = Number(host.trim().split("\n").at(-1));
    assert.ok(ownPid > 1, host); // not PID 1: the host's numbering
    const x = await runDetached(root, ["--name", "xx", "busybox", "sleep", "300"]);
    // docker 20.10, `docker run --rm --pid container:x busybox ps`:
    //   PID   USER     COMMAND
    //       1 root     sleep 300
    //       7 root     ps
    const ps = await root.ok(["run", "--rm", "--pid", "container:xx", "busybox", "ps"]);
    const lines = ps.trim().split("\n");
    assert.equal(lines[0], "PID   USER     COMMAND");
    assert.match(lines[1], /^\s+1 root\s+sleep 300$/);
    assert.match(lines.at(-1)!, /^\s+\d+ root\s+ps$/);
    // joiners one at a time, each under a lock file of the namespace that goes with its join: four
    // at once all run, and none is left behind (it used to stay for good, one per namespace)
    const joiners = await Promise.all(
      [1, 2, 3, 4].map(() => root.skiff(["run", "--rm", "--pid", "container:xx", "busybox", "true"])),
    );
    for (const j of joiners) assert.equal(j.code, 0, j.stderr);
    const pidLocks = () =>
      [...Deno.readDirSync(`${root.path}/locks`)].filter((e) => e.name.startsWith("pidjoin-"));
    assert.deepEqual(pidLocks(), []);
    // detached joiners too; an exec in one sees the same processes
    await runDetached(root, ["--name", "jj", "--pid", "container:xx", "busybox", "sleep", "200"]);
    assert.deepEqual(pidLocks(), []);
    const seen = await root.ok(["exec", "jj", "ps", "-o", "comm,args"]);
    assert.match(seen, /sleep\s+sleep 300/);
    assert.match(seen, /sleep\s+sleep 200/);
    // when x's PID 1 exits the kernel ends its namespace: the joiner goes with it (docker: 137)
    await root.ok(["stop", "-t", "0", "xx"]);
    await eventually(
      "the joiner's exit is recorded",
      async () => await inspect(root, "jj", "{{.State.Status}}") === "exited",
    );
    assert.equal(await inspect(root, "jj", "{{.State.ExitCode}}"), "137");
    // docker: Error response from daemon: container <id> is not running.
    const r = await root.skiff(["run", "--rm", "--pid", "container:xx", "busybox", "true"]);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, `skiff: container ${x} is not running\n`);
  });
});

Deno.test("--uts host, --userns host, --cgroupns: what docker shows inside", async () => {
  await withBusybox(async (root) => {
    // docker 20.10, --uts host: `hostname` is the host's, $HOSTNAME and /etc/hostname the container's id
    const uts = await root.ok([
      "run",
      "--rm",
      "--uts",
      "host",
      "busybox",
      "sh",
      "-c",
      "hostname; echo $HOSTNAME; cat /etc/hostname; readlink /proc/self/ns/uts",
    ]);
    const [name, env, file, ns] = uts.trim().split("\n");
    assert.equal(name, Deno.hostname());
    assert.match(env, /^[0-9a-f]{12}$/);
    assert.equal(file, env);
    assert.equal(ns, hostNs("uts"));
    await root.ok(["run", "--rm", "--userns", "host", "busybox", "true"]);
    // docker 20.10 on this (v1) host: host → the host's cgroup namespace and paths
    // (9:name=systemd:/docker/<id>), private → its own, with every path "/" (9:name=systemd:/)
    const script = "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup";
    const priv = (await root.ok(["run", "--rm", "--cgroupns", "private", "busybox", "sh", "-c", script]))
      .trim()
      .split("\n");
    assert.notEqual(priv[0], hostNs("cgroup"));
    for (const line of priv.slice(1)) assert.match(line, /^\d+:[^:]*:\/$/, line);
    const hostMode = (await root.ok(["run", "--rm", "--cgroupns", "host", "busybox", "sh", "-c", script]))
      .trim()
      .split("\n");
    assert.equal(hostMode[0], hostNs("cgroup"));
    // the default follows dockerd: host on cgroup v1 (this machine), private on v2
    const dflt = (await root.ok(["run", "--rm", "busybox", "readlink", "/proc/self/ns/cgroup"])).trim();
    if (unifiedCgroups()) assert.notEqual(dflt, hostNs("cgroup"));
    else assert.equal(dflt, hostNs("cgroup"));
  });
});

Deno.test("--ipc container:NAME of a joiner or of an --ipc host container (docker)", async () => {
  await withDetached(async (root) => {
    await runDetached(root, ["--name", "sy", "--ipc", "shareable", "busybox", "sleep", "300"]);
    await runDetached(root, ["--name", "jx", "--ipc", "container:sy", "busybox", "sleep", "300"]);
    await root.ok(["exec", "sy", "sh", "-c", "echo chain > /dev/shm/c"]);
    const syNs = (await root.ok(["exec", "sy", "readlink", "/proc/self/ns/ipc"])).trim();
    // docker 20.10: "chain" and sy's ipc:[…] (a joiner's donor is shared on)
    const chained = await root.ok([
      "run",
      "--rm",
      "--ipc",
      "container:jx",
      "busybox",
      "sh",
      "-c",
      "cat /dev/shm/c; readlink /proc/self/ns/ipc",
    ]);
    assert.equal(chained, `chain\n${syNs}\n`);
    // docker 20.10: the host's ipc:[…] and its /dev/shm ("tmpfs on /dev/shm type tmpfs (rw,relatime,…)")
    await runDetached(root, ["--name", "ih", "--ipc", "host", "busybox", "sleep", "300"]);
    const viaHost = await root.ok([
      "run",
      "--rm",
      "--ipc",
      "container:ih",
      "busybox",
      "readlink",
      "/proc/self/ns/ipc",
    ]);
    assert.equal(viaHost.trim(), hostNs("ipc"));
  });
});

Deno.test("--pid/--ipc container:NAME of a container in its restart back-off: docker's refusal", async () => {
  await withDetached(async (root) => {
    const id = await runDetached(root, [
      "--name",
      "rr",
      "--restart",
      "always",
      "--ipc",
      "shareable",
      "busybox",
      "sh",
      "-c",
      "exit 1",
    ]);
    // the back-off doubles from 100 ms: after a few restarts it spends most of its time waiting
    await eventually(
      "rr restarted a few times",
      async () => Number(await inspect(root, "rr", "{{.RestartCount}}")) >= 4,
      20_000,
    );
    // docker 20.10 (the donor "restarting"):
    //   docker: Error response from daemon: Container <id> is restarting, wait until the container is running.
    //   docker: Error response from daemon: can't join IPC of container <id>: Container <id> is restarting, …
    const restarting = `Container ${id} is restarting, wait until the container is running`;
    for (
      const [flag, line] of [["--pid", restarting], [
        "--ipc",
        `can't join IPC of container ${id}: ${restarting}`,
      ]]
    ) {
      let seen = "";
      for (let i = 0; i < 10 && seen !== `skiff: ${line}\n`; i++) {
        await eventually(
          "rr is in its back-off",
          async () => await inspect(root, "rr", "{{.State.Status}}") === "restarting",
        );
        const r = await root.skiff(["run", "--rm", flag, "container:rr", "busybox", "true"]);
        // a join in the few ms the donor runs may succeed: only a refusal is checked
        if (r.code !== 0) assert.equal(r.code, 125, r.stderr);
        seen = r.stderr;
      }
      assert.equal(seen, `skiff: ${line}\n`);
    }
  });
});
