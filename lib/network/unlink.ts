// `rm -l /PARENT/ALIAS` (`--link`): docker's rmLink. The link goes from the parent's record and,
// while the parent runs, its line from the parent's /etc/hosts (docker's updateNetwork rebuilds the
// file); the variables of the running process stay, as in docker.

import { NoSuchContainerError, SkiffError } from "../errors.ts";
import { findContainer, isRunning, updateContainerSync } from "../state/containers.ts";
import type { StateRoot } from "../state/root.ts";
import { linksAtStart } from "./linked.ts";
import { refreshNames, writeBridgeHosts } from "./names.ts";

/** Removes the link `ref` names ("/PARENT/ALIAS"); docker's refusals otherwise. */
export function removeLink(root: StateRoot, ref: string): void {
  const name = ref.replace(/^\//, "");
  const slash = name.lastIndexOf("/");
  if (slash === -1) {
    findContainer(root, name); // a name that is no container: docker's "No such container" first
    throw new SkiffError("Conflict, cannot remove the default link name of the container", undefined, {
      kind: "conflict",
    });
  }
  const parentName = name.slice(0, slash), alias = name.slice(slash + 1);
  let parentId: string;
  try {
    const parent = findContainer(root, parentName);
    if (parent.Name !== `/${parentName}` || !parent.LinkedContainers?.some((l) => l.Alias === alias)) {
      throw new NoSuchContainerError(name);
    }
    parentId = parent.Id;
  } catch (e) {
    if (e instanceof SkiffError) throw new NoSuchContainerError(name);
    throw e;
  }
  const parent = updateContainerSync(root, parentId, (r) => {
    const kept = (r.LinkedContainers ?? []).filter((l) => l.Alias !== alias);
    if (kept.length) r.LinkedContainers = kept;
    else delete r.LinkedContainers;
  });
  if (!parent || !isRunning(parent) || !parent.NetworkEndpoint) return;
  if (parent.ExtraEndpoints && Object.keys(parent.ExtraEndpoints).length) {
    refreshNames(root, parent.Id); // its user networks' lines with the links left (names.ts)
    return;
  }
  writeBridgeHosts(root, parent, parent.NetworkEndpoint.ipAddress, linksAtStart(root, parent, true).hosts);
}
