// skiff login [-u USER] [-p PASS | --password-stdin] [SERVER]: checks the credentials against the
// registry, then stores them in docker's config.json ($DOCKER_CONFIG or ~/.docker), mode 0600.

import type { Verb } from "./context.ts";
import { bool, parseArgs, requireArgs, str } from "./args.ts";
import { SkiffError, UsageError } from "../errors.ts";
import { isatty } from "../../ffi/libc.ts";
import { dockerConfigPath, saveCredentials, usesCredentialHelper } from "../registry/auth.ts";
import { registrySettingsFromEnvironment } from "./registry_settings.ts";
import { serverDomain } from "../registry/reference.ts";

const HELP = `Usage:  skiff login [OPTIONS] [SERVER]

Log in to a registry.
If no server is specified, the default is defined by the daemon.

Options:
  -p, --password string   Password
      --password-stdin    Take the password from stdin
  -u, --username string   Username
`;

async function readAllStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) chunks.push(c);
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/** Reads a line from the terminal without echoing it. */
function readSecret(message: string): string {
  Deno.stdout.writeSync(new TextEncoder().encode(message));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(1);
    for (;;) {
      const n = Deno.stdin.readSync(buf);
      if (n === null || n === 0) break;
      const b = buf[0];
      if (b === 13 || b === 10) break;
      if (b === 3) throw new SkiffError("interrupted", 130);
      if (b === 127 || b === 8) bytes.pop();
      else bytes.push(b);
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stdout.writeSync(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

const login: Verb = async (args, ctx) => {
  const p = parseArgs(args, {
    verb: "login",
    options: [
      { name: "username", short: "u", kind: "string" },
      { name: "password", short: "p", kind: "string" },
      { name: "password-stdin", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(HELP);
    return 0;
  }
  requireArgs(p, "login", 0, 1);
  const domain = serverDomain(p.positionals[0]);
  let username = str(p, "username");
  let password = str(p, "password");
  const passwordStdin = bool(p, "password-stdin");
  if (password !== undefined && passwordStdin) {
    throw new UsageError("--password and --password-stdin are mutually exclusive", "login");
  }
  if (passwordStdin) {
    if (!username) throw new UsageError("Must provide --username with --password-stdin", "login");
    password = (await readAllStdin()).replace(/[\r\n]+$/, "");
  } else if (password !== undefined) {
    console.error("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
  }
  const tty = isatty(0);
  if (!username) {
    if (!tty) throw new SkiffError("Cannot perform an interactive login from a non TTY device", 1);
    username = (prompt("Username:") ?? "").trim();
  }
  if (!username) throw new SkiffError("Username: Must not be empty", 1);
  if (password === undefined) {
    if (!tty) throw new SkiffError("Cannot perform an interactive login from a non TTY device", 1);
    password = readSecret("Password: ");
  }
  if (!password) throw new SkiffError("Password: Must not be empty", 1);

  const { RegistryClient } = await import("../registry/client.ts");
  const settings = registrySettingsFromEnvironment(ctx.insecureRegistries);
  const client = new RegistryClient(domain, settings, { credentials: { username, password } });
  try {
    await client.verifyLogin();
  } catch (e) {
    // docker exits 1 for a refused login; the message never carries the credentials
    if (e instanceof SkiffError) throw new SkiffError(`login to ${client.host} failed: ${e.message}`, 1);
    throw e;
  } finally {
    client.close();
  }
  await saveCredentials(settings.dockerConfigDir, domain, { username, password });
  if (!usesCredentialHelper(settings.dockerConfigDir, domain)) {
    console.error(
      `WARNING! Your password will be stored unencrypted in ${dockerConfigPath(settings.dockerConfigDir)}.`,
    );
  }
  console.log("Login Succeeded");
  return 0;
};
export default login;
