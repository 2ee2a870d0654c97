// `build` against what a hostile Dockerfile, context, base image or build argument would try: each
// test is the attack, and it must fail to escape (the host untouched, nothing read from the host,
// no hang) or to confuse the cache (a step reused for a different instruction).

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";
import { type TarWriteEntry, writeTar } from "../lib/image/tar.ts";
import { createHash } from "node:crypto";

async function withDirs(fn: (ctx: string, host: string) => Promise<void>) {
  const ctx = await Deno.makeTempDir({ prefix: "skiff-attack-ctx-" });
  const host = await Deno.makeTempDir({ prefix: "skiff-attack-host-" });
  try {
    await fn(ctx, host);
  } finally {
    Deno.removeSync(ctx, { recursive: true });
    Deno.removeSync(host, { recursive: true });
  }
}

const hostNames = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const build = (root: TestRoot, dir: string, tag: string, extra: string[] = []) =>
  root.skiff(["build", "-q", ...extra, "-t", tag, dir], { timeoutMs: 60_000 });
const out = async (root: TestRoot, image: string, ...cmd: string[]) =>
  (await root.ok(["run", "--rm", image, ...cmd])).trim();

Deno.test("build attack: the cache is never shared by instructions that only join to the same text", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (ctx) => {
      // exec-form RUN: ["sh","-c","echo $0 > /r","a b"] and ["sh","-c","echo $0 > /r a","b"] print
      // the same history line; docker compares the argv, and so must the cache
      const df = (argv: string[]) => `FROM busybox\nRUN ${JSON.stringify(argv)}\n`;
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), df(["sh", "-c", "echo $0 > /r", "a b"]));
      await root.ok(["build", "-q", "-t", "one", ctx]);
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), df(["sh", "-c", "echo $0 > /r a", "b"]));
      await root.ok(["build", "-q", "-t", "two", ctx]);
      assertEqual(await out(root, "one", "cat", "/r"), "a b");
      assertEqual(await out(root, "two", "cat", "/r"), "b a");

      // build args whose values hold what separates them ("|2 A=x B=y B=z" either way), and a newline
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), 'FROM busybox\nARG A\nARG B\nRUN echo "$A|$B" > /r\n');
      const argSets = [
        ["x B=y", "z", "x B=y|z"],
        ["x", "y B=z", "x|y B=z"],
        ["x\nB=y", "z", "x\nB=y|z"],
      ];
      for (const [i, [a, b]] of argSets.entries()) {
        await root.ok([
          "build",
          "-q",
          "--build-arg",
          `A=${a}`,
          "--build-arg",
          `B=${b}`,
          "-t",
          `arg${i}`,
          ctx,
        ]);
      }
      for (const [i, [, , want]] of argSets.entries()) {
        assertEqual(await out(root, `arg${i}`, "cat", "/r"), want);
      }

      // LABEL a="b c=d" and LABEL a=b c=d are the same history text, different labels
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), 'FROM busybox\nLABEL a="b c=d"\n');
      await root.ok(["build", "-q", "-t", "l1", ctx]);
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nLABEL a=b c=d\n");
      await root.ok(["build", "-q", "-t", "l2", ctx]);
      const labels = async (ref: string) =>
        JSON.parse(await root.ok(["inspect", "-f", "{{json .Config.Labels}}", ref]));
      assertEqual(await labels("l1"), { a: "b c=d" });
      assertEqual(await labels("l2"), { a: "b", c: "d" });
    });
  });
});

