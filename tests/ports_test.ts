// Port specs (-p, -P, --expose) parsed as docker parses them, with docker's errors; what a start
// publishes; docker's ways of showing them (inspect's Ports, ps's PORTS column, `port`). Pure: no
// root needed.

import assert from "node:assert/strict";
import {
  displayablePorts,
  isIP,
  networkPorts,
  parseExpose,
  parsePortSpec,
  portCommandLines,
  portSettings,
  publishRequests,
} from "../lib/network/ports.ts";
import { SkiffError } from "../lib/errors.ts";

const b = (HostIp: string, HostPort: string) => ({ HostIp, HostPort });

Deno.test("ports: -p forms parse as docker's nat.ParsePortSpec", () => {
  assert.deepEqual(parsePortSpec("80"), [{ port: "80/tcp", binding: b("", "") }]);
  assert.deepEqual(parsePortSpec("8080:80"), [{ port: "80/tcp", binding: b("", "8080") }]);
  assert.deepEqual(parsePortSpec("127.0.0.1:8080:80/udp"), [{
    port: "80/udp",
    binding: b("127.0.0.1", "8080"),
  }]);
  assert.deepEqual(parsePortSpec("127.0.0.1::80"), [{ port: "80/tcp", binding: b("127.0.0.1", "") }]);
  assert.deepEqual(parsePortSpec("[::1]:8080:80"), [{ port: "80/tcp", binding: b("::1", "8080") }]);
  assert.deepEqual(parsePortSpec("80/TCP"), [{ port: "80/tcp", binding: b("", "") }]);
  assert.deepEqual(parsePortSpec("8000-8002:80-82"), [
    { port: "80/tcp", binding: b("", "8000") },
    { port: "81/tcp", binding: b("", "8001") },
    { port: "82/tcp", binding: b("", "8002") },
  ]);
  // a host range for one container port: any free port of it
  assert.deepEqual(parsePortSpec("8000-8010:80"), [{ port: "80/tcp", binding: b("", "8000-8010") }]);
  assert.deepEqual(parsePortSpec("80-81"), [
    { port: "80/tcp", binding: b("", "") },
    { port: "81/tcp", binding: b("", "") },
  ]);
});

Deno.test("ports: bad -p specs fail with docker's words and exit 125", () => {
  const cases: [string, string][] = [
    ["abc", "invalid containerPort: abc"],
    ["70000", "invalid containerPort: 70000"],
    ["8080:70000", "invalid containerPort: 70000"],
    ["99999:80", "invalid hostPort: 99999"],
    ["x:80", "invalid hostPort: x"],
    ["8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"],
    ["90-80", "invalid containerPort: 90-80"],
    ["1.2.3:80:80", "invalid IP address: 1.2.3"],
    ["256.1.1.1:80:80", "invalid IP address: 256.1.1.1"],
    ["80/sctx", "invalid proto: sctx"],
    ["8080:", "no port specified: 8080:<empty>"],
  ];
  for (const [spec, message] of cases) {
    assert.throws(() => parsePortSpec(spec), (e: unknown) => {
      assert.ok(e instanceof SkiffError, spec);
      assert.equal(e.message, message, spec);
      assert.equal(e.exitCode, 125);
      return true;
    });
  }
});

Deno.test("ports: --expose ports and ranges; docker's errors", () => {
  assert.deepEqual(parseExpose("80"), ["80/tcp"]);
  assert.deepEqual(parseExpose("53/udp"), ["53/udp"]);
  assert.deepEqual(parseExpose("7000-7002"), ["7000/tcp", "7001/tcp", "7002/tcp"]);
  assert.throws(() => parseExpose("80:80"), /^ClientCheckError: invalid port format for --expose: 80:80$/);
  assert.throws(
    () => parseExpose("x"),
    {
      message: 'invalid range format for --expose: x, error: strconv.ParseUint: parsing "x": invalid syntax',
    },
  );
  assert.throws(
    () => parseExpose("9-1"),
    { message: "invalid range format for --expose: 9-1, error: invalid range specified for port: 9-1" },
  );
});

Deno.test("ports: stored as docker stores them (PortBindings, ExposedPorts, PublishAllPorts)", () => {
  const s = portSettings(["8080:80", "127.0.0.1:9090:80", "53:53/udp"], true, ["443", "7000-7001/udp"]);
  assert.deepEqual(s.portBindings, {
    "80/tcp": [b("", "8080"), b("127.0.0.1", "9090")],
    "53/udp": [b("", "53")],
  });
  assert.deepEqual(Object.keys(s.exposedPorts).sort(), [
    "443/tcp",
    "53/udp",
    "7000/udp",
    "7001/udp",
    "80/tcp",
  ]);
  assert.equal(s.publishAll, true);
  // docker's long form
  assert.deepEqual(portSettings(["target=80,published=8080,protocol=udp"], false, []).portBindings, {
    "80/udp": [b("", "8080")],
  });
});

