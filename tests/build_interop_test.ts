// A built image outside skiff: pushed to a real registry (Debian's docker-registry on loopback),
// copied by skopeo to an OCI layout whose layers, applied in order with their whiteouts, give the
// tree skiff built (a file deleted in a later step is absent), pulled back and run; and where the
// docker peer runs (/tmp/peers/env.sh), the same Dockerfile built by docker's classic builder gives
// the same config and, layer by layer, the same files (names, types, modes, owners, sizes, links).

import { deepStrictEqual as assertEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox, withRoot } from "./helpers.ts";
import { run, withRegistry } from "./registry_harness.ts";

const DOCKERFILE = (base: string) =>
  `FROM ${base}
LABEL org.skiff.test=yes note="a b"
ENV APP=demo PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /app
COPY f.txt sub/ /app/
COPY run.sh /usr/local/bin/
RUN mkdir -p /data/d && echo gone > /data/d/gone && echo kept > /data/d/kept && ln -s kept /data/d/link && ln /data/d/kept /data/d/hard
RUN rm /data/d/gone && chmod 4755 /usr/local/bin/run.sh && echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd
RUN mkdir -p /opq && touch /opq/old
RUN rm -rf /opq && mkdir /opq && touch /opq/new
USER 1234
EXPOSE 8080 53/udp
VOLUME ["/data", "/cache"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD ["true"]
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
ENTRYPOINT ["/usr/local/bin/run.sh"]
CMD ["--help"]
`;

const CONFIG_FIELDS = [
  "Env",
  "Cmd",
  "Entrypoint",
  "WorkingDir",
  "User",
  "ExposedPorts",
  "Volumes",
  "Labels",
  "Healthcheck",
  "StopSignal",
  "Shell",
  "OnBuild",
];

/** What an OCI image config has of them (skopeo's conversion drops the rest). */
const OCI_FIELDS = [
  "Env",
  "Cmd",
  "Entrypoint",
  "WorkingDir",
  "User",
  "ExposedPorts",
  "Volumes",
  "Labels",
  "StopSignal",
];

async function withContext(base: string, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-build-interop-" });
  try {
    Deno.writeTextFileSync(join(dir, "Dockerfile"), DOCKERFILE(base));
    Deno.writeTextFileSync(join(dir, "f.txt"), "file\n");
    Deno.mkdirSync(join(dir, "sub"));
    Deno.writeTextFileSync(join(dir, "sub/s.txt"), "s\n");
    Deno.writeTextFileSync(join(dir, "run.sh"), '#!/bin/sh\necho run "$@"\n', { mode: 0o755 });
    Deno.chmodSync(join(dir, "run.sh"), 0o755);
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function mustRun(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assertEqual(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A layer tar's entries as comparable lines (no mtimes; ./ prefixes dropped; sorted). */
async function layerListing(tarPath: string): Promise<string[]> {
  const script = `import sys,tarfile
t=tarfile.open(sys.argv[1])
for i in t.getmembers():
  n=i.name[2:] if i.name.startswith("./") else i.name
  print(n.rstrip("/"), i.type.decode(), oct(i.mode & 0o7777), i.uid, i.gid, i.size, i.linkname)`;
  return (await mustRun("python3", ["-c", script, tarPath])).trim().split("\n").filter(Boolean).sort();
}

/** podman's environment from the peers' set-up, when it is there and works. */
async function podmanPeer(): Promise<Record<string, string> | undefined> {
  try {
    const text = Deno.readTextFileSync("/tmp/peers/env.sh");
    const conf = /^export CONTAINERS_CONF="?([^"\n]*)"?$/m.exec(text)?.[1];
    const storage = /^export CONTAINERS_STORAGE_CONF="?([^"\n]*)"?$/m.exec(text)?.[1];
    if (!conf || !storage) return undefined;
    const env = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
    const ok = await new Deno.Command("podman", { args: ["version"], env, stdout: "null", stderr: "null" })
      .output();
    return ok.success ? env : undefined;
  } catch {
    return undefined;
  }
}
const podmanEnv = await podmanPeer();

const configOf = async (root: TestRoot, ref: string) =>
  JSON.parse(await root.ok(["inspect", "-f", "{{json .Config}}", ref]));