Deno.test("build attack: a base image's symlinks never lead WORKDIR, COPY, COPY --from or --chown to the host", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (ctx, host) => {
      Deno.writeTextFileSync(join(host, "secret"), "host secret\n");
      const rel = "../".repeat(12) + host.slice(1);
      // the base: /w an absolute link to the host dir's path, /a -> /b -> ../../..(host dir)
      Deno.writeTextFileSync(
        join(ctx, "Dockerfile"),
        `FROM busybox\nRUN ln -s ${host} /w && ln -s /b /a && ln -s ${rel} /b\n`,
      );
      await root.ok(["build", "-q", "-t", "evil-base", ctx]);
      Deno.writeTextFileSync(join(ctx, "f"), "from the context\n");
      Deno.writeTextFileSync(
        join(ctx, "Dockerfile"),
        "FROM evil-base\nWORKDIR /w/sub\nCOPY f .\nCOPY f /a/\nRUN echo ran > here\n",
      );
      const r = await build(root, ctx, "evil");
      assertEqual(r.code, 0, r.stderr);
      // inside the image, at the link's path as the image resolves it; the host dir untouched
      assertEqual(hostNames(host), ["secret"]);
      assertEqual(Deno.readTextFileSync(join(host, "secret")), "host secret\n");
      assertEqual(
        await out(root, "evil", "cat", `${host}/sub/f`, `${host}/sub/here`, `${host}/f`),
        "from the context\nran\nfrom the context",
      );

      // COPY --from the image: its links resolve in it, so the host's secret is not found
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nCOPY --from=evil-base /a/secret /got\n");
      const from = await build(root, ctx, "stolen");
      assert(from.code !== 0, `COPY --from read through the link: ${from.stdout}`);
      assert(from.stderr.includes("not found"), from.stderr);
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nCOPY --from=evil-base /b/ /got/\n");
      const dir = await build(root, ctx, "stolen2");
      if (dir.code === 0) assert(!(await out(root, "stolen2", "ls", "-a", "/got")).includes("secret"));

      // --chown by name reads the image's /etc/passwd: a link to a host file names the image's path
      Deno.writeTextFileSync(join(host, "passwd"), "evil:x:4242:4242::/:/bin/sh\n");
      Deno.writeTextFileSync(
        join(ctx, "Dockerfile"),
        `FROM busybox\nRUN ln -sf ${host}/passwd /etc/passwd\n`,
      );
      await root.ok(["build", "-q", "-t", "evil-passwd", ctx]);
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM evil-passwd\nCOPY --chown=evil f /f\n");
      const chown = await build(root, ctx, "chowned");
      assertEqual(chown.code, 1, chown.stdout);
      assert(chown.stderr.includes("can't find uid for evil"), chown.stderr);
    });
  });
});

Deno.test("build attack: ADD of a tar with ../ names, a hard link out, or a file through a symlink fails as docker's, nothing on the host", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (ctx, host) => {
      const up = "../".repeat(12) + host.slice(1);
      Deno.writeTextFileSync(join(host, "secret"), "host secret\n");
      // docker 20.10 refuses each of these too ("Error processing tar file")
      const tars: [string, TarWriteEntry[]][] = [
        ["dotdot", [{ name: `${up}/dotdot`, data: "1" }]],
        ["hard link out", [{ name: "hard", type: "link", linkname: `${up}/secret` }]],
        ["through an absolute link", [
          { name: "abs", type: "symlink", linkname: host },
          { name: "abs/through-abs", data: "2" },
        ]],
        ["through a relative link", [
          { name: "rel", type: "symlink", linkname: up },
          { name: "rel/through-rel", data: "3" },
        ]],
      ];
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nADD evil.tar /dst/\n");
      for (const [what, entries] of tars) {
        Deno.writeFileSync(join(ctx, "evil.tar"), writeTar(entries));
        const r = await build(root, ctx, "evil");
        assertEqual(r.code, 1, `${what}: ${r.stdout}`);
        assert(r.stderr.startsWith("skiff: ADD failed: "), `${what}: ${r.stderr}`);
        assertEqual(hostNames(host), ["secret"], what);
        assertEqual(Deno.readTextFileSync(join(host, "secret")), "host secret\n", what);
        assertEqual((await root.skiff(["inspect", "evil"])).code, 1, what);
      }
    });
  });
});

Deno.test("build attack: .dockerignore cannot bring in a file outside the context; a FIFO or device in it is not read", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (parent, host) => {
      const ctx = join(parent, "ctx");
      Deno.mkdirSync(ctx);
      Deno.writeTextFileSync(join(parent, "outside"), "outside the context\n");
      Deno.writeTextFileSync(join(ctx, "inside"), "in\n");
      Deno.writeTextFileSync(
        join(ctx, ".dockerignore"),
        "*\n!inside\n!../outside\n!/../outside\n!Dockerfile\n",
      );
      Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nCOPY . /c/\n");
      await root.ok(["build", "-q", "-t", "ign", ctx]);
      assertEqual(await out(root, "ign", "sh", "-c", "cd /c && find . | sort"), ".\n./Dockerfile\n./inside");

      // a FIFO (nobody writes it: reading it would block) and /dev/zero's device (endless)
      Deno.removeSync(join(ctx, ".dockerignore"));
      const mk = async (args: string[]) =>
        assert((await new Deno.Command(args[0], { args: args.slice(1) }).output()).success);
      await mk(["mkfifo", join(ctx, "fifo")]);
      await mk(["mknod", join(ctx, "zero"), "c", "1", "5"]);
      const started = Date.now();
      const r = await build(root, ctx, "special");
      assert(Date.now() - started < 50_000, "the build hung on a special file");
      assertEqual(r.code, 0, r.stderr);
      // copied as what they are (docker's context tar carries them as a FIFO and a device node)
      assertEqual(
        await out(root, "special", "stat", "-c", "%F %t:%T", "/c/fifo", "/c/zero"),
        "fifo 0:0\ncharacter special file 1:5",
      );
      assertEqual(hostNames(host), []);
    });
  });
});

