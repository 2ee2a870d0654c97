// --cgroup-parent: the group a container's cgroups are made in, below each hierarchy's root. Pure
// (no file access): exec's hot path and the CLI's checks import it alone.

/** skiff's own parent group, used when a container names none (docker's is "docker"). */
export const DEFAULT_CGROUP_PARENT = "skiff";

/** A container id as a path component: the name of a container's own cgroup directory. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/**
 * The parent group of a container's cgroups as a path relative to each hierarchy's root ("" is
 * the root itself). runc's utils.CleanPath: the value is cleaned as if it began at "/", so no ".."
 * climbs above the root ("../../x" and "/../../x" are both "x"). A relative value starts at the
 * root as an absolute one does: docker starts it at its daemon's own cgroup, and skiff has no
 * daemon (the caller's own cgroup differs from one command to the next: `exec` or `rm` from
 * another shell could not find the container). Empty or absent: skiff's default parent.
 */
export function cgroupParentPath(value: string | undefined): string {
  if (!value) return DEFAULT_CGROUP_PARENT;
  const parts: string[] = [];
  for (const part of value.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/**
 * Why a --cgroup-parent cannot be used, or undefined. docker takes any value; skiff refuses the
 * two that would break another container or the path itself: a component named like a container
 * id (the parent would be another container's own cgroup: its limits would bind this one, its
 * removal would kill or be blocked by it) and a NUL byte (a C string would end there).
 */
export function cgroupParentProblem(value: string): string | undefined {
  if (value.includes("\0")) return `invalid cgroup parent ${JSON.stringify(value)}: it contains a NUL byte`;
  const inside = cgroupParentPath(value).split("/").find((part) => CONTAINER_ID.test(part));
  if (inside) {
    return `invalid cgroup parent "${value}": ${
      inside.slice(0, 12)
    } names a container's own cgroup, and a container cannot be made inside another's`;
  }
}

/** Whether a container's parent group is skiff's own (removed with the last container) or the user's (kept, as docker keeps it). */
export function isDefaultCgroupParent(parent: string): boolean {
  return parent === DEFAULT_CGROUP_PARENT;
}
