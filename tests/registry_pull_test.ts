// skiff pull against a real docker-registry in its three set-ups (open, htpasswd, token): the image
// skopeo pushed comes back with the same digests, is recorded with RepoTags/RepoDigests, and runs.

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { MAIN, type TestRoot, withRoot } from "./helpers.ts";
import { ProgressRenderer } from "../lib/registry/progress.ts";
import {
  buildImage,
  PASSWORD,
  type RegistryMode,
  sharedImage,
  skopeoPush,
  type TestRegistry,
  USER,
  withDockerConfig,
  withRegistry,
} from "./registry_harness.ts";

const testImage = () => sharedImage("pulled");

function imageRecords(root: TestRoot) {
  return [...Deno.readDirSync(join(root.path, "images"))]
    .map((e) => JSON.parse(Deno.readTextFileSync(join(root.path, "images", e.name))));
}

async function login(root: TestRoot, registry: TestRegistry, env: Record<string, string>) {
  if (registry.mode === "open") return;
  await root.ok(["login", "-u", USER, "--password-stdin", registry.host], { env, stdin: `${PASSWORD}\n` });
}

for (const mode of ["open", "basic", "token"] as RegistryMode[]) {
  Deno.test(`pull (${mode}): skopeo-pushed image, progress lines, record, run, up to date`, async () => {
    const img = await testImage();
    await withRegistry(mode, async (registry) => {
      await skopeoPush(registry, img.layout, "test/busybox:1.0");
      await withDockerConfig(async (env) => {
        await withRoot(async (root) => {
          await login(root, registry, env);
          const ref = `${registry.host}/test/busybox:1.0`;
          const r = await root.skiff(["pull", ref], { env });
          strictEqual(r.code, 0, r.stderr);
          const lines = r.stdout.trim().split("\n");
          strictEqual(lines[0], "1.0: Pulling from test/busybox");
          for (const layer of img.layerDigests) {
            const id = layer.slice(7, 19);
            ok(lines.includes(`${id}: Pulling fs layer`), r.stdout);
            ok(lines.includes(`${id}: Pull complete`), r.stdout);
          }
          ok(lines.includes(`Digest: ${img.manifestDigest}`), r.stdout);
          ok(lines.includes(`Status: Downloaded newer image for ${ref}`), r.stdout);
          strictEqual(lines.at(-1), ref);

          const records = imageRecords(root);
          strictEqual(records.length, 1);
          strictEqual(records[0].id, img.configDigest);
          deepStrictEqual(records[0].repoDigests, [`${registry.host}/test/busybox@${img.manifestDigest}`]);
          strictEqual(records[0].manifestDigest, img.manifestDigest);
          deepStrictEqual(
            JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json"))),
            { [ref]: img.configDigest },
          );
          // layer blobs are kept for push, verified by name
          for (const d of img.layerDigests) {
            ok(Deno.statSync(join(root.path, "blobs/sha256", d.slice(7))).isFile);
          }
          deepStrictEqual([...Deno.readDirSync(join(root.path, "tmp"))], []);

          const run = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
          strictEqual(run.code, 0, run.stderr);
          strictEqual(run.stdout, "pulled amd64\n");

          const again = await root.skiff(["pull", ref], { env });
          strictEqual(again.code, 0, again.stderr);
          strictEqual(
            again.stdout,
            `1.0: Pulling from test/busybox\nDigest: ${img.manifestDigest}\nStatus: Image is up to date for ${ref}\n${ref}\n`,
          );

          // by digest, quietly: only the reference
          const byDigest = `${registry.host}/test/busybox@${img.manifestDigest}`;
          const q = await root.skiff(["pull", "-q", byDigest], { env });
          strictEqual(q.code, 0, q.stderr);
          strictEqual(q.stdout, `${byDigest}\n`);
          strictEqual(imageRecords(root).length, 1);
        });
      });
      if (mode === "token") {
        // skiff asked for pull scope on the repository, with the stored credentials
        ok(
          registry.tokenRequests.some((t) =>
            t.user === USER && t.scope.includes("repository:test/busybox:pull")
          ),
        );
      }
    });
  });
}

