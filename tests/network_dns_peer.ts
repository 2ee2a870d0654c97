// A tiny DNS server for the name resolution tests, run inside a test's own network namespace
// (`ip netns exec NS deno run -A --unstable-net tests/network_dns_peer.ts IP NAME ADDRESS`): answers
// A queries for NAME with ADDRESS, NOERROR without answers for its other types, NXDOMAIN otherwise.
// It stands for "the host's resolver" of a container, so tests never query a real one.

const [ip, name, address] = Deno.args;
const sock = Deno.listenDatagram({ transport: "udp", hostname: ip, port: 53 });

/** The question's name (lowercase) and where the question's type starts. */
function question(msg: Uint8Array): { qname: string; end: number } {
  const labels: string[] = [];
  let i = 12;
  while (msg[i] !== 0) {
    labels.push(new TextDecoder().decode(msg.subarray(i + 1, i + 1 + msg[i])));
    i += msg[i] + 1;
  }
  return { qname: labels.join(".").toLowerCase(), end: i + 1 };
}

for await (const [msg, peer] of sock) {
  if (msg.length < 17) continue;
  const { qname, end } = question(msg);
  const qtype = (msg[end] << 8) | msg[end + 1];
  const known = qname === name.toLowerCase();
  const answer = known && qtype === 1;
  const head = new Uint8Array(12);
  head.set(msg.subarray(0, 2)); // id
  head[2] = 0x80 | (msg[2] & 0x01); // QR, RD as asked
  head[3] = 0x80 | (known ? 0 : 3); // RA, NOERROR or NXDOMAIN
  head[5] = 1; // one question
  head[7] = answer ? 1 : 0;
  const q = msg.subarray(12, end + 4);
  const rr = answer
    ? new Uint8Array([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address.split(".").map(Number)])
    : new Uint8Array();
  const out = new Uint8Array(12 + q.length + rr.length);
  out.set(head);
  out.set(q, 12);
  out.set(rr, 12 + q.length);
  await sock.send(out, peer);
}
