// A new container id, apart from containers.ts: the foreground run names its cgroup before it loads
// the state modules.

/** 64 hex digits, as docker's. */
export function newContainerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
