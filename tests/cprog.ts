// Attack programs for the security tests: small C sources compiled statically with the host's gcc
// (install.sh --test installs gcc and libc6-dev), once per source per test process. A static binary
// runs in the busybox image, which has no libc of its own.

import { createHash } from "node:crypto";
import { join } from "node:path";

const built = new Map<string, Promise<string>>();
let dirPromise: Promise<string> | undefined;

function buildDir(): Promise<string> {
  dirPromise ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-cprog-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    return dir;
  })();
  return dirPromise;
}

/** Compiles `source` as a static executable and returns its host path. */
export function compileStatic(name: string, source: string): Promise<string> {
  const key = createHash("sha256").update(name + "\0" + source).digest("hex").slice(0, 16);
  let p = built.get(key);
  if (!p) {
    p = (async () => {
      const dir = await buildDir();
      const src = join(dir, `${name}-${key}.c`);
      const bin = join(dir, `${name}-${key}`);
      await Deno.writeTextFile(src, source);
      const out = await new Deno.Command("gcc", {
        args: ["-static", "-O1", "-o", bin, src],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(`gcc ${name}.c failed:\n${new TextDecoder().decode(out.stderr)}`);
      }
      return bin;
    })();
    built.set(key, p);
  }
  return p;
}
