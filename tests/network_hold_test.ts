// docker 28's hold on published host ports: while a container runs, the publishing skiff (the
// foreground run, or the supervisor of a detached container) keeps a socket bound to each published
// port, so another process cannot bind it and then never see a packet (the DNAT comes first).
// Binds only on 127.0.0.1; no traffic.

import assert from "node:assert/strict";
import { close, udpPortBind } from "../ffi/libc.ts";
import { withBusybox } from "./helpers.ts";

/** A free loopback port for both protocols (bound and let go). */
function freePort(): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const fd = udpPortBind("127.0.0.1", port);
    if (fd !== undefined) {
      close(fd);
      return port;
    }
  }
}

const tcpBindable = (port: number) => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close(); // SO_REUSEADDR, as Go servers bind
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) return false;
    throw e;
  }
};

const udpBindable = (port: number) => {
  const fd = udpPortBind("127.0.0.1", port);
  if (fd === undefined) return false;
  close(fd);
  return true;
};

async function until(test: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(what);
}

Deno.test("published ports are held against other processes while the container runs (docker 28)", async () => {
  await withBusybox(async (root) => {
    const tcp = freePort(), udp = freePort();
    await root.ok([
      "run",
      "-d",
      "--name",
      "held",
      "-p",
      `127.0.0.1:${tcp}:80`,
      "-p",
      `127.0.0.1:${udp}:53/udp`,
      "busybox",
      "sleep",
      "60",
    ]);
    assert.ok(!tcpBindable(tcp), "tcp port held");
    assert.ok(!udpBindable(udp), "udp port held");
    // stopped: the supervisor lets go with the rules
    await root.ok(["stop", "-t", "0", "held"]);
    await until(() => tcpBindable(tcp) && udpBindable(udp), "released at stop");
    // started again: held again
    await root.ok(["start", "held"]);
    assert.ok(!tcpBindable(tcp));
    await root.ok(["rm", "-f", "held"]);
    await until(() => tcpBindable(tcp) && udpBindable(udp), "released at rm -f");

    // a foreground run holds it too, and the port is free once it returns
    const fg = await root.skiff(["run", "--rm", "-p", `127.0.0.1:${tcp}:80`, "busybox", "true"]);
    assert.equal(fg.code, 0, fg.stderr);
    assert.ok(tcpBindable(tcp));
  });
});
