// skiff logout [SERVER]: forgets the credentials stored for a registry.

import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs } from "./args.ts";
import { removeCredentials } from "../registry/auth.ts";
import { registrySettingsFromEnvironment } from "./registry_settings.ts";
import { credentialKey, serverDomain } from "../registry/reference.ts";

const HELP = `Usage:  skiff logout [SERVER]

Log out from a registry.
If no server is specified, the default is defined by the daemon.
`;

const logout: Verb = (args, ctx) => {
  const p = parseArgs(args, { verb: "logout", options: [] });
  if (bool(p, "help")) {
    console.log(HELP);
    return Promise.resolve(0);
  }
  requireArgs(p, "logout", 0, 1);
  const domain = serverDomain(p.positionals[0]);
  const shown = credentialKey(domain);
  if (!removeCredentials(registrySettingsFromEnvironment(ctx.insecureRegistries).dockerConfigDir, domain)) {
    console.log(`Not logged in to ${shown}`);
    return Promise.resolve(0);
  }
  console.log(`Removing login credentials for ${shown}`);
  return Promise.resolve(0);
};
export default logout;
