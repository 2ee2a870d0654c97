// skiff volume create|ls|inspect|rm|prune: docker's volume commands for the "local" driver.

import { SkiffError, UsageError } from "../errors.ts";
import { compileListFormat } from "../format/list.ts";
import { labelMatches } from "../format/filters.ts";
import { humanSize } from "../format/human.ts";
import { goStruct, inspectTemplate } from "../format/template.ts";
import { renderInspect } from "../format/inspect_output.ts";
import {
  createVolume,
  getVolume,
  listVolumes,
  pruneVolumes,
  removeVolume,
  type VolumeRecord,
  volumeUsers,
} from "../volume/store.ts";
import { listContainers } from "../state/containers.ts";
import { bool, list, parseArgs, requireArgs, str } from "./args.ts";
import type { CliContext, Verb } from "./context.ts";

const USAGE = `Usage:  skiff volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove unused local volumes
  rm          Remove one or more volumes`;

const volume: Verb = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create":
      return await create(rest, ctx);
    case "ls":
    case "list":
      return ls(rest, ctx);
    case "inspect":
      return inspect(rest, ctx);
    case "rm":
    case "remove":
      return await rm(rest, ctx);
    case "prune":
      return await prune(rest, ctx);
    case undefined:
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(`'volume ${sub}' is not a skiff command. See 'skiff volume --help'`);
  }
};
export default volume;

function labelMap(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const eq = e.indexOf("=");
    const key = eq === -1 ? e : e.slice(0, eq);
    if (!key) throw new SkiffError(`invalid label '${e}': empty name`);
    out[key] = eq === -1 ? "" : e.slice(eq + 1);
  }
  return out;
}

async function create(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "volume create",
    options: [
      { name: "label", kind: "list" },
      { name: "name", kind: "string" },
      { name: "driver", short: "d", kind: "string" },
      { name: "opt", short: "o", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      'Usage:  skiff volume create [OPTIONS] [VOLUME]\n\nCreate a volume\n\nOptions:\n  -d, --driver string   Specify volume driver name (default "local")\n      --label list      Set metadata for a volume\n  -o, --opt map         Set driver specific options (default map[])',
    );
    return 0;
  }
  requireArgs(p, "volume create", 0, 1);
  const flagName = str(p, "name");
  if (flagName !== undefined && p.positionals.length && p.positionals[0] !== flagName) {
    throw new UsageError(
      `conflicting options: either specify --name or provide positional arg, not both`,
      "volume create",
    );
  }
  const driver = str(p, "driver") ?? "local";
  if (driver !== "local") throw new SkiffError(`error looking up volume plugin ${driver}: plugin not found`);
  if (list(p, "opt").length) throw new SkiffError("volume options (-o) are not supported by skiff");
  const v = await createVolume(ctx.root, p.positionals[0] ?? flagName, labelMap(list(p, "label")));
  console.log(v.Name);
  return 0;
}

/** docker's volume filters: dangling, name (substring), label (key or key=value), driver. */
function volumeFilter(ctx: CliContext, filters: string[]): (v: VolumeRecord) => boolean {
  const checks: ((v: VolumeRecord) => boolean)[] = [];
  let containers: ReturnType<typeof listContainers> | undefined;
  for (const f of filters) {
    const eq = f.indexOf("=");
    if (eq === -1) throw new SkiffError(`invalid filter '${f}'`);
    const key = f.slice(0, eq), value = f.slice(eq + 1);
    switch (key) {
      case "dangling": {
        if (!["true", "false", "1", "0"].includes(value)) {
          throw new SkiffError(`invalid filter 'dangling=${value}'`);
        }
        const want = value === "true" || value === "1";
        checks.push((v) => {
          containers ??= listContainers(ctx.root);
          return (volumeUsers(ctx.root, v.Name, containers).length === 0) === want;
        });
        break;
      }
      case "name":
        checks.push((v) => v.Name.includes(value));
        break;
      case "label":
        checks.push((v) => labelMatches(v.Labels, value));
        break;
      case "driver":
        checks.push((v) => v.Driver === value);
        break;
      default:
        throw new SkiffError(`invalid filter '${key}'`);
    }
  }
  return (v) => checks.every((c) => c(v));
}

