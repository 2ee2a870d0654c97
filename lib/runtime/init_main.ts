// Entry of the init stage in a source checkout (see self.ts): the same initMain that main.ts
// dispatches `skiff __init` to, without loading main.ts's CLI imports first.

import { initMain } from "./init.ts";

if (import.meta.main) initMain(Deno.args);
