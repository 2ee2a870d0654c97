// How skiff re-executes itself for its container-side stage: the compiled binary runs `skiff __init`,
// a source checkout runs `deno run -A --no-config main.ts __init` (no config: the init stage imports
// nothing from npm, and skipping the config saves ~30 ms of startup).

import { fileURLToPath as fromFileUrl } from "node:url";

export function selfCommand(args: string[]): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args };
  const mainPath = fromFileUrl(new URL("../../main.ts", import.meta.url));
  return { cmd: Deno.execPath(), args: ["run", "-A", "--no-config", mainPath, ...args] };
}
