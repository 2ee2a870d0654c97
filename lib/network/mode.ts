// `--network` / `--net`: docker's modes. Pure: parsing, and the NetworkSettings inspect shows.

import { ClientCheckError, SkiffError } from "../errors.ts";

/** A built-in mode, another container's namespace, or a user-defined network's name (or id). */
export type NetworkMode = "bridge" | "none" | "host" | `container:${string}` | string;

/** docker's --network value → the mode kept in HostConfig.NetworkMode ("default" is the bridge). */
export function parseNetworkMode(value: string | undefined): NetworkMode {
  if (value === undefined || value === "" || value === "default" || value === "bridge") return "bridge";
  if (value === "none" || value === "host") return value;
  if (value.startsWith("container:")) {
    if (value.length === "container:".length) {
      throw new SkiffError(`invalid container format container:<name|id>`, 125, { kind: "invalid-argument" });
    }
    return value as NetworkMode;
  }
  // a user-defined network: whether it exists is checked when the container is created
  return value;
}

/** `--ip`: an IPv4 address (docker's CLI refuses anything else before the request). */
export function requestedIp(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const parts = value.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new SkiffError(
      `invalid argument "${value}" for "--ip" flag: invalid string being converted to IP address: ${value}`,
      125,
      { kind: "invalid-argument" },
    );
  }
  return parts.map(Number).join(".");
}

/**
 * docker's refusals of --ip and --network-alias outside user-defined networks (the daemon's words,
 * exit 125 from run/create).
 */
export function checkEndpointOptions(mode: string, ip: string | undefined, aliases: string[]): void {
  if (isUserNetwork(mode)) return;
  if (ip) {
    throw new SkiffError("user specified IP address is supported on user defined networks only", 125, {
      kind: "invalid-argument",
    });
  }
  if (aliases.length) {
    throw new SkiffError(
      "network-scoped alias is supported only for containers in user defined networks",
      125,
      {
        kind: "invalid-argument",
      },
    );
  }
}

/**
 * A hardware address as Go's net.ParseMAC reads one (docker's --mac-address check): 6, 8 or 20
 * bytes written as 2-hex groups separated by ":" or "-" (02:42:ac:11:00:02, 02-42-AC-11-00-02) or
 * as 4-hex groups separated by "." (0242.ac11.0002); undefined for anything else.
 */
export function parseMac(text: string): Uint8Array | undefined {
  const sep = text[2] === ":" || text[2] === "-" ? text[2] : text[4] === "." ? "." : undefined;
  if (sep === undefined) return undefined;
  const width = sep === "." ? 4 : 2;
  const groups = text.split(sep);
  const bytes = groups.length * width / 2;
  if (![6, 8, 20].includes(bytes) || !groups.every((g) => new RegExp(`^[0-9a-fA-F]{${width}}$`).test(g))) {
    return undefined;
  }
  return new Uint8Array(groups.join("").match(/../g)!.map((b) => parseInt(b, 16)));
}

/** Bytes → Go's HardwareAddr.String(): lower-case hex pairs joined by ":". */
export const formatMac = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");

/** `--mac-address` as docker's CLI checks it (net.ParseMAC); kept as given (Config.MacAddress). */
export function macAddressFlag(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!parseMac(value)) throw new ClientCheckError(`${value} is not a valid mac address`);
  return value;
}

/**
 * docker's daemon refuses a MAC where the container has no interface of its own to give it (host,
 * container:NAME); with `none` it is kept and unused.
 */
export function checkMacForMode(mode: string, mac: string | undefined): void {
  if (mac && (mode === "host" || mode.startsWith("container:"))) {
    throw new SkiffError("conflicting options: mac-address and the network mode", undefined, {
      kind: "invalid-argument",
    });
  }
}

/**
 * The address an endpoint's eth0 gets: the one asked for (Go's spelling, as inspect shows it; a veth
 * takes 6 bytes, so of an 8- or 20-byte one only the first 6 reach the kernel, as in docker, whose
 * later RTM_SETLINK copies the device's address length), else docker's from the IPv4 address.
 */
export function endpointMac(wanted: string | undefined, derived: string): { shown: string; link: string } {
  const bytes = wanted ? parseMac(wanted) : undefined;
  if (!bytes) return { shown: derived, link: derived };
  return { shown: formatMac(bytes), link: formatMac(bytes.subarray(0, 6)) };
}

/** True for a mode that names a user-defined network. */
export const isUserNetwork = (mode: string) =>
  mode !== "bridge" && mode !== "none" && mode !== "host" && !mode.startsWith("container:");

/** The container a `container:NAME` mode joins, else undefined. */
export function joinedContainer(mode: string): string | undefined {
  return mode.startsWith("container:") ? mode.slice("container:".length) : undefined;
}

/** What a container's endpoint on a network is (lib/network/bridge.ts Endpoint, as kept in the record). */
export interface EndpointView {
  gateway: string;
  ipAddress: string;
  prefixLen: number;
  macAddress: string;
  networkId: string;
  endpointId: string;
  sandboxId: string;
}

type Json = Record<string, unknown>;

