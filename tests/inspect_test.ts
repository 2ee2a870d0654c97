// skiff inspect: docker's object shapes for containers and images, -f templates (with docker's
// raw-map fallback), --type, json, errors.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

type Json = Record<string, any>;

const CONTAINER_KEYS = [
  "Id",
  "Created",
  "Path",
  "Args",
  "State",
  "Image",
  "ResolvConfPath",
  "HostnamePath",
  "HostsPath",
  "LogPath",
  "Name",
  "RestartCount",
  "Driver",
  "Platform",
  "MountLabel",
  "ProcessLabel",
  "AppArmorProfile",
  "ExecIDs",
  "HostConfig",
  "GraphDriver",
  "Mounts",
  "Config",
  "NetworkSettings",
];
const STATE_KEYS = [
  "Status",
  "Running",
  "Paused",
  "Restarting",
  "OOMKilled",
  "Dead",
  "Pid",
  "ExitCode",
  "Error",
  "StartedAt",
  "FinishedAt",
];
const IMAGE_KEYS = [
  "Id",
  "RepoTags",
  "RepoDigests",
  "Parent",
  "Comment",
  "Created",
  "DockerVersion",
  "Author",
  "Config",
  "Architecture",
  "Os",
  "Size",
  "GraphDriver",
  "RootFS",
  "Metadata",
];

async function inspectJson(root: TestRoot, ...args: string[]): Promise<Json[]> {
  const out = await root.ok(["inspect", ...args]);
  return JSON.parse(out);
}

Deno.test("inspect: container shape, docker's field order and types", async () => {
  await withBusybox(async (root) => {
    const r = await root.skiff([
      "run",
      "--name",
      "shape",
      "-e",
      "X=1",
      "busybox",
      "sh",
      "-c",
      "echo a > /f; exit 4",
    ]);
    assert.equal(r.code, 4, r.stderr);
    const raw = await root.ok(["inspect", "shape"]);
    assert.match(raw, /^\[\n {4}\{\n {8}"Id": "[0-9a-f]{64}",\n/); // docker indents with four spaces
    assert.ok(raw.includes("\\u003e"), "Go's JSON escapes > as \\u003e");
    const [c] = JSON.parse(raw) as Json[];
    assert.deepEqual(Object.keys(c).filter((k) => CONTAINER_KEYS.includes(k)), CONTAINER_KEYS);
    assert.deepEqual(Object.keys(c.State), STATE_KEYS); // skiff's PidStartTime/MonitorPid stay private
    assert.equal(c.LowerDirs, undefined);
    assert.equal(c.Name, "/shape");
    assert.equal(c.Path, "sh");
    assert.deepEqual(c.Args, ["-c", "echo a > /f; exit 4"]);
    assert.equal(c.State.Status, "exited");
    assert.equal(c.State.Running, false);
    assert.equal(c.State.ExitCode, 4);
    assert.equal(typeof c.State.Pid, "number");
    assert.ok(!Number.isNaN(Date.parse(c.State.StartedAt)));
    assert.ok(!Number.isNaN(Date.parse(c.State.FinishedAt)));
    assert.match(c.Image, /^sha256:[0-9a-f]{64}$/);
    assert.equal(c.Driver, "overlay2");
    assert.equal(c.Platform, "linux");
    assert.equal(c.RestartCount, 0);
    const dir = join(root.path, "containers", c.Id);
    assert.equal(c.ResolvConfPath, join(dir, "resolv.conf"));
    assert.equal(c.HostnamePath, join(dir, "hostname"));
    assert.equal(c.HostsPath, join(dir, "hosts"));
    assert.equal(c.GraphDriver.Name, "overlay2");
    assert.equal(c.GraphDriver.Data.UpperDir, join(dir, "upper"));
    assert.equal(c.GraphDriver.Data.MergedDir, join(dir, "merged"));
    assert.equal(c.GraphDriver.Data.WorkDir, join(dir, "work"));
    assert.equal(typeof c.GraphDriver.Data.LowerDir, "string");
    assert.ok(
      c.GraphDriver.Data.LowerDir.split(":").every((d: string) => d.startsWith(join(root.path, "layers"))),
    );
    assert.deepEqual(c.Mounts, []);
    assert.equal(c.Config.Image, "busybox");
    assert.ok(c.Config.Env.includes("X=1"));
    assert.deepEqual(c.Config.Cmd, ["sh", "-c", "echo a > /f; exit 4"]);
    assert.equal(typeof c.Config.Labels, "object");
    assert.equal(typeof c.HostConfig.Memory, "number");
    assert.equal(c.HostConfig.NetworkMode, "bridge"); // docker's default
    assert.deepEqual(c.HostConfig.RestartPolicy, { Name: "no", MaximumRetryCount: 0 });
    assert.equal(c.NetworkSettings.IPAddress, "");
    assert.equal(c.NetworkSettings.Bridge, "");
    assert.equal(typeof c.NetworkSettings.Ports, "object");
    assert.equal(typeof c.NetworkSettings.Networks, "object");
  });
});

Deno.test("inspect: image shape", async () => {
  await withBusybox(async (root) => {
    const [img] = await inspectJson(root, "busybox");
    assert.deepEqual(Object.keys(img), IMAGE_KEYS);
    assert.match(img.Id, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(img.RepoTags, ["busybox:latest"]);
    assert.ok(Array.isArray(img.RepoDigests));
    assert.equal(img.Parent, "");
    assert.equal(img.Os, "linux");
    assert.equal(typeof img.Size, "number");
    assert.ok(img.Size > 0);
    assert.equal(img.RootFS.Type, "layers");
    assert.ok(img.RootFS.Layers.length >= 1);
    assert.ok(img.RootFS.Layers.every((l: string) => /^sha256:[0-9a-f]{64}$/.test(l)));
    assert.equal(img.GraphDriver.Name, "overlay2");
    assert.ok(img.GraphDriver.Data.UpperDir.startsWith(join(root.path, "layers")));
    assert.equal(img.Metadata.LastTagTime, "0001-01-01T00:00:00Z");
    assert.equal(typeof img.Config, "object");
    // by id and by short id give the same object
    const [byId] = await inspectJson(root, img.Id);
    assert.deepEqual(byId, img);
    const [byShort] = await inspectJson(root, img.Id.slice(7, 19));
    assert.deepEqual(byShort, img);
  });
});

Deno.test("inspect: -f templates, several objects, json, --type", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "one", "--label", "k=v", "busybox", "true"]);
    assert.equal((await root.skiff(["run", "--name", "two", "busybox", "sh", "-c", "exit 2"])).code, 2);
    assert.equal(
      await root.ok(["inspect", "-f", "{{.Name}} {{.State.ExitCode}} {{.State.Running}}", "one", "two"]),
      "/one 0 false\n/two 2 false\n",
    );
    assert.equal(
      await root.ok(["inspect", "--format", '{{index .Config.Labels "k"}}|{{.Config.Labels}}', "one"]),
      "v|map[k:v]\n",
    );
    assert.equal(await root.ok(["inspect", "-f", "{{json .Config.Cmd}}", "two"]), '["sh","-c","exit 2"]\n');
    assert.equal(await root.ok(["inspect", "-f", "{{range .Args}}[{{.}}]{{end}}", "two"]), "[-c][exit 2]\n");
    assert.equal(
      await root.ok(["inspect", "-f", "{{if .State.Running}}up{{else}}down{{end}}", "one"]),
      "down\n",
    );
    assert.equal(
      await root.ok(["inspect", "-f", "{{.GraphDriver.Name}} {{len .RootFS.Layers}}", "busybox"]),
      "overlay2 1\n",
    );
    const compact = await root.ok(["inspect", "-f", "json", "one", "busybox"]);
    assert.equal(compact.split("\n").length, 2); // one line
    const both = JSON.parse(compact);
    assert.equal(both[0].Name, "/one");
    assert.deepEqual(both[1].RepoTags, ["busybox:latest"]);

    // a container named like an image: containers first, unless --type image
    await root.ok(["run", "--name", "busybox", "busybox", "true"]);
    assert.equal(await root.ok(["inspect", "-f", "{{.Name}}", "busybox"]), "/busybox\n");
    assert.match(await root.ok(["inspect", "--type", "image", "-f", "{{.Id}}", "busybox"]), /^sha256:/);
    const noContainer = await root.skiff(["inspect", "--type", "container", "busybox:latest"]);
    assert.equal(noContainer.code, 1);
    assert.equal(noContainer.stderr, "Error: No such container: busybox:latest\n");
    const badType = await root.skiff(["inspect", "--type", "volume", "x"]);
    assert.equal(badType.code, 125);
    assert.match(badType.stderr, /"volume" is not a valid value for --type/);
  });
});

