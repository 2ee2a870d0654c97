// `--network` / `--net`: docker's modes. Pure: parsing, and the NetworkSettings inspect shows.

import { SkiffError } from "../errors.ts";

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
export function endpointSettings(endpoint: EndpointView | undefined, networkId = ""): Json {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
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
    DNSNames: null,
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
): { settings: Json; networks: Record<string, Json> } {
  const networks: Record<string, Json> = {};
  if (!mode.startsWith("container:")) networks[mode] = endpointSettings(endpoint, networkId);
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

/** /etc/hosts of a container of its own network namespace: docker's lines, --add-host, then its own address. */
export function hostsFile(extraHosts: string[], own?: { ip: string; hostname: string }): string {
  const extra = extraHosts.map((entry) => {
    const colon = entry.indexOf(":");
    return `${entry.slice(colon + 1)}\t${entry.slice(0, colon)}\n`;
  });
  return DEFAULT_HOSTS + extra.join("") + (own ? `${own.ip}\t${own.hostname}\n` : "");
}
