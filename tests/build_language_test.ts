// The rest of the Dockerfile language on the real kernel: ONBUILD triggers run when the image is a
// base, ADD of tar archives in each of docker's compressions (a compressed non-tar is copied as it
// is), `--platform`.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-build-lang-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function sh(cmd: string, cwd: string) {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], cwd, stderr: "piped" }).output();
  assert(out.success, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

const runIn = (root: TestRoot, image: string, cmd: string) =>
  root.ok(["run", "--rm", image, "sh", "-c", cmd]);

Deno.test("build: ONBUILD triggers run in the child's build, before its own steps, and are not inherited", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      Deno.writeTextFileSync(join(dir, "f"), "from the child's context\n");
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nONBUILD RUN echo triggered > /onbuild\nONBUILD COPY f /from-trigger\n",
      );
      await root.ok(["build", "-q", "-t", "parent", dir]);
      assertEqual(
        JSON.parse(await root.ok(["inspect", "-f", "{{json .Config.OnBuild}}", "parent"])),
        ["RUN echo triggered > /onbuild", "COPY f /from-trigger"],
      );
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM parent\nRUN cat /onbuild /from-trigger > /seen\n",
      );
      const out = await root.ok(["build", "-t", "child", dir]);
      assert(out.includes("# Executing 2 build triggers\n"), out);
      assert(out.indexOf("# Executing") < out.indexOf("Step 2/2"), out);
      assertEqual(await runIn(root, "child", "cat /seen"), "triggered\nfrom the child's context\n");
      assertEqual((await root.ok(["inspect", "-f", "{{json .Config.OnBuild}}", "child"])).trim(), "null");
      // a grandchild runs no trigger
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM child\nRUN true\n");
      assert(!(await root.ok(["build", dir])).includes("# Executing"));
    });
  });
});

Deno.test("build: ADD extracts tar, tar.gz, tar.bz2 and tar.xz; a compressed file that is not a tar is copied", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      Deno.mkdirSync(join(dir, "src/sub"), { recursive: true });
      Deno.writeTextFileSync(join(dir, "src/sub/a.txt"), "archived\n");
      Deno.symlinkSync("sub/a.txt", join(dir, "src/link"));
      await sh(
        "tar -C src -cf t.tar . && gzip -kc t.tar > t.tar.gz && bzip2 -kc t.tar > t.tar.bz2 && " +
          "xz -kc t.tar > t.tar.xz && echo plain > note.txt && xz -k note.txt",
        dir,
      );
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\n" +
          ["tar", "tar.gz", "tar.bz2", "tar.xz"].map((ext) => `ADD t.${ext} /x/${ext}/\n`).join("") +
          "ADD note.txt.xz /n/\n",
      );
      await root.ok(["build", "-q", "-t", "added", dir]);
      const out = await runIn(
        root,
        "added",
        "for e in tar tar.gz tar.bz2 tar.xz; do cat /x/$e/sub/a.txt; readlink /x/$e/link; done; ls /n",
      );
      assertEqual(out, "archived\nsub/a.txt\n".repeat(4) + "note.txt.xz\n");
    });
  });
});

Deno.test("build: --platform takes the host's; another is refused, a malformed one with docker's message", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN true\n");
      const host = ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch];
      await root.ok(["build", "-q", "--platform", `linux/${host}`, dir]);
      const other = await root.skiff(["build", "--platform", "linux/s390x", "-t", "nope", dir]);
      assertEqual(other.code, 1);
      assert(
        other.stderr.endsWith(
          `failed to build for platform linux/s390x: this engine builds for linux/${host} only (no emulation)\n`,
        ),
        other.stderr,
      );
      assertEqual(other.stderr.split("\n").length, 2); // one line
      const bad = await root.skiff(["build", "--platform", "bogus///", dir]);
      assertEqual(bad.code, 1);
      assert(
        bad.stderr.includes(
          `"" is an invalid component of "bogus///": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`,
        ),
        bad.stderr,
      );
      assertEqual((await root.skiff(["inspect", "nope"])).code, 1);
    });
  });
});

// `SETCAP PATH`: gives PATH cap_net_raw+ep (a VFS_CAP_REVISION_2 security.capability), as setcap does
const SETCAP_C = `
#include <stdint.h>
#include <stdio.h>
#include <sys/xattr.h>
int main(int argc, char **argv) {
  uint32_t cap[5] = {0x02000000 | 1, 1u << 13, 0, 0, 0};
  if (setxattr(argv[1], "security.capability", cap, sizeof cap, 0) != 0) { perror("setxattr"); return 1; }
  return 0;
}
`;

