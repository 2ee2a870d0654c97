// The container's stdio (issue 9, finding 7): foreground `run` and `exec` without -t give the
// container pipes that skiff copies, as docker's attach does, never the caller's own files or
// terminal; stdin is /dev/null without -i (docker's), a pipe with EOF with -i; bytes pass unchanged;
// exit codes as the container's command left them.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";

// the three links, then which inode stdin is (the host's /dev/null must not be it: root in the
// container could chmod the host's device through /proc/self/fd/0, as with docker)
const FDS = "for f in 0 1 2; do readlink /proc/self/fd/$f; done; stat -L -c %d:%i /proc/self/fd/0";

const hostNull = () => {
  const info = Deno.statSync("/dev/null");
  return `${info.dev}:${info.ino}`;
};

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** skiff with raw bytes in and out. */
async function skiffBytes(
  root: TestRoot,
  args: string[],
  stdin?: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** Each verb's command line for a container named `name` (run makes its own). */
const VERBS: [string, (name: string, runFlags?: string[]) => string[]][] = [
  ["run", (_name, runFlags = []) => ["run", "--rm", ...runFlags, "busybox"]],
  ["exec", (name) => ["exec", name]],
];

Deno.test("run, exec: the caller's files are not the container's stdio: pipes, /dev/null without -i", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-stdio-" });
    try {
      await withBackground(root, "fdsbg", async (c) => {
        for (const [verb, prefix] of VERBS) {
          for (const interactive of [false, true]) {
            const args = [...prefix(c.name)];
            if (interactive) args.splice(1, 0, "-i");
            const quoted = [...args, "sh", "-c", FDS].map((a) => `'${a}'`).join(" ");
            const files = ["in", "out", "err"].map((f) => join(dir, f));
            await Deno.writeTextFile(files[0], "");
            const shell = `${Deno.execPath()} run -A ${MAIN} --root ${root.path} ${quoted} <${files[0]} >${
              files[1]
            } 2>${files[2]}`;
            const r = await new Deno.Command("sh", { args: ["-c", shell] }).output();
            const out = await Deno.readTextFile(files[1]);
            assert.equal(r.code, 0, `${verb}: ${out}${await Deno.readTextFile(files[2])}`);
            const [fd0, fd1, fd2, stdinInode] = out.trim().split("\n");
            assert.notEqual(stdinInode, hostNull(), `${verb}: stdin is the host's /dev/null`);
            const label = `${verb}${interactive ? " -i" : ""}`;
            assert.equal(
              fd0,
              interactive ? fd0.match(/^pipe:\[\d+\]$/)?.[0] : "/dev/null",
              `${label}: stdin ${fd0}`,
            );
            assert.match(fd1, /^pipe:\[\d+\]$/, `${label}: stdout`);
            assert.match(fd2, /^pipe:\[\d+\]$/, `${label}: stderr`);
            assert.notEqual(fd1, fd2);
          }
          // on a terminal, without -t: still pipes, never the caller's terminal
          const line = [
            Deno.execPath(),
            "run",
            "-A",
            MAIN,
            "--root",
            root.path,
            ...prefix(c.name),
            "sh",
            "-c",
            FDS,
          ]
            .map((a) => `'${a}'`).join(" ");
          const t = await new Deno.Command("script", {
            args: ["-qec", line, "/dev/null"],
            stdin: "null",
            stdout: "piped",
          }).output();
          const seen = new TextDecoder().decode(t.stdout).trim().split(/\r?\n/);
          assert.equal(seen[0], "/dev/null", `${verb} on a terminal: stdin`);
          for (const fd of seen.slice(1, 3)) {
            assert.match(fd, /^pipe:\[\d+\]$/, `${verb} on a terminal: ${seen}`);
          }
          assert.notEqual(seen[3], hostNull(), `${verb} on a terminal: stdin is the host's /dev/null`);
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("run, exec: 10 MB of binary output and -i input pass byte-exact, stdin's EOF reaches the container", async () => {
  await withBusybox(async (root) => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-stdio-" });
    try {
      const data = new Uint8Array(10 << 20);
      for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
      await Deno.writeFile(join(dir, "blob"), data);
      const expected = sha256(data);
      await withBackground(
        root,
        "bytesbg",
        async (c) => {
          for (const [verb, prefix] of VERBS) {
            const out = await skiffBytes(root, [
              ...prefix(c.name, ["-v", `${dir}:/data:ro`]),
              "cat",
              "/data/blob",
            ]);
            assert.equal(out.code, 0, out.stderr);
            assert.equal(out.stdout.length, data.length, `${verb}: output length`);
            assert.equal(sha256(out.stdout), expected, `${verb}: output bytes`);
            // -i: everything in, then EOF: sha256sum only answers once its input ended
            const args = [...prefix(c.name)];
            args.splice(1, 0, "-i");
            const sum = await skiffBytes(root, [...args, "sha256sum"], data);
            assert.equal(sum.code, 0, sum.stderr);
            assert.equal(new TextDecoder().decode(sum.stdout), `${expected}  -\n`, `${verb} -i: input bytes`);
            // without -i the caller's input never reaches the container
            const ignored = await skiffBytes(
              root,
              [...prefix(c.name), "wc", "-c"],
              new TextEncoder().encode("lost\n"),
            );
            assert.equal(new TextDecoder().decode(ignored.stdout).trim(), "0", `${verb}: input without -i`);
          }
        },
        ["sleep", "100"],
        ["-v", `${dir}:/data:ro`],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("run, exec: exit codes pass through the pipes unchanged; a signal is 128+N", async () => {
  await withBusybox(async (root) => {
    await withBackground(root, "codesbg", async (c) => {
      for (const [verb, prefix] of VERBS) {
        const r = await root.skiff([...prefix(c.name), "sh", "-c", "echo out; echo err >&2; exit 7"]);
        assert.deepEqual([r.code, r.stdout, r.stderr], [7, "out\n", "err\n"], verb);
      }
      // a command killed by a signal (exec's is not PID 1, which ignores it from inside)
      const killed = await root.skiff(["exec", c.name, "sh", "-c", "kill -9 $$"]);
      assert.equal(killed.code, 137);
      const child = await root.skiff(["run", "--rm", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; exit $?"]);
      assert.equal(child.code, 137);
    });
  });
});
