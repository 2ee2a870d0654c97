// `skiff build` end to end on the real kernel: the seed's walkthrough, the cache, multi-stage,
// .dockerignore, whiteouts, the failures (nothing left behind), and two attacks on COPY.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

async function context(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-build-ctx-" });
  for (const [name, text] of Object.entries(files)) {
    Deno.mkdirSync(join(dir, name, ".."), { recursive: true });
    Deno.writeTextFileSync(join(dir, name), text);
  }
  return dir;
}

async function withContext(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await context(files);
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const inspect = async (root: TestRoot, ref: string, tmpl: string) =>
  (await root.ok(["inspect", "-f", tmpl, ref])).trim();

/** Steps that ran a container, and steps that hit the cache, in a build's output. */
function counts(out: string) {
  return {
    ran: out.split("\n").filter((l) => l.startsWith(" ---> Running in ")).length,
    cached: out.split("\n").filter((l) => l === " ---> Using cache").length,
  };
}

const imageCount = async (root: TestRoot) =>
  (await root.ok(["images", "-a", "-q"])).trim().split("\n").filter(Boolean).length;

const WALKTHROUGH = `FROM busybox
WORKDIR /go/src/hello
COPY main.sh /go/src/hello
ARG GREETING=hi
RUN chmod +x main.sh && cp main.sh /bin/hello
RUN echo "$GREETING" > /greeting
ENV APP=demo PATH=/usr/bin:/bin
USER 1000:1000
EXPOSE 8080
VOLUME /data
LABEL org.test=yes
CMD ["hello"]
`;

Deno.test("build: the walkthrough Dockerfile builds, runs and inspects as docker's would; the cache", async () => {
  await withBusybox(async (root) => {
    await withContext(
      { "Dockerfile": WALKTHROUGH, "main.sh": "#!/bin/sh\necho hello from main\n" },
      async (dir) => {
        const first = await root.ok(["build", "-t", "demo:tag", dir]);
        assert(first.includes("Step 1/12 : FROM busybox\n ---> "), first);
        assert(first.includes("Step 3/12 : COPY main.sh /go/src/hello\n"), first);
        assert(/Successfully built [0-9a-f]{12}\nSuccessfully tagged demo:tag\n$/.test(first), first);
        assertEqual(counts(first), { ran: 2, cached: 0 });
        assertEqual((await root.ok(["run", "--rm", "demo:tag"])).trim(), "hello from main");
        assertEqual((await root.ok(["run", "--rm", "demo:tag", "cat", "/greeting"])).trim(), "hi");
        assertEqual(
          await inspect(root, "demo:tag", "{{json .Config.Env}}"),
          // the test base has no Env: docker's classic builder gives the stage its default PATH first
          '["PATH=/usr/bin:/bin","APP=demo"]',
        );
        assertEqual(await inspect(root, "demo:tag", "{{json .Config.Cmd}}"), '["hello"]');
        assertEqual(await inspect(root, "demo:tag", "{{json .Config.Entrypoint}}"), "null");
        assertEqual(await inspect(root, "demo:tag", "{{.Config.WorkingDir}}"), "/go/src/hello");
        assertEqual(await inspect(root, "demo:tag", "{{.Config.User}}"), "1000:1000");
        assertEqual(await inspect(root, "demo:tag", "{{json .Config.ExposedPorts}}"), '{"8080/tcp":{}}');
        assertEqual(await inspect(root, "demo:tag", "{{json .Config.Volumes}}"), '{"/data":{}}');
        assertEqual(await inspect(root, "demo:tag", "{{json .Config.Labels}}"), '{"org.test":"yes"}');
        // busybox's one layer + WORKDIR + COPY + two RUNs
        assertEqual(await inspect(root, "demo:tag", "{{len .RootFS.Layers}}"), "5");
        const history = await root.ok(["history", "--no-trunc", "demo:tag"]);
        assert(history.includes('|1 GREETING=hi /bin/sh -c echo "$GREETING" > /greeting'), history);
        const id = await inspect(root, "demo:tag", "{{.Id}}");

        // nothing changed: no step runs, the same image
        const again = await root.ok(["build", "-t", "demo:tag", dir]);
        assertEqual(counts(again), { ran: 0, cached: 11 });
        assertEqual(await inspect(root, "demo:tag", "{{.Id}}"), id);

        // only the mtime changed: still the cache
        await Deno.utime(join(dir, "main.sh"), new Date(), new Date(2001, 1, 1));
        assertEqual(counts(await root.ok(["build", "-t", "demo:tag", dir])), { ran: 0, cached: 11 });

        // a COPY source changed: WORKDIR cached, COPY and everything after it again
        Deno.writeTextFileSync(join(dir, "main.sh"), "#!/bin/sh\necho changed\n");
        const changed = await root.ok(["build", "-t", "demo:tag", dir]);
        assertEqual(counts(changed), { ran: 2, cached: 1 });
        assertEqual((await root.ok(["run", "--rm", "demo:tag"])).trim(), "changed");

        // a changed build arg: the ARG step hits, the first RUN after it (which does not use it) runs
        const arg = await root.ok(["build", "--build-arg", "GREETING=yo", "-t", "demo:arg", dir]);
        assertEqual(counts(arg), { ran: 2, cached: 3 });
        assertEqual((await root.ok(["run", "--rm", "demo:arg", "cat", "/greeting"])).trim(), "yo");

        // --no-cache runs all; -q prints only the id
        const quiet = await root.ok(["build", "--no-cache", "-q", dir]);
        assert(/^sha256:[0-9a-f]{64}\n$/.test(quiet), quiet);
        const noCache = await root.ok(["build", "--no-cache", dir]);
        assertEqual(counts(noCache), { ran: 2, cached: 0 });
      },
    );
  });
});

Deno.test("build: multi-stage COPY --from, --target, .dockerignore with an exception, whiteouts", async () => {
  await withBusybox(async (root) => {
    const files = {
      "Dockerfile": `FROM busybox AS build
RUN mkdir /out && echo artifact > /out/a && echo gone > /out/tmp
RUN rm /out/tmp
FROM busybox AS never
RUN exit 3
FROM busybox
COPY --from=build /out /app/
COPY . /ctx/
RUN rm /ctx/keep.log
`,
      "src/a.txt": "a",
      "x.log": "ignored",
      "keep.log": "kept",
      "docs/secret": "ignored",
      ".dockerignore": "*.log\n!keep.log\ndocs\n",
    };
    await withContext(files, async (dir) => {
      const out = await root.ok(["build", "-t", "multi", dir]);
      assert(!out.includes("exit 3"), out); // the unneeded stage is not built
      const listing = await root.ok([
        "run",
        "--rm",
        "multi",
        "sh",
        "-c",
        "cat /app/a; ls /app; ls -A /ctx /ctx/src",
      ]);
      assertEqual(listing, "artifact\na\n/ctx:\n.dockerignore\nDockerfile\nsrc\n\n/ctx/src:\na.txt\n");
      // the deleted file is a whiteout in the last layer: absent from the image
      const gone = await root.skiff(["run", "--rm", "multi", "cat", "/ctx/keep.log"]);
      assertEqual(gone.code, 1);
      const target = await root.ok(["build", "--target", "build", "-t", "stage1", dir]);
      assert(!target.includes("COPY"), target);
      assertEqual((await root.ok(["run", "--rm", "stage1", "ls", "/out"])).trim(), "a");
    });
  });
});

Deno.test("build: failures stop the build with docker's message; no tag, container or half-made layer", async () => {
  await withBusybox(async (root) => {
    await withContext({ "f": "x" }, async (dir) => {
      const before = await imageCount(root);
      const cases: [string, RegExp, number][] = [
        ["FROM busybox\nRUN true\nBOGUS x\n", /Dockerfile:3: unknown instruction: BOGUS/, 1],
        ["FROM busybox\nCOPY missing /x\n", /COPY failed: file not found in build context.*missing/, 1],
        ["FROM busybox\nCOPY ../x /x\n", /COPY failed: forbidden path outside the build context: \.\.\/x/, 1],
        ["FROM busybox\nCOPY --from=nostage /x /x\n", /invalid from flag value nostage/, 1],
        ["FROM busybox\nRUN false\n", /^The command '\/bin\/sh -c false' returned a non-zero code: 1\n$/, 1],
        ["FROM busybox\nRUN exit 7\n", /returned a non-zero code: 7/, 7],
      ];
      for (const [text, message, code] of cases) {
        Deno.writeTextFileSync(join(dir, "Dockerfile"), text);
        const r = await root.skiff(["build", "-t", "bad:tag", dir]);
        assertEqual(r.code, code, `${text}: ${r.stderr}`);
        assert(message.test(r.stderr), `${text}: ${r.stderr}`);
        assertEqual(root.containerIds(), [], text);
      }
      assertEqual((await root.skiff(["inspect", "bad:tag"])).code, 1);
      assertEqual(await imageCount(root), before);
      assertEqual([...Deno.readDirSync(join(root.path, "tmp"))].length, 0);
    });
  });
});

Deno.test("build attack: a context symlink to /etc/shadow is copied as the link, never the host file", async () => {
  await withBusybox(async (root) => {
    await withContext({ "Dockerfile": "FROM busybox\nCOPY shadow dir /c/\n" }, async (dir) => {
      Deno.symlinkSync("/etc/shadow", join(dir, "shadow"));
      Deno.mkdirSync(join(dir, "dir"));
      Deno.symlinkSync("/etc", join(dir, "dir", "etc"));
      await root.ok(["build", "-t", "links", dir]);
      const out = await root.ok([
        "run",
        "--rm",
        "links",
        "sh",
        "-c",
        "readlink /c/shadow; readlink /c/etc; ls /c",
      ]);
      assertEqual(out, "/etc/shadow\n/etc\netc\nshadow\n");
      // the container's own /etc/shadow (none in this busybox) is what the link names: no host data
      const host = Deno.readTextFileSync("/etc/shadow");
      const seen = await root.skiff(["run", "--rm", "links", "cat", "/c/shadow"]);
      assert(!seen.stdout.includes(host.split("\n")[0]), "host /etc/shadow leaked");
    });
  });
});

Deno.test("build attack: COPY into a base image's symlink to a host path lands inside the layer", async () => {
  await withBusybox(async (root) => {
    const hostPath = `/tmp/skiff-build-escape-${crypto.randomUUID()}`;
    await withContext(
      {
        "Dockerfile": `FROM busybox\nRUN ln -s ${hostPath} /target\nCOPY f /target/\nWORKDIR /target/w\n`,
        "f": "payload",
      },
      async (dir) => {
        await root.ok(["build", "-t", "sym", dir]);
        let exists = true;
        try {
          Deno.lstatSync(hostPath);
        } catch {
          exists = false;
        }
        assertEqual(exists, false, `${hostPath} was created on the host`);
        const out = await root.ok([
          "run",
          "--rm",
          "sym",
          "sh",
          "-c",
          `cat /target/f; echo; ls -d ${hostPath}/w; pwd`,
        ]);
        assertEqual(out, `payload\n${hostPath}/w\n${hostPath}/w\n`);
      },
    );
  });
});
