// docker's copy-up happens when a container is CREATED: a new (empty) volume gets the image's files
// at its destination at `create` / `run`, so another container sees them before the first start
// (docker 20.10, checked on its peer: `create -v vol:/etc IMG`, then `run -v vol:/x IMG ls /x`
// lists the image's /etc). Named, anonymous (-v /dst, the image's VOLUME) and --mount volumes;
// `nocopy` / volume-nocopy never; a volume with content is left as it is; an empty one is filled
// even if another container used it before; a start copies nothing more (docker: a volume emptied
// after create stays empty at start), but a record made by an older skiff, which copied at start,
// still gets the files at its start. The attack: an image whose volume destination, or a file
// below it, is a symlink out of its root to a host directory: the copy reads the image's own
// files only. And the same files as docker's where its peer runs.

import assert from "node:assert/strict";
import { join } from "node:path";
import { busyboxTar, type TestRoot, withBusybox } from "./helpers.ts";
import { withDetached } from "./detach_helpers.ts";
import { docker, peerDockerReady } from "./peer_docker.ts";
import { StateRoot } from "../lib/state/root.ts";

type Mount = { Type: string; Name?: string; Source: string; Destination: string };

async function mounts(root: TestRoot, name: string): Promise<Mount[]> {
  return JSON.parse(await root.ok(["inspect", "-f", "{{json .Mounts}}", name]));
}

