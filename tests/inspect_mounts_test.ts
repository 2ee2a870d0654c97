// inspect as scripts read it: the -v and --mount values kept as docker keeps them (HostConfig.Binds,
// HostConfig.Mounts, Config.Volumes, each mount's Mode), and Go's typed values where a field is
// unset (`[]`, `map[]`, `<nil>`, structs printed `{a b}`), checked against docker 20.10 when the
// peer runs.

import assert from "node:assert/strict";
import { join } from "node:path";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { type TestRoot, withBusybox } from "./helpers.ts";

type Json = Record<string, any>;

/** The same -v/--mount/--tmpfs flags for both engines; `host` is a bind source, `vol` a volume name. */
function mountFlags(host: string, vol: string): string[] {
  return [
    ...["-v", `${vol}:/named`, "-v", `${vol}:/named-ro:ro`, "-v", `${vol}:/named-nocopy:nocopy`],
    ...["-v", "/anon", "-v", `${host}/:/bind:ro`], // a trailing slash: kept in Binds, not in Mounts
    ...["--mount", `type=volume,src=${vol},dst=/m-named,readonly,volume-nocopy`],
    ...["--mount", "type=volume,dst=/m-anon"],
    ...["--mount", `type=bind,src=${host},dst=/m-bind,bind-propagation=rslave`],
    ...["--mount", "type=tmpfs,dst=/m-tmpfs,tmpfs-size=1m,tmpfs-mode=1777"],
    ...["--tmpfs", "/t:size=2m"],
  ];
}

/** What of the inspect JSON the flags decide, in an order that does not depend on Go's map order. */
function mountShape(c: Json, host: string, vol: string) {
  return {
    binds: [...(c.HostConfig.Binds ?? [])].sort(),
    apiMounts: [...(c.HostConfig.Mounts ?? [])].sort((a, b) => a.Target.localeCompare(b.Target)),
    tmpfs: c.HostConfig.Tmpfs,
    volumes: c.Config.Volumes,
    mounts: (c.Mounts as Json[])
      .map((m): Json => ({
        ...m,
        Name: m.Name === vol ? "VOL" : m.Name ? "ANON" : undefined,
        Source: undefined,
        // the peer's daemon root is a shared mount: docker turns the binds' default rprivate into rslave
        Propagation: m.Type === "bind" ? "P" : m.Propagation,
      }))
      .sort((a, b) => a.Destination.localeCompare(b.Destination)),
    keys: (c.Mounts as Json[]).map((m) => Object.keys(m).join(",")).sort(),
    host,
  };
}

const expectedShape = (host: string, vol: string) => ({
  binds: [`${host}/:/bind:ro`, `${vol}:/named`, `${vol}:/named-nocopy:nocopy`, `${vol}:/named-ro:ro`].sort(),
  apiMounts: [
    { Type: "volume", Target: "/m-anon" },
    { Type: "bind", Source: host, Target: "/m-bind", BindOptions: { Propagation: "rslave" } },
    {
      Type: "volume",
      Source: vol,
      Target: "/m-named",
      ReadOnly: true,
      VolumeOptions: { NoCopy: true, DriverConfig: {} },
    },
    { Type: "tmpfs", Target: "/m-tmpfs", TmpfsOptions: { SizeBytes: 1048576, Mode: 1023 } },
  ],
  tmpfs: { "/t": "size=2m" },
  volumes: { "/anon": {} },
  mounts: [
    {
      Type: "volume",
      Name: "ANON",
      Destination: "/anon",
      Driver: "local",
      Mode: "",
      RW: true,
      Propagation: "",
    },
    { Type: "bind", Destination: "/bind", Mode: "ro", RW: false, Propagation: "P" },
    {
      Type: "volume",
      Name: "ANON",
      Destination: "/m-anon",
      Driver: "local",
      Mode: "z",
      RW: true,
      Propagation: "",
    },
    { Type: "bind", Destination: "/m-bind", Mode: "", RW: true, Propagation: "P" },
    {
      Type: "volume",
      Name: "VOL",
      Destination: "/m-named",
      Driver: "local",
      Mode: "z",
      RW: false,
      Propagation: "",
    },
    { Type: "tmpfs", Destination: "/m-tmpfs", Mode: "", RW: true, Propagation: "" },
    {
      Type: "volume",
      Name: "VOL",
      Destination: "/named",
      Driver: "local",
      Mode: "z",
      RW: true,
      Propagation: "",
    },
    {
      Type: "volume",
      Name: "VOL",
      Destination: "/named-nocopy",
      Driver: "local",
      Mode: "nocopy",
      RW: true,
      Propagation: "",
    },
    {
      Type: "volume",
      Name: "VOL",
      Destination: "/named-ro",
      Driver: "local",
      Mode: "ro",
      RW: false,
      Propagation: "",
    },
  ].map((m) => ({ Name: undefined, ...m, Source: undefined })),
  keys: [
    ...Array(2).fill("Type,Source,Destination,Mode,RW,Propagation"), // binds
    "Type,Source,Destination,Mode,RW,Propagation", // tmpfs
    ...Array(6).fill("Type,Name,Source,Destination,Driver,Mode,RW,Propagation"),
  ].sort(),
  host,
});