/** getcap of `name` in each of the root's stored layers that has it, by layer. */
async function layerCaps(root: TestRoot, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const l of Deno.readDirSync(join(root.path, "layers"))) {
    const path = join(root.path, "layers", l.name, "diff", name);
    try {
      Deno.lstatSync(path);
    } catch {
      continue;
    }
    const r = await new Deno.Command("getcap", { args: [path], stdout: "piped" }).output();
    out.push(new TextDecoder().decode(r.stdout).trim().replace(path, "").trim());
  }
  return out.sort();
}

Deno.test("build: file capabilities (security.capability) are kept in COPY and RUN layers", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      const { compileStatic } = await import("./cprog.ts");
      Deno.copyFileSync(await compileStatic("setcap", SETCAP_C), join(dir, "setcap"));
      Deno.chmodSync(join(dir, "setcap"), 0o755);
      Deno.writeTextFileSync(join(dir, "copied"), "x");
      await sh("setcap cap_net_raw+ep copied", dir);
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nCOPY copied setcap /\nRUN cp /bin/busybox /capped && /setcap /capped\n",
      );
      await root.ok(["build", "-q", "-t", "caps", dir]);
      assertEqual(await layerCaps(root, "copied"), ["cap_net_raw=ep"]);
      assertEqual(await layerCaps(root, "capped"), ["cap_net_raw=ep"]);
      // the capability is part of COPY's cache key: dropping it re-runs the COPY
      await sh("setcap -r copied", dir);
      const again = await root.ok(["build", dir]);
      assert(/Step 2\/3 : COPY copied setcap \/\n ---> [0-9a-f]{12}\n/.test(again), again);
    });
  });
});

Deno.test("create: a file's capabilities reach a new volume with the image's files, as docker copies them", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      const { compileStatic } = await import("./cprog.ts");
      Deno.copyFileSync(await compileStatic("setcap", SETCAP_C), join(dir, "setcap"));
      Deno.chmodSync(join(dir, "setcap"), 0o755);
      Deno.writeTextFileSync(
        join(dir, "Dockerfile"),
        "FROM busybox\nCOPY setcap /\nRUN mkdir /capdir && cp /bin/busybox /capdir/capped && /setcap /capdir/capped\n",
      );
      await root.ok(["build", "-q", "-t", "capvol-image", dir]);
      await root.ok(["create", "--name", "cv", "-v", "capvol:/capdir", "capvol-image", "true"]);
      const copied = join(root.path, "volumes", "capvol", "_data", "capped");
      const r = await new Deno.Command("getcap", { args: [copied], stdout: "piped" }).output();
      assertEqual(new TextDecoder().decode(r.stdout).replace(copied, "").trim(), "cap_net_raw=ep");
      await root.ok(["rm", "cv"]);
      await root.ok(["volume", "rm", "capvol"]);
    });
  });
});

Deno.test("build - < a context tar (plain, gzip, xz; -f inside it); its Dockerfile never names a host file", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      Deno.mkdirSync(join(dir, "ctx/sub"), { recursive: true });
      Deno.writeTextFileSync(join(dir, "ctx/Dockerfile"), 'FROM busybox\nCOPY f /f\nCMD ["cat", "/f"]\n');
      Deno.writeTextFileSync(join(dir, "ctx/sub/Other"), 'FROM busybox\nCOPY sub/g /g\nCMD ["cat", "/g"]\n');
      Deno.writeTextFileSync(join(dir, "ctx/f"), "from the tar\n");
      Deno.writeTextFileSync(join(dir, "ctx/sub/g"), "other file\n");
      await sh(
        "tar -C ctx -cf ctx.tar . && gzip -kc ctx.tar > ctx.tar.gz && xz -kc ctx.tar > ctx.tar.xz",
        dir,
      );
      for (const name of ["ctx.tar", "ctx.tar.gz", "ctx.tar.xz"]) {
        const stdin = await Deno.readFile(join(dir, name));
        const r = await runWithStdin(root, ["build", "-q", "-t", "fromtar", "-"], stdin);
        assertEqual(r.code, 0, `${name}: ${r.stderr}`);
        assertEqual(await root.ok(["run", "--rm", "fromtar"]), "from the tar\n");
      }
      const other = await runWithStdin(
        root,
        ["build", "-q", "-f", "sub/Other", "-t", "other", "-"],
        await Deno.readFile(join(dir, "ctx.tar")),
      );
      assertEqual(other.code, 0, other.stderr);
      assertEqual(await root.ok(["run", "--rm", "other"]), "other file\n");

      // a Dockerfile that is a symlink to a host file: resolved inside the context, where it is missing
      Deno.removeSync(join(dir, "ctx/Dockerfile"));
      Deno.symlinkSync("/etc/shadow", join(dir, "ctx/Dockerfile"));
      await sh("tar -C ctx -cf evil.tar .", dir);
      const evil = await runWithStdin(root, ["build", "-"], await Deno.readFile(join(dir, "evil.tar")));
      assertEqual(evil.code, 1);
      assert(evil.stderr.includes("Cannot locate specified Dockerfile: Dockerfile"), evil.stderr);
      assert(!evil.stderr.includes("root:"), evil.stderr);
      assertEqual(
        [...Deno.readDirSync(join(root.path, "tmp"))].filter((e) => e.name.startsWith("buildctx")),
        [],
      );
    });
  });
});

