// run/create flags docker scripts pass: -a/--attach (which streams the caller sees), --domainname
// (the UTS namespace's domain name), and the ones that change nothing here but must be taken or
// refused with docker's words (--isolation, --runtime, --volume-driver, --storage-opt,
// --kernel-memory, --disable-content-trust).

import * as assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";

const both = ["sh", "-c", "echo out; echo err >&2"];

Deno.test("run -a: only the streams attached reach the caller; -i attaches stdin; docker's refusals", async () => {
  await withBusybox(async (root) => {
    const out = await root.skiff(["run", "--rm", "-a", "stdout", "busybox", ...both]);
    assert.deepEqual([out.code, out.stdout, out.stderr], [0, "out\n", ""]);
    const err = await root.skiff(["run", "--rm", "-a", "STDERR", "busybox", ...both]);
    assert.deepEqual([err.code, err.stdout, err.stderr], [0, "", "err\n"]);
    const all = await root.skiff(["run", "--rm", "-a", "stdout", "-a", "stderr", "busybox", ...both]);
    assert.deepEqual([all.stdout, all.stderr], ["out\n", "err\n"]);
    const input = await root.skiff([
      "run",
      "--rm",
      "-i",
      "-a",
      "stdout",
      "busybox",
      "sh",
      "-c",
      "cat; echo done",
    ], {
      stdin: "hi\n",
    });
    assert.equal(input.stdout, "hi\ndone\n");
    await root.ok(["create", "--name", "att", "-a", "stdout", "busybox", "true"]);
    assert.equal(
      await root.ok([
        "inspect",
        "-f",
        "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}",
        "att",
      ]),
      "false true false\n",
    );
    const withD = await root.skiff(["run", "-d", "-a", "stdout", "busybox", "true"]);
    assert.deepEqual([withD.code, withD.stderr], [1, "skiff: Conflicting options: -a and -d\n"]);
    const bogus = await root.skiff(["run", "--rm", "-a", "bogus", "busybox", "true"]);
    assert.equal(bogus.code, 125);
    assert.match(
      bogus.stderr,
      /invalid argument "bogus" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR/,
    );
    assert.deepEqual(root.containerIds().length, 1);
  });
});

Deno.test("run --domainname: the container's domain name, in Config.Domainname", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--name",
      "dn",
      "--network",
      "none",
      "--domainname",
      "example.com",
      "-h",
      "box",
      "busybox",
      "sh",
      "-c",
      "cat /proc/sys/kernel/domainname; hostname",
    ]);
    assert.equal(out, "example.com\nbox\n");
    assert.equal(await root.ok(["inspect", "-f", "{{.Config.Domainname}}", "dn"]), "example.com\n");
    // without it the new UTS namespace's own "(none)", and the host's is untouched
    const plain = await root.ok([
      "run",
      "--rm",
      "--network",
      "none",
      "busybox",
      "cat",
      "/proc/sys/kernel/domainname",
    ]);
    assert.equal(plain, "(none)\n");
  });
});

const ignoredOrRefused: [string[], number, string][] = [
  [["--isolation", "default"], 0, ""],
  [["--isolation", "hyperv"], 125, `Invalid isolation: "hyperv" - linux only supports 'default'`],
  [["--runtime", "runc"], 0, ""],
  [["--runtime", "nosuch"], 125, "Unknown runtime specified nosuch"],
  [["--volume-driver", "local"], 0, ""],
  [
    ["--storage-opt", "size=1G"],
    125,
    "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
  ],
  [["--storage-opt", "bogus"], 125, "invalid storage option"],
  [["--kernel-memory", "10m"], 0, ""],
  [["--disable-content-trust"], 0, ""],
];

Deno.test("run: flags that change nothing here are taken, their other values refused with docker's words", async () => {
  await withBusybox(async (root) => {
    for (const [flags, code, words] of ignoredOrRefused) {
      const r = await root.skiff(["run", "--rm", "--network", "none", ...flags, "busybox", "true"]);
      assert.equal(r.code, code, `${flags.join(" ")}: ${r.stderr}`);
      if (words) assert.equal(r.stderr, `skiff: ${words}\n`);
    }
    const kmem = await root.skiff([
      "run",
      "--rm",
      "--network",
      "none",
      "--kernel-memory",
      "10m",
      "busybox",
      "true",
    ]);
    assert.equal(
      kmem.stderr,
      "WARNING: Specifying a kernel memory limit is deprecated and will be removed in a future release.\n",
    );
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("docker takes and refuses the same flags (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  for (const [flags, code, words] of ignoredOrRefused) {
    const d = await docker(["run", "--rm", "--network", "none", ...flags, "localhost/bb:latest", "true"]);
    assert.equal(d.code, code, `${flags.join(" ")}: ${d.stderr}`);
    if (words) assert.match(d.stderr, new RegExp(words.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  }
  const a = await docker([
    "run",
    "--rm",
    "--network",
    "none",
    "-a",
    "stdout",
    "localhost/bb:latest",
    ...both,
  ]);
  assert.deepEqual([a.stdout, a.stderr], ["out\n", ""]);
});

Deno.test("run: --gpus refused in docker's words (no GPU driver), its keys checked first; --ip6 taken", async () => {
  await withBusybox(async (root) => {
    const gpus = await root.skiff(["run", "--rm", "--gpus", "all", "busybox", "true"]);
    assert.equal(gpus.code, 125);
    assert.equal(gpus.stderr, `skiff: could not select device driver "" with capabilities: [[gpu]]\n`);
    const badKey = await root.skiff(["run", "--rm", "--gpus", "bogus=1", "busybox", "true"]);
    assert.equal(badKey.code, 125);
    assert.match(
      badKey.stderr,
      /invalid argument "bogus=1" for "--gpus" flag: unexpected key 'bogus' in 'bogus=1'/,
    );
    assert.equal(await root.ok(["ps", "-a", "-q"]), "");
    assert.equal(await root.ok(["run", "--rm", "--ip6", "fd00::5", "busybox", "echo", "ok"]), "ok\n");
  });
});
