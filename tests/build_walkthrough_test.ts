// The seed's walkthrough end to end, as a user types it: build a Dockerfile in the current
// directory, list it, run it detached, find it with ps, inspect it, exec in it, remove it, tag it for
// a registry (a real one, started here on loopback), push it, remove it locally (its build steps go
// with it), pull it back and run the pulled image.

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withBusybox } from "./helpers.ts";
import { withRegistry } from "./registry_harness.ts";

const DOCKERFILE = `FROM busybox
WORKDIR /go/src/hello
COPY main.sh /go/src/hello
RUN chmod +x main.sh && cp main.sh /bin/hello
RUN echo built > /greeting
CMD ["hello", "serve"]
`;

const MAIN_SH = `#!/bin/sh
echo "hello from demo"
[ "$1" = serve ] && exec sleep 300
exit 0
`;

/** `skiff --root R ARGS` run in `cwd` (the walkthrough's `build ... .`). */
async function skiffIn(root: TestRoot, cwd: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--root", root.path, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("build walkthrough: build -f -t ., images, run -d, ps, inspect, exec, rm -f, tag, push, rmi, pull, run", async () => {
  await withRegistry("open", async (registry) => {
    await withBusybox(async (root) => {
      const dir = await Deno.makeTempDir({ prefix: "skiff-walkthrough-" });
      try {
        Deno.writeTextFileSync(join(dir, "Dockerfile"), DOCKERFILE);
        Deno.writeTextFileSync(join(dir, "main.sh"), MAIN_SH);
        const built = await skiffIn(root, dir, ["build", "-f", "Dockerfile", "-t", "demo:tag", "."]);
        assertEqual(built.code, 0, built.stdout + built.stderr);
        assert(
          /Successfully built [0-9a-f]{12}\nSuccessfully tagged demo:tag\n$/.test(built.stdout),
          built.stdout,
        );
        const id = (await root.ok(["inspect", "-f", "{{.Id}}", "demo:tag"])).trim();

        const images = (await root.ok(["images"])).split("\n");
        assert(
          images.some((l) => /^demo\s+tag\s+[0-9a-f]{12}\s/.test(l) && l.includes(id.slice(7, 19))),
          images.join("\n"),
        );

        const cid = (await root.ok(["run", "-d", "--name", "web", "demo:tag"])).trim();
        assert(/^[0-9a-f]{64}$/.test(cid), cid);
        const ps = (await root.ok(["ps", "-f", "name=web"])).trim().split("\n");
        assertEqual(ps.length, 2, ps.join("\n"));
        assert(ps[1].startsWith(cid.slice(0, 12)) && /\bUp\b/.test(ps[1]) && ps[1].endsWith("web"), ps[1]);
        assert(ps[1].includes('"hello serve"') && ps[1].includes("demo:tag"), ps[1]);

        const [info] = JSON.parse(await root.ok(["inspect", "web"]));
        assertEqual(info.Id, cid);
        assertEqual(info.Name, "/web");
        assertEqual(info.Image, id);
        assertEqual(info.Config.Image, "demo:tag");
        assertEqual(info.Config.Cmd, ["hello", "serve"]);
        assertEqual(info.Config.WorkingDir, "/go/src/hello");
        assertEqual(info.State.Running, true);

        assertEqual(await root.ok(["exec", "web", "cat", "/greeting"]), "built\n");
        assertEqual((await root.ok(["exec", "web", "pwd"])).trim(), "/go/src/hello");
        assertEqual(await root.ok(["logs", "web"]), "hello from demo\n");
        assertEqual(await root.ok(["rm", "-f", "web"]), "web\n");
        assertEqual(await root.ok(["ps", "-a", "-q"]), "");

        const port = registry.host.split(":")[1];
        const remote = `localhost:${port}/demo:tag`;
        assertEqual(await root.ok(["tag", "demo:tag", remote]), "");
        const pushed = await root.skiff(["push", remote]);
        assertEqual(pushed.code, 0, pushed.stdout + pushed.stderr);
        assert(/tag: digest: sha256:[0-9a-f]{64} size: \d+/.test(pushed.stdout), pushed.stdout);

        // both names go; the image and every build step only it used are deleted; busybox stays
        const removed = await root.ok(["rmi", "demo:tag", remote]);
        assert(removed.startsWith(`Untagged: demo:tag\nUntagged: ${remote}\n`), removed);
        assert(removed.includes(`Deleted: ${id}\n`), removed);
        assertEqual(
          (await root.ok(["images", "-a", "--format", "{{.Repository}}"])).trim(),
          "busybox",
        );

        const pulled = await root.skiff(["pull", remote]);
        assertEqual(pulled.code, 0, pulled.stdout + pulled.stderr);
        assert(pulled.stdout.includes(`Status: Downloaded newer image for ${remote}`), pulled.stdout);
        // the same image (config and layers) as the one built
        assertEqual((await root.ok(["inspect", "-f", "{{.Id}}", remote])).trim(), id);
        assertEqual(await root.ok(["run", "--rm", remote, "hello"]), "hello from demo\n");
        assertEqual(await root.ok(["run", "--rm", remote, "cat", "/greeting"]), "built\n");
        await root.ok(["rmi", remote]);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  });
});
