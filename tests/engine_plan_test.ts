// Unit tests of the engine's pure parts, without root: error kinds, the one HostConfig → cgroup
// limits mapping (the cgroup plan), the mount plan, the namespaces, the resource list, the
// mountinfo parser, the per-architecture syscall numbers.

import assert from "node:assert/strict";
import {
  httpStatusOf,
  kindOf,
  NoSuchContainerError,
  NotFoundError,
  SkiffError,
  UsageError,
  withExitCode,
} from "../lib/errors.ts";
import { cgroupLimitsOf, type HostResources } from "../lib/cgroups/limits.ts";
import { parseMountInfo } from "../lib/mountinfo.ts";
import { SYSCALL_NUMBERS } from "../ffi/libc.ts";
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from "../lib/seccomp/syscall_tables.ts";
import { ContainerOpError } from "../lib/container/ops.ts";
import { RemoveError } from "../lib/engine/remove.ts";
import { CONTAINER_RESOURCES } from "../lib/engine/resources.ts";
import { mountsFor } from "../lib/runtime/mountplan.ts";
import {
  DEFAULT_NAMESPACES,
  MAX_MOUNT_DATA,
  overlayMountData,
  plainNetworkNamespaces,
} from "../lib/runtime/spec.ts";
import { removeTree } from "../lib/state/fsutil.ts";
import { NO_RESOURCE_LIMITS } from "../lib/state/types.ts";

Deno.test("errors: a kind per class, overridable, with a cause; kinds map to HTTP statuses", () => {
  assert.equal(new SkiffError("x").kind, "system");
  assert.equal(new SkiffError("x").exitCode, 125);
  assert.equal(new UsageError("bad flag").kind, "invalid-argument");
  assert.equal(new NotFoundError("gone").kind, "not-found");
  assert.equal(new ContainerOpError("Container x is not running").kind, "conflict");
  assert.equal(new RemoveError("cannot remove").kind, "conflict");
  const cause = new Error("EBUSY");
  const e = new SkiffError("busy", 1, { kind: "unavailable", cause });
  assert.equal(e.kind, "unavailable");
  assert.equal(e.cause, cause);
  assert.equal(kindOf(new Error("plain")), "system");
  assert.deepEqual(
    (["not-found", "conflict", "invalid-argument", "not-modified", "unavailable", "system"] as const).map(
      httpStatusOf,
    ),
    [404, 409, 400, 304, 503, 500],
  );
});

Deno.test("errors: one No such container error, docker's wording, its exit code per verb", () => {
  const e = new NoSuchContainerError("ghost");
  assert.equal(e.message, "No such container: ghost");
  assert.equal(e.kind, "not-found");
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.exitCode, 125);
  const forVerb = withExitCode(e, 1);
  assert.equal(forVerb.exitCode, 1);
  assert.equal(forVerb.kind, "not-found");
  assert.equal(forVerb.message, e.message);
  assert.equal(new NoSuchContainerError("ghost", 1).exitCode, 1);
});

const NO_LIMITS: HostResources = { ...NO_RESOURCE_LIMITS, Privileged: false };

Deno.test("cgroupLimitsOf: every HostConfig resource field reaches the limits", () => {
  const limits = cgroupLimitsOf({
    Memory: 64 << 20,
    MemorySwap: -1,
    NanoCpus: 1.5e9,
    CpuShares: 512,
    CpusetCpus: "0",
    CpusetMems: "0",
    PidsLimit: 10,
    BlkioWeight: 300,
    CpuPeriod: 100000,
    CpuQuota: 50000,
    MemoryReservation: 32 << 20,
    MemorySwappiness: 60,
    OomKillDisable: true,
    DeviceCgroupRules: ["c 1:3 rwm"],
    Privileged: true,
    // /dev/null is 1:3 on every Linux: the device's numbers come from a stat of the host's node
    BlkioWeightDevice: [{ Path: "/dev/null", Weight: 200 }],
    BlkioDeviceReadBps: [{ Path: "/dev/null", Rate: 1048576 }],
    BlkioDeviceWriteBps: [{ Path: "/dev/null", Rate: 2097152 }],
    BlkioDeviceReadIOps: [{ Path: "/dev/null", Rate: 100 }],
    BlkioDeviceWriteIOps: [{ Path: "/dev/null", Rate: 200 }],
  });
  assert.deepEqual(limits, {
    memory: 64 << 20,
    memorySwap: -1,
    nanoCpus: 1.5e9,
    cpuShares: 512,
    cpusetCpus: "0",
    cpusetMems: "0",
    pidsLimit: 10,
    blkioWeight: 300,
    cpuPeriod: 100000,
    cpuQuota: 50000,
    memoryReservation: 32 << 20,
    memorySwappiness: 60,
    oomKillDisable: true,
    deviceRules: [{ type: "c", major: 1, minor: 3, access: "rwm" }],
    privileged: true,
    blkioThrottle: {
      readBps: [{ device: "1:3", rate: 1048576 }],
      writeBps: [{ device: "1:3", rate: 2097152 }],
      readIops: [{ device: "1:3", rate: 100 }],
      writeIops: [{ device: "1:3", rate: 200 }],
    },
    blkioWeightDevices: [{ device: "1:3", weight: 200 }],
  });
});