Deno.test("build attack: --iidfile that is a symlink is replaced, as docker's, never written through; a failed build leaves no stale id", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (ctx, host) => {
      Deno.writeTextFileSync(join(host, "target"), "keep me\n");
      const iid = join(ctx, "..", `${ctx.split("/").at(-1)}.iid`);
      Deno.symlinkSync(join(host, "target"), iid);
      try {
        Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN echo a > /a\n");
        await root.ok(["build", "-q", "--iidfile", iid, ctx]);
        assertEqual(Deno.readTextFileSync(join(host, "target")), "keep me\n");
        const st = Deno.lstatSync(iid);
        assert(st.isFile && !st.isSymlink, "the iidfile is still a symlink");
        assertEqual(
          Deno.readTextFileSync(iid),
          (await root.ok(["images", "-q", "--no-trunc"])).split("\n")[0],
        );

        Deno.writeTextFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN exit 3\n");
        const failed = await root.skiff(["build", "-q", "--iidfile", iid, ctx]);
        assertEqual(failed.code, 3, failed.stderr);
        assert(!existsPath(iid), "a stale iidfile was left by a failed build");
      } finally {
        try {
          Deno.removeSync(iid);
        } catch { /* removed by the build */ }
      }
    });
  });
});

function existsPath(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Loads `ref`: `from`'s image with its config's OnBuild replaced (a hand-made config, as a registry could serve). */
async function withTriggers(root: TestRoot, from: string, ref: string, onBuild: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-attack-save-" });
  try {
    await root.ok(["save", "-o", join(dir, "in.tar"), from]);
    const tree = join(dir, "tree");
    Deno.mkdirSync(tree);
    const tar = async (args: string[]) => assert((await new Deno.Command("tar", { args }).output()).success);
    await tar(["-xf", join(dir, "in.tar"), "-C", tree]);
    const manifest = JSON.parse(Deno.readTextFileSync(join(tree, "manifest.json")));
    const config = JSON.parse(Deno.readTextFileSync(join(tree, manifest[0].Config)));
    config.config.OnBuild = onBuild;
    const text = new TextEncoder().encode(JSON.stringify(config));
    const hex = createHash("sha256").update(text).digest("hex");
    Deno.removeSync(join(tree, manifest[0].Config));
    Deno.writeFileSync(join(tree, "blobs", "sha256", hex), text);
    manifest[0].Config = `blobs/sha256/${hex}`;
    manifest[0].RepoTags = [ref];
    Deno.writeTextFileSync(join(tree, "manifest.json"), JSON.stringify(manifest));
    for (const oci of ["index.json", "oci-layout"]) Deno.removeSync(join(tree, oci), { recursive: true });
    await tar(["-cf", join(dir, "out.tar"), "-C", tree, "."]);
    await root.ok(["load", "-q", "-i", join(dir, "out.tar")]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("build attack: a base image's hand-made ONBUILD triggers are checked as docker checks them", async () => {
  await withBusybox(async (root) => {
    await withDirs(async (ctx, host) => {
      const cases: [string[], string][] = [
        [["FROM busybox"], "FROM isn't allowed as an ONBUILD trigger"],
        [["MAINTAINER x"], "MAINTAINER isn't allowed as an ONBUILD trigger"],
        [["ONBUILD RUN true"], "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
        // one trigger that is two instructions (joined, the second would have run as a trigger of its own)
        [[`RUN true\nRUN touch /ran`], "onbuild trigger should be a single expression"],
      ];
      for (const [i, [onBuild, message]] of cases.entries()) {
        await withTriggers(root, "busybox", `trig${i}:latest`, onBuild);
        Deno.writeTextFileSync(join(ctx, "Dockerfile"), `FROM trig${i}\nRUN true\n`);
        const r = await build(root, ctx, "child");
        assertEqual([r.code, r.stderr], [1, `skiff: ${message}\n`], onBuild.join(" "));
        assert(!r.stdout.includes(" ---> Running in "), r.stdout); // nothing of the bad trigger ran
      }
      assertEqual(hostNames(host), []);
    });
  });
});
