// The default bridge goes when its last container has gone, with its NAT and, once no skiff bridge is
// left, skiff's nft table: a host that runs no container keeps nothing of skiff's network (as its
// cgroups: lib/cgroups). Deleting a bridge waits for RCU grace periods (~34 ms measured) and the veths
// of the last containers go with their namespaces ~60 ms after the exit, so it is not done on the
// exiting run's path: the run that releases the last lease of its root starts `skiff __netgc BRIDGE
// SUBNET` (detached; no state root in its command line), which waits for the bridge to have no port
// for GRACE_MS (a burst of runs keeps the bridge), then removes it under BRIDGE_LOCK held exclusive.
// Every endpoint holds BRIDGE_LOCK shared from ensuring the bridge to attaching its veth, so the
// bridge is never deleted under a run that is attaching to it; the next run makes it again.

import { close, LOCK, O, open } from "../../ffi/mod.ts";
import { flock } from "../../ffi/libc.ts";
import { selfCommand } from "../runtime/self.ts";

export const BRIDGE_LOCK = "/run/skiff/bridge.lock";
/** Held by a pending collector for its life: one at a time. */
const GC_LOCK = "/run/skiff/netgc.lock";
const GRACE_MS = 1500;
const GIVE_UP_MS = 10_000;

function lockFd(path: string): number {
  Deno.mkdirSync("/run/skiff", { recursive: true, mode: 0o700 });
  return open(path, O.RDWR | O.CREAT | O.CLOEXEC, 0o600);
}

/** Runs `fn` while holding BRIDGE_LOCK shared: the collector does not delete the bridge meanwhile. */
export function withBridgeInUse<T>(fn: () => T): T {
  const fd = lockFd(BRIDGE_LOCK);
  try {
    flock(fd, LOCK.SH, BRIDGE_LOCK);
    return fn();
  } finally {
    close(fd);
  }
}

/** The bridge's ports (veths attached), or undefined when the bridge does not exist. */
function ports(bridge: string): number | undefined {
  try {
    return [...Deno.readDirSync(`/sys/class/net/${bridge}/brif`)].length;
  } catch {
    return undefined;
  }
}

/** Starts a collector for `bridge` unless one is pending already (best effort: never fails a run). */
export function scheduleBridgeGc(bridge: string, subnet: string): void {
  // no bridge, nothing to collect: a `--network none` run never pays for a second Deno process
  if (ports(bridge) === undefined) return;
  try {
    const fd = lockFd(GC_LOCK);
    try {
      if (!flock(fd, LOCK.EX | LOCK.NB, GC_LOCK)) return; // a pending one will look again
    } finally {
      close(fd); // released: the collector takes it for itself
    }
    const { cmd, args } = selfCommand(["__netgc", bridge, subnet]);
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    child.unref();
  } catch { /* the next release schedules again */ }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `skiff __netgc BRIDGE SUBNET`: removes the bridge once it had no port for GRACE_MS. */
export async function netgcMain([bridge, subnet]: string[]): Promise<number> {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge ?? "") || !/^[0-9./]+$/.test(subnet ?? "")) return 2;
  const gc = lockFd(GC_LOCK);
  try {
    if (!flock(gc, LOCK.EX | LOCK.NB, GC_LOCK)) return 0; // another collector is pending
    const start = Date.now();
    let emptySince = ports(bridge) === 0 ? Date.now() : undefined;
    while (Date.now() - start < GIVE_UP_MS) {
      const n = ports(bridge);
      if (n === undefined) return 0; // gone already
      if (n > 0) emptySince = undefined;
      else emptySince ??= Date.now();
      if (emptySince !== undefined && Date.now() - emptySince >= GRACE_MS) break;
      await sleep(200);
    }
    if (emptySince === undefined || Date.now() - emptySince < GRACE_MS) return 0; // in use: its last run schedules again
    const fd = lockFd(BRIDGE_LOCK);
    try {
      flock(fd, LOCK.EX, BRIDGE_LOCK);
      if (ports(bridge) !== 0) return 0; // a run attached meanwhile
      const [{ removeNetworkNat, dropTableIfUnused, firewall }, { withRtnl }] = await Promise.all([
        import("./nat.ts"),
        import("./rtnl.ts"),
      ]);
      // the entries of both backends: earlier runs may have used the other (SKIFF_FIREWALL)
      const used = firewall();
      if (used) removeNetworkNat({ bridge, subnet }, used);
      for (const fw of ["nft", "iptables"] as const) {
        if (fw === used) continue;
        try {
          removeNetworkNat({ bridge, subnet }, fw);
        } catch { /* that tool is not here */ }
      }
      withRtnl((rtnl) => rtnl.deleteLink(bridge));
      dropTableIfUnused();
    } finally {
      close(fd);
    }
    return 0;
  } catch {
    return 1;
  } finally {
    close(gc);
  }
}

const netgcVerb = (args: string[]) => netgcMain(args);
export default netgcVerb;
