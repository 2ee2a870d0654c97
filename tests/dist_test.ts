// The single-file release (scripts/dist.sh): dist/skiff-linux-x86_64 run in a root filesystem that has
// glibc and a shell but no deno, no node and no npm (a mount namespace pivoted into a directory with
// the host's glibc, libgcc_s and /bin/sh copied in, the host's /proc, /sys (cgroups) and /dev bound
// in), where it pulls from a local registry and runs, detaches, logs, execs and removes containers;
// its first runs racing each other; its cache damaged in the ways a killed unpack, a truncation or a
// lost marker leave it; the file itself damaged. The aarch64 file: its structure, and under
// qemu-aarch64-static (when installed) its launcher's unpack and its runtime's `version`.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileStatic } from "./cprog.ts";
import { findLeaks } from "./helpers.ts";
import { sharedImage, skopeoPush, withRegistry } from "./registry_harness.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const TRAILER = 80;

/** Builds the dist file of `arch` once per test process (a build takes a few seconds). */
const built = new Map<string, Promise<string>>();
function distFile(arch: "x86_64" | "aarch64"): Promise<string> {
  let p = built.get(arch);
  if (!p) {
    p = (async () => {
      const out = await new Deno.Command("bash", {
        args: [join(REPO, "scripts/dist.sh"), arch],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return join(REPO, "dist", `skiff-linux-${arch}`);
    })();
    built.set(arch, p);
  }
  return p;
}

interface Trailer {
  offset: number;
  size: number;
  runtimeSize: number;
  sha: string;
}

function readTrailer(file: string): Trailer {
  const f = Deno.openSync(file);
  try {
    const size = f.statSync().size;
    const buf = new Uint8Array(TRAILER);
    f.seekSync(size - TRAILER, Deno.SeekMode.Start);
    assert.equal(f.readSync(buf), TRAILER);
    assert.equal(new TextDecoder().decode(buf.subarray(0, 13)), "skiff-dist-v1");
    const view = new DataView(buf.buffer);
    const t = {
      offset: Number(view.getBigUint64(16, true)),
      size: Number(view.getBigUint64(24, true)),
      runtimeSize: Number(view.getBigUint64(32, true)),
      sha: [...buf.subarray(48, 80)].map((b) => b.toString(16).padStart(2, "0")).join(""),
    };
    assert.equal(t.offset + t.size + TRAILER, size, "the payload runs up to the trailer");
    return t;
  } finally {
    f.close();
  }
}

/**
 * `unshare(CLONE_NEWNS)`, the host's /proc, /sys and /dev bound into ROOT, pivot_root into it, exec.
 * The root shares the host's network namespace, so it shares /run/skiff too: the locks there guard
 * the default bridge (lib/network/gc.ts), which a collector started inside may remove.
 */
const ENTER_ROOT_C = `
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
static void die(const char *what) { perror(what); exit(120); }
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *root = argv[1];
  char path[4096];
  if (unshare(CLONE_NEWNS)) die("unshare");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) die("bind the root");
  const char *binds[] = {"/proc", "/sys", "/dev", "/run/skiff", NULL};
  for (int i = 0; binds[i]; i++) {
    snprintf(path, sizeof path, "%s%s", root, binds[i]);
    if (mount(binds[i], path, NULL, MS_BIND | MS_REC, NULL)) die(binds[i]);
  }
  if (chdir(root)) die("chdir");
  if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root");
  if (umount2(".", MNT_DETACH)) die("detach the old root");
  if (chdir("/")) die("chdir /");
  execv(argv[2], argv + 2);
  die("execv");
}
`;

const dec = new TextDecoder();

/** A root filesystem with glibc and a shell, and skiff's dist file as /usr/local/bin/skiff. */
class BareRoot {
  readonly skiff = "/usr/local/bin/skiff";
  private constructor(readonly path: string, private readonly enter: string) {}

  static async create(dist: string): Promise<BareRoot> {
    const path = await Deno.makeTempDir({ prefix: "skiff-distroot-" });
    try {
      Deno.mkdirSync("/run/skiff", { recursive: true, mode: 0o700 });
      for (
        const d of [
          "bin",
          "usr/local/bin",
          "proc",
          "sys",
          "dev",
          "tmp",
          "run/skiff",
          "root",
          "etc",
          "var/lib",
        ]
      ) {
        Deno.mkdirSync(join(path, d), { recursive: true });
      }
      Deno.chmodSync(join(path, "tmp"), 0o1777);
      // glibc and what the Deno runtime links besides (libgcc_s), as the dynamic linker reports them
      const libs = new Set<string>();
      for (const program of [Deno.execPath(), "/bin/sh"]) {
        const out = await new Deno.Command("ldd", { args: [program], stdout: "piped" }).output();
        for (const m of dec.decode(out.stdout).matchAll(/(\/\S+\.so[.\d]*)/g)) libs.add(m[1]);
      }
      for (const lib of libs) {
        Deno.mkdirSync(join(path, dirname(lib)), { recursive: true });
        Deno.copyFileSync(Deno.realPathSync(lib), join(path, lib));
      }
      Deno.copyFileSync(Deno.realPathSync("/bin/sh"), join(path, "bin/sh"));
      Deno.chmodSync(join(path, "bin/sh"), 0o755);
      Deno.copyFileSync(dist, join(path, "usr/local/bin/skiff"));
      Deno.chmodSync(join(path, "usr/local/bin/skiff"), 0o755);
      const enter = await compileStatic("enter-root", ENTER_ROOT_C);
      return new BareRoot(path, enter);
    } catch (e) {
      await Deno.remove(path, { recursive: true });
      throw e;
    }
  }

  host(inside: string): string {
    return join(this.path, inside);
  }

  /** Starts `argv` inside the root with a clean environment (HOME=/root). */
  spawn(argv: string[], env: Record<string, string> = {}): Deno.ChildProcess {
    return new Deno.Command(this.enter, {
      args: [this.path, ...argv],
      clearEnv: true,
      env: {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: "/root",
        SKIFF_DOCKER_HUB_HOST: "127.0.0.1:2",
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  async run(argv: string[], env: Record<string, string> = {}) {
    const child = this.spawn(argv, env);
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const out = await child.output();
    clearTimeout(timer);
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /** `skiff ARGS` inside, through the shell (the root's only program besides skiff). */
  sk(args: string[], env: Record<string, string> = {}) {
    return this.run(["/bin/sh", "-c", `exec ${this.skiff} "$@"`, "sh", ...args], env);
  }

  async ok(args: string[], env: Record<string, string> = {}): Promise<string> {
    const r = await this.sk(args, env);
    assert.equal(r.code, 0, `skiff ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Processes whose root directory is this root (whatever is left of skiff inside it). */
  processes(): number[] {
    const me = Deno.statSync(this.path);
    const pids: number[] = [];
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const st = Deno.statSync(`/proc/${e.name}/root/`);
        if (st.dev === me.dev && st.ino === me.ino) pids.push(Number(e.name));
      } catch { /* gone, or a kernel thread */ }
    }
    return pids;
  }

  /** Removes every container skiff made inside, then everything; throws what was left behind. */
  async cleanup(): Promise<void> {
    const state = this.host("var/lib/skiff");
    let ids: string[] = [];
    try {
      ids = [...Deno.readDirSync(join(state, "containers"))].map((e) => e.name);
    } catch { /* none made */ }
    if (ids.length) await this.sk(["rm", "-f", ...ids]).catch(() => {});
    const problems: string[] = [];
    // the default bridge's collector may have been started (the bridge exists while other roots use
    // it): it gives up after 10 s at most
    for (let waited = 0; waited < 15_000 && this.processes().length; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const pid of this.processes()) {
      let what = "";
      try {
        what = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      } catch { /* gone */ }
      problems.push(`process ${pid}: ${what}`);
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    const leaks = findLeaks(state, ids);
    for (const cg of leaks.cgroups.reverse()) {
      problems.push(`cgroup ${cg}`);
      try {
        Deno.removeSync(cg);
      } catch { /* busy */ }
    }
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
    if (problems.length) {
      throw new Error(`left behind by skiff in the bare root:\n  ${problems.join("\n  ")}`);
    }
  }
}

async function withBareRoot(fn: (root: BareRoot, dist: string) => Promise<void>): Promise<void> {
  const dist = await distFile("x86_64");
  const root = await BareRoot.create(dist);
  let failure: unknown;
  try {
    await fn(root, dist);
  } catch (e) {
    failure = e;
  }
  try {
    await root.cleanup();
  } catch (e) {
    failure ??= e;
  }
  if (failure) throw failure;
}

const entries = (dir: string) => {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
};

Deno.test("dist: the x86-64 file runs skiff in a root with glibc and a shell but no deno, node or npm: pull, run, run -d, logs, exec, rm -f", async () => {
  await withBareRoot(async (root, dist) => {
    const t = readTrailer(dist);
    const key = t.sha.slice(0, 24);
    // nothing of Deno or Node in the root but the file itself
    const which = await root.run([
      "/bin/sh",
      "-c",
      "command -v deno; command -v node; command -v npm; exit 0",
    ]);
    assert.equal(which.stdout, "");

    // the first start unpacks into /var/cache/skiff/<key> (root's; never the $HOME of `sudo -E`); its
    // Deno cache sits beside the runtime
    const version = await root.ok(["version"]);
    assert.match(version, /Version:\s+\d+\.\d+\.\d+/);
    assert.match(version, /deno 2\.9\.6/);
    const cache = root.host("var/cache/skiff");
    assert.deepEqual(entries(cache), [key, `${key}.lock`]);
    assert.deepEqual(entries(join(cache, key)), ["deno", "deno-dir", "ok", "skiff", "start"]);
    assert.equal(Deno.statSync(join(cache, key, "deno")).size, t.runtimeSize);
    assert.equal(Deno.readTextFileSync(join(cache, key, "ok")), `${t.sha}\n`);
    assert.ok(
      entries(join(cache, key, "deno-dir")).includes("v8_code_cache_v2"),
      "Deno's code cache is beside the runtime, in the unpacked directory",
    );

    await withRegistry("open", async (registry) => {
      const img = await sharedImage("dist");
      await skopeoPush(registry, img.layout, "test/busybox:1.0");
      const ref = `${registry.host}/test/busybox:1.0`;
      const pulled = await root.ok(["pull", ref]);
      assert.match(pulled, /Status: Downloaded newer image/);

      // the foreground run, and a failure's code
      assert.equal(
        await root.ok(["run", "--rm", "--network", "none", ref, "cat", "/skiff-image"]),
        "dist amd64\n",
      );
      assert.equal((await root.sk(["run", "--rm", "--network", "none", ref, "/nope"])).code, 127);

      // detached: the supervisor is the unpacked runtime too
      const id = (await root.ok([
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        ref,
        "sh",
        "-c",
        "echo up; exec sleep 300",
      ]))
        .trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      let logs = "";
      for (let i = 0; i < 100 && !logs.includes("up"); i++) {
        logs = await root.ok(["logs", "web"]);
        if (!logs.includes("up")) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(logs, "up\n");
      assert.equal(await root.ok(["exec", "web", "sh", "-c", "echo $((6 * 7))"]), "42\n");
      assert.match(await root.ok(["ps"]), /web/);
      assert.equal((await root.ok(["rm", "-f", "web"])).trim(), "web");
      assert.equal(await root.ok(["ps", "-aq"]), "");
    });

    // the unpack workers: the bundle's lib/image/file_worker.js, found through import.meta.url in the
    // unpacked tree
    const files = root.host("tmp/small");
    Deno.mkdirSync(join(files, "etc"), { recursive: true });
    for (let i = 0; i < 64; i++) Deno.writeTextFileSync(join(files, "etc", `f${i}`), `${i}\n`);
    Deno.copyFileSync("/bin/busybox", join(files, "busybox"));
    const tar = await new Deno.Command("tar", { args: ["-C", files, "-cf", root.host("tmp/small.tar"), "."] })
      .output();
    assert.ok(tar.success);
    await root.ok(["import", "/tmp/small.tar", "small:latest"], { SKIFF_UNPACK_THREADS: "2" });
    assert.equal(
      await root.ok(["run", "--rm", "--network", "none", "small", "/busybox", "cat", "/etc/f42"]),
      "42\n",
    );
    // (a worker whose entry did not load would fail the import: tests/bundle_test.ts loads the bundle's
    // worker entry the way the file pool names it)
  });
});

Deno.test("dist: concurrent first runs unpack once; a killed unpack, a truncated runtime, a lost marker are replaced; a damaged file is refused", async () => {
  await withBareRoot(async (root, dist) => {
    const t = readTrailer(dist);
    const key = t.sha.slice(0, 24);
    const env = { SKIFF_CACHE_DIR: "/cache" };
    const cache = root.host("cache");
    const dir = join(cache, key);

    // an unpack killed half-way leaves only its temp dir, never <key>
    const first = root.spawn(["/usr/local/bin/skiff", "version"], env);
    let tmp: string | undefined;
    for (let i = 0; i < 2000 && !tmp; i++) {
      tmp = entries(cache).find((e) => e.startsWith(`.tmp-${key}-`));
      if (!tmp) await new Promise((r) => setTimeout(r, 2));
    }
    first.kill("SIGKILL");
    await first.output();
    assert.ok(tmp, "the unpack went into a temp dir");
    assert.ok(!entries(cache).includes(key), "a killed unpack never has the final name");

    // concurrent first runs: all succeed, one unpack, the killed one's temp dir swept
    const runs = await Promise.all(
      [1, 2, 3, 4].map(() => root.run(["/usr/local/bin/skiff", "version"], env)),
    );
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, runs[0].stdout);
    }
    assert.deepEqual(entries(cache), [key, `${key}.lock`]);
    const inode = Deno.statSync(join(dir, "deno")).ino;
    await root.ok(["version"], env);
    assert.equal(Deno.statSync(join(dir, "deno")).ino, inode, "a ready cache is used as it is");

    // checked at every start: a truncated runtime
    Deno.truncateSync(join(dir, "deno"), 1 << 20);
    assert.match(await root.ok(["version"], env), /deno 2\.9\.6/);
    assert.equal(Deno.statSync(join(dir, "deno")).size, t.runtimeSize);
    assert.deepEqual(entries(cache), [key, `${key}.lock`]);

    // ... and a lost marker (a cache copied or written by something else): the whole tree is replaced,
    // here a truncated source file with it
    Deno.removeSync(join(dir, "ok"));
    const main = join(dir, "skiff/main.js");
    const mainSize = Deno.statSync(main).size;
    Deno.truncateSync(main, 10);
    assert.match(await root.ok(["version"], env), /deno 2\.9\.6/);
    assert.equal(Deno.statSync(main).size, mainSize);
    assert.equal(Deno.readTextFileSync(join(dir, "ok")), `${t.sha}\n`);
    assert.deepEqual(entries(cache), [key, `${key}.lock`]);

    // checked once, while unpacking: the file's own payload against its SHA-256 (a byte flipped in
    // the runtime's bytes): refused, nothing installed
    const bad = root.host("usr/local/bin/skiff-bad");
    const bytes = Deno.readFileSync(dist);
    bytes[t.offset + 512 + (t.runtimeSize >> 1)] ^= 0x55;
    Deno.writeFileSync(bad, bytes, { mode: 0o755 });
    const fresh = { SKIFF_CACHE_DIR: "/cache-bad" };
    const damaged = await root.run(["/usr/local/bin/skiff-bad", "version"], fresh);
    assert.equal(damaged.code, 125);
    assert.equal(damaged.stdout, "");
    assert.match(damaged.stderr, /^skiff: this file is damaged \(its payload does not match its SHA-256\)/);
    assert.deepEqual(entries(root.host("cache-bad")), [`${key}.lock`]);
    // a file cut short (an interrupted download)
    Deno.writeFileSync(bad, bytes.subarray(0, bytes.length - 1000), { mode: 0o755 });
    const cut = await root.run(["/usr/local/bin/skiff-bad", "version"], fresh);
    assert.equal(cut.code, 125);
    assert.match(cut.stderr, /^skiff: this file is damaged \(no payload at its end\)/);
    assert.deepEqual(entries(root.host("cache-bad")), [`${key}.lock`]);

    // the runtime in the cache is run as root: a cache another user can change is refused, nothing run
    for (const [dirMode, uid] of [[0o777, 0], [0o755, 1000]]) {
      const open = root.host("cache-open");
      Deno.mkdirSync(open, { recursive: true });
      Deno.chmodSync(open, dirMode);
      Deno.chownSync(open, uid, uid);
      const refused = await root.run(["/usr/local/bin/skiff", "version"], { SKIFF_CACHE_DIR: "/cache-open" });
      assert.equal(refused.code, 125);
      assert.equal(refused.stdout, "");
      assert.match(
        refused.stderr,
        /^skiff: the cache directory can be changed by another user: .*: \/cache-open\n$/,
      );
      assert.deepEqual(entries(open), []);
      // ... also when it was unpacked before someone else got it
      Deno.chmodSync(open, 0o755);
      Deno.chownSync(open, 0, 0);
      await root.ok(["version"], { SKIFF_CACHE_DIR: "/cache-open" });
      Deno.chmodSync(join(open, key), dirMode === 0o777 ? 0o777 : 0o755);
      Deno.chownSync(join(open, key, dirMode === 0o777 ? "deno" : "start"), uid, uid);
      const later = await root.run(["/usr/local/bin/skiff", "version"], { SKIFF_CACHE_DIR: "/cache-open" });
      assert.equal(later.code, 125, later.stdout);
      assert.match(later.stderr, /^skiff: the cache directory can be changed by another user/);
      Deno.removeSync(open, { recursive: true });
    }
    // a sticky, world-writable directory above the cache (as /tmp) is fine: others cannot rename in it
    assert.match(await root.ok(["version"], { SKIFF_CACHE_DIR: "/tmp/skiff-cache" }), /deno 2\.9\.6/);
  });
});

/** `PROG DIR A B MICROS`: exchanges DIR/A and DIR/B (renameat2 RENAME_EXCHANGE) every MICROS µs. */
const SLOW_EXCHANGE_C = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 5) return 2;
  int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (dir < 0) return 2;
  for (;;) {
    syscall(SYS_renameat2, dir, argv[2], dir, argv[3], 2 /* RENAME_EXCHANGE */);
    usleep(atoi(argv[4]));
  }
}
`;

// Attack: another user's symlink on the way to the cache. SKIFF_CACHE_DIR=/tmp/c0 (a cache below a
// sticky directory is allowed) where user 1000 made /tmp/c0 a link to root's ready cache and swaps it
// with a link to a tree of its own whose skiff/main.js is its code: the launcher checked what the
// links led to at that moment (stat follows them) and then started Deno by the same path strings, so
// root ran user 1000's main.js whenever the swap fell between the checks and Deno's read (a host
// without fs.protected_symlinks, as this one: 0). Before the fix 18, 15 and 16 of 40 starts ran it
// (3 runs); now the link itself is refused, every time.
Deno.test("attack: dist launcher started through another user's symlink swapped under SKIFF_CACHE_DIR", async () => {
  await withBareRoot(async (root, dist) => {
    const key = readTrailer(dist).sha.slice(0, 24);
    await root.ok(["version"], { SKIFF_CACHE_DIR: "/cache" });
    const tmp = root.host("tmp");
    // user 1000's tree: root's runtime (a hard link: root's own bytes) and its own main.js
    const evil = join(tmp, "evil", key);
    Deno.mkdirSync(join(evil, "skiff"), { recursive: true });
    Deno.linkSync(root.host(`cache/${key}/deno`), join(evil, "deno"));
    for (const f of ["start", "ok"]) Deno.copyFileSync(root.host(`cache/${key}/${f}`), join(evil, f));
    Deno.symlinkSync(root.host(`cache/${key}/deno-dir`).replace(root.path, ""), join(evil, "deno-dir"));
    Deno.writeTextFileSync(join(evil, "skiff/main.js"), 'Deno.writeTextFileSync("/pwned", "pwned\\n");\n');
    for (const d of [join(tmp, "evil"), evil, join(evil, "skiff")]) Deno.chownSync(d, 1000, 1000);
    Deno.symlinkSync("/cache", join(tmp, "c0"));
    Deno.symlinkSync("/tmp/evil", join(tmp, "e0"));
    for (const l of ["c0", "e0"]) {
      const r = new Deno.Command("chown", { args: ["-h", "1000:1000", join(tmp, l)] }).outputSync();
      assert.ok(r.success);
    }
    // swapped every 3 ms: the launcher's checks (~0.1 ms) mostly see one state, Deno's read of
    // main.js ~20 ms later often the other (a swap as fast as it goes hit 1 of 40)
    const flipper = new Deno.Command(await compileStatic("slow-exchange", SLOW_EXCHANGE_C), {
      args: [tmp, "c0", "e0", "3000"],
    }).spawn();
    let hits = 0;
    const starts = 40, results = [];
    try {
      for (let i = 0; i < starts; i++) {
        results.push(await root.run(["/usr/local/bin/skiff", "version"], { SKIFF_CACHE_DIR: "/tmp/c0" }));
        try {
          Deno.removeSync(root.host("pwned"));
          hits++;
        } catch { /* not run */ }
      }
    } finally {
      flipper.kill("SIGKILL");
      await flipper.status;
    }
    assert.equal(hits, 0, `root ran user 1000's main.js in ${hits} of ${starts} starts`);
    for (const r of results) {
      assert.equal(r.code, 125, r.stdout);
      assert.match(r.stderr, /^skiff: the cache directory can be changed by another user: .*: \/tmp\/c0\n$/);
    }
  });
});

Deno.test("dist: the aarch64 file carries an arm64 launcher and Deno, and its payload matches its hash", async () => {
  const dist = await distFile("aarch64");
  const t = readTrailer(dist);
  const bytes = Deno.readFileSync(dist);
  const machine = (at: number) => new DataView(bytes.buffer, at).getUint16(18, true);
  assert.equal(new TextDecoder().decode(bytes.subarray(1, 4)), "ELF");
  assert.equal(machine(0), 183, "the launcher is an arm64 ELF (EM_AARCH64)");
  // the payload's first entry is the runtime: a ustar header, then an arm64 ELF of runtimeSize bytes
  assert.equal(new TextDecoder().decode(bytes.subarray(t.offset, t.offset + 4)), "deno");
  assert.equal(new TextDecoder().decode(bytes.subarray(t.offset + 257, t.offset + 262)), "ustar");
  assert.equal(
    parseInt(new TextDecoder().decode(bytes.subarray(t.offset + 124, t.offset + 135)), 8),
    t.runtimeSize,
  );
  assert.equal(machine(t.offset + 512), 183, "the runtime is an arm64 ELF");
  const sha = createHash("sha256").update(bytes.subarray(t.offset, t.offset + t.size)).digest("hex");
  assert.equal(sha, t.sha);
  const listing = await new Deno.Command("tar", { args: ["-t"], stdin: "piped", stdout: "piped" }).spawn();
  const w = listing.stdin.getWriter();
  await w.write(bytes.subarray(t.offset, t.offset + t.size));
  await w.close();
  const names = dec.decode((await listing.output()).stdout).split("\n");
  // skiff as its bundle (scripts/bundle.sh), which holds its npm packages: the Deno cache starts empty
  for (
    const n of [
      "deno",
      "start",
      "skiff/main.js",
      "skiff/lib/image/file_worker.js",
    ]
  ) {
    assert.ok(names.includes(n), `${n} in the payload`);
  }
  assert.ok(!names.some((n) => n.startsWith("deno-dir/npm/")), "no npm cache in the payload");

  // under qemu-user: the arm64 launcher unpacks; without binfmt_misc qemu cannot follow its execve of
  // the arm64 runtime, so the runtime is then started under qemu directly
  const qemu = "/usr/bin/qemu-aarch64-static";
  const sysroot = "/usr/aarch64-linux-gnu";
  try {
    Deno.statSync(qemu);
    Deno.statSync(join(sysroot, "lib/libc.so.6"));
  } catch {
    console.log("qemu-aarch64-static or the arm64 glibc is not installed: structure checked only");
    return;
  }
  const cache = await Deno.makeTempDir({ prefix: "skiff-distcache-" });
  try {
    const env = { SKIFF_CACHE_DIR: cache, QEMU_LD_PREFIX: sysroot };
    const r = await new Deno.Command(qemu, { args: [dist, "version"], env, stdout: "piped", stderr: "piped" })
      .output();
    const dir = join(cache, t.sha.slice(0, 24));
    assert.equal(Deno.readTextFileSync(join(dir, "ok")), `${t.sha}\n`);
    let out = dec.decode(r.stdout);
    if (r.code !== 0) {
      assert.match(dec.decode(r.stderr), /cannot start the Deno runtime of the cache/);
      // the launcher's command line, from the start file it would have run
      const argv = Deno.readTextFileSync(join(dir, "start")).split("\n").filter(Boolean)
        .map((a) => a.startsWith("./") ? join(dir, a.slice(2)) : a);
      const direct = await new Deno.Command(qemu, {
        args: [...argv, "version"],
        env: { ...env, DENO_DIR: join(dir, "deno-dir") },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(direct.code, 0, dec.decode(direct.stderr));
      out = dec.decode(direct.stdout);
    }
    assert.match(out, /OS\/Arch:\s+linux\/arm64/);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
