// The records' side of `--link` (lib/network/links.ts has the pure part and the why): the linked
// containers looked up when a container is created, checked and read at each of its starts (and
// execs), and shown by inspect.

import { SkiffError } from "../errors.ts";
import { findContainer, isRunning, loadContainer } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import type { ContainerRecord } from "../state/types.ts";
import { joinedContainer } from "./mode.ts";
import { dedupeEnv, hostsField, linkEnv, type LinkRecord, type LinkSpec, type StartLinks } from "./links.ts";

/**
 * The links of a container being created on the default bridge (docker's registerLinks): each
 * container must exist (one joined to another's namespace stands for that one) and must not use
 * the host's network. A second link with an alias already taken is dropped, as docker drops it.
 */
export function resolveLinks(root: StateRoot, links: LinkSpec[]): LinkRecord[] | undefined {
  const out: LinkRecord[] = [];
  for (const { name, alias } of links) {
    let child = lookup(root, name, "could not get container for");
    for (let joined = joinedContainer(child.HostConfig.NetworkMode); joined !== undefined;) {
      child = lookup(root, joined, "Could not get container for");
      joined = joinedContainer(child.HostConfig.NetworkMode);
    }
    if (child.HostConfig.NetworkMode === "host") {
      throw new SkiffError(
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        undefined,
        { kind: "invalid-argument" },
      );
    }
    if (!out.some((l) => l.Alias === alias)) out.push({ Id: child.Id, Name: child.Name, Alias: alias });
  }
  return out.length ? out : undefined;
}

function lookup(root: StateRoot, name: string, what: string): ContainerRecord {
  if (name === "") {
    throw new SkiffError(`${what} : invalid name or ID supplied: ""`, undefined, {
      kind: "invalid-argument",
    });
  }
  try {
    return findContainer(root, name);
  } catch (e) {
    if (!(e instanceof SkiffError)) throw e;
    // docker: an invalid parameter, not "not found" (which its CLI would take for a missing image)
    throw new SkiffError(`${what} ${name}: ${e.message}`, undefined, { kind: "invalid-argument", cause: e });
  }
}

/**
 * The links of a container starting on the default bridge (docker's buildSandboxOptions and
 * setupLinkedContainers): every linked container must run there, or the start is refused with
 * docker's words. `lenient` (a running container's /etc/hosts rewritten after `rm -l`) skips those
 * instead.
 */
export function linksAtStart(root: StateRoot, record: ContainerRecord, lenient = false): StartLinks {
  const out: StartLinks = { env: [], hosts: [] };
  for (const link of record.LinkedContainers ?? []) {
    const fullName = `${record.Name}/${link.Alias}`;
    let child: ContainerRecord | undefined;
    try {
      child = loadContainer(root, link.Id);
    } catch { /* removed (docker lets a linked container go): not running */ }
    const endpoint = child?.HostConfig.NetworkMode === "bridge"
      ? child.NetworkEndpoint
      : child?.ExtraEndpoints?.bridge;
    const refusal = child && child.HostConfig.NetworkMode !== "bridge" &&
        !child.ConnectedNetworks?.includes("bridge")
      ? `Cannot link to ${child.Name}, as it does not belong to the default network`
      : !child || !isRunning(child) || !endpoint
      ? `Cannot link to a non running container: ${child?.Name ?? link.Name} AS ${fullName}`
      : undefined;
    if (refusal) {
      if (lenient) continue;
      throw new SkiffError(refusal, undefined, { kind: "conflict" });
    }
    const name = child!.Name.slice(1);
    out.hosts.push({
      ip: endpoint!.ipAddress,
      // docker: the alias, the container's hostname, and its name unless the alias is the name
      names: [link.Alias, child!.Config.Hostname, ...(link.Alias !== name ? [name] : [])].filter(hostsField),
    });
    out.env.push(...linkEnv({
      alias: link.Alias,
      fullName,
      ip: endpoint!.ipAddress,
      env: child!.Config.Env ?? [],
      ports: Object.keys(child!.Config.ExposedPorts ?? {}),
    }));
  }
  out.env = dedupeEnv(out.env);
  return out;
}

/** HostConfig.Links as docker shows it: "/LINKED:/PARENT/ALIAS", by the linked container's name now. */
export function hostConfigLinks(root: StateRoot, record: ContainerRecord): string[] | null {
  const links = record.LinkedContainers ?? [];
  if (!links.length) return null;
  return links.map((l) => {
    let name = l.Name;
    try {
      name = loadContainer(root, l.Id).Name;
    } catch { /* gone: the name it had (docker's link index keeps it too) */ }
    return `${name}:${record.Name}/${l.Alias}`;
  });
}
