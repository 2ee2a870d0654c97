// skiff system check|fsck [--repair]: verify the image store (blobs re-hashed, layers, images, tags);
// skiff system df [-v] [--format]: docker's disk usage summary; skiff system prune [-a] [-f]
// [--volumes] [--filter]: docker's prunes in its order (containers, networks, volumes, images);
// `system info` is `info` (main.ts).

import type { Verb } from "./context.ts";
import { bool, list, parseArgs, str } from "./args.ts";
import { SkiffError, UsageError } from "../errors.ts";
import { ImageStore } from "../image/store.ts";

const HELP = `Usage:  skiff system COMMAND

Manage skiff

Commands:
  check       Verify the state: re-hash every blob, check layers, images, tags, containers and volumes (alias: fsck)
  df          Show skiff disk usage
  events      Get real time events from the server
  info        Display system-wide information
  prune       Remove unused data
`;

const CHECK_HELP = `Usage:  skiff system check [OPTIONS]

Verify the image store, the container and volume records. Prints one line per problem and exits 1
when there is any.

Aliases:
  skiff system check, skiff system fsck

Options:
      --repair   Remove corrupt blobs and layers, the images that depend on them and tags that
                 point nowhere (pull fetches them again); rebuild an unreadable repositories.json
                 from the image store and an unreadable volume record; remove containers whose
                 record is unreadable (their cgroups and mounts released first)
`;

const system: Verb = async (args, ctx) => {
  const sub = args[0];
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(HELP);
    return 0;
  }
  if (sub === "df") return await df(args.slice(1), ctx);
  if (sub === "prune") return await prune(args.slice(1), ctx);
  if (sub !== "check" && sub !== "fsck") {
    throw new UsageError(`unknown command "${sub}" for "skiff system"`, "system");
  }
  const p = parseArgs(args.slice(1), { verb: "system check", options: [{ name: "repair", kind: "bool" }] });
  if (bool(p, "help")) {
    console.log(CHECK_HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff system check" accepts no arguments.`, "system check", true);
  }
  const { checkStore } = await import("../image/fsck.ts");
  const { checkState } = await import("../engine/check.ts");
  const repair = bool(p, "repair");
  const result = await checkStore(new ImageStore(ctx.root), { repair });
  const state = await checkState(ctx.root, repair);
  let out = "";
  for (const problem of [...result.problems, ...state.problems]) {
    out += `${problem.kind} ${problem.subject}: ${problem.detail}\n`;
  }
  for (const line of [...result.repaired, ...state.repaired]) out += `${line}\n`;
  const c = { ...result.checked, ...state.checked };
  const n = result.problems.length + state.problems.length;
  out += `checked ${c.blobs} blobs, ${c.layers} layers, ${c.images} images, ${c.tags} tags, ` +
    `${c.containers} containers, ${c.volumes} volumes: ${
      n === 0 ? "no problems" : `${n} problem${n === 1 ? "" : "s"}${repair ? ", repaired" : ""}`
    }\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return n && !repair ? 1 : 0;
};
export default system;

const DF_HELP = `Usage:  skiff system df [OPTIONS]

Show skiff disk usage

Options:
      --format string   Pretty-print images using a Go template
  -v, --verbose         Show detailed information on space usage`;

const DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
/** docker's formatter type of each row (its template errors name them). */
const DF_TYPES: Record<string, string> = {
  Images: "*formatter.diskUsageImagesContext",
  Containers: "*formatter.diskUsageContainersContext",
  "Local Volumes": "*formatter.diskUsageVolumesContext",
  "Build Cache": "*formatter.diskUsageBuilderContext",
};

const DF_HEADERS = {
  Type: "TYPE",
  TotalCount: "TOTAL",
  Active: "ACTIVE",
  Size: "SIZE",
  Reclaimable: "RECLAIMABLE",
};

async function df(args: string[], ctx: Parameters<Verb>[1]): Promise<number> {
  const p = parseArgs(args, {
    verb: "system df",
    options: [{ name: "format", kind: "string" }, { name: "verbose", short: "v", kind: "bool" }],
  });
  if (bool(p, "help")) {
    console.log(DF_HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff system df" accepts no arguments.`, "system df", true);
  }
  if (bool(p, "verbose")) {
    if (str(p, "format")) throw new SkiffError("system df --verbose takes no --format in skiff yet");
    return await verboseDf(ctx);
  }
  const [{ compileListFormat }, { goStruct }, { humanSize }, { diskUsage }] = await Promise.all([
    import("../format/list.ts"),
    import("../format/template.ts"),
    import("../format/human.ts"),
    import("../inspect/disk_usage.ts"),
  ]);
  const format = compileListFormat(str(p, "format") ?? "", DF_TABLE);
  const rows = diskUsage(ctx.root).map((u) => {
    // docker's arithmetic: the share in whole percent, rounded down, when there is a size; its
    // units.HumanSize (four significant digits: "9.081MB")
    const reclaimable = humanSize(u.Reclaimable, 4) +
      (u.showPercent ? ` (${Math.floor((u.Reclaimable * 100) / u.Size)}%)` : "");
    // `{{json .}}` as docker's: the fields in name order (its contexts marshal through a map)
    const fields = {
      Active: String(u.Active),
      Reclaimable: reclaimable,
      Size: humanSize(u.Size, 4),
      TotalCount: String(u.TotalCount),
      Type: u.Type,
    };
    return goStruct(DF_TYPES[u.Type], { ...fields, toJSON: () => fields });
  });
  Deno.stdout.writeSync(
    new TextEncoder().encode(format.render(rows, goStruct(DF_TYPES.Images, { ...DF_HEADERS }))),
  );
  return 0;
}

