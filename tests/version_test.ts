// `skiff version` in docker's shape: the Client/Server objects, --format templates (a missing field
// is docker's template error, exit 1), json, and the default text. Compared with docker's own
// `version --format` where a docker is installed (interop_test.ts covers the peers).

import assert from "node:assert/strict";
import { MAIN } from "./helpers.ts";

async function version(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", MAIN, "version", ...args] })
    .output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout), err: new TextDecoder().decode(o.stderr) };
}

Deno.test("version: docker's fields through --format, json, and the default text", async () => {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  const v = await version(
    "--format",
    "{{.Server.Version}}|{{.Client.Os}}/{{.Client.Arch}}|{{.Server.KernelVersion}}",
  );
  assert.equal(v.code, 0, v.err);
  assert.match(
    v.out.trim(),
    new RegExp(`^\\d+\\.\\d+\\.\\d+\\|linux/${arch}\\|${Deno.osRelease().replace(/[.+]/g, "\\$&")}$`),
  );
  const json = JSON.parse((await version("-f", "json")).out);
  assert.equal(json.Server.ApiVersion, json.Client.ApiVersion);
  assert.equal(json.Server.Components[0].Name, "Engine");
  const text = await version();
  assert.match(text.out, /^Client:\n Version: +\d+\.\d+\.\d+\n/);
  assert.match(text.out, /\nServer: .*\n Engine:\n {2}Version: /);
  // docker: template: ...: can't evaluate field Nope in type ..., exit 1
  const bad = await version("--format", "{{.Nope}}");
  assert.equal(bad.code, 1);
  assert.match(bad.err, /can't evaluate field Nope/);
  assert.equal(bad.out, "");
  const extra = await version("x");
  assert.equal(extra.code, 1); // docker's CLI: 1 for a wrong number of arguments
  assert.match(extra.err, /"skiff version" accepts no arguments/);
});