Deno.test("inspect: unknown objects and template errors", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "here", "busybox", "true"]);
    const r = await root.skiff(["inspect", "here", "nope"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "Error: No such object: nope\n");
    const found = JSON.parse(r.stdout);
    assert.equal(found.length, 1); // what was found is still printed
    assert.equal(found[0].Name, "/here");
    const none = await root.skiff(["inspect", "nope"]);
    assert.equal(none.code, 1);
    assert.equal(none.stdout, "[]\n");

    const parse = await root.skiff(["inspect", "-f", "{{.Name", "here"]);
    assert.equal(parse.code, 64); // docker 20.10's inspect: 64 for a template that does not parse
    assert.match(parse.stderr, /^skiff: template parsing error: template: :1: unclosed action/);
    assert.equal(parse.stdout, "");
    const missing = await root.skiff(["inspect", "-f", "{{.NoSuchField}}", "here"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /template parsing error: .*map has no entry for key "NoSuchField"/);
    const fn = await root.skiff(["inspect", "-f", "{{bogus .Name}}", "here"]);
    assert.equal(fn.code, 64);
    assert.match(fn.stderr, /function "bogus" not defined/);
    const noArgs = await root.skiff(["inspect"]);
    assert.equal(noArgs.code, 1); // docker's CLI: 1 for a wrong number of arguments
  });
});

Deno.test("inspect -s: sizes of a container's writes", async () => {
  await withBusybox(async (root) => {
    await root.ok([
      "run",
      "--name",
      "writer",
      "busybox",
      "sh",
      "-c",
      "dd if=/dev/zero of=/blob bs=1000 count=50 2>/dev/null",
    ]);
    const [c] = await inspectJson(root, "-s", "writer");
    assert.ok(c.SizeRw >= 50_000, `SizeRw ${c.SizeRw}`);
    const [img] = await inspectJson(root, "busybox");
    assert.equal(c.SizeRootFs, c.SizeRw + img.Size);
    const [plain] = await inspectJson(root, "writer");
    assert.equal(plain.SizeRw, undefined);
    assert.match(
      await root.ok(["ps", "-a", "-s", "--format", "{{.Size}}"]),
      /^50kB \(virtual \d+(\.\d+)?MB\)\n$/,
    );
  });
});
