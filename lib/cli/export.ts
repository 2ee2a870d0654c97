// skiff export [-o FILE] CONTAINER: the container's filesystem as a tar archive.

import { dirname, resolve } from "node:path";
import { NotFoundError, SkiffError } from "../errors.ts";
import { exportContainer } from "../container/export.ts";
import { lookupContainer } from "../state/reconcile.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import type { Verb } from "./context.ts";

function writeAllTo(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
}

const exportVerb: Verb = (args, ctx) => {
  const p = parseArgs(args, { verb: "export", options: [{ name: "output", short: "o", kind: "string" }] });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff export [OPTIONS] CONTAINER\n\nExport a container's filesystem as a tar archive\n\n" +
        "Options:\n  -o, --output string   Write to a file, instead of STDOUT",
    );
    return Promise.resolve(0);
  }
  requireArgs(p, "export", 1, 1);
  const output = str(p, "output");
  if (output === undefined && Deno.stdout.isTerminal()) {
    throw new SkiffError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  let record;
  try {
    record = lookupContainer(ctx.root, p.positionals[0]);
  } catch (e) {
    if (e instanceof NotFoundError) throw new SkiffError(e.message, 1);
    throw e;
  }
  if (output === undefined) {
    try {
      exportContainer(ctx.root, record, (b) => writeAllTo(Deno.stdout, b));
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
    }
    return Promise.resolve(0);
  }
  // a temp file next to the target, renamed when complete: no half-written archive under its name
  const target = resolve(output);
  const tmp = `${dirname(target)}/.${target.split("/").at(-1)}.skiff-${Deno.pid}`;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    exportContainer(ctx.root, record, (b) => writeAllTo(file, b));
    file.close();
    Deno.renameSync(tmp, target);
  } catch (e) {
    try {
      file.close();
    } catch { /* closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
    throw e;
  }
  return Promise.resolve(0);
};
export default exportVerb;
