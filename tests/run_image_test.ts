// `skiff run` honours the image's config (Entrypoint, Cmd, Env, WorkingDir, User) and stacks many
// layers (more than fit in one page of overlay mount options).

import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { busyboxTar, type TestRoot, withRoot } from "./helpers.ts";
import { type TarWriteEntry, writeTar } from "../lib/image/tar.ts";

const sha256 = (data: Uint8Array | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Loads a docker-archive made of the busybox rootfs plus `extraLayers` one-file layers. */
async function loadImage(
  root: TestRoot,
  tag: string,
  extraLayers: number,
  config: Record<string, unknown>,
  topLayer?: TarWriteEntry[],
): Promise<void> {
  const layers: Uint8Array[] = [Deno.readFileSync(await busyboxTar())];
  for (let i = 0; i < extraLayers; i++) {
    const entries: TarWriteEntry[] = [
      { name: "layers/", type: "dir", mode: 0o755 },
      { name: `layers/f${i}`, data: `${i}\n` },
      { name: "layers/top", data: `${i}\n` }, // each layer overrides the one below
    ];
    layers.push(writeTar(entries));
  }
  if (topLayer) layers.push(writeTar(topLayer));
  const members: TarWriteEntry[] = [];
  const layerPaths = layers.map((tar, i) => {
    const path = `${String(i).padStart(64, "0")}/layer.tar`;
    members.push({ name: path, data: tar });
    return path;
  });
  const configBlob = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: layers.map((l) => sha256(l)) },
  });
  const configName = `${sha256(configBlob).slice(7)}.json`;
  members.push({ name: configName, data: configBlob });
  members.push({
    name: "manifest.json",
    data: JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerPaths }]),
  });
  const archive = join(root.path, "image.tar");
  Deno.writeFileSync(archive, writeTar(members));
  await root.ok(["load", "-q", "-i", archive]);
  Deno.removeSync(archive);
}

Deno.test("run: the image's Entrypoint, Cmd, Env, WorkingDir and User apply; flags override them", async () => {
  await withRoot(async (root) => {
    await loadImage(root, "cfg:latest", 0, {
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: ["echo user=$(id -u) pwd=$(pwd) foo=$FOO path=$PATH"],
      Env: ["PATH=/bin:/usr/bin", "FOO=image"],
      WorkingDir: "/srv/app",
      User: "user",
    });
    assertEquals(
      await root.ok(["run", "--rm", "cfg"]),
      "user=1000 pwd=/srv/app foo=image path=/bin:/usr/bin\n",
    );
    assertEquals(
      await root.ok([
        "run",
        "--rm",
        "-u",
        "0",
        "-w",
        "/tmp",
        "-e",
        "FOO=flag",
        "cfg",
        "echo $(id -u) $(pwd) $FOO",
      ]),
      "0 /tmp flag\n",
    );
    // --entrypoint drops the image's Cmd as well, as docker does
    assertMatch(await root.ok(["run", "--rm", "--entrypoint", "env", "cfg"]), /^HOME=\/home\/user$/m);
    const none = await root.skiff(["run", "--rm", "--entrypoint", "", "cfg"]);
    assertEquals(none.code, 125);
    assertEquals(none.stderr.trim(), "skiff: No command specified");
  });
});

Deno.test("run: 80 layers stack in order", async () => {
  await withRoot(async (root) => {
    await loadImage(root, "many:latest", 80, { Cmd: ["sh"] });
    const out = await root.ok([
      "run",
      "--rm",
      "many",
      "sh",
      "-c",
      "cat /layers/top /layers/f0 /layers/f79; ls /layers | wc -l",
    ]);
    assertEquals(out.split("\n").map((l) => l.trim()).join(" "), "79 0 79 81 ");
  });
});

Deno.test("run: an image's symlinks cannot aim the /etc binds at host files", async () => {
  await withRoot(async (root) => {
    const hostFile = join(root.path, "host-secret");
    const missingHostFile = join(root.path, "not-created");
    Deno.writeTextFileSync(hostFile, "host secret\n");
    await loadImage(root, "hostile:latest", 0, { Cmd: ["sh"] }, [
      { name: "etc/", type: "dir", mode: 0o755 },
      { name: "etc/hosts", type: "symlink", linkname: hostFile },
      { name: "etc/hostname", type: "symlink", linkname: `../../../../../../..${missingHostFile}` },
    ]);
    const out = await root.ok([
      "run",
      "--rm",
      "-h",
      "inside",
      "hostile",
      "sh",
      "-c",
      "cat /etc/hosts /etc/hostname",
    ]);
    assertMatch(out, /localhost/);
    assertMatch(out, /^inside$/m);
    assertEquals(Deno.readTextFileSync(hostFile), "host secret\n");
    let created = true;
    try {
      Deno.statSync(missingHostFile);
    } catch {
      created = false;
    }
    assertEquals(created, false);
  });
});

Deno.test("run: an image VOLUME becomes an anonymous volume with the image's files; --rm removes it", async () => {
  await withRoot(async (root) => {
    await loadImage(root, "withvol:latest", 0, { Cmd: ["sh"], Volumes: { "/data": {} } }, [
      { name: "data/", type: "dir", mode: 0o755 },
      { name: "data/seed", data: "seeded\n" },
    ]);
    const volumes = () => {
      try {
        return [...Deno.readDirSync(join(root.path, "volumes"))].filter((e) => e.isDirectory).length;
      } catch {
        return 0;
      }
    };
    const out = await root.ok([
      "run",
      "--rm",
      "withvol",
      "sh",
      "-c",
      "cat /data/seed; grep -c ' /data ' /proc/mounts",
    ]);
    assertEquals(out, "seeded\n1\n");
    assertEquals(volumes(), 0);
    // --tmpfs over the same path replaces the volume, as docker does
    const tmp = await root.ok([
      "run",
      "--rm",
      "--tmpfs",
      "/data",
      "withvol",
      "sh",
      "-c",
      "ls -A /data | wc -l",
    ]);
    assertEquals(tmp.trim(), "0");
    assertEquals(volumes(), 0);
  });
});