/** docker's EndpointSettings; empty values for a container that does not run. */
export function endpointSettings(
  endpoint: EndpointView | undefined,
  networkId = "",
  user: EndpointUserSettings = {},
): Json {
  return {
    IPAMConfig: user.ip ? { IPv4Address: user.ip } : null,
    Links: user.links?.length ? user.links : null,
    Aliases: user.aliases?.length ? user.aliases : null,
    MacAddress: endpoint?.macAddress ?? "",
    DriverOpts: null,
    GwPriority: 0,
    NetworkID: endpoint?.networkId ?? networkId,
    EndpointID: endpoint?.endpointId ?? "",
    Gateway: endpoint?.gateway ?? "",
    IPAddress: endpoint?.ipAddress ?? "",
    IPPrefixLen: endpoint?.prefixLen ?? 0,
    IPv6Gateway: "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    DNSNames: endpoint && user.dnsNames?.length ? user.dnsNames : null,
  };
}

/** What the user asked for an endpoint (--ip, --network-alias, connect's) and the names it answers to. */
export interface EndpointUserSettings {
  ip?: string;
  aliases?: string[];
  /** a user network's: name, aliases, short id (docker's DNSNames) */
  dnsNames?: string[];
  /** `--link` on a user network, as given (docker's EndpointSettings.Links) */
  links?: string[];
}

/** The per-network settings of a record (skiff's NetworkIps/NetworkAliases), for inspect. */
export function userSettingsOf(
  record: {
    Id: string;
    Name: string;
    NetworkIps?: Record<string, string>;
    NetworkAliases?: Record<string, string[]>;
    NetworkLinks?: Record<string, string[]>;
  },
  network: string,
): EndpointUserSettings {
  const aliases = record.NetworkAliases?.[network] ?? [];
  return {
    ip: record.NetworkIps?.[network],
    aliases,
    links: record.NetworkLinks?.[network],
    dnsNames: isUserNetwork(network)
      ? [...new Set([record.Name.replace(/^\//, ""), ...aliases, record.Id.slice(0, 12)])]
      : undefined,
  };
}

/**
 * docker's NetworkSettings (without Networks' struct markers: inspect adds them). A running
 * container shows its endpoint under its network's name (and, on the default bridge only, in the
 * top-level fields too, as docker); a stopped one docker's empty values with the network's id;
 * `container:NAME` has no networks of its own.
 */
export function networkSettings(
  mode: string,
  endpoint: EndpointView | undefined,
  sandboxKey: string,
  networkId: string,
  extra: {
    user?: (network: string) => EndpointUserSettings;
    /** networks joined with `network connect`: name → [endpoint, network id] */
    connected?: Record<string, [EndpointView | undefined, string]>;
  } = {},
): { settings: Json; networks: Record<string, Json> } {
  const networks: Record<string, Json> = {};
  if (!mode.startsWith("container:")) {
    networks[mode] = endpointSettings(endpoint, networkId, extra.user?.(mode));
  }
  for (const [name, [ep, id]] of Object.entries(extra.connected ?? {})) {
    networks[name] = endpointSettings(ep, id, extra.user?.(name));
  }
  const top = mode === "bridge" ? endpoint : undefined;
  return {
    settings: {
      Bridge: "",
      SandboxID: endpoint?.sandboxId ?? "",
      SandboxKey: endpoint ? sandboxKey : "",
      Ports: {},
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: top?.endpointId ?? "",
      Gateway: top?.gateway ?? "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: top?.ipAddress ?? "",
      IPPrefixLen: top?.prefixLen ?? 0,
      IPv6Gateway: "",
      MacAddress: top?.macAddress ?? "",
    },
    networks,
  };
}

/** docker's /etc/hosts head (libnetwork etchosts). */
export const DEFAULT_HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
`;

/**
 * /etc/hosts of a container of its own network namespace: docker's lines, --add-host, the
 * containers it links to (`--link`, lib/network/links.ts), then its own address.
 */
export function hostsFile(
  extraHosts: string[],
  own?: { ip: string; hostname: string },
  links: { ip: string; names: string[] }[] = [],
): string {
  const extra = extraHosts.map((entry) => {
    const colon = entry.indexOf(":");
    return `${entry.slice(colon + 1)}\t${entry.slice(0, colon)}\n`;
  });
  const linked = links.map((l) => `${l.ip}\t${l.names.join(" ")}\n`);
  return DEFAULT_HOSTS + extra.join("") + linked.join("") + (own ? `${own.ip}\t${own.hostname}\n` : "");
}

/**
 * Why a network alias cannot be used, or undefined. Every alias becomes a field of the other
 * members' /etc/hosts lines: a blank, a newline or a control character would end the field or the
 * line and let one container give a name of its choice (another member's) an address of its choice
 * in everyone's file; a `#` would comment out the rest of the line. docker's aliases go to its DNS
 * server and are not checked; skiff's go into files, so these are refused.
 */
export function aliasProblem(alias: string): string | undefined {
  // deno-lint-ignore no-control-regex -- control characters are what it looks for
  if (alias === "" || /[\s\x00-\x1f\x7f#]/.test(alias)) {
    return "a network alias cannot be empty or contain blanks, control characters or '#'";
  }
  return undefined;
}
