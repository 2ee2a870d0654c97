// skiff network create|ls|inspect|rm|prune|connect|disconnect: docker's network commands for bridge
// networks.

import { SkiffError, UsageError } from "../errors.ts";
import { compileListFormat } from "../format/list.ts";
import { labelMatches } from "../format/filters.ts";
import { goStruct, inspectTemplate } from "../format/template.ts";
import { renderInspect } from "../format/inspect_output.ts";
import {
  createNetwork,
  findNetwork,
  inspectNetwork,
  listNetworks,
  networkPruneFilter,
  type NetworkView,
  pruneNetworks,
  removeNetwork,
} from "../network/networks.ts";
import { connectContainer, disconnectContainer } from "../network/connect.ts";
import { aliasProblem, requestedIp } from "../network/mode.ts";
import { bool, invalidValue, list, parseArgs, type Parsed, requireArgs, str } from "./args.ts";
import type { CliContext, Verb } from "./context.ts";
import { confirm } from "./volume.ts";

const USAGE = `Usage:  skiff network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks`;

const network: Verb = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create":
      return create(rest, ctx);
    case "ls":
    case "list":
      return await ls(rest, ctx);
    case "inspect":
      return await inspect(rest, ctx);
    case "rm":
    case "remove":
      return await rm(rest, ctx);
    case "prune":
      return await prune(rest, ctx);
    case "connect":
      return connect(rest, ctx);
    case "disconnect":
      return disconnect(rest, ctx);
    case undefined:
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(`'network ${sub}' is not a skiff command. See 'skiff network --help'`);
  }
};
export default network;

function keyValues(entries: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const eq = e.indexOf("=");
    const key = eq === -1 ? e : e.slice(0, eq);
    if (!key) throw new SkiffError(`invalid ${what} '${e}': empty name`);
    out[key] = eq === -1 ? "" : e.slice(eq + 1);
  }
  return out;
}