Deno.test("cgroupLimitsOf: docker's 'unset' values (null pids limit, null swappiness) are no limit", () => {
  const limits = cgroupLimitsOf({ ...NO_LIMITS, MemorySwappiness: null, DeviceCgroupRules: null });
  assert.equal(limits.pidsLimit, undefined);
  assert.equal(limits.memorySwappiness, undefined);
  assert.equal(limits.deviceRules, undefined);
  assert.equal(limits.privileged, false);
});

const MOUNTINFO = [
  "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
  "35 22 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory",
  "36 22 0:31 /docker /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
  "90 1 0:50 / /var/lib/skiff/containers/a\\040b/merged rw - overlay overlay rw,lowerdir=/l",
  "not a mountinfo line",
].join("\n");

Deno.test("parseMountInfo: fields, optional fields skipped, octal escapes undone, bad lines skipped", () => {
  const mounts = parseMountInfo(MOUNTINFO);
  assert.equal(mounts.length, 4);
  assert.deepEqual(mounts[1], {
    mountId: 35,
    parentId: 22,
    device: "0:30",
    root: "/",
    mountPoint: "/sys/fs/cgroup/memory",
    mountOptions: "rw,nosuid",
    fsType: "cgroup",
    source: "cgroup",
    superOptions: "rw,memory",
  });
  assert.equal(mounts[2].root, "/docker");
  assert.equal(mounts[3].mountPoint, "/var/lib/skiff/containers/a b/merged");
});

Deno.test("syscall numbers: the x86-64 and arm64 tables agree with the kernel headers' numbers", () => {
  const headers = { x86_64: X86_64_SYSCALLS, aarch64: AARCH64_SYSCALLS };
  for (const arch of ["x86_64", "aarch64"] as const) {
    for (const [name, nr] of Object.entries(SYSCALL_NUMBERS[arch])) {
      assert.equal(nr, headers[arch][name], `${arch} ${name}`);
    }
  }
  assert.deepEqual(Object.keys(SYSCALL_NUMBERS.aarch64).sort(), Object.keys(SYSCALL_NUMBERS.x86_64).sort());
});

const RECORD = {
  Mounts: [
    {
      Type: "bind",
      Source: "/srv/data",
      Destination: "/data",
      Mode: "",
      RW: false,
      Propagation: "rprivate",
    },
    {
      Type: "volume",
      Name: "v1",
      Source: "/var/lib/skiff/volumes/v1/_data",
      Destination: "/v",
      Mode: "z",
      RW: true,
      Propagation: "",
    },
    {
      Type: "volume",
      Name: "v2",
      Source: "/vol2",
      Destination: "/w",
      Mode: "nocopy",
      RW: true,
      Propagation: "",
    },
    { Type: "tmpfs", Source: "", Destination: "/t", Mode: "", RW: true, Propagation: "" },
  ],
  HostConfig: { Tmpfs: { "/run": "size=1m" } },
} as unknown as Parameters<typeof mountsFor>[0];

Deno.test("mountsFor: the container's overlay, binds (volumes copied up unless nocopy) and tmpfs", () => {
  const plan = mountsFor(RECORD, ["/l/b", "/l/a"], "/c/1");
  assert.deepEqual(plan.rootfs, {
    lowerDirs: ["/l/b", "/l/a"],
    upperDir: "/c/1/upper",
    workDir: "/c/1/work",
    target: "/c/1/merged",
  });
  assert.deepEqual(plan.binds.map((b) => [b.source, b.destination, b.readOnly, b.copyUp, b.recursive]), [
    ["/srv/data", "/data", true, false, "enabled"],
    ["/var/lib/skiff/volumes/v1/_data", "/v", false, true, "enabled"],
    ["/vol2", "/w", false, false, "enabled"],
  ]);
  assert.deepEqual(plan.tmpfs, [{ path: "/run", options: "size=1m" }]);
});

Deno.test("mountsFor: no copy-up at start for a record whose volumes were filled at create", () => {
  const volume = {
    Type: "volume",
    Source: "/s",
    Destination: "/d",
    Mode: "",
    RW: true,
    Propagation: "",
  } as const;
  const copyUps = (record: object) =>
    mountsFor({ HostConfig: {}, ...record } as Parameters<typeof mountsFor>[0], [], "/c/1").binds
      .map((b) => b.copyUp);
  // an older skiff's record: at start, unless nocopy (-v's mode, --mount's volume-nocopy) or --volumes-from
  assert.deepEqual(
    copyUps({ Mounts: [volume, { ...volume, Mode: "ro,nocopy" }, { ...volume, NoCopy: true }] }),
    [
      true,
      false,
      false,
    ],
  );
  // a record of this skiff: create copied them (create_run.ts)
  assert.deepEqual(copyUps({ Mounts: [volume], VolumesCopiedAtCreate: true }), [false]);
});