const PRUNE_HELP = `Usage:  skiff system prune [OPTIONS]

Remove unused data

Options:
  -a, --all             Remove all unused images not just dangling ones
      --filter filter   Provide filter values (e.g. 'label=<key>=<value>')
  -f, --force           Do not prompt for confirmation
      --volumes         Prune volumes`;

async function prune(args: string[], ctx: Parameters<Verb>[1]): Promise<number> {
  const p = parseArgs(args, {
    verb: "system prune",
    options: [
      { name: "all", short: "a", kind: "bool" },
      { name: "force", short: "f", kind: "bool" },
      { name: "volumes", kind: "bool" },
      { name: "filter", kind: "list" },
    ],
  });
  if (bool(p, "help")) {
    console.log(PRUNE_HELP);
    return 0;
  }
  if (p.positionals.length) {
    throw new UsageError(`"skiff system prune" accepts no arguments.`, "system prune", true);
  }
  const all = bool(p, "all"), volumes = bool(p, "volumes"), filters = list(p, "filter");
  if (volumes && filters.some((f) => f.startsWith("until="))) {
    throw new SkiffError(`ERROR: The "until" filter is not supported with "--volumes"`);
  }
  const [
    { pruneContainers, pruneFilter },
    { imagePruneFilter, pruneImages },
    { humanSize },
    { confirm, volumePruneFilters },
  ] = await Promise.all([
    import("../container/prune.ts"),
    import("../image/prune.ts"),
    import("../format/human.ts"),
    import("./volume.ts"),
  ]);
  // every filter is checked before the question and before anything goes
  const { networkPruneFilter, pruneNetworks } = await import("../network/networks.ts");
  const keepContainer = pruneFilter(filters);
  const keepNetwork = networkPruneFilter(filters);
  imagePruneFilter(filters);
  // the volumes get the label filters (until is refused with --volumes above), as docker's daemon
  const volumeLabels = volumes ? volumePruneFilters(filters.filter((f) => f.startsWith("label"))).labels : [];
  if (!bool(p, "force")) {
    const warnings = [
      "all stopped containers",
      "all networks not used by at least one container",
      ...(volumes ? ["all anonymous volumes not used by at least one container"] : []),
      all ? "all images without at least one container associated to them" : "all dangling images",
      all ? "all build cache" : "all dangling build cache",
    ];
    const filtered = filters.length
      ? `\n  Items to be pruned will be filtered with:\n${filters.map((f) => `  - ${f}`).join("\n")}\n`
      : "";
    const question = `WARNING! This will remove:\n${
      warnings.map((w) => `  - ${w}`).join("\n")
    }\n${filtered}\n` +
      "Are you sure you want to continue?";
    if (!confirm(question)) return 0;
  }
  const { sweepDeadBuilders } = await import("../build/containers.ts");
  await sweepDeadBuilders(ctx.root); // a killed build's RUN container is not the user's to prune
  let out = "", reclaimed = 0;
  const containers = await pruneContainers(ctx.root, keepContainer);
  reclaimed += containers.reclaimed;
  if (containers.deleted.length) out += `Deleted Containers:\n${containers.deleted.join("\n")}\n\n`;
  const networks = await pruneNetworks(ctx.root, keepNetwork);
  if (networks.length) out += `Deleted Networks:\n${networks.join("\n")}\n\n`;
  if (volumes) {
    const { pruneVolumes } = await import("../volume/store.ts");
    const removed = await pruneVolumes(ctx.root, { all: false, labels: volumeLabels });
    reclaimed += removed.reclaimed;
    if (removed.deleted.length) out += `Deleted Volumes:\n${removed.deleted.join("\n")}\n\n`;
  }
  const images = await pruneImages(new ImageStore(ctx.root), { all, filters });
  reclaimed += images.reclaimed;
  if (images.records.length) {
    out += "Deleted Images:\n" +
      images.records.map((r) => "untagged" in r ? `untagged: ${r.untagged}\n` : `deleted: ${r.deleted}\n`)
        .join("") +
      "\n";
  }
  const { pruneBuildCache } = await import("../build/cache_prune.ts");
  const cache = pruneBuildCache(new ImageStore(ctx.root), { all });
  reclaimed += cache.reclaimed;
  if (cache.deleted.length) out += `Deleted build cache objects:\n${cache.deleted.join("\n")}\n\n`;
  out += `Total reclaimed space: ${humanSize(reclaimed, 4)}\n`;
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
}

