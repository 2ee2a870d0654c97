// --cgroup-parent and the per-device block I/O flags as data (lib/cgroups/parent.ts, blkio.ts,
// support.ts, the template's Stringer): no root, no container.

import * as assert from "node:assert/strict";
import {
  cgroupParentPath,
  cgroupParentProblem,
  DEFAULT_CGROUP_PARENT,
  isDefaultCgroupParent,
} from "../lib/cgroups/parent.ts";
import { ioMaxLines, parseThrottleDevice, parseWeightDevice, ramInBytes } from "../lib/cgroups/blkio.ts";
import { discardUnsupported, type HostSupport, type Resources } from "../lib/cgroups/support.ts";
import { cgroupLimitsOf, throttleEntries } from "../lib/cgroups/limits.ts";
import { type CgroupOwner, createCgroup } from "../lib/cgroups/mod.ts";
import { NO_RESOURCE_LIMITS } from "../lib/state/types.ts";
import { goStringer, goStruct, renderTemplate } from "../lib/format/template.ts";

Deno.test("cgroup parent: cleaned as runc's CleanPath, always below the hierarchy's root", () => {
  const cases: [string | undefined, string][] = [
    [undefined, DEFAULT_CGROUP_PARENT],
    ["", DEFAULT_CGROUP_PARENT],
    ["skiffcmp-cg-x", "skiffcmp-cg-x"],
    ["/skiffcmp-cg-x", "skiffcmp-cg-x"],
    ["a/b/c", "a/b/c"],
    ["/a//b/./c/", "a/b/c"],
    // docker's peer put these at /<id>, /skiffcmp-x/<id>, /skiffcmp-b/<id> (runc's CleanPath)
    ["../../..", ""],
    ["/../../skiffcmp-x", "skiffcmp-x"],
    ["skiffcmp-a/../skiffcmp-b", "skiffcmp-b"],
    ["a/../../../../etc", "etc"],
    [".", ""],
    ["/", ""],
    ["..", ""],
    ["a/..", ""],
    ["...", "..."], // a name, not a step up
    ["with space", "with space"],
  ];
  for (const [value, expected] of cases) {
    const cleaned = cgroupParentPath(value);
    assert.equal(cleaned, expected, `${value}`);
    // nothing of the result climbs or starts at "/": joined to a mount it stays below it
    assert.ok(!cleaned.split("/").includes("..") && !cleaned.startsWith("/"), cleaned);
  }
  assert.ok(isDefaultCgroupParent(cgroupParentPath("/skiff")));
  assert.ok(!isDefaultCgroupParent(cgroupParentPath("skiff/x")));
});

Deno.test("cgroup parent: a parent inside another container's own cgroup is refused", () => {
  const id = "0123456789abcdef".repeat(4);
  for (const value of [`skiff/${id}`, `/${id}`, `x/${id}/y`, `a/../skiff/${id}`]) {
    assert.equal(
      cgroupParentProblem(value),
      `invalid cgroup parent "${value}": 0123456789ab names a container's own cgroup, and a container cannot be made inside another's`,
    );
  }
  assert.match(cgroupParentProblem("a\0b") ?? "", /NUL byte/);
  // a name that only looks like part of an id is fine
  for (const value of ["skiff", "docker", id.slice(0, 63), `${id}0`, id.toUpperCase(), "../../.."]) {
    assert.equal(cgroupParentProblem(value), undefined, value);
  }
});

Deno.test("blkio: rates in go-units' RAMInBytes, as docker 20.10's CLI reads them", () => {
  const cases: [string, number | undefined][] = [
    ["0", 0],
    ["100", 100],
    ["100b", 100],
    ["10k", 10240],
    ["10K", 10240],
    ["10kb", 10240],
    ["1mb", 1048576],
    ["1MiB", 1048576],
    ["1mi", 1048576],
    ["1.5mb", 1572864],
    ["1 mb", 1048576],
    ["1tb", 1099511627776],
    ["2g", 2147483648],
    ["abc", undefined],
    ["-1", undefined],
    ["+5", undefined],
    ["1.2.3", undefined],
    ["1  mb", undefined],
    ["1bb", undefined],
    ["1:2", undefined],
    ["", undefined],
    ["99999999pb", undefined], // beyond an exact integer
  ];
  for (const [text, bytes] of cases) assert.equal(ramInBytes(text), bytes, text);
});

