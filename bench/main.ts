// `deno task bench`: every skiff benchmark in one run, side by side with the peer engines that are
// installed here (see bench/run_latency.ts), the memory each keeps per running container
// (bench/memory.ts), then bench/unpack.ts (layer unpack) and bench/pull.ts
// (image pull from a local registry), bench/exec.ts, bench/lifecycle.ts (detached containers) and
// bench/publish.ts (a published port's throughput) when present; those print their own tables.
//
//   deno task bench [--runs 20] [--warmup 3] [--no-hyperfine | --interleave] [--only skiff,runc,...]
//                   [--peers-up] [--peers-down] [--no-memory] [--no-unpack] [--no-pull] [--no-exec]
//                   [--no-lifecycle] [--no-publish] [--markdown FILE]
//
// --peers-up runs setup-peers.sh up first (installs and starts podman, dockerd, registry: slow the
// first time); --peers-down stops them afterwards so their bridges and cgroups do not linger.

import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { REPO } from "./lib.ts";
import { parseLatencyArgs, PEER_ENV_FILE, printRatios, runLatency } from "./run_latency.ts";
import { measureMemory, memoryMarkdown } from "./memory.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "peers-up": { type: "boolean", default: false },
    "peers-down": { type: "boolean", default: false },
    "no-unpack": { type: "boolean", default: false },
    "no-pull": { type: "boolean", default: false },
    "no-exec": { type: "boolean", default: false },
    "no-lifecycle": { type: "boolean", default: false },
    "no-publish": { type: "boolean", default: false },
    "no-memory": { type: "boolean", default: false },
    markdown: { type: "string" },
  },
  strict: false,
});

/** setup-peers.sh lives in the project's shared folder, beside the checkout (absent elsewhere). */
function peersScript(): string | undefined {
  const candidates = [
    Deno.env.get("SKIFF_PEERS_SCRIPT"),
    join(dirname(REPO), "shared/peers/setup-peers.sh"),
    "/work/shared/peers/setup-peers.sh",
  ];
  return candidates.find((p) => {
    try {
      return p !== undefined && Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

async function peers(action: "up" | "down"): Promise<void> {
  const script = peersScript();
  if (!script) {
    console.log(`peers ${action}: setup-peers.sh not found (set SKIFF_PEERS_SCRIPT); skipping`);
    return;
  }
  console.log(`peers ${action}: bash ${script} ${action}`);
  const out = await new Deno.Command("bash", { args: [script, action], stdin: "null" }).output();
  if (!out.success) console.log(`peers ${action}: exited ${out.code}`);
}

/** Runs a command with its output on our stdout as it comes, and returns that output too. */
async function runShowing(argv: string[]): Promise<{ code: number; stdout: string }> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  })
    .spawn();
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  return { code: (await child.status).code, stdout: text + decoder.decode() };
}

const sections: string[] = [];
let failed = false;
try {
  if (values["peers-up"]) await peers("up");
  else {
    try {
      Deno.statSync(PEER_ENV_FILE);
    } catch {
      console.log(`no ${PEER_ENV_FILE}: peers will be skipped (run with --peers-up to start them)`);
    }
  }

  console.log("\n## container start latency");
  const latency = await runLatency(parseLatencyArgs(Deno.args));
  printRatios(latency.timings);
  sections.push(`### Container start latency\n\n${latency.markdown}`);

  const asked = parseLatencyArgs(Deno.args).only;
  const only = asked.filter((n) => ["skiff", "podman", "docker"].includes(n));
  if (!values["no-memory"] && (asked.length === 0 || only.length > 0)) {
    console.log("\n## memory kept per running container (bench/memory.ts)");
    const figures = await measureMemory(only, 3);
    const markdown = memoryMarkdown(figures, 3);
    console.log(markdown);
    sections.push(`### Memory per running container\n\n${markdown}`);
  }

  // the other benchmarks are standalone scripts written alongside the code they measure
  const scripts = [
    ["unpack", "layer unpack"],
    ["pull", "image pull"],
    ["exec", "exec latency"],
    ["lifecycle", "detached containers"],
    ["publish", "published port throughput"],
  ];
  for (const [name, title] of scripts) {
    const script = join(REPO, `bench/${name}.ts`);
    if (values[`no-${name}`]) continue;
    if (!(await Deno.stat(script).catch(() => null))?.isFile) {
      console.log(`\nbench/${name}.ts not present: ${title} benchmark skipped`);
      continue;
    }
    console.log(`\n## ${title} (bench/${name}.ts)`);
    const { code, stdout } = await runShowing([Deno.execPath(), "run", "-A", script]);
    if (code !== 0) {
      console.log(`bench/${name}.ts exited ${code}`);
      failed = true;
    } else {
      sections.push(`### ${title[0].toUpperCase()}${title.slice(1)}\n\n\`\`\`\n${stdout.trim()}\n\`\`\``);
    }
  }
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  failed = true;
} finally {
  if (values["peers-down"]) await peers("down");
}

if (sections.length) {
  const markdown = sections.join("\n\n");
  console.log(`\n---- markdown for README.md ----\n\n${markdown}\n`);
  if (typeof values.markdown === "string") await Deno.writeTextFile(values.markdown, `${markdown}\n`);
}
Deno.exit(failed ? 1 : 0);
