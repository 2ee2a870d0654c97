// The container's PID 1 before its execve (run's stage, lib/runtime/stage.ts): a fork of skiff, so
// at the fork it holds a copy of all of skiff's memory (the caller's environment, registry tokens
// among it) and all of skiff's fds. A `--cap-add SYS_PTRACE` container whose PID namespace a new
// container joins could read them there. Its first steps drop both: what it waits with is only the
// program's pages and its own pipe ends.

import { ok as assert } from "node:assert/strict";
import { abortInitStage, startInitStage } from "../lib/runtime/stage.ts";
import { StateRoot } from "../lib/state/root.ts";
import { withRoot } from "./helpers.ts";

/** Reads a /proc file of `pid`, "" when the kernel has nothing to show (its pages are gone). */
function procText(pid: number, name: string): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/${name}`);
  } catch {
    return "";
  }
}

Deno.test("init stage: the waiting PID 1 holds none of skiff's memory, environment or fds", async () => {
  await withRoot(async (testRoot) => {
    const root = new StateRoot(testRoot.path);
    Deno.mkdirSync(root.tmp, { recursive: true });
    Deno.env.set("AWS_SECRET_ACCESS_KEY_FOR_TEST", "s3cr3t-token");
    const secretFile = Deno.openSync(`${testRoot.path}/a-host-file`, { create: true, write: true });
    const stage = startInitStage("null", "piped");
    try {
      const pid = stage.child.pid;
      let maps = "";
      const openFds = () => {
        try {
          return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
        } catch {
          return 0;
        }
      };
      // until it waits: its pages unmapped first, its fds closed a few steps later (in a busy test
      // process the first can be seen before the second)
      for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
        maps = procText(pid, "maps");
        // waiting: one mapping of code, program and stack (plus the kernel's vdso/vvar)
        const pages = maps.trim().split("\n").filter((l) => !/\[(vdso|vvar|vsyscall|vvar_vclock)\]/.test(l));
        if (pages.length <= 3 && openFds() <= 7) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const mapped = maps.trim().split("\n").filter((l) => !/\[(vdso|vvar|vsyscall|vvar_vclock)\]/.test(l));
      assert(mapped.length <= 3, `only the program's pages: ${maps}`);
      assert(!mapped.some((l) => /deno|libc|\.so/.test(l)), `no file of skiff's mapped: ${maps}`);
      assert(!procText(pid, "environ").includes("s3cr3t-token"), "the caller's environment is gone");
      assert(!procText(pid, "cmdline").includes("s3cr3t"), "nothing to show as its command line");
      // fds: 0-2 and its own pipe ends and skiff's pidfd; not the host file skiff has open
      const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => Number(e.name));
      assert(fds.length <= 7, `fds ${fds}`);
      for (const fd of fds) {
        const target = Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
        assert(!target.includes("a-host-file"), `fd ${fd} is skiff's ${target}`);
      }
    } finally {
      secretFile.close();
      Deno.env.delete("AWS_SECRET_ACCESS_KEY_FOR_TEST");
      await abortInitStage(stage);
    }
  });
});
