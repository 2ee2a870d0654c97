// Interop with the peers (docker, podman) where they run on this machine: skiff save → docker load /
// podman load give the same image id; podman's oci-archive and docker's save load into skiff.
// Set up by /work/shared/peers/setup-peers.sh (env in /tmp/peers/env.sh); skipped with a message
// where they are absent (a fresh CI machine).

import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestRoot, withBusybox } from "./helpers.ts";

interface Peers {
  docker?: string[];
  podmanEnv?: Record<string, string>;
}

function readPeers(): Peers {
  let text: string;
  try {
    text = Deno.readTextFileSync("/tmp/peers/env.sh");
  } catch {
    return {};
  }
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^export (\w+)="?([^"\n]*)"?$/gm)) env[m[1]] = m[2];
  return {
    docker: env.PEER_DOCKER ? env.PEER_DOCKER.split(/\s+/) : undefined,
    podmanEnv: env.CONTAINERS_CONF
      ? { CONTAINERS_CONF: env.CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: env.CONTAINERS_STORAGE_CONF }
      : undefined,
  };
}

async function exec(cmd: string[], env?: Record<string, string>) {
  try {
    const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), env, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: -1, stdout: "", stderr: String(e) };
  }
}

const peers = readPeers();
const dockerUp = peers.docker
  ? (await exec([...peers.docker, "version", "--format", "{{.Server.Version}}"])).code === 0
  : false;
const podmanUp = peers.podmanEnv ? (await exec(["podman", "version"], peers.podmanEnv)).code === 0 : false;
const tag = `skiff-interop-${Deno.pid}:t`;

const imageId = async (root: TestRoot, ref: string) =>
  (await root.ok(["inspect", "--format", "{{.Id}}", ref])).trim();

Deno.test("docker load of skiff save: same image id", async () => {
  if (!dockerUp) {
    console.log("docker peer is not running (/tmp/peers/env.sh): skipped");
    return;
  }
  const docker = peers.docker!;
  await withBusybox(async (root) => {
    await root.ok(["tag", "busybox", tag]);
    const out = join(root.path, "bb.tar");
    await root.ok(["save", "-o", out, tag]);
    try {
      const r = await exec([...docker, "load", "-i", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Loaded image: ${tag}`));
      const id = (await exec([...docker, "image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
      assert.equal(id, await imageId(root, tag));
      // and back: docker save → skiff load
      const back = join(root.path, "docker.tar");
      assert.equal((await exec([...docker, "save", "-o", back, tag])).code, 0);
      await root.ok(["rmi", tag]);
      await root.ok(["load", "-i", back]);
      assert.equal(await imageId(root, tag), id);
    } finally {
      await exec([...docker, "rmi", tag]);
    }
  });
});

Deno.test("podman load of skiff save; podman save --format oci-archive loads into skiff", async () => {
  if (!podmanUp) {
    console.log("podman is not installed/configured (/tmp/peers/env.sh): skipped");
    return;
  }
  const env = peers.podmanEnv!;
  await withBusybox(async (root) => {
    await root.ok(["tag", "busybox", tag]);
    const out = join(root.path, "bb.tar");
    await root.ok(["save", "-o", out, tag]);
    const full = `docker.io/library/${tag}`;
    try {
      const r = await exec(["podman", "load", "-i", out], env);
      assert.equal(r.code, 0, r.stderr);
      const id = (await exec(["podman", "image", "inspect", "--format", "{{.Id}}", full], env)).stdout.trim();
      assert.equal(`sha256:${id}`, await imageId(root, tag));
      const oci = join(root.path, "podman-oci.tar");
      const saved = await exec(["podman", "save", "--format", "oci-archive", "-o", oci, full], env);
      assert.equal(saved.code, 0, saved.stderr);
      await root.ok(["rmi", tag]);
      const loaded = await root.ok(["load", "-i", oci]);
      assert.match(loaded, /Loaded image/);
      const layers = (await root.ok(["inspect", "--format", "{{json .RootFS.Layers}}", "busybox"])).trim();
      const images = (await root.ok(["images", "--format", "{{.ID}}"])).trim().split("\n");
      assert.ok(images.length >= 1);
      const loadedRef = /Loaded image(?: ID)?: (\S+)/.exec(loaded)![1];
      assert.equal(
        (await root.ok(["inspect", "--format", "{{json .RootFS.Layers}}", loadedRef])).trim(),
        layers,
      );
    } finally {
      await exec(["podman", "rmi", "-f", full], env);
    }
  });
});