Deno.test("pull: default tag, unknown tag and unknown repository", async () => {
  const img = await testImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "app:latest");
    await withRoot(async (root) => {
      const r = await root.skiff(["pull", `${registry.host}/app`]);
      strictEqual(r.code, 0, r.stderr);
      strictEqual(r.stdout.split("\n")[0], "Using default tag: latest");
      strictEqual(r.stdout.split("\n")[1], "latest: Pulling from app");

      const tag = await root.skiff(["pull", `${registry.host}/app:nope`]);
      strictEqual(tag.code, 1);
      strictEqual(
        tag.stderr,
        `skiff: manifest for ${registry.host}/app:nope not found: manifest unknown: manifest unknown\n`,
      );
      const repo = await root.skiff(["pull", `${registry.host}/nothing/here`]);
      strictEqual(repo.code, 1);
      match(
        repo.stderr,
        new RegExp(`^skiff: manifest for ${registry.host}/nothing/here:latest not found: manifest unknown`),
      );
      strictEqual(repo.stderr.split("\n").length, 2, "one line");
      strictEqual(imageRecords(root).length, 1);
    });
  });
});

Deno.test("pull: credentials are required where the registry asks for them", async () => {
  const img = await testImage();
  for (const mode of ["basic", "token"] as RegistryMode[]) {
    await withRegistry(mode, async (registry) => {
      await skopeoPush(registry, img.layout, "private:latest");
      await withDockerConfig(async (env) => {
        await withRoot(async (root) => {
          const r = await root.skiff(["pull", `${registry.host}/private`], { env });
          strictEqual(r.code, 1, r.stdout);
          match(r.stderr, /unauthorized: authentication required/);
          deepStrictEqual(imageRecords(root), []);
        });
      });
    });
  }
});

Deno.test("pull: two pulls of the same image at once both succeed and store it once", async () => {
  const img = await testImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "same:latest");
    await withRoot(async (root) => {
      const ref = `${registry.host}/same:latest`;
      const [a, b] = await Promise.all([root.skiff(["pull", "-q", ref]), root.skiff(["pull", "-q", ref])]);
      strictEqual(a.code, 0, a.stderr);
      strictEqual(b.code, 0, b.stderr);
      strictEqual(imageRecords(root).length, 1);
      strictEqual([...Deno.readDirSync(join(root.path, "layers"))].length, img.layerDigests.length);
      deepStrictEqual([...Deno.readDirSync(join(root.path, "tmp"))], []);
      const run = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
      strictEqual(run.stdout, "pulled amd64\n");
    });
  });
});

// docker 20.10 exits 1 for each (its CLI's argument count, the reference, -a with a tag, the platform)
Deno.test("pull: bad arguments exit 1 and change nothing", async () => {
  await withRoot(async (root) => {
    for (
      const [args, message] of [
        [["pull"], `skiff: "skiff pull" requires exactly 1 argument. (see 'skiff pull --help')`],
        [
          ["pull", "upper/Case"],
          "skiff: invalid reference format: repository name (upper/Case) must be lowercase",
        ],
        [["pull", "busybox:"], "skiff: invalid reference format"],
        [
          ["pull", "-a", "busybox:1"],
          "skiff: tag can't be used with --all-tags/-a",
        ],
        [
          ["pull", "--platform", "linux//x", "busybox"],
          `skiff: "" is an invalid component of "linux//x": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`,
        ],
      ] as [string[], string][]
    ) {
      const r = await root.skiff(args);
      strictEqual(r.code, 1, args.join(" "));
      strictEqual(r.stderr.trim(), message);
    }
    deepStrictEqual(imageRecords(root), []);
  });
});

