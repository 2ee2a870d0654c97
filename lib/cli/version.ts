import type { Verb } from "./context.ts";
import { VERSION } from "../version.ts";

const version: Verb = () => {
  console.log(`skiff version ${VERSION}\nDeno ${Deno.version.deno} (${Deno.build.target})`);
  return Promise.resolve(0);
};
export default version;
