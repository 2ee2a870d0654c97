// `run -v [SOURCE:]DESTINATION[:MODE]` and `run --mount type=bind|volume|tmpfs,source=…,target=…,…`
// (docker's CSV syntax) parsed into VolumeFlags and tmpfs options, with docker's validation. Pure
// parsing, no file system: `run -d` loads this and not the runtime. Unlike -v, a --mount bind source
// must exist (prepareMounts checks mustExist).

import { ClientCheckError, SkiffError } from "../errors.ts";
import type { ApiMount } from "../state/types.ts";

export type { ApiMount };

export type MountFlag =
  | { type: "bind" | "volume"; volume: VolumeFlag; api: ApiMount }
  | { type: "tmpfs"; path: string; options: string; api: ApiMount };

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

export interface VolumeFlag {
  type: "bind" | "volume";
  /** Host path (bind) or volume name (volume); undefined for an anonymous volume. */
  source?: string;
  destination: string;
  readOnly: boolean;
  /** The mode as given ("ro", "ro,z", "nocopy", ...): docker's Mode field. */
  mode: string;
  /** Volumes only: do not copy the image's files into an empty volume. */
  noCopy: boolean;
  propagation: string;
  /** --mount's binds: a missing source is an error (-v creates it). */
  mustExist?: boolean;
  /** --mount's bind-recursive, when not docker's default "enabled" (see rootfs.ts mountVolumes). */
  bindRecursive?: "disabled" | "writable" | "readonly";
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function isMode(text: string): boolean {
  return text.split(",").every((m) => ["ro", "rw", "z", "Z", "nocopy", ...PROPAGATIONS].includes(m));
}

/** Parses one -v value, with docker's messages for what it refuses. */
export function parseVolumeFlag(spec: string): VolumeFlag {
  const invalid = (why?: string) =>
    new SkiffError(`invalid volume specification: '${spec}'${why ? `: ${why}` : ""}`);
  const parts = spec.split(":");
  let source: string | undefined, destination: string, mode = "";
  if (parts.length === 1) destination = parts[0];
  else if (parts.length === 2 && isMode(parts[1]) && parts[0].startsWith("/")) [destination, mode] = parts;
  else if (parts.length === 2) [source, destination] = parts;
  else if (parts.length === 3) [source, destination, mode] = parts;
  else throw invalid();
  if (source === "") throw invalid();
  if (!destination.startsWith("/")) {
    throw invalid(`invalid mount path: '${destination}' mount path must be absolute`);
  }
  if (destination.replace(/\/+$/, "") === "") throw invalid("destination can't be '/'");
  if (mode && !isMode(mode)) throw new SkiffError(`invalid mode: ${mode}`);
  const modes = mode ? mode.split(",") : [];
  const type = source?.startsWith("/") ? "bind" : "volume";
  if (type === "volume" && source !== undefined && !VOLUME_NAME.test(source)) {
    throw new SkiffError(
      `create ${source}: "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  if (type === "bind" && modes.includes("nocopy")) throw new SkiffError(`invalid mode: ${mode}`);
  return {
    type,
    // a bind's source as docker shows it in Mounts: no trailing slash (Binds keeps the flag as given)
    source: type === "bind" ? source!.replace(/(.)\/+$/, "$1") : source,
    destination: destination.replace(/(.)\/+$/, "$1"),
    readOnly: modes.includes("ro"),
    // docker's Mode: as given, "z" for a named volume given none (an anonymous one keeps "")
    mode: mode || (type === "volume" && source !== undefined ? "z" : ""),
    noCopy: modes.includes("nocopy"),
    propagation: modes.find((m) => PROPAGATIONS.includes(m)) ?? (type === "bind" ? "rprivate" : ""),
  };
}
const TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const FALSE = new Set(["0", "f", "F", "false", "FALSE", "False"]);
const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Splits a CSV line as Go's encoding/csv does for one record (double quotes group commas). */
function csvFields(spec: string): string[] {
  const fields: string[] = [];
  let current = "", quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i];
    if (ch === '"') {
      if (quoted && spec[i + 1] === '"') {
        current += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === "," && !quoted) {
      fields.push(current);
      current = "";
    } else current += ch;
  }
  fields.push(current);
  return fields;
}

/** Parses one --mount value; throws docker's messages (exit 125). */
export function parseMountFlag(spec: string): MountFlag {
  const invalid = (why: string) =>
    new ClientCheckError(`invalid argument "${spec}" for "--mount" flag: ${why}`);
  let type = "volume", source: string | undefined, target = "", readOnly = false, noCopy = false;
  let propagation: string | undefined, tmpfsSize: number | undefined, tmpfsMode: number | undefined;
  let bindRecursive: VolumeFlag["bindRecursive"], consistency: string | undefined;
  const bool = (key: string, value: string) => {
    if (TRUE.has(value)) return true;
    if (FALSE.has(value)) return false;
    throw invalid(`invalid value for ${key}: ${value}`);
  };
  const used = new Set<string>();
  for (const field of csvFields(spec)) {
    const eq = field.indexOf("=");
    const key = (eq === -1 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? undefined : field.slice(eq + 1);
    if (value === undefined) {
      // a few flags may stand alone
      if (key === "readonly" || key === "ro") readOnly = true;
      else if (key === "volume-nocopy") noCopy = true, used.add("volume");
      else throw invalid(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case "type":
        type = value.toLowerCase();
        break;
      case "source":
      case "src":
        source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        target = value;
        break;
      case "readonly":
      case "ro":
        readOnly = bool(key, value);
        break;
      case "bind-propagation":
        if (!PROPAGATIONS.includes(value.toLowerCase())) throw invalid(`invalid propagation mode: ${value}`);
        propagation = value.toLowerCase();
        used.add("bind");
        break;
      case "bind-recursive": {
        // booleans stand for enabled / disabled, as in docker's CLI
        const mode = TRUE.has(value) ? "enabled" : FALSE.has(value) ? "disabled" : value;
        if (!["enabled", "disabled", "writable", "readonly"].includes(mode)) {
          throw invalid(
            `invalid value for ${key}: ${value} (must be "enabled", "disabled", "writable", or "readonly")`,
          );
        }
        bindRecursive = mode === "enabled" ? undefined : mode as VolumeFlag["bindRecursive"];
        used.add("bind");
        break;
      }
      case "bind-nonrecursive": // deprecated spelling of bind-recursive=disabled
        bindRecursive = bool(key, value) ? "disabled" : undefined;
        used.add("bind");
        break;
      case "volume-nocopy":
        noCopy = bool(key, value);
        used.add("volume");
        break;
      case "tmpfs-size": {
        const m = /^(\d+(?:\.\d+)?)\s*([kmgtb]?)i?b?$/i.exec(value.trim());
        if (!m) throw invalid(`invalid size: '${value}'`);
        tmpfsSize = Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
        used.add("tmpfs");
        break;
      }
      case "tmpfs-mode":
        if (!/^[0-7]+$/.test(value)) throw invalid(`strconv.ParseUint: parsing "${value}": invalid syntax`);
        tmpfsMode = parseInt(value, 8);
        used.add("tmpfs");
        break;
      case "consistency":
        consistency = value; // docker keeps it and ignores it on Linux
        break;
      default:
        throw invalid(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!["bind", "volume", "tmpfs"].includes(type)) throw invalid(`invalid mount type: ${type}`);
  if (target === "") throw invalid("target is required");
  for (const kind of used) {
    if (kind !== type) throw invalid(`cannot mix '${kind}-*' options with mount type '${type}'`);
  }
  const config = (why: string) => new SkiffError(`invalid mount config for type "${type}": ${why}`);
  if (!target.startsWith("/")) throw config(`invalid mount path: '${target}' mount path must be absolute`);
  const destination = target.replace(/(.)\/+$/, "$1");
  if (destination === "/") throw config("invalid specification: destination can't be '/'");
  // what docker's CLI would send: each options struct only when one of its keys was given
  const api: ApiMount = {
    Type: type as ApiMount["Type"],
    ...(source ? { Source: source } : {}),
    Target: target,
    ...(readOnly ? { ReadOnly: true as const } : {}),
    ...(consistency ? { Consistency: consistency } : {}),
    ...(used.has("bind")
      ? {
        BindOptions: {
          ...(propagation ? { Propagation: propagation } : {}),
          ...(bindRecursive === "disabled" ? { NonRecursive: true as const } : {}),
        },
      }
      : {}),
    ...(used.has("volume")
      ? { VolumeOptions: { ...(noCopy ? { NoCopy: true as const } : {}), DriverConfig: {} } }
      : {}),
    ...(used.has("tmpfs")
      ? {
        TmpfsOptions: {
          ...(tmpfsSize !== undefined ? { SizeBytes: tmpfsSize } : {}),
          ...(tmpfsMode !== undefined ? { Mode: tmpfsMode } : {}),
        },
      }
      : {}),
  };

  if (type === "tmpfs") {
    if (source) throw config("field Source must not be specified");
    const options = [
      ...(readOnly ? ["ro"] : []),
      ...(tmpfsSize !== undefined ? [`size=${tmpfsSize}`] : []),
      ...(tmpfsMode !== undefined ? [`mode=${tmpfsMode.toString(8).padStart(4, "0")}`] : []),
    ];
    return { type: "tmpfs", path: destination, options: options.join(","), api };
  }
  if (type === "bind") {
    if (!source) throw config("field Source must not be empty");
    if ((bindRecursive === "writable" || bindRecursive === "readonly") && !readOnly) {
      throw config("must be read-only");
    }
    if (!source.startsWith("/")) throw config(`invalid mount path: '${source}' mount path must be absolute`);
  }
  return {
    type,
    volume: {
      type,
      source: source || undefined,
      destination,
      readOnly,
      mode: type === "volume" ? "z" : "", // docker's Mode for every --mount volume
      noCopy,
      propagation: type === "bind" ? propagation ?? "rprivate" : "",
      mustExist: type === "bind",
      ...(bindRecursive ? { bindRecursive } : {}),
    },
    api,
  } as MountFlag;
}

/** One --volumes-from value: the container, and whether its mounts become read-only. */
export interface VolumesFrom {
  container: string;
  readOnly: boolean;
}

const CONSISTENCY = ["consistent", "cached", "delegated"];

/**
 * Parses `--volumes-from CONTAINER[:MODE]` as docker's daemon does: MODE is docker's mount mode list
 * (at most one of rw/ro, z/Z and a consistency) without propagation or nocopy, which come from the
 * source's own mounts; `ro` makes every mount read-only, anything else keeps each one's own.
 */
export function parseVolumesFrom(spec: string): VolumesFrom {
  if (spec === "") throw new SkiffError("volumes-from specification cannot be an empty string");
  const colon = spec.indexOf(":");
  const container = colon === -1 ? spec : spec.slice(0, colon);
  const mode = colon === -1 ? "" : spec.slice(colon + 1);
  const groups = [["rw", "ro"], ["z", "Z"], CONSISTENCY];
  const options = mode === "" ? [] : mode.split(",");
  const valid = options.every((o) => groups.some((g) => g.includes(o))) &&
    groups.every((g) => options.filter((o) => g.includes(o)).length <= 1);
  if (!valid) throw new SkiffError(`invalid mode: ${mode}`);
  return { container, readOnly: options.includes("ro") };
}