Deno.test("mountsFor: read-only (cp of a stopped container) reads the upper dir as the top layer", () => {
  const { rootfs } = mountsFor(RECORD, ["/l/b", "/l/a"], "/c/1", true);
  assert.deepEqual(rootfs, { lowerDirs: ["/c/1/upper", "/l/b", "/l/a"], target: "/c/1/merged" });
  assert.deepEqual(overlayMountData(rootfs), { data: "lowerdir=/c/1/upper:/l/b:/l/a" });
});

Deno.test("overlayMountData: full paths within a page; beyond it the layers are named by index", () => {
  const plan = { lowerDirs: ["/l/b", "/l/a"], upperDir: "/u", workDir: "/w", target: "/m" };
  assert.deepEqual(overlayMountData(plan), { data: "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w" });
  // --rm: no sync of the upper layer (only with an upper layer: a read-only mount has nothing to sync)
  assert.deepEqual(overlayMountData({ ...plan, volatile: true }), {
    data: "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w,volatile",
  });
  assert.deepEqual(overlayMountData({ lowerDirs: ["/u", "/l/a"], target: "/m", volatile: true }), {
    data: "lowerdir=/u:/l/a",
  });
  const many = Array.from({ length: 200 }, (_, i) => `/var/lib/skiff/layers/${"f".repeat(40)}${i}/fs`);
  const long = overlayMountData({ ...plan, lowerDirs: many });
  assert.ok(long.data.length <= MAX_MOUNT_DATA);
  assert.equal(long.data, `lowerdir=${many.map((_, i) => i).join(":")},upperdir=/u,workdir=/w`);
  assert.deepEqual(long.links, many);
});

Deno.test("namespaces: docker's default set, each made anew (no path), pid made by the stage", () => {
  assert.deepEqual(DEFAULT_NAMESPACES.map((n) => n.type), ["mount", "uts", "ipc", "network"]);
  assert.ok(DEFAULT_NAMESPACES.every((n) => n.path === undefined));
});

Deno.test("namespaces: none and host need nothing set up (no network code loads); the others do", () => {
  assert.deepEqual(plainNetworkNamespaces("none"), DEFAULT_NAMESPACES);
  assert.deepEqual(plainNetworkNamespaces("host")?.map((n) => n.type), ["mount", "uts", "ipc"]);
  for (const mode of ["bridge", "mynet", "container:web", ""]) {
    assert.equal(plainNetworkNamespaces(mode), undefined);
  }
  // copies: the caller may add paths without changing the defaults
  plainNetworkNamespaces("none")![3].path = "/proc/1/ns/net";
  assert.equal(DEFAULT_NAMESPACES[3].path, undefined);
});

Deno.test("resources: one list; the cgroup, published ports and the network endpoint go when the run ends, mounts and volumes with the container", () => {
  assert.deepEqual(CONTAINER_RESOURCES.map((r) => [r.name, r.releasedAt]), [
    ["cgroup", "exit"],
    ["ports", "exit"], // before the endpoint: its rules name the endpoint's address
    ["network", "exit"],
    ["mounts", "remove"],
    ["volumes", "removed"],
    ["namespaces", "exit"], // --ipc container:NAME's fd, a shareable container's /dev/shm
  ]);
});

Deno.test("removeTree: deletes the tree, follows no symlink out of it, tolerates a missing path", async () => {
  const base = Deno.makeTempDirSync({ prefix: "skiff-rmtree-" });
  try {
    const outside = `${base}/outside`;
    Deno.mkdirSync(outside);
    Deno.writeTextFileSync(`${outside}/keep`, "x");
    const tree = `${base}/tree`;
    Deno.mkdirSync(`${tree}/upper/etc`, { recursive: true });
    Deno.mkdirSync(`${tree}/work/work`, { recursive: true, mode: 0 });
    Deno.writeTextFileSync(`${tree}/upper/etc/hosts`, "127.0.0.1 localhost\n");
    Deno.writeTextFileSync(`${tree}/container.json`, "{}");
    Deno.symlinkSync(outside, `${tree}/link`);
    Deno.symlinkSync(outside, `${tree}/upper/link`);
    await removeTree(tree);
    assert.equal(existsPath(tree), false);
    assert.equal(Deno.readTextFileSync(`${outside}/keep`), "x");
    await removeTree(tree); // gone already: nothing to do
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});

function existsPath(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
