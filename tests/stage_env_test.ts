// The init stage's environment: only what Deno needs and skiff's own switches, never the caller's
// other variables (a `--cap-add SYS_PTRACE` container whose PID namespace a new container joins
// could read them from that container's stage before its execve).

import { ok as assert } from "node:assert/strict";
import { abortInitStage, startInitStage } from "../lib/runtime/stage.ts";
import { StateRoot } from "../lib/state/root.ts";
import { withRoot } from "./helpers.ts";

Deno.test("init stage: the caller's secrets are not in its environment; Deno's cache dir is", async () => {
  await withRoot(async (testRoot) => {
    const root = new StateRoot(testRoot.path);
    Deno.mkdirSync(root.tmp, { recursive: true });
    Deno.env.set("AWS_SECRET_ACCESS_KEY_FOR_TEST", "s3cr3t-token");
    Deno.env.set("DENO_DIR", Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`);
    const stage = startInitStage(root, "null", "piped");
    try {
      // the stage waits on its FIFO for a spec that never comes: its environment is final by now
      const environ = Deno.readTextFileSync(`/proc/${stage.child.pid}/environ`).split("\0");
      assert(!environ.some((v) => v.includes("s3cr3t-token")), environ.join(" "));
      assert(environ.includes("DENO_NO_UPDATE_CHECK=1"), environ.join(" "));
      assert(environ.includes(`DENO_DIR=${Deno.env.get("DENO_DIR")}`), environ.join(" "));
      assert(!environ.some((v) => v.startsWith("PATH=")), "no PATH: the stage looks nothing up by it");
    } finally {
      Deno.env.delete("AWS_SECRET_ACCESS_KEY_FOR_TEST");
      await abortInitStage(stage);
    }
  });
});
