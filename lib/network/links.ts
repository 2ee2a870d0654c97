// Legacy container links, `run/create --link CONTAINER[:ALIAS]`, as docker 20.10 makes them.
//
// On the default bridge a link is kept in the record by the linked container's id (rename-proof:
// inspect and every start read its current name) and acted on at every start of the linking
// container (engine/network.ts setupNetwork): the linked container must run on the default bridge
// then, its address goes into the new container's /etc/hosts (`IP\tALIAS HOSTNAME NAME`, before the
// container's own line) and docker's ALIAS_PORT_*, ALIAS_NAME and ALIAS_ENV_* variables into its
// environment, under Config.Env (which wins). A restart reads the addresses again. `rm -l
// /PARENT/ALIAS` removes one. As in docker 20.10, a linked container that restarts with another
// address does not change its parents' files until they start again.
//
// On a user-defined network docker resolves ALIAS to CONTAINER through its DNS, for the linking
// container only; skiff's names are /etc/hosts lines (names.ts), so the alias joins the names of
// that member's line in the linking container's file while both are on the network.
//
// What the linked container controls (its image's Env) only ever reaches the new container's
// environment, through execve's array: never a file, never a shell. What reaches /etc/hosts is an
// alias checked here ([a-zA-Z0-9][a-zA-Z0-9_.-]*), a container name (checked at create) and a
// hostname (checked at create, and again below as a field).

import type { ContainerRecord } from "../state/types.ts";

/** A link alias: docker's container-name characters (docker itself takes any; skiff writes it into a file). */
const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `--link` as given: the container referred to and the alias it gets. */
export interface LinkSpec {
  name: string;
  alias: string;
}

/**
 * A default-bridge link as the record keeps it (skiff's own LinkedContainers): the linked
 * container's id, its name when the link was made (shown once it is gone), the alias.
 */
export type LinkRecord = NonNullable<ContainerRecord["LinkedContainers"]>[number];

/**
 * docker's opts.ParseLink: NAME[:ALIAS] (ALIAS defaults to NAME; the `/NAME:/PARENT/ALIAS` form that
 * HostConfig.Links shows is read too), then skiff's check of the alias. Throws an Error whose message
 * is the reason (the caller words the flag error); undefined for an empty alias (`NAME:`), for which
 * docker registers nothing.
 */
export function parseLink(value: string): LinkSpec | undefined {
  if (value === "") throw new Error("empty string specified for links");
  const parts = value.split(":");
  if (parts.length > 2) throw new Error(`bad format for links: ${value}`);
  let [name, alias] = parts.length === 1 ? [value, value] : parts;
  if (parts.length === 2 && name.startsWith("/")) alias = alias.slice(alias.lastIndexOf("/") + 1);
  name = name.replace(/^\//, "");
  alias = alias.replace(/^\/+/, "");
  if (alias === "") return undefined;
  if (!ALIAS_RE.test(alias)) {
    throw new Error(`invalid link alias "${alias}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return { name, alias };
}

/** An /etc/hosts line of a linked container: its address and the names it answers to. */
export interface LinkHostsEntry {
  ip: string;
  names: string[];
}

/** What the links of a starting container give it. */
export interface StartLinks {
  env: string[];
  hosts: LinkHostsEntry[];
}

/** A field of an /etc/hosts line: no blank, control character or '#' (it would end or comment the line). */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
export const hostsField = (name: string) => name !== "" && !/[\s\x00-\x1f\x7f#]/.test(name);

interface Port {
  number: number;
  proto: string;
}

/**
 * docker 20.10's Link.ToEnv (daemon/links): ALIAS_PORT (the first port), ALIAS_PORT_N_PROTO_START…
 * for runs of consecutive numbers, ALIAS_PORT_N_PROTO{,_ADDR,_PORT,_PROTO} per port, ALIAS_NAME, and
 * ALIAS_ENV_VAR for the linked container's environment but HOME and PATH. ALIAS is the alias in
 * upper case with "-" as "_". Pure.
 */
export function linkEnv(
  link: { alias: string; fullName: string; ip: string; env: string[]; ports: string[] },
): string[] {
  const alias = link.alias.toUpperCase().replaceAll("-", "_");
  const ports: Port[] = link.ports.flatMap((key) => {
    const m = /^(\d{1,5})\/(tcp|udp|sctp)$/.exec(key);
    return m ? [{ number: Number(m[1]), proto: m[2] }] : [];
  });
  // by number, tcp first among equal numbers (docker's nat.Sort less function)
  ports.sort((a, b) =>
    a.number - b.number || (a.proto === "tcp" ? -1 : b.proto === "tcp" ? 1 : a.proto.localeCompare(b.proto))
  );
  const url = (p: Port) => `${p.proto}://${link.ip}:${p.number}`;
  const prefix = (p: Port, proto = p.proto) => `${alias}_PORT_${p.number}_${proto.toUpperCase()}`;
  const env: string[] = [];
  if (ports.length) env.push(`${alias}_PORT=${url(ports[0])}`);
  for (let i = 0; i < ports.length;) {
    const p = ports[i];
    const j = nextContiguous(ports, i);
    if (j > i + 1) {
      const q = ports[j];
      env.push(
        `${prefix(p)}_START=${url(p)}`,
        `${prefix(p)}_ADDR=${link.ip}`,
        `${prefix(p)}_PROTO=${p.proto}`,
        `${prefix(p)}_PORT_START=${p.number}`,
        `${prefix(p, q.proto)}_END=${url(q)}`,
        `${prefix(p, q.proto)}_PORT_END=${q.number}`,
      );
      i = j + 1;
    } else i++;
  }
  for (const p of ports) {
    env.push(
      `${prefix(p)}=${url(p)}`,
      `${prefix(p)}_ADDR=${link.ip}`,
      `${prefix(p)}_PORT=${p.number}`,
      `${prefix(p)}_PROTO=${p.proto}`,
    );
  }
  env.push(`${alias}_NAME=${link.fullName}`);
  for (const entry of link.env) {
    const eq = entry.indexOf("=");
    if (eq === -1) continue;
    const key = entry.slice(0, eq);
    if (key === "HOME" || key === "PATH") continue;
    env.push(`${alias}_ENV_${key}=${entry.slice(eq + 1)}`);
  }
  return env;
}

/**
 * One entry per name, where it first appeared, with its last value: what the container's process
 * gets from docker (runc sets the variables one by one), so a port in a range does not give its
 * _ADDR and _PROTO twice.
 */
export function dedupeEnv(env: string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of env) byName.set(entry.split("=", 1)[0], entry);
  return [...byName.values()];
}

/** docker 20.10's nextContiguous: the last index of the run from `index` (by number only, as docker). */
function nextContiguous(ports: Port[], index: number): number {
  let value = ports[index].number;
  for (let i = index + 1; i < ports.length; i++) {
    if (ports[i].number > value + 1) return i - 1;
    value++;
  }
  return ports.length - 1;
}

/**
 * The aliases a container's user-network links (`--link NAME[:ALIAS]` kept as given, docker's
 * EndpointSettings.Links) give another member of that network: those whose NAME is one of the
 * member's names there.
 */
export function userLinkAliases(
  links: string[] | undefined,
  memberNames: string[],
  memberId: string,
): string[] {
  const out: string[] = [];
  for (const value of links ?? []) {
    let link;
    try {
      link = parseLink(value);
    } catch { /* checked at create: a record changed by hand gives nothing */ }
    if (!link || !hostsField(link.alias)) continue;
    if (memberNames.includes(link.name) || link.name === memberId) out.push(link.alias);
  }
  return out;
}