/** `system df -v`: docker's four sections (images, containers, local volumes, build cache). */
async function verboseDf(ctx: Parameters<Verb>[1]): Promise<number> {
  const [
    { alignTabs },
    { humanSize, createdSince },
    { diskUsageDetails },
    { psRow },
    { splitTagged },
    { shortId },
  ] = await Promise.all([
    import("../format/table.ts"),
    import("../format/human.ts"),
    import("../inspect/disk_usage.ts"),
    import("../inspect/ps.ts"),
    import("../image/reference.ts"),
    import("../image/store.ts"),
  ]);
  const usage = diskUsageDetails(ctx.root);
  const now = Date.now();
  const table = (rows: string[][]) => alignTabs(rows.map((r) => r.join("\t")).join("\n") + "\n");
  const imageRows = [[
    "REPOSITORY",
    "TAG",
    "IMAGE ID",
    "CREATED",
    "SIZE",
    "SHARED SIZE",
    "UNIQUE SIZE",
    "CONTAINERS",
  ]];
  for (const u of usage.images) {
    const tags = u.image.repoTags.length
      ? u.image.repoTags.map(splitTagged)
      : [{ repository: "<none>", tag: "<none>" }];
    for (const { repository, tag } of tags) {
      imageRows.push([
        repository,
        tag,
        shortId(u.image.id),
        createdSince(u.image.created, now),
        humanSize(u.image.size, 4),
        humanSize(u.shared, 4),
        humanSize(Math.max(0, u.image.size - u.shared), 4),
        String(u.containers),
      ]);
    }
  }
  const containerRows = [[
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "LOCAL VOLUMES",
    "SIZE",
    "CREATED",
    "STATUS",
    "NAMES",
  ]];
  for (const c of usage.containers) {
    const row = psRow(c.record, { noTrunc: false, size: { rw: c.size, rootFs: 0 }, now }) as Record<
      string,
      string
    >;
    containerRows.push([
      row.ID,
      row.Image,
      row.Command,
      row.LocalVolumes,
      humanSize(c.size, 4),
      row.RunningFor,
      row.Status,
      row.Names,
    ]);
  }
  const volumeRows = [["VOLUME NAME", "LINKS", "SIZE"]];
  for (const v of usage.volumes) volumeRows.push([v.name, String(v.links), humanSize(v.size, 4)]);
  const out = "Images space usage:\n\n" + table(imageRows) +
    "\nContainers space usage:\n\n" + table(containerRows) +
    "\nLocal Volumes space usage:\n\n" + table(volumeRows) +
    "\nBuild cache usage: 0B\n\n" +
    table([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]);
  Deno.stdout.writeSync(new TextEncoder().encode(out));
  return 0;
}
