// login/logout against a real registry: docker's config.json format, mode 0600, DOCKER_CONFIG,
// nothing saved on a refused login, credentials never printed.

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { withRoot } from "./helpers.ts";
import {
  buildImage,
  PASSWORD,
  type RegistryMode,
  skopeoPush,
  USER,
  withDockerConfig,
  withRegistry,
} from "./registry_harness.ts";

const configOf = (dir: string) => JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));

for (const mode of ["basic", "token"] as RegistryMode[]) {
  Deno.test(`login (${mode}): wrong credentials refused, right ones saved, logout removes`, async () => {
    await withRegistry(mode, async (registry) => {
      await withDockerConfig(async (env, dir) => {
        await withRoot(async (root) => {
          const wrong = await root.skiff(["login", "-u", USER, "--password-stdin", registry.host], {
            env,
            stdin: "not-the-password\n",
          });
          strictEqual(wrong.code, 1);
          match(wrong.stderr, /unauthorized: incorrect username or password/);
          ok(!wrong.stderr.includes("not-the-password") && !wrong.stdout.includes("not-the-password"));
          strictEqual(wrong.stderr.trim().split("\n").length, 1);
          ok(!Deno.readDirSync(dir).some((e) => e.name === "config.json"), "nothing saved");

          const good = await root.skiff(["login", "-u", USER, "--password-stdin", registry.host], {
            env,
            stdin: `${PASSWORD}\n`,
          });
          strictEqual(good.code, 0, good.stderr);
          strictEqual(good.stdout, "Login Succeeded\n");
          ok(!good.stdout.includes(PASSWORD) && !good.stderr.includes(PASSWORD));
          const config = configOf(dir);
          deepStrictEqual(config, { auths: { [registry.host]: { auth: btoa(`${USER}:${PASSWORD}`) } } });
          strictEqual(Deno.statSync(join(dir, "config.json")).mode! & 0o777, 0o600);

          // other settings in the file survive a logout
          Deno.writeTextFileSync(
            join(dir, "config.json"),
            JSON.stringify({ ...config, detachKeys: "ctrl-x" }),
          );
          const out = await root.skiff(["logout", registry.host], { env });
          strictEqual(out.code, 0);
          strictEqual(out.stdout, `Removing login credentials for ${registry.host}\n`);
          deepStrictEqual(configOf(dir), { auths: {}, detachKeys: "ctrl-x" });
          const again = await root.skiff(["logout", registry.host], { env });
          strictEqual(again.stdout, `Not logged in to ${registry.host}\n`);
        });
      });
    });
  });
}

Deno.test("login: argument errors", async () => {
  await withDockerConfig(async (env, dir) => {
    await withRoot(async (root) => {
      const noUser = await root.skiff(["login", "--password-stdin", "127.0.0.1:1"], { env, stdin: "x" });
      strictEqual(noUser.code, 125);
      match(noUser.stderr, /Must provide --username with --password-stdin/);
      const both = await root.skiff(["login", "-u", "a", "-p", "b", "--password-stdin", "127.0.0.1:1"], {
        env,
        stdin: "x",
      });
      strictEqual(both.code, 125);
      match(both.stderr, /--password and --password-stdin are mutually exclusive/);
      const noTty = await root.skiff(["login", "127.0.0.1:1"], { env });
      strictEqual(noTty.code, 1);
      match(noTty.stderr, /Cannot perform an interactive login from a non TTY device/);
      // a registry that is not there: a clear error, nothing saved
      const down = await root.skiff(["login", "-u", "a", "-p", "secret-b", "127.0.0.1:1"], { env });
      strictEqual(down.code, 1);
      match(down.stderr, /cannot reach registry 127\.0\.0\.1:1/);
      ok(!down.stderr.includes("secret-b"));
      deepStrictEqual([...Deno.readDirSync(dir)], []);
    });
  });
});

Deno.test("login: Docker Hub is the default server and its key is docker's", async () => {
  await withDockerConfig(async (env, dir) => {
    await withRoot(async (root) => {
      Deno.writeTextFileSync(
        join(dir, "config.json"),
        JSON.stringify({ auths: { "https://index.docker.io/v1/": { auth: btoa("u:p") } } }),
      );
      const out = await root.skiff(["logout"], { env });
      strictEqual(out.stdout, "Removing login credentials for https://index.docker.io/v1/\n");
      deepStrictEqual(configOf(dir), { auths: {} });
    });
  });
});

Deno.test("login: a docker-credential helper named in config.json keeps the secret", async () => {
  await withRegistry("basic", async (registry) => {
    await withDockerConfig(async (env, dir) => {
      // a fake helper speaking docker's protocol, storing one JSON file per server
      const bin = join(dir, "bin");
      const store = join(dir, "store");
      Deno.mkdirSync(bin);
      Deno.mkdirSync(store);
      Deno.writeTextFileSync(
        join(bin, "docker-credential-fake"),
        `#!/bin/sh
set -e
key() { printf %s "$1" | sha256sum | cut -c1-16; }
case "$1" in
  store) json=$(cat); url=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
         printf %s "$json" > "${store}/$(key "$url")" ;;
  get) url=$(cat); f="${store}/$(key "$url")"
       if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) url=$(cat); rm -f "${store}/$(key "$url")" ;;
esac
`,
      );
      Deno.chmodSync(join(bin, "docker-credential-fake"), 0o755);
      Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify({ credsStore: "fake" }));
      const helperEnv = { ...env, PATH: `${bin}:${Deno.env.get("PATH")}` };
      const img = await buildImage({ name: "helper" });
      try {
        await skopeoPush(registry, img.layout, "viahelper:1");
        await withRoot(async (root) => {
          const login = await root.skiff(["login", "-u", USER, "--password-stdin", registry.host], {
            env: helperEnv,
            stdin: PASSWORD,
          });
          strictEqual(login.code, 0, login.stderr);
          strictEqual(login.stderr, "", "no plain-text warning with a helper");
          deepStrictEqual(configOf(dir), { credsStore: "fake", auths: { [registry.host]: {} } });
          ok(!Deno.readTextFileSync(join(dir, "config.json")).includes(PASSWORD));
          strictEqual([...Deno.readDirSync(store)].length, 1);
          // pull reads the credentials back through the helper
          const pull = await root.skiff(["pull", "-q", `${registry.host}/viahelper:1`], { env: helperEnv });
          strictEqual(pull.code, 0, pull.stderr);
          const logout = await root.skiff(["logout", registry.host], { env: helperEnv });
          strictEqual(logout.stdout, `Removing login credentials for ${registry.host}\n`);
          strictEqual([...Deno.readDirSync(store)].length, 0);
          // a helper that is not installed: a clear error
          const missing = await root.skiff(["pull", "-q", `${registry.host}/viahelper:1`], { env });
          strictEqual(missing.code, 1);
          match(missing.stderr, /docker-credential-fake": executable file not found/);
        });
      } finally {
        await Deno.remove(img.dir, { recursive: true });
      }
    });
  });
});