Deno.test("build interop: pushed, copied by skopeo to an OCI layout (whiteouts applied: the deleted file is gone), pulled and run", async () => {
  await withRegistry("open", async (registry) => {
    await withBusybox(async (root) => {
      await withContext("busybox", async (dir) => {
        const ref = `${registry.host}/built/demo:v1`;
        await root.ok(["build", "-q", "-t", ref, dir]);
        await root.ok(["push", ref]);
        const layers = JSON.parse(await root.ok(["inspect", "-f", "{{json .RootFS.Layers}}", ref]));
        const config = await configOf(root, ref);

        const oci = await Deno.makeTempDir({ prefix: "skiff-build-oci-" });
        const tree = await Deno.makeTempDir({ prefix: "skiff-build-tree-" });
        try {
          await mustRun("skopeo", [
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            `docker://${ref}`,
            `oci:${oci}:t`,
          ]);
          const index = JSON.parse(Deno.readTextFileSync(join(oci, "index.json")));
          const blob = (d: string) => join(oci, "blobs", "sha256", d.slice("sha256:".length));
          const manifest = JSON.parse(Deno.readTextFileSync(blob(index.manifests[0].digest)));
          const ociConfig = JSON.parse(Deno.readTextFileSync(blob(manifest.config.digest)));
          assertEqual(manifest.layers.length, layers.length);
          assertEqual(ociConfig.rootfs.diff_ids, layers);
          // the OCI config keeps the fields the OCI spec has; the registry's copy (docker's format) has all
          for (const k of OCI_FIELDS) assertEqual(ociConfig.config[k] ?? null, config[k] ?? null, k);
          const pushed = JSON.parse(
            await mustRun("skopeo", [
              "inspect",
              "--config",
              "--raw",
              "--tls-verify=false",
              `docker://${ref}`,
            ]),
          );
          for (const k of CONFIG_FIELDS) assertEqual(pushed.config[k] ?? null, config[k] ?? null, k);

          // the layers applied in order, as a runtime does: a whiteout removes what a lower layer had
          for (const l of manifest.layers) {
            // an opaque directory hides what the layers below had in it: emptied before this one
            const names = (await mustRun("tar", ["-tzf", blob(l.digest)])).split("\n");
            for (const n of names.filter((n) => n.endsWith("/.wh..wh..opq"))) {
              const at = join(tree, n.slice(0, -"/.wh..wh..opq".length));
              for (const e of [...Deno.readDirSync(at)]) {
                Deno.removeSync(join(at, e.name), { recursive: true });
              }
            }
            await mustRun("tar", ["-xzf", blob(l.digest), "-C", tree]);
            const outs = (await mustRun("find", [tree, "-name", ".wh.*"])).trim().split("\n").filter(Boolean);
            for (const wh of outs) {
              const name = wh.slice(wh.lastIndexOf("/") + 1);
              const parent = wh.slice(0, wh.lastIndexOf("/"));
              if (name !== ".wh..wh..opq") Deno.removeSync(join(parent, name.slice(4)), { recursive: true });
              Deno.removeSync(wh);
            }
          }
          const last = await layerListing(blob(manifest.layers.at(-1).digest));
          assert(last.some((l) => l.startsWith("opq/.wh..wh..opq ")), last.join("\n"));
          const deleting = await layerListing(blob(manifest.layers.at(-3).digest));
          assert(deleting.some((l) => l.startsWith("data/d/.wh.gone ")), deleting.join("\n"));
          assertEqual([...Deno.readDirSync(join(tree, "data/d"))].map((e) => e.name).sort(), [
            "hard",
            "kept",
            "link",
          ]);
          assertEqual([...Deno.readDirSync(join(tree, "opq"))].map((e) => e.name), ["new"]);
          assertEqual(Deno.statSync(join(tree, "usr/local/bin/run.sh")).mode! & 0o7777, 0o4755);
        } finally {
          Deno.removeSync(oci, { recursive: true });
          Deno.removeSync(tree, { recursive: true });
        }

        // podman (where the peers set it up) pulls it from the registry and runs it
        if (podmanEnv) {
          const podman = (args: string[]) =>
            new Deno.Command("podman", { args, env: podmanEnv, stdout: "piped", stderr: "piped" }).output();
          try {
            const pulled = await podman(["pull", "-q", "--tls-verify=false", ref]);
            assertEqual(pulled.code, 0, new TextDecoder().decode(pulled.stderr));
            const ran = await podman([
              "run",
              "--rm",
              "--network",
              "none",
              "--entrypoint",
              "ls",
              ref,
              "/data/d",
              "/opq",
            ]);
            assertEqual(new TextDecoder().decode(ran.stdout), "/data/d:\nhard\nkept\nlink\n\n/opq:\nnew\n");
          } finally {
            await podman(["rmi", "-f", ref]);
          }
        } else console.log("podman is not configured (/tmp/peers/env.sh): its pull not checked");

        // pulled into another root: the same image, and it runs
        await withRoot(async (fresh) => {
          await fresh.ok(["pull", "-q", ref]);
          assertEqual(JSON.parse(await fresh.ok(["inspect", "-f", "{{json .RootFS.Layers}}", ref])), layers);
          const out = await fresh.ok(["run", "--rm", "--entrypoint", "ls", ref, "/data/d", "/opq"]);
          assertEqual(out, "/data/d:\nhard\nkept\nlink\n\n/opq:\nnew\n");
          assertEqual((await fresh.ok(["run", "--rm", ref])).trim(), "run --help");
        });
      });
    });
  });
});