Deno.test("pull -a: every tag of the repository", async () => {
  const img = await testImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "many:one");
    await skopeoPush(registry, img.layout, "many:two");
    await withRoot(async (root) => {
      const r = await root.skiff(["pull", "-a", `${registry.host}/many`]);
      strictEqual(r.code, 0, r.stderr);
      ok(r.stdout.includes("one: Pulling from many"), r.stdout);
      ok(r.stdout.includes("two: Pulling from many"), r.stdout);
      ok(r.stdout.includes(`Status: Downloaded newer image for ${registry.host}/many\n`), r.stdout);
      strictEqual(r.stdout.trim().split("\n").at(-1), `${registry.host}/many`);
      deepStrictEqual(
        Object.keys(JSON.parse(Deno.readTextFileSync(join(root.path, "repositories.json")))).sort(),
        [`${registry.host}/many:one`, `${registry.host}/many:two`],
      );
      strictEqual(imageRecords(root).length, 1);
    });
  });
});

Deno.test("run of a missing image pulls it first; --pull never|always|bogus", async () => {
  const img = await testImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "auto/busybox:1.0");
    const ref = `${registry.host}/auto/busybox:1.0`;
    await withRoot(async (root) => {
      const never = await root.skiff(["run", "--rm", "--pull", "never", ref, "true"]);
      strictEqual(never.code, 125);
      strictEqual(never.stderr.trim(), `skiff: Unable to find image '${ref}' locally`);
      const bogus = await root.skiff(["run", "--rm", "--pull", "bogus", ref, "true"]);
      strictEqual(bogus.code, 125);
      strictEqual(
        bogus.stderr.trim(),
        `skiff: invalid pull option: 'bogus': must be one of "always", "missing" or "never"`,
      );
      deepStrictEqual(root.containerIds(), []);

      const r = await root.skiff(["run", "--rm", ref, "cat", "/skiff-image"]);
      strictEqual(r.code, 0, r.stderr);
      strictEqual(r.stdout, "pulled amd64\n"); // stdout is the container's alone
      const lines = r.stderr.trim().split("\n");
      strictEqual(lines[0], `Unable to find image '${ref}' locally`);
      strictEqual(lines[1], "1.0: Pulling from auto/busybox");
      ok(lines.includes(`Digest: ${img.manifestDigest}`), r.stderr);
      strictEqual(lines.at(-1), `Status: Downloaded newer image for ${ref}`);

      // present: no pull, nothing on stderr; always: pulls (up to date) anyway
      const again = await root.skiff(["run", "--rm", ref, "true"]);
      strictEqual(again.stderr, "");
      const always = await root.skiff(["run", "--rm", "--pull=always", ref, "true"]);
      strictEqual(always.code, 0, always.stderr);
      ok(always.stderr.includes(`Status: Image is up to date for ${ref}`), always.stderr);
      ok(!always.stderr.includes("Unable to find"), always.stderr);
    });
    await withRoot(async (root) => {
      const missing = await root.skiff(["run", "--rm", `${registry.host}/auto/nosuch:1`, "true"]);
      strictEqual(missing.code, 125);
      ok(missing.stderr.startsWith(`Unable to find image '${registry.host}/auto/nosuch:1' locally\n`));
      match(missing.stderr, /skiff: .*not found/);
    });
  });
});