/** The volume at `destination` of container `name`: its host directory. */
async function volumeDir(root: TestRoot, name: string, destination: string): Promise<string> {
  const m = (await mounts(root, name)).find((m) => m.Destination === destination);
  assert.ok(m, `${name} has no mount at ${destination}`);
  return m.Source;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const hostVolume = (root: TestRoot, name: string) => join(root.path, "volumes", name, "_data");
const recordPath = async (root: TestRoot, name: string) =>
  join(
    new StateRoot(root.path).container((await root.ok(["inspect", "-f", "{{.Id}}", name])).trim()),
    "container.json",
  );

/** The busybox rootfs plus `extra` (paths -> file text, or a symlink target), as a tar to import. */
async function imageTar(dir: string, extra: Record<string, string | { link: string }>): Promise<string> {
  const rootfs = join(dir, "rootfs");
  Deno.mkdirSync(rootfs, { recursive: true });
  const untar = await new Deno.Command("tar", { args: ["-xf", await busyboxTar(), "-C", rootfs] }).output();
  assert.ok(untar.success);
  for (const [path, what] of Object.entries(extra)) {
    Deno.mkdirSync(join(rootfs, path, ".."), { recursive: true });
    if (typeof what === "string") Deno.writeTextFileSync(join(rootfs, path), what);
    else Deno.symlinkSync(what.link, join(rootfs, path));
  }
  const tar = join(dir, "image.tar");
  const made = await new Deno.Command("tar", { args: ["-cf", tar, "-C", rootfs, "."] }).output();
  assert.ok(made.success);
  return tar;
}

Deno.test("create: a new volume gets the image's files at create, before any start", async () => {
  await withBusybox(async (root) => {
    // named, through -v
    await root.ok(["create", "--name", "named", "-v", "conf:/etc", "busybox", "true"]);
    assert.equal((await root.ok(["inspect", "-f", "{{.State.Status}}", "named"])).trim(), "created");
    assert.equal(
      await root.ok(["run", "--rm", "-v", "conf:/x", "busybox", "ls", "-A", "/x"]),
      "group\npasswd\n",
    );
    // named, through --mount; read-only: docker fills it all the same
    await root.ok([
      "create",
      "--name",
      "mounted",
      "--mount",
      "type=volume,src=homes,dst=/home,ro",
      "busybox",
      "true",
    ]);
    assert.deepEqual(names(hostVolume(root, "homes")), ["user"]);
    assert.ok(Deno.statSync(join(hostVolume(root, "homes"), "user")).isDirectory);
    // anonymous, through -v /dst
    await root.ok(["create", "--name", "anon", "-v", "/etc", "busybox", "true"]);
    assert.deepEqual(names(await volumeDir(root, "anon", "/etc")), ["group", "passwd"]);
    // anonymous, for the image's VOLUME
    await root.ok(["import", "--change", "VOLUME /home", await busyboxTar(), "withvolume:latest"]);
    await root.ok(["create", "--name", "image", "withvolume", "true"]);
    assert.deepEqual(names(await volumeDir(root, "image", "/home")), ["user"]);
    // the record says the copy is done (skiff's own: inspect does not show it)
    const record = JSON.parse(Deno.readTextFileSync(await recordPath(root, "named")));
    assert.equal(record.VolumesCopiedAtCreate, true);
    assert.doesNotMatch(await root.ok(["inspect", "named"]), /VolumesCopiedAtCreate/);
    await root.ok(["rm", "-v", "named", "mounted", "anon", "image"]);
    await root.ok(["volume", "rm", "conf", "homes"]);
  });
});

Deno.test("create: nocopy stays empty; a volume with content is left alone; a used but empty one is filled", async () => {
  await withBusybox(async (root) => {
    await root.ok(["create", "--name", "nc1", "-v", "bare:/etc:nocopy", "busybox", "true"]);
    await root.ok([
      "create",
      "--name",
      "nc2",
      "--mount",
      "type=volume,src=bare2,dst=/etc,volume-nocopy",
      "busybox",
      "true",
    ]);
    assert.deepEqual(names(hostVolume(root, "bare")), []);
    assert.deepEqual(names(hostVolume(root, "bare2")), []);

    // a volume with a file of its own: neither the image's files nor its owner and mode
    await root.ok([
      "run",
      "--rm",
      "-v",
      "full:/x",
      "busybox",
      "sh",
      "-c",
      "echo mine > /x/mine; chmod 700 /x",
    ]);
    await root.ok(["create", "--name", "full", "-v", "full:/etc", "busybox", "true"]);
    assert.deepEqual(names(hostVolume(root, "full")), ["mine"]);
    assert.equal(Deno.statSync(hostVolume(root, "full")).mode! & 0o7777, 0o700);

    // used by a container before, still empty: filled (docker copies into any empty volume)
    await root.ok(["run", "--rm", "-v", "used:/x", "busybox", "true"]);
    await root.ok(["create", "--name", "used", "-v", "used:/etc", "busybox", "true"]);
    assert.deepEqual(names(hostVolume(root, "used")), ["group", "passwd"]);
    // and an empty image directory still gives its mode (docker's, checked on its peer: /tmp)
    await root.ok(["create", "--name", "tmp", "-v", "tmpvol:/tmp", "busybox", "true"]);
    assert.equal(Deno.statSync(hostVolume(root, "tmpvol")).mode! & 0o7777, 0o1777);

    await root.ok(["rm", "nc1", "nc2", "full", "used", "tmp"]);
    await root.ok(["volume", "rm", "bare", "bare2", "full", "used", "tmpvol"]);
  });
});

Deno.test("start copies no more; a record of an older skiff still gets the files at its start", async () => {
  await withDetached(async (root) => {
    await root.ok(["create", "--name", "cc", "-v", "conf:/etc", "busybox", "true"]);
    const volume = hostVolume(root, "conf");
    const empty = () => {
      for (const name of names(volume)) Deno.removeSync(join(volume, name), { recursive: true });
    };
    // emptied after create: docker's start does not fill it again (only the mount points of
    // /etc/hostname, hosts and resolv.conf are made in it)
    empty();
    await root.ok(["start", "-a", "cc"]);
    assert.deepEqual(names(volume), ["hostname", "hosts", "resolv.conf"]);

    // the record as an older skiff wrote it (no VolumesCopiedAtCreate): its start copies
    const path = await recordPath(root, "cc");
    const record = JSON.parse(Deno.readTextFileSync(path));
    delete record.VolumesCopiedAtCreate;
    Deno.writeTextFileSync(path, JSON.stringify(record));
    empty();
    await root.ok(["start", "-a", "cc"]);
    assert.deepEqual(names(volume), ["group", "hostname", "hosts", "passwd", "resolv.conf"]);
    await root.ok(["rm", "cc"]);
    await root.ok(["volume", "rm", "conf"]);
  });
});

Deno.test("run: in the foreground and with -d (the supervisor) the volume is filled at create", async () => {
  await withDetached(async (root) => {
    assert.match(await root.ok(["run", "--rm", "-v", "fg:/etc", "busybox", "ls", "/etc"]), /^passwd$/m);
    assert.match(await root.ok(["run", "--rm", "-v", "fg:/x", "busybox", "ls", "/x"]), /^passwd$/m);
    await root.ok(["run", "-d", "--name", "bg", "-v", "bg:/etc", "busybox", "sleep", "100"]);
    assert.match(await root.ok(["run", "--rm", "-v", "bg:/x", "busybox", "ls", "/x"]), /^passwd$/m);
    assert.match(await root.ok(["exec", "bg", "cat", "/etc/passwd"]), /^root:/);
    await root.ok(["rm", "-f", "bg"]);
    await root.ok(["volume", "rm", "fg", "bg"]);
  });
});

Deno.test("attack: an image whose volume destination, or a file below it, is a symlink to a host directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-copyup-link-" });
  try {
    await withBusybox(async (root) => {
      // a host directory the copy must never read: its file would show up in a volume
      const host = join(dir, "host-secret");
      Deno.mkdirSync(host);
      Deno.writeTextFileSync(join(host, "secret"), "host's\n");
      const tar = await imageTar(join(dir, "image"), {
        // out of the root by climbing, and by an absolute path: inside the image, both name the
        // image's own directory at that path, which has a file of the image's
        "data": { link: `../../../../../../../..${host}` },
        "abs": { link: host },
        [`${host.slice(1)}/image-file`]: "image's\n",
        // below a destination: links to a host file and a host directory, kept as links
        "files/secret": { link: `${host}/secret` },
        "files/dir": { link: host },
        "files/plain": "plain\n",
      });
      await root.ok(["import", "--change", "VOLUME /data", tar, "hostile:latest"]);
      await root.ok(["create", "--name", "hh", "-v", "abs:/abs", "-v", "files:/files", "hostile", "true"]);
      for (const destination of ["/data", "/abs"]) {
        const volume = await volumeDir(root, "hh", destination);
        assert.deepEqual(names(volume), ["image-file"], `${destination}: the host's directory was copied`);
        assert.equal(Deno.readTextFileSync(join(volume, "image-file")), "image's\n");
      }
      const files = hostVolume(root, "files");
      assert.deepEqual(names(files), ["dir", "plain", "secret"]);
      assert.ok(Deno.lstatSync(join(files, "secret")).isSymlink, "a link's target was copied");
      assert.equal(Deno.readLinkSync(join(files, "secret")), `${host}/secret`);
      assert.ok(Deno.lstatSync(join(files, "dir")).isSymlink, "a linked host directory was copied");
      // and the host's directory is as it was
      assert.deepEqual(names(host), ["secret"]);
      await root.ok(["rm", "-v", "hh"]);
      await root.ok(["volume", "rm", "abs", "files"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attack: a symlink loop at the end of a deep chain at a volume's destination holds no one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-copyup-loop-" });
  try {
    await withDetached(async (root) => {
      // 300 directories, a link at the bottom to itself by its absolute path, the destination a link
      // to that: every step of the image's resolution walked the chain again, 255 times over
      const chain = Array(300).fill("d").join("/");
      const tar = await imageTar(join(dir, "image"), {
        [`${chain}/x`]: { link: `/${chain}/x` },
        "l0": { link: `/${chain}/x` },
      });
      await root.ok(["import", tar, "loop:latest"]);
      const started = Date.now();
      // through the supervisor (run -d): a stall there would hold every other container's work
      const made = await root.skiff(["run", "-d", "--name", "lp", "-v", "/l0", "loop", "true"]);
      const took = Date.now() - started;
      assert.ok(took < 10_000, `run -d took ${took} ms (90 s before the bound)`);
      // the loop is the kernel's to refuse at the mount (ELOOP), as docker refuses it: no container runs
      assert.notEqual(made.code, 0, made.stdout);
      assert.equal(await root.ok(["ps", "-q"]), "");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("create: the container appears only once its volumes are filled; a tree too deep fails it, nothing left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skiff-copyup-order-" });
  try {
    await withBusybox(async (root) => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 3000; i++) files[`big/f${i}`] = `${i}\n`;
      files[`deep/${Array(600).fill("d").join("/")}/bottom`] = "deep\n";
      const tar = await imageTar(join(dir, "image"), files);
      await root.ok(["import", tar, "slow:latest"]);
      // while the copy runs, `ps -a` must not show the container (a start then would race the copy)
      const create = root.skiff(["create", "--name", "sc", "-v", "/big", "slow", "true"]);
      let seenEarly = false, done = false;
      create.finally(() => done = true);
      while (!done) {
        const listed = await root.skiff(["ps", "-a", "-q"]);
        if (!done && listed.stdout.trim() !== "") seenEarly = true;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal((await create).code, 0);
      assert.ok(!seenEarly, "the container was listed before its volume was filled");
      assert.equal(names(await volumeDir(root, "sc", "/big")).length, 3000);
      // deeper than the copy goes: one line, the create fails, no container and no volume is left
      const volumesBefore = await root.ok(["volume", "ls", "-q"]);
      const deep = await root.skiff(["create", "--name", "dp", "-v", "/deep", "slow", "true"]);
      assert.equal(deep.code, 1, deep.stderr);
      assert.match(deep.stderr, /a tree deeper than 512 directories/);
      assert.equal((await root.skiff(["inspect", "dp"])).code, 1);
      assert.equal(await root.ok(["volume", "ls", "-q"]), volumesBefore);
      await root.ok(["rm", "-v", "sc"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// docker where the peer runs (/tmp/peers/env.sh): the same files at create, from the peer's own
// busybox image (imported here under its name) and from an image of three layers with a whiteout,
// an opaque directory and a hard link, built from one Dockerfile by both
Deno.test("docker gives the same files at create (where the docker peer runs)", async () => {
  if (!await peerDockerReady()) return;
  const tar = "/tmp/peers/bb-rootfs.tar";
  const context = await Deno.makeTempDir({ prefix: "skiff-copyup-peer-" });
  const tag = `skiff-copyup-${Deno.pid}:latest`;
  Deno.writeTextFileSync(
    join(context, "Dockerfile"),
    [
      "FROM localhost/bb:latest",
      "RUN mkdir -p /data/d /data/keep && echo 1 > /data/a && echo 2 > /data/b && echo x > /data/d/x && " +
      "echo k > /data/keep/k && ln /data/b /data/hard && ln -s ../b /data/keep/link",
      "RUN rm /data/a && echo 3 > /data/c && rm -rf /data/d && mkdir /data/d && echo y > /data/d/y && " +
      "echo k2 > /data/keep/k2 && chown 1000:2000 /data/keep && chmod 0711 /data",
      "VOLUME /data",
      "",
    ].join("\n"),
  );
  // what a container sees of a volume: names, types, modes, owners, link counts, link targets
  const listing = "cd /x && ls -lnd . | cut -c1-10 && find . | sort | while read f; do " +
    'stat -c "%n %F %a %u %g %h" "$f"; [ -L "$f" ] && readlink "$f"; done; true';
  const name = `skiff-copyup-${Deno.pid}`;
  const cases: [string, string[]][] = [
    ["/bin", ["-v", `${name}-bin:/bin`, "localhost/bb:latest"]],
    ["/etc", ["-v", `${name}-etc:/etc`, "localhost/bb:latest"]],
    ["/data", [tag]],
  ];
  try {
    const built = await docker(["build", "-q", "-t", tag, context]);
    assert.equal(built.code, 0, built.stderr);
    await withBusybox(async (root) => {
      await root.ok(["import", tar, "localhost/bb:latest"]);
      await root.ok(["build", "-q", "-t", tag, context]);
      for (const [destination, args] of cases) {
        const made = await docker(["create", "--name", name, ...args, "true"]);
        assert.equal(made.code, 0, made.stderr);
        const volume = (await docker(["inspect", "-f", `{{range .Mounts}}{{.Name}}{{end}}`, name])).stdout
          .trim();
        const seen = await docker([
          "run",
          "--rm",
          "-v",
          `${volume}:/x`,
          "localhost/bb:latest",
          "sh",
          "-c",
          listing,
        ]);
        await docker(["rm", "-v", name]);
        await docker(["volume", "rm", volume]);
        assert.equal(seen.code, 0, seen.stderr);

        await root.ok(["create", "--name", "cc", ...args, "true"]);
        const ours = (await mounts(root, "cc"))[0].Name!;
        const mine = await root.ok([
          "run",
          "--rm",
          "-v",
          `${ours}:/x`,
          "localhost/bb:latest",
          "sh",
          "-c",
          listing,
        ]);
        await root.ok(["rm", "-v", "cc"]);
        await root.skiff(["volume", "rm", ours]);
        // docker's /etc also has the empty files of its init layer (hostname, hosts, resolv.conf and
        // the mtab link), which skiff has no layer for: they are mount points it makes at start
        const docker_ = destination === "/etc"
          ? seen.stdout.split("\n").filter((l) =>
            !/^\.\/(hostname|hosts|resolv\.conf|mtab)( |$)|^\/proc\/mounts$/.test(l)
          )
            .join("\n")
          : seen.stdout;
        assert.equal(mine, docker_, destination);
      }
    });
  } finally {
    await docker(["rm", "-f", "-v", name]);
    await docker(["rmi", tag]);
    await Deno.remove(context, { recursive: true });
  }
});