function ls(args: string[], ctx: CliContext): number {
  const p = parseArgs(args, {
    verb: "volume ls",
    options: [
      { name: "quiet", short: "q", kind: "bool" },
      { name: "filter", short: "f", kind: "list" },
      { name: "format", kind: "string" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff volume ls [OPTIONS]\n\nList volumes\n\nOptions:\n  -f, --filter filter   Provide filter values (e.g. 'dangling=true')\n      --format string   Pretty-print volumes using a Go template\n  -q, --quiet           Only display volume names",
    );
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff volume ls" accepts no arguments.`, "volume ls", true);
  }
  const format = bool(p, "quiet")
    ? undefined
    : compileListFormat(str(p, "format") ?? "", "table {{.Driver}}\t{{.Name}}");
  const keep = volumeFilter(ctx, list(p, "filter"));
  const volumes = listVolumes(ctx.root).filter(keep);
  if (!format) {
    for (const v of volumes) console.log(v.Name);
    return 0;
  }
  const containers = listContainers(ctx.root);
  // docker's row type: a field it lacks is a template error (exit 1), not "<no value>"
  const rows = volumes.map((v) =>
    goStruct("*formatter.volumeContext", {
      Driver: v.Driver,
      Name: v.Name,
      Mountpoint: v.Mountpoint,
      Scope: v.Scope,
      CreatedAt: v.CreatedAt,
      Labels: Object.entries(v.Labels ?? {}).map(([k, val]) => `${k}=${val}`).join(","),
      Label: (name: string) => v.Labels?.[name] ?? "",
      Links: String(volumeUsers(ctx.root, v.Name, containers).length),
      Size: "N/A",
      Availability: "N/A",
      Group: "N/A",
      Status: "N/A",
    })
  );
  const header = {
    Driver: "DRIVER",
    Name: "VOLUME NAME",
    Mountpoint: "MOUNTPOINT",
    Scope: "SCOPE",
    CreatedAt: "CREATED",
    Labels: "LABELS",
    Label: () => "LABEL",
    Links: "LINKS",
    Size: "SIZE",
    Availability: "AVAILABILITY",
    Group: "GROUP",
    Status: "STATUS",
  };
  Deno.stdout.writeSync(new TextEncoder().encode(format.render(rows, header)));
  return 0;
}

function inspect(args: string[], ctx: CliContext): number {
  const p = parseArgs(args, {
    verb: "volume inspect",
    options: [{ name: "format", short: "f", kind: "string" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff volume inspect [OPTIONS] VOLUME [VOLUME...]\n\nDisplay detailed information on one or more volumes\n\nOptions:\n  -f, --format string   Format the output using the given Go template",
    );
    return 0;
  }
  requireArgs(p, "volume inspect", 1);
  const format = str(p, "format") ?? "";
  const template = format === "" || format === "json" ? undefined : inspectTemplate(format);
  const found: VolumeRecord[] = [];
  const errors: string[] = [];
  for (const name of p.positionals) {
    const v = getVolume(ctx.root, name);
    if (v) found.push(v);
    else errors.push(`Error: No such volume: ${name}`);
  }
  const out = renderInspect(found, format, template, errors, true);
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  for (const e of errors) console.error(e);
  return errors.length ? 1 : 0;
}

async function rm(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "volume rm",
    options: [{ name: "force", short: "f", kind: "bool" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff volume rm [OPTIONS] VOLUME [VOLUME...]\n\nRemove one or more volumes\n\nOptions:\n  -f, --force   Force the removal of one or more volumes",
    );
    return 0;
  }
  requireArgs(p, "volume rm", 1);
  let failed = false;
  for (const name of p.positionals) {
    try {
      await removeVolume(ctx.root, name, bool(p, "force"));
      console.log(name);
    } catch (e) {
      failed = true;
      console.error(`skiff: ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}

/** docker's y/N prompt; anything but y/Y (or no terminal input at all) is a no. */
/** volume prune's --filter: label=, label!= and all= (docker's words for another key). */
export function volumePruneFilters(
  filters: string[],
): { all: boolean; labels: ((v: VolumeRecord) => boolean)[] } {
  let all = false;
  const labels: ((v: VolumeRecord) => boolean)[] = [];
  for (const f of filters) {
    if (f === "all=true" || f === "all=1") all = true;
    else if (f.startsWith("label=") || f.startsWith("label!=")) {
      const negate = f.startsWith("label!=");
      const value = f.slice(negate ? 7 : 6);
      const has = (v: VolumeRecord) => labelMatches(v.Labels, value);
      labels.push(negate ? (v) => !has(v) : has);
    } else throw new SkiffError(`invalid filter '${f.split("=")[0]}'`);
  }
  return { all, labels };
}

export function confirm(question: string): boolean {
  Deno.stdout.writeSync(new TextEncoder().encode(`${question} [y/N] `));
  const buf = new Uint8Array(64);
  let n: number | null = null;
  try {
    n = Deno.stdin.readSync(buf);
  } catch { /* no stdin */ }
  const answer = n ? new TextDecoder().decode(buf.subarray(0, n)).trim() : "";
  return answer === "y" || answer === "Y";
}

async function prune(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "volume prune",
    options: [
      { name: "force", short: "f", kind: "bool" },
      { name: "all", short: "a", kind: "bool" },
      { name: "filter", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff volume prune [OPTIONS]\n\nRemove unused local volumes\n\nOptions:\n  -a, --all             Remove all unused volumes, not just anonymous ones\n      --filter filter   Provide filter values (e.g. 'label=<label>')\n  -f, --force           Do not prompt for confirmation",
    );
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff volume prune" accepts no arguments.`, "volume prune", true);
  }
  const filters = volumePruneFilters(list(p, "filter"));
  const all = bool(p, "all") || filters.all, labels = filters.labels;
  if (!bool(p, "force")) {
    const what = all ? "all local volumes" : "anonymous local volumes";
    if (
      !confirm(
        `WARNING! This will remove ${what} not used by at least one container.\nAre you sure you want to continue?`,
      )
    ) {
      return 0;
    }
  }
  const result = await pruneVolumes(ctx.root, { all, labels });
  let out = "";
  if (result.deleted.length) out += `Deleted Volumes:\n${result.deleted.join("\n")}\n\n`;
  out += `Total reclaimed space: ${humanSize(result.reclaimed, 4)}\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
}