Deno.test("blkio: --device-*-bps/iops and --blkio-weight-device values with docker's words", () => {
  assert.deepEqual(parseThrottleDevice("/dev/vda:1mb", false), { Path: "/dev/vda", Rate: 1048576 });
  assert.deepEqual(parseThrottleDevice("/dev/vda:0", false), { Path: "/dev/vda", Rate: 0 });
  assert.deepEqual(parseThrottleDevice("/dev/vda:100", true), { Path: "/dev/vda", Rate: 100 });
  // the path is checked for its /dev/ prefix only: docker stats it when the container starts
  assert.deepEqual(parseThrottleDevice("/dev/nonexistent:1k", false), {
    Path: "/dev/nonexistent",
    Rate: 1024,
  });
  assert.deepEqual(parseWeightDevice("/dev/vda:300"), { Path: "/dev/vda", Weight: 300 });
  assert.deepEqual(parseWeightDevice("/dev/vda:0"), { Path: "/dev/vda", Weight: 0 });
  assert.deepEqual(parseWeightDevice("/dev/vda:10"), { Path: "/dev/vda", Weight: 10 });
  assert.deepEqual(parseWeightDevice("/dev/vda:1000"), { Path: "/dev/vda", Weight: 1000 });

  const bps = (v: string) =>
    `invalid rate for device: ${v}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb`;
  const iops = (v: string) =>
    `invalid rate for device: ${v}. The correct format is <device-path>:<number>. Number must be a positive integer`;
  // each as the peer (docker 20.10.24) worded it
  const refusals: [() => unknown, string][] = [
    [() => parseThrottleDevice("/nonexistent:1mb", false), "bad format for device path: /nonexistent:1mb"],
    [() => parseThrottleDevice("vda:1mb", false), "bad format for device path: vda:1mb"],
    [() => parseThrottleDevice(":1mb", false), "bad format for device path: :1mb"],
    [() => parseThrottleDevice("/dev/vda", false), "bad format: /dev/vda"],
    [() => parseThrottleDevice("/dev/vda:abc", false), bps("/dev/vda:abc")],
    [() => parseThrottleDevice("/dev/vda:-1", false), bps("/dev/vda:-1")],
    [() => parseThrottleDevice("/dev/vda:1:2", false), bps("/dev/vda:1:2")],
    [() => parseThrottleDevice("/dev/vda:abc", true), iops("/dev/vda:abc")],
    [() => parseThrottleDevice("/dev/vda:1mb", true), iops("/dev/vda:1mb")],
    [() => parseThrottleDevice("/dev/vda:-1", true), iops("/dev/vda:-1")],
    [() => parseThrottleDevice("/dev/vda:+5", true), iops("/dev/vda:+5")],
    [() => parseThrottleDevice("/dev/vda:99999999999999999999", true), iops("/dev/vda:99999999999999999999")],
    [() => parseWeightDevice("/dev/vda:5"), "invalid weight for device: /dev/vda:5"],
    [() => parseWeightDevice("/dev/vda:1001"), "invalid weight for device: /dev/vda:1001"],
    [() => parseWeightDevice("/dev/vda:abc"), "invalid weight for device: /dev/vda:abc"],
    [() => parseWeightDevice("/nonexistent:300"), "bad format for device path: /nonexistent:300"],
    [() => parseWeightDevice("/dev/vda"), "bad format: /dev/vda"],
  ];
  for (const [parse, words] of refusals) assert.throws(parse, (e) => (e as Error).message === words, words);
});

Deno.test("blkio: v2 io.max lines, one per device; 0 is max (v1's 'no limit'; io.max refuses 0)", () => {
  assert.deepEqual(
    ioMaxLines([
      ["readBps", "254:0", 1048576],
      ["writeBps", "254:0", 10240],
      ["readIops", "8:0", 100],
      ["writeIops", "254:0", 0],
    ]),
    ["254:0 rbps=1048576 wbps=10240 wiops=max", "8:0 riops=100"],
  );
  assert.deepEqual(ioMaxLines([]), []);
});