Deno.test("ports: what a start publishes, -P included", () => {
  const reqs = publishRequests(
    { "80/tcp": [b("127.0.0.1", "8080")], "81/tcp": [b("", "9000-9010")] },
    { "80/tcp": {}, "81/tcp": {}, "443/tcp": {}, "53/udp": {} },
    true,
  );
  assert.deepEqual(reqs, [
    { proto: "udp", containerPort: 53, hostIp: "", hostPortFirst: 0, hostPortLast: 0 },
    { proto: "tcp", containerPort: 80, hostIp: "127.0.0.1", hostPortFirst: 8080, hostPortLast: 8080 },
    { proto: "tcp", containerPort: 81, hostIp: "", hostPortFirst: 9000, hostPortLast: 9010 },
    { proto: "tcp", containerPort: 443, hostIp: "", hostPortFirst: 0, hostPortLast: 0 },
  ]);
  // without -P only the bindings
  assert.equal(publishRequests({ "80/tcp": [b("", "")] }, { "443/tcp": {} }, false).length, 1);
});

Deno.test("ports: inspect's Ports, exposed-only as null", () => {
  assert.deepEqual(
    networkPorts({ "80/tcp": {}, "443/tcp": {} }, [{
      proto: "tcp",
      hostIp: "0.0.0.0",
      hostPort: 8080,
      containerPort: 80,
    }]),
    { "80/tcp": [b("0.0.0.0", "8080")], "443/tcp": null },
  );
});

Deno.test("ports: ps's PORTS column as docker's DisplayablePorts", () => {
  assert.equal(displayablePorts({ "80/tcp": [b("0.0.0.0", "8080")] }), "0.0.0.0:8080->80/tcp");
  assert.equal(
    displayablePorts({ "80/tcp": null, "81/tcp": null, "82/tcp": null, "90/udp": null }),
    "80-82/tcp, 90/udp",
  );
  assert.equal(
    displayablePorts({
      "80/tcp": [b("0.0.0.0", "80")],
      "81/tcp": [b("0.0.0.0", "81")],
      "82/tcp": [b("0.0.0.0", "8082")],
    }),
    "0.0.0.0:80-81->80-81/tcp, 0.0.0.0:8082->82/tcp",
  );
  assert.equal(displayablePorts({ "80/tcp": [b("::", "8080")] }), "[::]:8080->80/tcp");
  assert.equal(displayablePorts({}), "");
});

Deno.test("ports: `port` lines and errors as docker's", () => {
  const ports = { "80/tcp": [b("0.0.0.0", "8080")], "53/udp": [b("127.0.0.1", "5353")], "443/tcp": null };
  assert.deepEqual(portCommandLines(ports, "web"), ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080"]);
  assert.deepEqual(portCommandLines(ports, "web", "80"), ["0.0.0.0:8080"]);
  assert.deepEqual(portCommandLines(ports, "web", "53/udp"), ["127.0.0.1:5353"]);
  assert.throws(() => portCommandLines(ports, "web", "443"), (e: unknown) => {
    assert.ok(e instanceof SkiffError);
    assert.equal(e.message, "No public port '443/tcp' published for web");
    assert.equal(e.exitCode, 1);
    return true;
  });
  assert.throws(
    () => portCommandLines(ports, "web", "http"),
    { message: 'invalid port (http): strconv.ParseUint: parsing "http": invalid syntax' },
  );
});

Deno.test("ports: IP addresses as Go's net.ParseIP", () => {
  for (
    const ok of [
      "0.0.0.0",
      "127.0.0.1",
      "::",
      "::1",
      "fe80::1",
      "2001:db8::8:800:200c:417a",
      "::ffff:1.2.3.4",
    ]
  ) {
    assert.ok(isIP(ok), ok);
  }
  for (const bad of ["1.2.3", "1.2.3.4.5", "300.1.1.1", ":::", "1::2::3", "abc", "", "g::1"]) {
    assert.ok(!isIP(bad), bad);
  }
});

Deno.test("ports: an image's exposed keys never reach a rule unless they are ports; ranges are expanded", () => {
  for (const key of ["80/tcp; flush ruleset", "80;x/tcp", "0/tcp", "65536/tcp", "80/icmp", "1-2;3/tcp"]) {
    assert.throws(() => publishRequests(undefined, { [key]: {} }, true), /invalid containerPort/, key);
  }
  const reqs = publishRequests(undefined, { "8000-8002/udp": {} }, true);
  assert.deepEqual(reqs.map((r) => `${r.containerPort}/${r.proto}`), ["8000/udp", "8001/udp", "8002/udp"]);
});