Deno.test("second pull: up to date through the HEAD fast path; a moved tag is pulled again", async () => {
  const first = await testImage();
  const second = await buildImage({ name: "moved" });
  try {
    await withRegistry("open", async (registry) => {
      await skopeoPush(registry, first.layout, "fast/bb:1");
      const ref = `${registry.host}/fast/bb:1`;
      await withRoot(async (root) => {
        await root.ok(["pull", "-q", ref]);
        const again = await root.skiff(["pull", ref]);
        strictEqual(again.code, 0, again.stderr);
        strictEqual(
          again.stdout,
          `1: Pulling from fast/bb\nDigest: ${first.manifestDigest}\nStatus: Image is up to date for ${ref}\n${ref}\n`,
        );
        strictEqual((await root.ok(["pull", "-q", ref])).trim(), ref);

        // the tag now names another manifest: the HEAD sees another digest, the full pull runs
        await skopeoPush(registry, second.layout, "fast/bb:1");
        const moved = await root.skiff(["pull", ref]);
        strictEqual(moved.code, 0, moved.stderr);
        ok(moved.stdout.includes(`Digest: ${second.manifestDigest}`), moved.stdout);
        ok(moved.stdout.includes(`Status: Downloaded newer image for ${ref}`), moved.stdout);
        strictEqual((await root.ok(["run", "--rm", ref, "cat", "/skiff-image"])).trim(), "moved amd64");

        // a layer blob gone (removed by system check --repair): not up to date, fetched again
        const record = imageRecords(root).find((r) => r.id === second.configDigest);
        Deno.removeSync(join(root.path, "blobs", "sha256", record.layers[1].blobDigest.slice(7)));
        const healed = await root.skiff(["pull", ref]);
        strictEqual(healed.code, 0, healed.stderr);
        ok(Deno.statSync(join(root.path, "blobs", "sha256", record.layers[1].blobDigest.slice(7))).isFile);
        strictEqual((await root.skiff(["system", "check"])).code, 0);
      });
    });
  } finally {
    Deno.removeSync(second.dir, { recursive: true });
  }
});

Deno.test("pull on a terminal: per-layer lines redrawn in place; -q prints only the name", async () => {
  const img = await testImage();
  await withRegistry("open", async (registry) => {
    await skopeoPush(registry, img.layout, "test/tty:1");
    await withRoot(async (root) => {
      const ref = `${registry.host}/test/tty:1`;
      // util-linux script(1) gives the command a pty for its stdout, as a user's terminal would
      const onTerminal = async (args: string[]) => {
        const command = [Deno.execPath(), "run", "-A", MAIN, "--root", root.path, ...args].join(" ");
        const out = await new Deno.Command("script", {
          args: ["-qec", command, "/dev/null"],
          stdout: "piped",
          stderr: "piped",
        }).output();
        strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
        return new TextDecoder().decode(out.stdout);
      };
      const text = await onTerminal(["pull", ref]);
      // each redraw moves the cursor up over the block of layer lines and rewrites every line
      // deno-lint-ignore no-control-regex
      match(text, /\x1b\[2A\x1b\[2K\r[0-9a-f]{12}: /);
      for (const layer of img.layerDigests) {
        ok(text.includes(`\x1b[2K\r${layer.slice(7, 19)}: Pulling fs layer\r\n`), text);
        ok(text.includes(`\x1b[2K\r${layer.slice(7, 19)}: Pull complete\r\n`), text);
      }
      ok(text.includes(`Status: Downloaded newer image for ${ref}`), text);
      await root.ok(["rmi", ref]);
      const quiet = await onTerminal(["pull", "-q", ref]);
      strictEqual(quiet.replace(/\r/g, "").trim(), ref);
    });
  });
});

Deno.test("progress on a terminal: a Downloading line carries docker's bar and sizes", () => {
  const chunks: Uint8Array[] = [];
  const out = { writeSync: (p: Uint8Array) => (chunks.push(p.slice()), p.length) };
  const renderer = new ProgressRenderer(out, true);
  renderer.sink({
    kind: "layer",
    id: "0123456789ab",
    status: "Downloading",
    current: 5_000_000,
    total: 10_000_000,
  });
  renderer.flush();
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  strictEqual(
    text.split("\r").at(-1),
    `0123456789ab: Downloading [========================>                         ]  5MB/10MB\n`,
  );
  const plain: Uint8Array[] = [];
  const lines = new ProgressRenderer({ writeSync: (p) => (plain.push(p.slice()), p.length) }, false);
  lines.sink({ kind: "layer", id: "0123456789ab", status: "Downloading", current: 1, total: 2 });
  lines.sink({ kind: "layer", id: "0123456789ab", status: "Downloading", current: 2, total: 2 });
  strictEqual(
    new TextDecoder().decode(new Uint8Array(plain.flatMap((c) => [...c]))),
    "0123456789ab: Downloading\n",
  );
});