/** Templates over fields a plain container leaves unset, and what docker 20.10 prints for each. */
const UNSET_FIELDS: [string, string][] = [
  ["{{.State.Health}}", "<nil>"],
  ["{{if .State.Health}}h{{else}}none{{end}}", "none"],
  ["{{.Config.Healthcheck}}", "<nil>"],
  ["{{.Config.Volumes}} {{.Config.ExposedPorts}}", "map[] map[]"],
  ["{{.Config.Entrypoint}} {{.Config.OnBuild}} {{.Config.Shell}}", "[] [] []"],
  ["{{range $p, $c := .Config.ExposedPorts}}{{$p}}{{end}}.", "."],
  ["{{.Config.MacAddress}}|{{.Config.ArgsEscaped}}|{{.Config.NetworkDisabled}}", "|false|false"],
  ["{{.HostConfig.Tmpfs}} {{.HostConfig.StorageOpt}}", "map[] map[]"],
  [
    "{{.HostConfig.Binds}} {{.HostConfig.Mounts}} {{.HostConfig.Links}} {{.HostConfig.CapAdd}}",
    "[] [] [] []",
  ],
  ["{{.HostConfig.ExtraHosts}} {{.HostConfig.SecurityOpt}} {{.HostConfig.DeviceCgroupRules}}", "[] [] []"],
  ["{{.HostConfig.LogConfig}} {{.HostConfig.RestartPolicy}}", "{json-file map[]} {no 0}"],
  ["{{.ExecIDs}} {{.NetworkSettings.SecondaryIPAddresses}}", "[] []"],
  ["{{json .Config.Healthcheck}} {{json .HostConfig.Mounts}} {{json .HostConfig.Binds}}", "null null null"],
  ["{{json .Config.Volumes}} {{json .Config.ExposedPorts}} {{json .HostConfig.Tmpfs}}", "null null null"],
];

/** Templates over a container with a port, a restart policy and log options. */
const SET_FIELDS = (port: number): [string, string][] => [
  ["{{.HostConfig.PortBindings}}", `map[80/tcp:[{127.0.0.1 ${port}}]]`],
  ["{{.Config.ExposedPorts}}", "map[80/tcp:{}]"],
  ["{{range $p, $c := .Config.ExposedPorts}}{{$p}}{{end}}", "80/tcp"],
  ["{{.HostConfig.LogConfig}} {{.HostConfig.RestartPolicy}}", "{json-file map[max-size:1m]} {on-failure 3}"],
  ["{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}", "false false false"],
];

const setFlags = (port: number) => [
  ...["-d", "-p", `127.0.0.1:${port}:80`, "--restart", "on-failure:3", "--log-opt", "max-size=1m"],
];

async function templates(root: TestRoot, name: string, cases: [string, string][]): Promise<void> {
  for (const [template, expected] of cases) {
    assert.equal(await root.ok(["inspect", "-f", template, name]), `${expected}\n`, template);
  }
}

