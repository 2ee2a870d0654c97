// skiff top CONTAINER [ps OPTIONS]

import { topContainer } from "../container/top.ts";
import { alignTabs } from "../format/table.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import type { Verb } from "./context.ts";

const top: Verb = async (args, ctx) => {
  // everything after CONTAINER belongs to ps
  const p = parseArgs(args, { verb: "top", options: [], stopAtPositional: 1 });
  if (bool(p, "help")) {
    console.log("Usage:  skiff top CONTAINER [ps OPTIONS]\n\nDisplay the running processes of a container");
    return 0;
  }
  requireArgs(p, "top", 1);
  const [ref, ...psArgs] = p.positionals;
  const result = await topContainer(ctx.root, ref, psArgs);
  const text = [result.titles, ...result.processes].map((row) => row.join("\t")).join("\n") + "\n";
  // docker's top table: tabwriter minwidth 20, padding 3
  Deno.stdout.writeSync(new TextEncoder().encode(alignTabs(text, { minWidth: 20, padding: 3 })));
  return 0;
};
export default top;