// ---- the docker peer ----

function dockerPeer(): string[] | undefined {
  try {
    const m = /^export PEER_DOCKER="?([^"\n]*)"?$/m.exec(Deno.readTextFileSync("/tmp/peers/env.sh"));
    return m ? m[1].split(/\s+/) : undefined;
  } catch {
    return undefined;
  }
}
const docker = dockerPeer();
const dockerUp = docker ? (await run(docker[0], [...docker.slice(1), "version"])).code === 0 : false;

Deno.test("build interop: docker's classic builder makes the same config and the same layers", async () => {
  if (!dockerUp) {
    console.log("docker peer is not running (/tmp/peers/env.sh): skipped");
    return;
  }
  const d = (args: string[]) => run(docker![0], [...docker!.slice(1), ...args]);
  const base = `skiff-build-cmp-base-${Deno.pid}:t`;
  const tag = `skiff-build-cmp-${Deno.pid}:t`;
  const ourTag = `skiff-build-cmp-ours-${Deno.pid}:t`;
  await withBusybox(async (root) => {
    const work = await Deno.makeTempDir({ prefix: "skiff-build-cmp-" });
    try {
      await root.ok(["tag", "busybox", base]);
      await root.ok(["save", "-o", join(work, "base.tar"), base]);
      assertEqual((await d(["load", "-q", "-i", join(work, "base.tar")])).code, 0);
      await withContext(base, async (dir) => {
        await root.ok(["build", "-q", "-t", tag, dir]);
        const r = await new Deno.Command(docker![0], {
          args: [...docker!.slice(1), "build", "-q", "-t", tag, dir],
          env: { DOCKER_BUILDKIT: "0" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assertEqual(r.code, 0, new TextDecoder().decode(r.stderr));
      });
      const theirs = JSON.parse((await d(["inspect", "-f", "{{json .Config}}", tag])).stdout);
      const ours = await configOf(root, tag);
      for (const k of CONFIG_FIELDS) assertEqual(ours[k] ?? null, theirs[k] ?? null, k);
      assertEqual(ours.Env, ["PATH=/usr/local/bin:/usr/bin:/bin", "APP=demo"]); // docker's default PATH first

      // the layers, one by one: docker save and skiff save, same entries
      const unpack = async (name: string, save: Promise<unknown>) => {
        await save;
        const at = join(work, name);
        Deno.mkdirSync(at);
        await mustRun("tar", ["-xf", join(work, `${name}.tar`), "-C", at]);
        const manifest = JSON.parse(Deno.readTextFileSync(join(at, "manifest.json")))[0];
        return await Promise.all(manifest.Layers.map((l: string) => layerListing(join(at, l))));
      };
      const mine = await unpack("skiff", root.ok(["save", "-o", join(work, "skiff.tar"), tag]));
      const dockers = await unpack("docker", d(["save", "-o", join(work, "docker.tar"), tag]));
      assertEqual(mine.length, dockers.length);
      for (let i = 0; i < mine.length; i++) assertEqual(mine[i], dockers[i], `layer ${i}`);

      // skiff's image loaded into docker runs there, the deleted file absent
      await root.ok(["tag", tag, ourTag]);
      await root.ok(["save", "-o", join(work, "ours.tar"), ourTag]);
      assertEqual((await d(["load", "-q", "-i", join(work, "ours.tar")])).code, 0);
      const ran = await d([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "ls",
        ourTag,
        "/data/d",
        "/opq",
      ]);
      assertEqual(ran.stdout, "/data/d:\nhard\nkept\nlink\n\n/opq:\nnew\n", ran.stderr);
    } finally {
      await d(["rmi", "-f", ourTag, tag, base]);
      Deno.removeSync(work, { recursive: true });
    }
  });
});
