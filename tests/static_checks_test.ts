// The code as the brief asks it to be kept: every module type-checks (main.ts loads its verbs with
// dynamic imports, which `deno check main.ts` does not follow), `deno lint` and `deno fmt` are clean.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: REPO, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  return { code: out.code, output: text.decode(out.stdout) + text.decode(out.stderr) };
}

/** The files git tracks that match `pattern`. */
async function tracked(pattern: string): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", pattern],
    cwd: REPO,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

Deno.test("static: every module type-checks, deno lint and deno fmt --check are clean", async () => {
  const files = await tracked("*.ts");
  assert.ok(files.includes("main.ts") && files.some((f) => f.startsWith("lib/cli/")), "git ls-files");
  // the tests are checked when they run
  const check = await deno(["check", "--quiet", ...files.filter((f) => !f.startsWith("tests/"))]);
  assert.equal(check.code, 0, check.output);
  const lint = await deno(["lint"]);
  assert.equal(lint.code, 0, lint.output);
  const docs = (await tracked("*.md")).filter((f) => !f.startsWith("tests/fixtures/"));
  const fmt = await deno(["fmt", "--check", ...files, ...docs]);
  assert.equal(fmt.code, 0, fmt.output);
});
