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

/** Compiles `source` as a static executable (with gcc's `flags`) and returns its host path. */
export function compileStatic(name: string, source: string, flags: string[] = []): Promise<string> {
  const key = createHash("sha256").update([name, source, ...flags].join("\0")).digest("hex").slice(0, 16);
  let p = built.get(key);
  if (!p) {
    p = (async () => {
      const dir = await buildDir();
      const src = join(dir, `${name}-${key}.c`);
      const bin = join(dir, `${name}-${key}`);
      await Deno.writeTextFile(src, source);
      const out = await new Deno.Command("gcc", {
        args: ["-static", "-O1", ...flags, "-o", bin, src],
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

/**
 * `PROG DIR N A B`: exchanges DIR/A<i> and DIR/B<i> (i < N) with renameat2(RENAME_EXCHANGE), forever:
 * the symlink swap a hostile container runs against skiff's path handling (the race tests).
 */
export const EXCHANGE_LOOP_C = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 5) return 2;
  int n = atoi(argv[2]), dir = open(argv[1], O_RDONLY | O_DIRECTORY);
  char a[256][32], b[256][32];
  if (dir < 0 || n > 256) return 2;
  for (int i = 0; i < n; i++) {
    snprintf(a[i], 32, "%s%d", argv[3], i);
    snprintf(b[i], 32, "%s%d", argv[4], i);
  }
  for (;;)
    for (int i = 0; i < n; i++) syscall(SYS_renameat2, dir, a[i], dir, b[i], 2 /* RENAME_EXCHANGE */);
}
`;
