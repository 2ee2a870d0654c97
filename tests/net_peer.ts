// Small network peers for the NAT tests, run inside a test's own network namespaces
// (`ip netns exec NS deno run -A --unstable-net tests/net_peer.ts MODE ...`):
//   udp-echo PORT              answers every datagram with its bytes
//   tcp-whoami PORT            answers each connection with the peer's address and closes
//   udp-send HOST PORT TEXT    sends TEXT, prints the answer (exit 1 after 3 s without one)

const [mode, ...args] = Deno.args;
if (mode === "udp-echo") {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: Number(args[0]) });
  for await (const [data, addr] of sock) await sock.send(data, addr);
} else if (mode === "tcp-whoami") {
  for await (const conn of Deno.listen({ hostname: "0.0.0.0", port: Number(args[0]) })) {
    const peer = conn.remoteAddr as Deno.NetAddr;
    await conn.write(new TextEncoder().encode(peer.hostname + "\n"));
    conn.close();
  }
} else if (mode === "udp-send") {
  const [host, port, text] = args;
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const timer = setTimeout(() => Deno.exit(1), 3000);
  await sock.send(new TextEncoder().encode(text), { transport: "udp", hostname: host, port: Number(port) });
  const [data] = await sock.receive();
  clearTimeout(timer);
  console.log(new TextDecoder().decode(data));
  Deno.exit(0);
} else {
  console.error(`net_peer: unknown mode ${mode}`);
  Deno.exit(2);
}