async function runWithStdin(root: TestRoot, args: string[], stdin: Uint8Array) {
  const { MAIN } = await import("./helpers.ts");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(stdin as Uint8Array<ArrayBuffer>);
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("build: ADD of a URL fetches it (mode 0600, Last-Modified time, not extracted); a 404 stops the build", async () => {
  const gz = new Uint8Array(
    await new Response(new Blob(["not extracted\n"]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    if (path === "/files/data.txt") {
      return new Response("fetched\n", { headers: { "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT" } });
    }
    if (path === "/files/a.tar.gz") return new Response(gz);
    return new Response("404 page not found\n", { status: 404, statusText: "Not Found" });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await withBusybox(async (root) => {
      await withDir(async (dir) => {
        Deno.writeTextFileSync(
          join(dir, "Dockerfile"),
          `FROM busybox\nADD ${base}/files/data.txt /web/\nADD ${base}/files/a.tar.gz /web/named.gz\n`,
        );
        await root.ok(["build", "-q", "-t", "web", dir]);
        const out = await runIn(
          root,
          "web",
          "cat /web/data.txt; stat -c '%a %Y' /web/data.txt; zcat /web/named.gz",
        );
        assertEqual(out, "fetched\n600 1445412480\nnot extracted\n");
        assert(requests.includes("/files/data.txt") && requests.includes("/files/a.tar.gz"), requests.join());

        Deno.writeTextFileSync(join(dir, "Dockerfile"), `FROM busybox\nADD ${base}/missing /m\n`);
        const r = await root.skiff(["build", "-t", "nope", dir]);
        assertEqual(r.code, 1);
        assert(
          r.stderr.includes(
            `ADD failed: failed to GET ${base}/missing with status 404 Not Found: 404 page not found`,
          ),
          r.stderr,
        );
        Deno.writeTextFileSync(join(dir, "Dockerfile"), `FROM busybox\nCOPY ${base}/files/data.txt /m\n`);
        const c = await root.skiff(["build", dir]);
        assertEqual(c.code, 1);
        assert(c.stderr.includes("source can't be a URL for COPY"), c.stderr);
      });
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("build --network: RUN steps on the bridge by default, none, host", async () => {
  await withBusybox(async (root) => {
    await withDir(async (dir) => {
      Deno.writeTextFileSync(join(dir, "Dockerfile"), "FROM busybox\nRUN cat /proc/net/dev > /netdev\n");
      const ifaces = async (flags: string[]) => {
        await root.ok(["build", "-q", "--no-cache", ...flags, "-t", "net", dir]);
        const text = await runIn(root, "net", "cat /netdev");
        return text.split("\n").slice(2).map((l) => l.split(":")[0].trim()).filter(Boolean).sort();
      };
      assertEqual(await ifaces([]), ["eth0", "lo"]);
      assertEqual(await ifaces(["--network", "default"]), ["eth0", "lo"]);
      assertEqual(await ifaces(["--network", "none"]), ["lo"]);
      // the host's own interfaces (containers' veths come and go on this machine)
      const uplink = Deno.readTextFileSync("/proc/net/route").split("\n").map((l) => l.split("\t"))
        .find((f) => f[1] === "00000000")?.[0];
      const onHost = await ifaces(["--network", "host"]);
      // skiff's bridge (made by the default builds above) is a host interface, never a container's
      assert(uplink && onHost.includes(uplink) && onHost.includes("skiff0"), onHost.join());
      const missing = await root.skiff(["build", "--no-cache", "--network", "nosuchnet", dir]);
      assert(missing.code !== 0 && /nosuchnet/.test(missing.stderr), missing.stderr);
    });
  });
});