Deno.test("inspect: -v and --mount as docker keeps them (Binds, HostConfig.Mounts, Config.Volumes, Mode)", async () => {
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir");
    Deno.mkdirSync(host);
    await root.ok(["create", "--name", "mnt", ...mountFlags(host, "vol1"), "busybox", "true"]);
    const [c] = JSON.parse(await root.ok(["inspect", "mnt"]));
    assert.deepEqual(mountShape(c, host, "vol1"), expectedShape(host, "vol1"));
    assert.equal(c.Mounts.find((m: Json) => m.Destination === "/bind").Source, host);
    // the mounts are what the container gets: the --mount tmpfs is a tmpfs of its size
    const df = await root.ok([
      "run",
      "--rm",
      ...[
        "--mount",
        "type=tmpfs,dst=/m-tmpfs,tmpfs-size=1m",
        "--tmpfs",
        "/t:size=2m",
        "-v",
        "vol1:/named:ro",
      ],
      "busybox",
      "sh",
      "-c",
      "grep -E ' /(m-tmpfs|t|named) ' /proc/mounts | cut -d' ' -f2,3,4 | sort",
    ]);
    assert.match(df, /^\/m-tmpfs tmpfs rw,.*size=1024k.*\n\/named \S+ ro,.*\n\/t tmpfs rw,.*size=2048k/);
    await root.ok(["rm", "-v", "mnt"]);
  });
});

Deno.test("inspect: unset fields read as Go's typed zeros; ports, policies and attach as docker's", async () => {
  await withBusybox(async (root) => {
    await root.ok(["create", "--name", "plain", "--network", "none", "busybox", "true"]);
    await templates(root, "plain", UNSET_FIELDS);
    // what the JSON leaves out stays out of it (omitempty) while templates read it
    const [c] = JSON.parse(await root.ok(["inspect", "plain"]));
    for (const key of ["Healthcheck", "ExposedPorts", "Shell", "MacAddress", "StopTimeout"]) {
      assert.ok(!(key in c.Config), `Config.${key} in the JSON`);
    }
    for (const key of ["Mounts", "Tmpfs", "StorageOpt", "Init"]) {
      assert.ok(!(key in c.HostConfig), `HostConfig.${key} in the JSON`);
    }
    assert.deepEqual(Object.keys(c.Config).slice(0, 7), [
      "Hostname",
      "Domainname",
      "User",
      "AttachStdin",
      "AttachStdout",
      "AttachStderr",
      "Tty",
    ]);

    const port = 20000 + (Deno.pid % 20000);
    await root.ok(["run", "--name", "set", ...setFlags(port), "busybox", "sleep", "300"]);
    try {
      await templates(root, "set", SET_FIELDS(port));
      const [s] = JSON.parse(await root.ok(["inspect", "set"]));
      assert.deepEqual(Object.keys(s.Config).slice(5, 8), ["AttachStderr", "ExposedPorts", "Tty"]);
    } finally {
      await root.skiff(["rm", "-f", "set"]);
    }
  });
});

Deno.test("inspect: mounts and unset fields equal docker's (peer)", async () => {
  if (!await peerDockerReady()) return;
  await withBusybox(async (root) => {
    const host = join(root.path, "hostdir");
    Deno.mkdirSync(host);
    const name = `skiffcmp-insp-${Deno.pid}`, vol = `skiffcmp-insp-vol-${Deno.pid}`;
    const port = 20000 + ((Deno.pid + 7) % 20000);
    try {
      const created = await docker([
        "create",
        "--name",
        name,
        ...mountFlags(host, vol),
        "localhost/bb:latest",
        "true",
      ]);
      assert.equal(created.code, 0, created.stderr);
      const [d] = JSON.parse((await docker(["inspect", name])).stdout);
      assert.deepEqual(mountShape(d, host, vol), expectedShape(host, vol), "docker's own shape");
      assert.equal(d.Mounts.find((m: Json) => m.Destination === "/bind").Source, host);

      const plain = await docker([
        "create",
        "--name",
        `${name}-plain`,
        "--network",
        "none",
        "localhost/bb:latest",
      ]);
      assert.equal(plain.code, 0, plain.stderr);
      for (const [template, expected] of UNSET_FIELDS) {
        assert.equal(
          (await docker(["inspect", "-f", template, `${name}-plain`])).stdout,
          `${expected}\n`,
          template,
        );
      }
      const set = await docker([
        "run",
        "--name",
        `${name}-set`,
        ...setFlags(port),
        "localhost/bb:latest",
        "sleep",
        "60",
      ]);
      assert.equal(set.code, 0, set.stderr);
      for (const [template, expected] of SET_FIELDS(port)) {
        assert.equal(
          (await docker(["inspect", "-f", template, `${name}-set`])).stdout,
          `${expected}\n`,
          template,
        );
      }
    } finally {
      await docker(["rm", "-f", "-v", name, `${name}-plain`, `${name}-set`]);
      await docker(["volume", "rm", vol]);
    }
  });
});
