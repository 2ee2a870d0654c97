// `top`: the container's processes as `ps` shows them. As docker does, the host's ps runs with the
// given options (default -ef) and only the rows of the container's pids (from its cgroup) are kept.
// Without a ps binary, a -ef style listing is built from /proc.

import { openCgroup } from "../cgroups/mod.ts";
import { SkiffError } from "../errors.ts";
import type { StateRoot } from "../state/root.ts";
import { isRunning, lookupContainer } from "../state/reconcile.ts";

export interface TopResult {
  titles: string[];
  processes: string[][];
}

/** Splits a ps line into `columns` fields; the last one keeps its spaces (the command line). */
function splitRow(line: string, columns: number): string[] {
  const fields: string[] = [];
  let rest = line.trim();
  while (fields.length < columns - 1 && rest) {
    const m = /^(\S+)\s*/.exec(rest)!;
    fields.push(m[1]);
    rest = rest.slice(m[0].length);
  }
  if (rest || fields.length < columns) fields.push(rest);
  return fields;
}

export async function topContainer(root: StateRoot, ref: string, psArgs: string[]): Promise<TopResult> {
  const record = lookupContainer(root, ref);
  if (!isRunning(record)) throw new SkiffError(`Container ${record.Id} is not running`, 1);
  const pids = new Set(openCgroup(root, record.Id, record.HostConfig).pids());
  if (pids.size === 0 && record.State.Pid) pids.add(record.State.Pid);
  const args = psArgs.length ? psArgs : ["-ef"];
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ps", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && psArgs.length === 0) return procListing(pids);
    throw new SkiffError(`Error running ps: ${(e as Error).message}`, 1);
  }
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new SkiffError(
      `ps: ${new TextDecoder().decode(output.stderr).trim() || `exit status ${output.code}`}`,
      1,
    );
  }
  const lines = text.split("\n").filter((l) => l.trim());
  const titles = (lines[0] ?? "").trim().split(/\s+/);
  const pidColumn = titles.indexOf("PID");
  if (pidColumn === -1) throw new SkiffError(`Couldn't find PID field in ps output`, 1);
  const processes = lines.slice(1).map((l) => splitRow(l, titles.length))
    .filter((fields) => pids.has(Number(fields[pidColumn])));
  return { titles, processes };
}

/** UID PID PPID C STIME TTY TIME CMD from /proc, for hosts without ps. */
function procListing(pids: Set<number>): TopResult {
  const ticks = 100;
  const bootSeconds = Date.now() / 1000 - Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  const processes: string[][] = [];
  for (const pid of [...pids].sort((a, b) => a - b)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? "0";
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean).join(" ");
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticks;
      const started = new Date((bootSeconds + Number(fields[19]) / ticks) * 1000);
      const p2 = (n: number) => String(n).padStart(2, "0");
      const time = `${p2(Math.floor(cpuSeconds / 3600))}:${p2(Math.floor(cpuSeconds / 60) % 60)}:${
        p2(Math.floor(cpuSeconds) % 60)
      }`;
      processes.push([
        uid === "0" ? "root" : uid,
        String(pid),
        fields[1],
        "0",
        `${p2(started.getHours())}:${p2(started.getMinutes())}`,
        "?",
        time,
        cmdline || `[${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}]`,
      ]);
    } catch { /* exited meanwhile */ }
  }
  return { titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], processes };
}
