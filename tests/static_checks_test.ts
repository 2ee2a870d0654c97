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

/**
 * The project's own files ending in `suffix`, relative to the checkout: main.ts and what is under
 * its folders (not git's list: CI's machine need not have git), without installed or built ones.
 */
function projectFiles(suffix: string): string[] {
  const skip = new Set([".git", ".deno", "node_modules", "dist", ".bundle", "fixtures"]);
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(`${REPO}/${rel}`)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory && !skip.has(e.name)) walk(path);
      else if (e.isFile && e.name.endsWith(suffix)) out.push(path);
    }
  };
  walk("");
  return out.sort();
}

Deno.test("static: every module type-checks, deno lint and deno fmt --check are clean", async () => {
  const files = projectFiles(".ts");
  assert.ok(files.includes("main.ts") && files.some((f) => f.startsWith("lib/cli/")), "the project's files");
  // the tests are checked when they run
  const check = await deno(["check", "--quiet", ...files.filter((f) => !f.startsWith("tests/"))]);
  assert.equal(check.code, 0, check.output);
  const lint = await deno(["lint"]);
  assert.equal(lint.code, 0, lint.output);
  const docs = projectFiles(".md");
  const fmt = await deno(["fmt", "--check", ...files, ...docs]);
  assert.equal(fmt.code, 0, fmt.output);
});