function connect(args: string[], ctx: CliContext): number {
  const p = parseArgs(args, {
    verb: "network connect",
    options: [
      { name: "ip", kind: "string" },
      { name: "alias", kind: "list" },
      { name: "ip6", kind: "string" },
      { name: "link", kind: "list" },
      { name: "link-local-ip", kind: "list" },
      { name: "driver-opt", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff network connect [OPTIONS] NETWORK CONTAINER\n\nConnect a container to a network\n\nOptions:\n      --alias strings   Add network-scoped alias for the container\n      --ip string       IPv4 address (e.g., 172.30.100.104)",
    );
    return 0;
  }
  requireArgs(p, "network connect", 2, 2);
  for (const unsupported of ["ip6", "link", "link-local-ip", "driver-opt"]) {
    const v = p.options[unsupported];
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) {
      throw new SkiffError(`--${unsupported} is not supported by skiff`, 1, { kind: "invalid-argument" });
    }
  }
  const aliases = list(p, "alias");
  for (const alias of aliases) {
    const why = aliasProblem(alias);
    if (why) throw invalidValue("network connect", JSON.stringify(alias).slice(1, -1), "--alias", why);
  }
  connectContainer(ctx.root, p.positionals[0], p.positionals[1], {
    ip: requestedIp(str(p, "ip")),
    aliases,
  });
  return 0;
}

function disconnect(args: string[], ctx: CliContext): number {
  const p = parseArgs(args, {
    verb: "network disconnect",
    options: [{ name: "force", short: "f", kind: "bool" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff network disconnect [OPTIONS] NETWORK CONTAINER\n\nDisconnect a container from a network\n\nOptions:\n  -f, --force   Force the container to disconnect from a network",
    );
    return 0;
  }
  requireArgs(p, "network disconnect", 2, 2);
  disconnectContainer(ctx.root, p.positionals[0], p.positionals[1], bool(p, "force"));
  return 0;
}

function create(args: string[], ctx: CliContext): number {
  const p = parseArgs(args, {
    verb: "network create",
    options: [
      { name: "driver", short: "d", kind: "string" },
      { name: "subnet", kind: "list" },
      { name: "gateway", kind: "list" },
      { name: "internal", kind: "bool" },
      { name: "label", kind: "list" },
      { name: "opt", short: "o", kind: "list" },
      { name: "attachable", kind: "bool" },
      { name: "ipam-driver", kind: "string" },
      { name: "scope", kind: "string" },
      { name: "ingress", kind: "bool" },
      { name: "config-only", kind: "bool" },
      { name: "config-from", kind: "string" },
      { name: "ipv6", kind: "bool" },
      { name: "ip-range", kind: "list" },
      { name: "aux-address", kind: "list" },
      { name: "ipam-opt", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      'Usage:  skiff network create [OPTIONS] NETWORK\n\nCreate a network\n\nOptions:\n      --attachable         Enable manual container attachment\n  -d, --driver string      Driver to manage the Network (default "bridge")\n      --gateway strings    IPv4 Gateway for the master subnet\n      --internal           Restrict external access to the network\n      --ipam-driver string IP Address Management Driver (default "default")\n      --label list         Set metadata on a network\n  -o, --opt map            Set driver specific options (default map[])\n      --scope string       Control the network scope (local)\n      --subnet strings     Subnet in CIDR format that represents a network segment',
    );
    return 0;
  }
  requireArgs(p, "network create", 1, 1);
  const driver = str(p, "driver") ?? "bridge";
  if (driver !== "bridge") throw new SkiffError(`plugin "${driver}" not found`, 1, { kind: "not-found" });
  refuseUnsupportedNetworkFlags(p);
  const subnets = list(p, "subnet"), gateways = list(p, "gateway");
  if (subnets.length > 1 || gateways.length > 1) {
    throw new SkiffError("skiff networks take one --subnet and one --gateway", 1);
  }
  const id = createNetwork(ctx.root, {
    name: p.positionals[0],
    subnet: subnets[0],
    gateway: gateways[0],
    internal: bool(p, "internal"),
    attachable: bool(p, "attachable"),
    labels: keyValues(list(p, "label"), "label"),
    options: keyValues(list(p, "opt"), "option"),
  });
  console.log(id);
  return 0;
}

/**
 * network create's flags for what a local bridge here cannot be: docker's daemon words where it has
 * them (another IPAM driver, a swarm scope, ingress), else one clear line; exit 1, nothing made.
 */
function refuseUnsupportedNetworkFlags(p: Parsed): void {
  const ipam = str(p, "ipam-driver");
  if (ipam !== undefined && ipam !== "default") {
    throw new SkiffError(`plugin "${ipam}" not found`, 1, { kind: "not-found" });
  }
  const scope = str(p, "scope");
  if (scope === "swarm" || scope === "global") {
    throw new SkiffError("cannot create a swarm scoped network when swarm is not active", 1);
  }
  if (scope !== undefined && scope !== "" && scope !== "local") {
    throw new SkiffError(`invalid scope "${scope}": a skiff network is local`, 1);
  }
  if (bool(p, "ingress")) throw new SkiffError("Ingress network can only be global scope network", 1);
  for (const flag of ["config-only", "ipv6"]) {
    if (bool(p, flag)) throw new SkiffError(`--${flag} is not supported by skiff's networks`, 1);
  }
  const given = [
    ...(str(p, "config-from") !== undefined ? ["config-from"] : []),
    ...["ip-range", "aux-address", "ipam-opt"].filter((flag) => list(p, flag).length),
  ];
  if (given.length) throw new SkiffError(`--${given[0]} is not supported by skiff's networks`, 1);
}

/** docker's network filters: name (substring), id (prefix), driver, label, type (custom|builtin). */
function networkFilter(filters: string[]): (n: NetworkView) => boolean {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf("=");
    if (eq === -1) throw new SkiffError(`invalid filter '${f}'`);
    const key = f.slice(0, eq);
    if (!["name", "id", "driver", "label", "type", "scope"].includes(key)) {
      throw new SkiffError(`invalid filter '${key}'`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), f.slice(eq + 1)]);
  }
  for (const t of byKey.get("type") ?? []) {
    if (t !== "custom" && t !== "builtin") throw new SkiffError(`invalid filter: 'type'='${t}'`);
  }
  // values of one key: any may match; different keys: all must
  const any = (key: string, test: (v: string) => boolean) => {
    const values = byKey.get(key);
    return !values || values.some(test);
  };
  return (n) =>
    any("name", (v) => n.Name.includes(v)) && any("id", (v) => n.Id.startsWith(v)) &&
    any("driver", (v) => n.Driver === v) && any("scope", (v) => v === n.Scope) &&
    any("type", (v) => (v === "builtin") === n.builtin) &&
    (byKey.get("label") ?? []).every((v) => labelMatches(n.Labels, v));
}

async function ls(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "network ls",
    options: [
      { name: "quiet", short: "q", kind: "bool" },
      { name: "filter", short: "f", kind: "list" },
      { name: "format", kind: "string" },
      { name: "no-trunc", kind: "bool" },
    ],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff network ls [OPTIONS]\n\nList networks\n\nOptions:\n  -f, --filter filter   Provide filter values (e.g. 'driver=bridge')\n      --format string   Pretty-print networks using a Go template\n      --no-trunc        Do not truncate the output\n  -q, --quiet           Only display network IDs",
    );
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff network ls" accepts no arguments.`, "network ls", true);
  }
  const keep = networkFilter(list(p, "filter"));
  const networks = (await listNetworks(ctx.root)).filter(keep)
    .sort((a, b) => a.Name.localeCompare(b.Name));
  const id = (n: NetworkView) => (bool(p, "no-trunc") ? n.Id : n.Id.slice(0, 12));
  if (bool(p, "quiet")) {
    for (const n of networks) console.log(id(n));
    return 0;
  }
  const format = compileListFormat(
    str(p, "format") ?? "",
    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
  );
  const rows = networks.map((n) =>
    goStruct("*network.networkContext", {
      ID: id(n),
      Name: n.Name,
      Driver: n.Driver,
      Scope: n.Scope,
      IPv4: "true",
      IPv6: "false",
      Internal: String(n.Internal),
      CreatedAt: n.Created,
      Labels: Object.entries(n.Labels).map(([k, v]) => `${k}=${v}`).join(","),
      Label: (name: string) => n.Labels[name] ?? "",
    })
  );
  const header = {
    ID: "NETWORK ID",
    Name: "NAME",
    Driver: "DRIVER",
    Scope: "SCOPE",
    IPv4: "IPV4",
    IPv6: "IPV6",
    Internal: "INTERNAL",
    CreatedAt: "CREATED",
    Labels: "LABELS",
    Label: () => "LABEL",
  };
  Deno.stdout.writeSync(new TextEncoder().encode(format.render(rows, header)));
  return 0;
}

async function inspect(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "network inspect",
    options: [{ name: "format", short: "f", kind: "string" }, { name: "verbose", short: "v", kind: "bool" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff network inspect [OPTIONS] NETWORK [NETWORK...]\n\nDisplay detailed information on one or more networks\n\nOptions:\n  -f, --format string   Format the output using the given Go template\n  -v, --verbose         Verbose output for diagnostics",
    );
    return 0;
  }
  requireArgs(p, "network inspect", 1);
  const format = str(p, "format") ?? "";
  const template = format === "" || format === "json" ? undefined : inspectTemplate(format);
  const found: Record<string, unknown>[] = [];
  const errors: string[] = [];
  for (const ref of p.positionals) {
    try {
      found.push(inspectNetwork(ctx.root, await findNetwork(ctx.root, ref)));
    } catch {
      errors.push(`Error: No such network: ${ref}`);
    }
  }
  const out = renderInspect(found, format, template, errors);
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  for (const e of errors) console.error(e);
  return errors.length ? 1 : 0;
}

async function rm(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "network rm",
    options: [{ name: "force", short: "f", kind: "bool" }],
  });
  if (bool(p, "help")) {
    console.log("Usage:  skiff network rm NETWORK [NETWORK...]\n\nRemove one or more networks");
    return 0;
  }
  requireArgs(p, "network rm", 1);
  let failed = false;
  for (const ref of p.positionals) {
    try {
      await removeNetwork(ctx.root, ref);
      console.log(ref);
    } catch (e) {
      if (bool(p, "force") && (e as SkiffError).kind === "not-found") continue;
      failed = true;
      const message = (e as SkiffError).kind === "not-found"
        ? `No such network: ${ref}`
        : (e as Error).message;
      console.error(`skiff: ${message}`);
    }
  }
  return failed ? 1 : 0;
}

async function prune(args: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(args, {
    verb: "network prune",
    options: [{ name: "force", short: "f", kind: "bool" }, { name: "filter", kind: "list" }],
  });
  if (bool(p, "help")) {
    console.log(
      "Usage:  skiff network prune [OPTIONS]\n\nRemove all unused networks\n\nOptions:\n      --filter filter   Provide filter values (e.g. 'until=<timestamp>')\n  -f, --force           Do not prompt for confirmation",
    );
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff network prune" accepts no arguments.`, "network prune", true);
  }
  const keep = networkPruneFilter(list(p, "filter"));
  if (
    !bool(p, "force") &&
    !confirm(
      "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
    )
  ) {
    return 0;
  }
  const removed = await pruneNetworks(ctx.root, keep);
  if (removed.length) console.log(`Deleted Networks:\n${removed.join("\n")}\n`);
  return 0;
}
