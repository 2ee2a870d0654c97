// skiff run from its bundle (scripts/bundle.sh): the CLI, its re-executions (the supervisor of run -d,
// the init stage) and its file workers all run the bundle's files, and no chunk loads Deno's Node
// compatibility at start-up (esbuild's CommonJS shim did: 52 ms for `version` instead of 22).

import assert from "node:assert/strict";
import { join } from "node:path";
import { withBusybox } from "./helpers.ts";
import { START_V8_FLAGS } from "../lib/runtime/self.ts";

const REPO = new URL("..", import.meta.url).pathname;

async function buildBundle(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-bundle-" });
  const out = join(dir, "bundle");
  const built = await new Deno.Command("bash", { args: [join(REPO, "scripts/bundle.sh"), out] }).output();
  assert(built.success, new TextDecoder().decode(built.stderr));
  return out;
}

/**
 * Runs the bundle with a Deno cache of its own next to it (empty at first): the bundle needs nothing
 * from npm at run time (zod and @balena/dockerignore are inside), as on a server with no npm cache.
 */
async function runBundled(bundle: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    env: { DENO_DIR: join(bundle, "..", "deno-dir") },
    args: [
      "run",
      "-A",
      "--no-config",
      "--unstable-lazy-dynamic-imports",
      START_V8_FLAGS,
      join(bundle, "main.js"),
      ...args,
    ],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The static imports of a bundle file and of what it imports, transitively (chunk paths). */
function staticClosure(bundle: string, entry: string): { files: string[]; builtins: string[] } {
  const files = new Set<string>(), builtins = new Set<string>();
  const visit = (path: string) => {
    if (files.has(path)) return;
    files.add(path);
    const text = Deno.readTextFileSync(path);
    for (
      const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)";?$|^import\s+"([^"]+)";?$/gms)
    ) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith(".")) visit(join(path, "..", spec));
      else builtins.add(spec);
    }
  };
  visit(join(bundle, entry));
  return { files: [...files], builtins: [...builtins] };
}

Deno.test("bundle: no Node compatibility at start", async () => {
  const bundle = await buildBundle();
  try {
    const main = staticClosure(bundle, "main.js");
    // esbuild's CommonJS shim put node:module here (Node compatibility at every start)
    assert.deepEqual(main.builtins, [], `main.js loads ${main.builtins.join(", ")} at start`);
    // a verb that only uses Deno's APIs starts without loading a node: built-in (version: no state)
    const version = await runBundled(bundle, ["version"]);
    assert.deepEqual(version.code, 0, version.stderr);
    assert.match(version.stdout, /Version:\s+\d/);
  } finally {
    await Deno.remove(join(bundle, ".."), { recursive: true });
  }
});

Deno.test("bundle: run, run -d (its supervisor), exec, logs, rm and a file worker run from the bundle", async () => {
  const bundle = await buildBundle();
  try {
    await withBusybox(async (root) => {
      const skiff = (...args: string[]) => runBundled(bundle, ["--root", root.path, ...args]);
      const fg = await skiff("run", "--rm", "busybox", "echo", "from-the-bundle");
      assert.deepEqual([fg.code, fg.stdout, fg.stderr], [0, "from-the-bundle\n", ""]);
      const started = await skiff("run", "-d", "--name", "b1", "busybox", "sh", "-c", "echo up; sleep 100");
      assert.deepEqual(started.code, 0, started.stderr);
      // the supervisor the run woke is the bundle's
      const supervisors = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).map((e) => {
        try {
          return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
        } catch {
          return [];
        }
      }).filter((argv) => argv.includes("__supervisor") && argv.includes(root.path));
      assert.deepEqual(supervisors.length, 1, JSON.stringify(supervisors));
      assert(supervisors[0].includes(join(bundle, "main.js")), supervisors[0].join(" "));
      assert(supervisors[0].includes(START_V8_FLAGS), supervisors[0].join(" "));
      const exec = await skiff("exec", "b1", "sh", "-c", "echo in-b1; exit 3");
      assert.deepEqual([exec.code, exec.stdout], [3, "in-b1\n"]);
      let logs = "";
      for (let i = 0; i < 50 && !logs.includes("up"); i++) {
        logs = (await skiff("logs", "b1")).stdout;
        if (!logs.includes("up")) await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(logs, "up\n");
      assert.deepEqual((await skiff("rm", "-f", "b1")).code, 0);
    });
    // all of it ran on the bundle's own (at first empty) Deno cache, without an npm package in it
    const denoDir = join(bundle, "..", "deno-dir");
    assert.ok(Deno.statSync(join(denoDir, "v8_code_cache_v2")).isFile);
    let npmEntries: string[] = [];
    try {
      npmEntries = [...Deno.readDirSync(join(denoDir, "npm"))].map((e) => e.name);
    } catch { /* not even made */ }
    assert.deepEqual(npmEntries, []);
    // the file workers' entry, as the bundled file pool names it, loads and reports ready
    const probe = `
      const dir = ${JSON.stringify(bundle)};
      const files = [...Deno.readDirSync(dir)].filter((e) =>
        e.name.endsWith(".js") && Deno.readTextFileSync(dir + "/" + e.name).includes("function ownEntryUrl(")
      );
      for (const f of files) {
        const m = await import(dir + "/" + f.name);
        if (typeof m.ownEntryUrl !== "function") continue;
        const ready = new Int32Array(new SharedArrayBuffer(4));
        const worker = new Worker(m.ownEntryUrl("lib/image/file_worker.ts").href, { type: "module" });
        worker.postMessage({ ready: ready.buffer });
        for (let i = 0; i < 100 && Atomics.load(ready, 0) === 0; i++) await new Promise((r) => setTimeout(r, 20));
        console.log(Atomics.load(ready, 0));
        Deno.exit(0);
      }
      console.log("no ownEntryUrl");
    `;
    const probed = await new Deno.Command(Deno.execPath(), { args: ["eval", "--no-config", probe] }).output();
    assert.deepEqual(
      new TextDecoder().decode(probed.stdout).trim(),
      "1",
      new TextDecoder().decode(probed.stderr),
    );
  } finally {
    await Deno.remove(join(bundle, ".."), { recursive: true });
  }
});
