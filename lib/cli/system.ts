// skiff system check|fsck [--repair]: verify the image store (blobs re-hashed, layers, images, tags).

import type { Verb } from "./context.ts";
import { bool, parseArgs } from "./args.ts";
import { UsageError } from "../errors.ts";
import { ImageStore } from "../image/store.ts";

const HELP = `Usage:  skiff system COMMAND

Manage skiff

Commands:
  check       Verify the state: re-hash every blob, check layers, images, tags, containers and volumes (alias: fsck)
`;

const CHECK_HELP = `Usage:  skiff system check [OPTIONS]

Verify the image store, the container and volume records. Prints one line per problem and exits 1
when there is any.

Aliases:
  skiff system check, skiff system fsck

Options:
      --repair   Remove corrupt blobs and layers, the images that depend on them and tags that
                 point nowhere (pull fetches them again); rebuild an unreadable repositories.json
                 from the image store and an unreadable volume record; remove containers whose
                 record is unreadable (their cgroups and mounts released first)
`;

const system: Verb = async (args, ctx) => {
  const sub = args[0];
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(HELP);
    return 0;
  }
  if (sub !== "check" && sub !== "fsck") {
    throw new UsageError(`unknown command "${sub}" for "skiff system"`, "system");
  }
  const p = parseArgs(args.slice(1), { verb: "system check", options: [{ name: "repair", kind: "bool" }] });
  if (bool(p, "help")) {
    console.log(CHECK_HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff system check" accepts no arguments.`, "system check", true);
  }
  const { checkStore } = await import("../image/fsck.ts");
  const { checkState } = await import("../engine/check.ts");
  const repair = bool(p, "repair");
  const result = await checkStore(new ImageStore(ctx.root), { repair });
  const state = await checkState(ctx.root, repair);
  let out = "";
  for (const problem of [...result.problems, ...state.problems]) {
    out += `${problem.kind} ${problem.subject}: ${problem.detail}\n`;
  }
  for (const line of [...result.repaired, ...state.repaired]) out += `${line}\n`;
  const c = { ...result.checked, ...state.checked };
  const n = result.problems.length + state.problems.length;
  out += `checked ${c.blobs} blobs, ${c.layers} layers, ${c.images} images, ${c.tags} tags, ` +
    `${c.containers} containers, ${c.volumes} volumes: ${
      n === 0 ? "no problems" : `${n} problem${n === 1 ? "" : "s"}${repair ? ", repaired" : ""}`
    }\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return n && !repair ? 1 : 0;
};
export default system;