Deno.test("blkio: the limits of a HostConfig take each device's numbers from the host; a missing one adds no line", () => {
  const limits = cgroupLimitsOf({
    ...NO_RESOURCE_LIMITS,
    Privileged: false,
    BlkioDeviceReadBps: [{ Path: "/dev/null", Rate: 1024 }, { Path: "/dev/skiff-nonexistent", Rate: 1 }],
    BlkioDeviceWriteIOps: [{ Path: "/dev/zero", Rate: 7 }],
    BlkioWeightDevice: [{ Path: "/dev/null", Weight: 300 }],
  });
  // /dev/null is 1:3 and /dev/zero 1:5 on Linux; the start reports the missing one (blkioDeviceProblem)
  assert.deepEqual(throttleEntries(limits), [["readBps", "1:3", 1024], ["writeIops", "1:5", 7]]);
  assert.deepEqual(limits.blkioWeightDevices, [{ device: "1:3", weight: 300 }]);
  assert.equal(cgroupLimitsOf({ ...NO_RESOURCE_LIMITS, Privileged: false }).blkioThrottle, undefined);
});

Deno.test("blkio: a host without per-device weights or throttles discards them with docker's warnings", () => {
  const all: HostSupport = {
    memoryLimit: true,
    swapLimit: true,
    memoryReservation: true,
    memorySwappiness: true,
    oomKillDisable: true,
    pidsLimit: true,
    cpuShares: true,
    cpuCfs: true,
    cpuset: true,
    blkioWeight: true,
    blkioWeightDevice: true,
    blkioReadBpsDevice: true,
    blkioWriteBpsDevice: true,
    blkioReadIOpsDevice: true,
    blkioWriteIOpsDevice: true,
  };
  const asked = (): Partial<Resources> => ({
    BlkioWeightDevice: [{ Path: "/dev/vda", Weight: 300 }],
    BlkioDeviceReadBps: [{ Path: "/dev/vda", Rate: 1 }],
    BlkioDeviceWriteBps: [{ Path: "/dev/vda", Rate: 2 }],
    BlkioDeviceReadIOps: [{ Path: "/dev/vda", Rate: 3 }],
    BlkioDeviceWriteIOps: [{ Path: "/dev/vda", Rate: 4 }],
  });
  const kept = asked();
  assert.deepEqual(discardUnsupported(kept, all), []);
  assert.deepEqual(kept, asked());
  const dropped = asked();
  assert.deepEqual(
    discardUnsupported(dropped, {
      ...all,
      blkioWeightDevice: false,
      blkioReadBpsDevice: false,
      blkioWriteBpsDevice: false,
      blkioReadIOpsDevice: false,
      blkioWriteIOpsDevice: false,
    }),
    [
      "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
      "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
      "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
      "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
      "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
    ],
  );
  // docker keeps an empty list, as inspect then shows it
  assert.deepEqual(dropped, {
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
  });
  // only a list that asks for something is discarded (and warned about)
  const none: Partial<Resources> = { BlkioDeviceReadBps: [] };
  assert.deepEqual(discardUnsupported(none, { ...all, blkioReadBpsDevice: false }), []);
});

Deno.test("template: a struct with Go's String() prints as it, its JSON keeps the fields", () => {
  const device = (Path: string, Rate: number) =>
    goStringer(goStruct("*blkiodev.ThrottleDevice", { Path, Rate }), `${Path}:${Rate}`);
  const data = { List: [device("/dev/vda", 1048576), device("/dev/vda", 2097152)] };
  // docker 20.10's peer: `[/dev/vda:1048576 /dev/vda:2097152]` and its JSON
  assert.equal(renderTemplate("{{.List}}", data), "[/dev/vda:1048576 /dev/vda:2097152]");
  assert.equal(
    renderTemplate("{{json .List}}", data),
    '[{"Path":"/dev/vda","Rate":1048576},{"Path":"/dev/vda","Rate":2097152}]',
  );
  assert.equal(renderTemplate("{{(index .List 0).Rate}}", data), "1048576");
  assert.equal(JSON.stringify(data.List[0]), '{"Path":"/dev/vda","Rate":1048576}');
});

Deno.test("createCgroup: a parent inside a container's cgroup is refused from a record too (changed on disk)", () => {
  const owner = { cgroupParent: "skiff" } as CgroupOwner;
  assert.throws(
    () =>
      createCgroup(owner, "a".repeat(64), { privileged: false }, { CgroupParent: `skiff/${"b".repeat(64)}` }),
    /a container cannot be made inside another's/,
  );
});
