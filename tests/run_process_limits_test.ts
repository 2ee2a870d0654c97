// --ulimit, --sysctl, --oom-score-adj and --device against docker's behaviour. Every expected
// line quoted "docker:" below came from docker 20.10 (runc 1.1) on this machine (2026-12-06, the
// peers' dockerd, busybox); the tests run without docker. docker's CLI ends its lines with "." and
// "See 'docker run --help'."; skiff prints "skiff: <the same reason>".

import assert from "node:assert/strict";
import { join } from "node:path";
import { cgroupDriver } from "../lib/cgroups/mod.ts";
import { parseDeviceFlag } from "../lib/cgroups/devices.ts";
import {
  oomScoreAdjProblem,
  parseUlimit,
  sysctlComponents,
  sysctlFlagProblem,
  sysctlNamespaceProblem,
} from "../lib/runtime/process_limits.ts";
import { type ExecPlan, planExecProgram } from "../lib/runtime/exec_program.ts";
import { SYSCALL_NUMBERS } from "../ffi/libc.ts";
import { busyboxTar, type TestRoot, withBusybox } from "./helpers.ts";
import { withBackground } from "./background.ts";
import { eventually, runDetached, withDetached } from "./detach_helpers.ts";

const V1 = cgroupDriver() === "v1";
/** This host lacks CAP_SYS_RESOURCE (these machines do): raising a hard limit must fail, as in docker. */
const HAS_SYS_RESOURCE = (() => {
  const eff = /CapEff:\s*([0-9a-f]+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1];
  return (BigInt(`0x${eff}`) & (1n << 24n)) !== 0n;
})();
const line = (stderr: string) => stderr.trim().split("\n").at(-1) ?? "";

async function run(root: TestRoot, flags: string[], ...command: string[]) {
  return await root.skiff(["run", "--rm", ...flags, "busybox", ...command]);
}

// ---- pure: docker's parsing and checks ----

Deno.test("--ulimit: go-units' parsing and docker's reasons", () => {
  assert.deepEqual(parseUlimit("nofile=1024:2048"), { Name: "nofile", Hard: 2048, Soft: 1024 });
  assert.deepEqual(parseUlimit("nproc=100"), { Name: "nproc", Hard: 100, Soft: 100 });
  assert.deepEqual(parseUlimit("core=-1"), { Name: "core", Hard: -1, Soft: -1 });
  assert.deepEqual(parseUlimit("nofile=10:-1"), { Name: "nofile", Hard: -1, Soft: 10 });
  const why = (text: string) => {
    try {
      parseUlimit(text);
    } catch (e) {
      return (e as Error).message;
    }
    return "accepted";
  };
  // docker: invalid argument "<value>" for "--ulimit" flag: <reason>
  assert.equal(
    why("nofile=2048:1024"),
    "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024",
  );
  assert.equal(why("nofoo=10"), "invalid ulimit type: nofoo");
  assert.equal(why("NOFILE=5"), "invalid ulimit type: NOFILE");
  assert.equal(why("=10"), "invalid ulimit type: ");
  assert.equal(why("nofile=abc"), 'strconv.ParseInt: parsing "abc": invalid syntax');
  assert.equal(why("nofile="), 'strconv.ParseInt: parsing "": invalid syntax');
  assert.equal(why("nofile"), "invalid ulimit argument: nofile");
  assert.equal(
    why("nofile=1:2:3"),
    "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
  );
  assert.equal(
    why("nofile=99999999999999999999"),
    'strconv.ParseInt: parsing "99999999999999999999": value out of range',
  );
});

Deno.test("--sysctl: docker's allow-list, runc's namespace check, paths that never leave /proc/sys", () => {
  for (
    const ok of [
      "kernel.msgmax=1",
      "kernel.sem=250 32000 32 128",
      "fs.mqueue.msg_max=20",
      "net.core.somaxconn=9",
    ]
  ) {
    assert.equal(sysctlFlagProblem(ok), undefined, ok);
  }
  // docker: sysctl 'kernel.domainname=foo.com' is not whitelisted (and the same for each)
  for (
    const bad of [
      "kernel.domainname=foo.com",
      "kernel.hostname=bar",
      "kernel.core_pattern=x",
      "vm.swappiness=10",
      "net/../../kernel/core_pattern=x",
      "kernel/msgmax=100",
      "kernel.msgmax",
      "foo=bar",
    ]
  ) {
    assert.equal(sysctlFlagProblem(bad), `sysctl '${bad}' is not whitelisted`);
  }
  const own = { ipc: true, ipcIsHost: false, network: true, networkIsHost: false, uts: true };
  assert.equal(sysctlNamespaceProblem("net.core.somaxconn", own), undefined);
  // docker: sysctl "net.core.somaxconn" not allowed in host network namespace
  assert.equal(
    sysctlNamespaceProblem("net.core.somaxconn", { ...own, network: false }),
    'sysctl "net.core.somaxconn" not allowed in host network namespace',
  );
  assert.equal(
    sysctlNamespaceProblem("net.core.somaxconn", { ...own, networkIsHost: true }),
    'sysctl "net.core.somaxconn" not allowed in host network namespace',
  );
  // docker (--ipc host): sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace
  assert.equal(
    sysctlNamespaceProblem("kernel.msgmax", { ...own, ipc: false }),
    'sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace',
  );
  // an --ipc container:NAME whose NAME runs with --ipc host: the joined namespace is the host's
  assert.equal(
    sysctlNamespaceProblem("kernel.msgmax", { ...own, ipcIsHost: true }),
    'sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace',
  );
  // keys spelt to climb out are judged by the path they are written to
  assert.equal(
    sysctlNamespaceProblem("kernel/core_pattern", own),
    'sysctl "kernel/core_pattern" is not in a separate kernel namespace',
  );
  assert.equal(
    sysctlNamespaceProblem("fs/../kernel.core_pattern", own),
    'sysctl "fs/../kernel.core_pattern" is not in a separate kernel namespace',
  );
  for (const key of ["net.ipv4/../../kernel/core_pattern", "net/../../kernel/core_pattern", "net./..//.."]) {
    const parts = sysctlComponents(key);
    assert.ok(!parts.includes("..") && !parts.includes(".") && !parts.includes(""), key);
  }
  assert.deepEqual(sysctlComponents("net.ipv4/../kernel/x"), ["net", "ipv4", "kernel", "x"]);
});

Deno.test("--oom-score-adj and --device: docker's checks", () => {
  assert.equal(oomScoreAdjProblem(1000), undefined);
  assert.equal(oomScoreAdjProblem(-1000), undefined);
  // docker: Error response from daemon: Invalid value 1001, range for oom score adj is [-1000, 1000].
  assert.equal(oomScoreAdjProblem(1001), "Invalid value 1001, range for oom score adj is [-1000, 1000]");
  assert.equal(oomScoreAdjProblem(-1001), "Invalid value -1001, range for oom score adj is [-1000, 1000]");

  const map = (h: string, c: string, p: string) => ({
    PathOnHost: h,
    PathInContainer: c,
    CgroupPermissions: p,
  });
  assert.deepEqual(parseDeviceFlag("/dev/fuse"), map("/dev/fuse", "/dev/fuse", "rwm"));
  assert.deepEqual(parseDeviceFlag("/dev/fuse:rw"), map("/dev/fuse", "/dev/fuse", "rw"));
  assert.deepEqual(parseDeviceFlag("/dev/sda:/dev/xvda:r"), map("/dev/sda", "/dev/xvda", "r"));
  assert.deepEqual(parseDeviceFlag("/dev/sda:/dev/./xvda/"), map("/dev/sda", "/dev/xvda", "rwm"));
  const why = (text: string) => {
    try {
      parseDeviceFlag(text);
    } catch (e) {
      return (e as Error).message;
    }
    return "accepted";
  };
  assert.equal(why("/dev/loop0:/dev/xvda:x"), "bad mode specified: x"); // docker: bad mode specified: x.
  assert.equal(why("/dev/loop0:/dev/xvda:rr"), "bad mode specified: rr");
  assert.equal(why("/dev/loop0:dev/xvda"), "dev/xvda is not an absolute path"); // docker: dev/xvda is not an absolute path.
  // docker: bad format for path: /dev/loop0:/dev/xvda:r:w.
  assert.equal(why("/dev/loop0:/dev/xvda:r:w"), "bad format for path: /dev/loop0:/dev/xvda:r:w");
  assert.equal(why(":/dev/x"), "bad format for path: :/dev/x");
});

Deno.test("exec program: the container's rlimits are set while the capabilities last", () => {
  const plan: ExecPlan = {
    sys: SYSCALL_NUMBERS.x86_64,
    rseq: null,
    exeFd: 10,
    cgroupFds: [11],
    namespaces: [{ fd: 14, type: 0x00020000, name: "mnt" }],
    pidNamespaceFd: 15,
    workingDir: "/",
    stdio: [16, 17, 18],
    errorFd: 19,
    tty: false,
    uid: 0,
    gid: 0,
    additionalGids: [],
    capabilities: 0xa80425fbn,
    privileged: false,
    lastCap: 40,
    held: 0x1fffeffffffn,
    noNewPrivileges: false,
    path: "/bin/sh",
    argv: ["sh"],
    env: [],
    setupFailed: 125,
    notFound: 127,
    notExecutable: 126,
    rlimits: [{ resource: 7, soft: 100n, hard: 200n }, { resource: 4, soft: -1n, hard: -1n }],
  };
  const steps = planExecProgram(plan).steps;
  const at = (label: string) => steps.findIndex((s) => s.label === label);
  assert.ok(at("rlimit 7") > at("setns mnt") && at("rlimit 7") < at("prctl PR_CAPBSET_DROP"));
  assert.ok(at("rlimit 4") < at("capset") && at("rlimit 4") < at("clone"));
  const rlimit = steps[at("rlimit 4")];
  assert.equal(rlimit.nr, 302);
  const bytes = (rlimit.args![2] as { bytes: Uint8Array }).bytes;
  assert.deepEqual([...new BigUint64Array(bytes.buffer)], [2n ** 64n - 1n, 2n ** 64n - 1n]); // RLIM_INFINITY
});

// ---- end to end ----

Deno.test("run --ulimit: the limits the command gets, docker's errors, inspect; exec inherits them", async () => {
  await withBusybox(async (root) => {
    // docker: 1024 / 2048, and a single value is both
    let r = await run(root, ["--ulimit", "nofile=1024:2048"], "sh", "-c", "ulimit -n; ulimit -Hn");
    assert.equal(r.stdout, "1024\n2048\n", r.stderr);
    r = await run(root, ["--ulimit", "nofile=1000"], "sh", "-c", "ulimit -n; ulimit -Hn");
    assert.equal(r.stdout, "1000\n1000\n", r.stderr);
    // docker's `ulimit -a` lines for --ulimit core=-1:-1 --ulimit nproc=100:200 --ulimit memlock=65536
    r = await run(
      root,
      ["--ulimit", "core=-1:-1", "--ulimit", "nproc=100:200", "--ulimit", "memlock=65536"],
      "sh",
      "-c",
      "ulimit -a",
    );
    assert.equal(r.code, 0, r.stderr);
    for (
      const expected of [
        "core file size (blocks)         (-c) unlimited",
        "max locked memory (kb)          (-l) 64",
        "max user processes              (-u) 100",
      ]
    ) assert.ok(r.stdout.includes(expected), `${expected}\n${r.stdout}`);
    // docker: the last of two for one name wins
    r = await run(root, ["--ulimit", "nofile=10", "--ulimit", "nofile=20"], "sh", "-c", "ulimit -n");
    assert.equal(r.stdout, "20\n");

    // docker: invalid argument "nofile=2048:1024" for "--ulimit" flag: ulimit soft limit must be
    // less than or equal to hard limit: 2048 > 1024
    r = await run(root, ["--ulimit", "nofile=2048:1024"], "true");
    assert.equal(r.code, 125);
    assert.match(
      line(r.stderr),
      /^skiff: invalid argument "nofile=2048:1024" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2048 > 1024/,
    );
    r = await run(root, ["--ulimit", "nofoo=10"], "true");
    assert.equal(r.code, 125);
    assert.match(
      line(r.stderr),
      /invalid argument "nofoo=10" for "--ulimit" flag: invalid ulimit type: nofoo/,
    );

    // above the hard limit: docker (runc): "error setting rlimits for ready process: error setting
    // rlimit type 7: operation not permitted", exit 125, on this host without CAP_SYS_RESOURCE
    const hard = Number(
      new TextDecoder().decode(
        new Deno.Command("sh", { args: ["-c", "ulimit -Hn"] }).outputSync().stdout,
      ).trim(),
    );
    r = await run(root, ["--ulimit", `nofile=${hard + 1}`], "sh", "-c", "ulimit -Hn");
    if (HAS_SYS_RESOURCE) assert.equal(r.stdout, `${hard + 1}\n`, r.stderr);
    else {
      assert.equal(r.code, 125);
      assert.match(line(r.stderr), /error setting rlimit type 7: operation not permitted$/);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.deepEqual(root.containerIds(), []);

    await withBackground(
      root,
      "ul",
      async (c) => {
        // docker: [{"Name":"nofile","Hard":200,"Soft":100}]; exec'd processes get 100 / 200
        assert.equal(
          (await root.ok(["inspect", "-f", "{{json .HostConfig.Ulimits}}", c.name])).trim(),
          '[{"Name":"nofile","Hard":200,"Soft":100}]',
        );
        assert.equal(await root.ok(["exec", c.name, "sh", "-c", "ulimit -n; ulimit -Hn"]), "100\n200\n");
      },
      ["sleep", "100"],
      ["--ulimit", "nofile=100:200"],
    );
    await root.ok(["create", "--name", "plain", "busybox", "true"]);
    // docker: null when none
    assert.equal((await root.ok(["inspect", "-f", "{{json .HostConfig.Ulimits}}", "plain"])).trim(), "null");
  });
});

Deno.test("run --sysctl: written in the container's namespaces, refused where docker refuses, inspect", async () => {
  const hostMsgmax = Deno.readTextFileSync("/proc/sys/kernel/msgmax");
  const hostSomaxconn = Deno.readTextFileSync("/proc/sys/net/core/somaxconn");
  await withBusybox(async (root) => {
    let r = await run(
      root,
      [
        "--sysctl",
        "kernel.msgmax=65536",
        "--sysctl",
        "net.core.somaxconn=1000",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
      ],
      "cat",
      "/proc/sys/kernel/msgmax",
      "/proc/sys/net/core/somaxconn",
      "/proc/sys/kernel/shm_rmid_forced",
    );
    assert.equal(r.stdout, "65536\n1000\n1\n", r.stderr); // docker: the same three values
    // --network none has a namespace of its own too (docker: 1000)
    r = await run(
      root,
      ["--network", "none", "--sysctl", "net.core.somaxconn=1000"],
      "cat",
      "/proc/sys/net/core/somaxconn",
    );
    assert.equal(r.stdout, "1000\n", r.stderr);
    r = await run(root, ["--sysctl", "fs.mqueue.msg_max=20"], "cat", "/proc/sys/fs/mqueue/msg_max");
    const hasMqueue = (() => {
      try {
        return Deno.statSync("/proc/sys/fs/mqueue").isDirectory;
      } catch {
        return false;
      }
    })();
    // a kernel without POSIX message queues has no such file: docker then fails to open it (127)
    if (hasMqueue) assert.equal(r.stdout, "20\n", r.stderr);
    else {
      assert.equal(r.code, 127);
      assert.match(line(r.stderr), /open \/proc\/sys\/fs\/mqueue\/msg_max: no such file or directory$/);
    }
    // the host keeps its own values: the container wrote its namespaces' copies
    assert.equal(Deno.readTextFileSync("/proc/sys/kernel/msgmax"), hostMsgmax);
    assert.equal(Deno.readTextFileSync("/proc/sys/net/core/somaxconn"), hostSomaxconn);

    // docker: OCI runtime create failed: runc create failed: sysctl "net.core.somaxconn" not
    // allowed in host network namespace: unknown (exit 125)
    r = await run(root, ["--network", "host", "--sysctl", "net.core.somaxconn=1000"], "true");
    assert.equal(r.code, 125);
    assert.match(line(r.stderr), /sysctl "net.core.somaxconn" not allowed in host network namespace$/);
    assert.equal(Deno.readTextFileSync("/proc/sys/net/core/somaxconn"), hostSomaxconn);
    // docker: invalid argument "vm.swappiness=10" for "--sysctl" flag: sysctl 'vm.swappiness=10' is not whitelisted
    r = await run(root, ["--sysctl", "vm.swappiness=10"], "true");
    assert.equal(r.code, 125);
    assert.match(
      line(r.stderr),
      /invalid argument "vm.swappiness=10" for "--sysctl" flag: sysctl 'vm.swappiness=10' is not whitelisted/,
    );
    // docker: ... error during container init: open /proc/sys/net/ipv4/nonexist: no such file or
    // directory: unknown (exit 127: docker's CLI gives 127 to any "no such file or directory")
    r = await run(root, ["--sysctl", "net.ipv4.nonexist=1"], "true");
    assert.equal(r.code, 127);
    assert.match(line(r.stderr), /open \/proc\/sys\/net\/ipv4\/nonexist: no such file or directory$/);
    // docker: ... error during container init: write /proc/sys/kernel/msgmax: invalid argument (125)
    r = await run(root, ["--sysctl", "kernel.msgmax=abc"], "true");
    assert.equal(r.code, 125);
    assert.match(line(r.stderr), /write \/proc\/sys\/kernel\/msgmax: invalid argument$/);
    assert.deepEqual(root.containerIds(), []);

    await withBackground(
      root,
      "sc",
      async (c) => {
        // docker: {"kernel.msgmax":"100","net.core.somaxconn":"1000"}; exec sees the same namespace
        assert.equal(
          (await root.ok(["inspect", "-f", "{{json .HostConfig.Sysctls}}", c.name])).trim(),
          '{"kernel.msgmax":"100","net.core.somaxconn":"1000"}',
        );
        assert.equal(await root.ok(["exec", c.name, "cat", "/proc/sys/kernel/msgmax"]), "100\n");
      },
      ["sleep", "100"],
      ["--sysctl", "net.core.somaxconn=1000", "--sysctl", "kernel.msgmax=100"],
    );
    await root.ok(["create", "--name", "plain", "busybox", "true"]);
    // docker leaves Sysctls out of inspect when none is set
    assert.ok(!(await root.ok(["inspect", "plain"])).includes("Sysctls"));
    // ... and a template reads Go's nil map and nil slice (docker 20.10 on this machine:
    // `map[]|null|[]|null|0`)
    const nils = "{{.HostConfig.Sysctls}}|{{json .HostConfig.Sysctls}}|{{.HostConfig.Ulimits}}|" +
      "{{json .HostConfig.Ulimits}}|{{len .HostConfig.Ulimits}}";
    assert.equal(await root.ok(["inspect", "-f", nils, "plain"]), "map[]|null|[]|null|0\n");
  });
});

// The attack: a sysctl key that climbs out of the namespaced trees to a host-wide one
// (kernel.core_pattern: whatever it names runs as root on the host at the next core dump). Each key
// must be refused or end at a path below the container's own /proc/sys/net or fs/mqueue that does
// not exist; the host's core_pattern stays as it was. The flag is new: the code before it refused
// --sysctl as an unknown flag, so there is no earlier rate to measure.
Deno.test("run --sysctl attack: keys with .. or / never reach the host's kernel.core_pattern", async () => {
  const before = Deno.readTextFileSync("/proc/sys/kernel/core_pattern");
  const payload = "|/tmp/skiff-pwned-core %p";
  await withBusybox(async (root) => {
    for (
      const key of [
        "net.ipv4/../../kernel/core_pattern",
        "net/../../kernel/core_pattern",
        "net.core/../../kernel.core_pattern",
        "fs.mqueue/../../kernel/core_pattern",
        "fs.mqueue.../../kernel/core_pattern",
        "net./../kernel/core_pattern",
        "kernel.core_pattern",
        "kernel/core_pattern",
      ]
    ) {
      const r = await run(root, ["--sysctl", `${key}=${payload}`], "true");
      assert.notEqual(r.code, 0, `${key} was accepted`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(Deno.readTextFileSync("/proc/sys/kernel/core_pattern"), before, `${key} changed the host`);
    }
    assert.deepEqual(root.containerIds(), []);
  });
});

Deno.test("run --oom-score-adj: PID 1 and exec'd processes get it; docker's errors; inspect", async () => {
  await withBusybox(async (root) => {
    let r = await run(root, ["--oom-score-adj", "500"], "cat", "/proc/1/oom_score_adj");
    assert.equal(r.stdout, "500\n", r.stderr); // docker: 500
    r = await run(root, ["--oom-score-adj", "1000"], "cat", "/proc/1/oom_score_adj");
    assert.equal(r.stdout, "1000\n", r.stderr);
    // lowering a score takes CAP_SYS_RESOURCE: docker (runc) failed here with exit 125 ("can't get
    // final child's PID from pipe: EOF"); skiff says which write failed
    r = await run(root, ["--oom-score-adj", "-500"], "cat", "/proc/1/oom_score_adj");
    if (HAS_SYS_RESOURCE) assert.equal(r.stdout, "-500\n", r.stderr);
    else {
      assert.equal(r.code, 125);
      assert.match(line(r.stderr), /write \/proc\/self\/oom_score_adj: permission denied$/);
    }
    // docker: Error response from daemon: Invalid value 1001, range for oom score adj is [-1000, 1000].
    r = await run(root, ["--oom-score-adj", "1001"], "true");
    assert.equal(r.code, 125);
    assert.equal(line(r.stderr), "skiff: Invalid value 1001, range for oom score adj is [-1000, 1000]");
    // docker: invalid argument "abc" for "--oom-score-adj" flag: strconv.ParseInt: parsing "abc": invalid syntax
    r = await run(root, ["--oom-score-adj", "abc"], "true");
    assert.equal(r.code, 125);
    assert.match(
      line(r.stderr),
      /invalid argument "abc" for "--oom-score-adj" flag: strconv.ParseInt: parsing "abc": invalid syntax/,
    );
    assert.deepEqual(root.containerIds(), []);
    await withBackground(
      root,
      "oom",
      async (c) => {
        // docker: exec'd processes get 300 too; inspect 300
        assert.equal(await root.ok(["exec", c.name, "cat", "/proc/self/oom_score_adj"]), "300\n");
        assert.equal((await root.ok(["inspect", "-f", "{{.HostConfig.OomScoreAdj}}", c.name])).trim(), "300");
      },
      ["sleep", "100"],
      ["--oom-score-adj", "300"],
    );
  });
});

Deno.test("run --device: nodes as docker makes them, the cgroup's permissions, docker's errors, inspect", async () => {
  const hasLoop = (() => {
    try {
      return Deno.lstatSync("/dev/loop0").isBlockDevice === true;
    } catch {
      return false;
    }
  })();
  await withBusybox(async (root) => {
    // docker: crw-------    1 root     root       10, 229 <date> /dev/fuse
    let r = await run(root, ["--device", "/dev/fuse"], "ls", "-l", "/dev/fuse");
    assert.match(r.stdout, /^crw------- +1 root +root +10, +229 .* \/dev\/fuse\n$/, r.stderr);
    r = await run(root, ["--device", "/dev/fuse:/mnt/deep/fuse"], "ls", "-l", "/mnt/deep/fuse");
    assert.match(r.stdout, /^crw------- .* 10, +229 .* \/mnt\/deep\/fuse\n$/, r.stderr);
    // a directory: every node below it (docker: /dev/cpu/0/cpuid and /dev/cpu/1/cpuid, 203:N)
    const cpuNodes = [...Deno.readDirSync("/dev/net")].filter((e) => !e.isDirectory).map((e) => e.name)
      .sort();
    r = await run(root, ["--device", "/dev/net:/dev/hostnet"], "ls", "/dev/hostnet");
    assert.deepEqual(r.stdout.trim().split(/\s+/).filter(Boolean), cpuNodes, r.stderr);
    // the cgroup enforces the mapping's permissions (busybox sh leaves at a failed redirection of
    // ":"). docker, for :r, :rw and :w of /dev/fuse as /dev/fz:
    //   r:  stdout "r=0", stderr "sh: can't create /dev/fz: Operation not permitted"
    //   rw: stdout "r=0\nw=0"
    //   w:  stdout "",    stderr "sh: can't open /dev/fz: Operation not permitted"
    const probe = ": < /dev/fz; echo r=$?; : > /dev/fz; echo w=$?";
    r = await run(root, ["--device", "/dev/fuse:/dev/fz:r"], "sh", "-c", probe);
    assert.equal(r.stdout, "r=0\n");
    assert.equal(r.stderr, "sh: can't create /dev/fz: Operation not permitted\n");
    r = await run(root, ["--device", "/dev/fuse:/dev/fz:rw"], "sh", "-c", probe);
    assert.equal(r.stdout, "r=0\nw=0\n", r.stderr);
    r = await run(root, ["--device", "/dev/fuse:/dev/fz:w"], "sh", "-c", probe);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "sh: can't open /dev/fz: Operation not permitted\n");
    if (hasLoop) {
      // r only: the cgroup refuses the open for writing (docker: "sh: can't create /dev/xvda:
      // Operation not permitted"); the node itself is the host's 7:0 with its mode
      r = await run(
        root,
        ["--device", "/dev/loop0:/dev/xvda:r"],
        "sh",
        "-c",
        "ls -l /dev/xvda; head -c 1 /dev/xvda; echo read=$?; echo x > /dev/xvda; echo w=$?",
      );
      assert.match(r.stdout, /^brw------- .* 7, +0 .* \/dev\/xvda\nread=0\nw=1\n$/, r.stderr);
      assert.match(r.stderr, /can't create \/dev\/xvda: Operation not permitted/);
      // rw: the open goes through (docker: the write then fails with ENOSPC on an unbound loop)
      r = await run(
        root,
        ["--device", "/dev/loop0:/dev/xvda:rw"],
        "sh",
        "-c",
        "echo x > /dev/xvda; echo w=$?",
      );
      assert.doesNotMatch(r.stderr, /Operation not permitted/);
    }
    // docker: Error response from daemon: error gathering device information while adding custom
    // device "/dev/nope": no such file or directory. (exit 127)
    r = await run(root, ["--device", "/dev/nope"], "true");
    assert.equal(r.code, 127);
    assert.equal(
      line(r.stderr),
      'skiff: error gathering device information while adding custom device "/dev/nope": no such file or directory',
    );
    // docker creates the container first and fails its start: without --rm it stays "Created"
    r = await root.skiff(["run", "--name", "left", "--device", "/dev/nope", "busybox", "true"]);
    assert.equal(r.code, 127);
    assert.equal((await root.ok(["inspect", "-f", "{{.State.Status}}", "left"])).trim(), "created");
    await root.ok(["create", "--name", "made", "--device", "/dev/nope", "busybox", "true"]);
    await root.ok(["rm", "left", "made"]);
    r = await run(root, ["--device", "/etc/hostname"], "true");
    assert.equal(r.code, 125);
    assert.match(line(r.stderr), /adding custom device "\/etc\/hostname": not a device node$/);
    // docker: bad mode specified: x.
    r = await run(root, ["--device", "/dev/fuse:/dev/fuse:x"], "true");
    assert.equal(r.code, 125);
    assert.match(line(r.stderr), /^skiff: bad mode specified: x/);
    assert.deepEqual(root.containerIds(), []);

    await withBackground(
      root,
      "dev",
      async (c) => {
        // docker: [{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"},
        //          {"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fz","CgroupPermissions":"r"}]
        assert.equal(
          (await root.ok(["inspect", "-f", "{{json .HostConfig.Devices}}", c.name])).trim(),
          '[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"},' +
            '{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fz","CgroupPermissions":"r"}]',
        );
        if (V1) {
          // docker's devices.list has "c 10:229 rwm" (and "b 7:0 r" for a read-only block device)
          const list = Deno.readTextFileSync(`/sys/fs/cgroup/devices/skiff/${c.id}/devices.list`);
          assert.match(list, /^c 10:229 rwm$/m);
        }
      },
      ["sleep", "100"],
      ["--device", "/dev/fuse", "--device", "/dev/fuse:/dev/fz:r"],
    );
    await root.ok(["create", "--name", "plain", "busybox", "true"]);
    assert.equal((await root.ok(["inspect", "-f", "{{json .HostConfig.Devices}}", "plain"])).trim(), "[]");
  });
});

/** busybox's rootfs with extra symlinks (tar entries appended after its own). */
async function imageWithLinks(root: TestRoot, tag: string, links: Record<string, string>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skiff-devlinks-" });
  try {
    const tar = join(dir, "image.tar");
    Deno.copyFileSync(await busyboxTar(), tar);
    const staging = join(dir, "links");
    Deno.mkdirSync(staging);
    for (const [name, target] of Object.entries(links)) Deno.symlinkSync(target, join(staging, name));
    const r = new Deno.Command("tar", { args: ["-rf", tar, "-C", staging, ...Object.keys(links)] })
      .outputSync();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    await root.ok(["import", tar, tag]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

// The attack: an image whose /dev, or the directory a --device lands in, is a symlink to a host
// directory. A node made by a host path string (mknod "<root>/mnt/fuse") would follow the link
// and appear in the host's directory (a char device the host's users could open); the node must
// land inside the container (the link resolved within its root) and the host directory stay empty.
// The flag is new (before, --device was an unknown flag): no earlier rate to measure.
Deno.test("run --device attack: a symlinked /dev or target directory never puts a node on the host", async () => {
  const hostDir = await Deno.makeTempDir({ prefix: "skiff-hostdev-" });
  try {
    await withBusybox(async (root) => {
      await imageWithLinks(root, "evil:links", { mnt: hostDir, opt: `../../../../../../..${hostDir}` });
      for (const target of ["/mnt/fuse", "/opt/fuse", "/mnt/sub/fuse"]) {
        const r = await root.skiff([
          "run",
          "--rm",
          "--device",
          `/dev/fuse:${target}`,
          "evil:links",
          "sh",
          "-c",
          `ls -l ${target}`,
        ]);
        assert.deepEqual([...Deno.readDirSync(hostDir)].map((e) => e.name), [], `${target} reached the host`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, / 10, +229 /);
      }
      // /dev itself a link to the host directory: skiff mounts its /dev tmpfs inside the root
      await imageWithLinks(root, "evil:dev", { dev: hostDir });
      const r = await root.skiff([
        "run",
        "--rm",
        "--device",
        "/dev/fuse",
        "--device",
        "/dev/fuse:/dev/sub/f2",
        "evil:dev",
        "ls",
        "/dev/fuse",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([...Deno.readDirSync(hostDir)].map((e) => e.name), []);
    });
  } finally {
    Deno.removeSync(hostDir, { recursive: true });
  }
});

Deno.test("run -d: the supervisor's start applies all four, and start again after a stop", async () => {
  await withDetached(async (root) => {
    const script = "ulimit -n; ulimit -Hn; cat /proc/1/oom_score_adj /proc/sys/kernel/msgmax; ls -l /dev/fz";
    const flags = ["--ulimit", "nofile=100:200", "--oom-score-adj", "200", "--sysctl", "kernel.msgmax=100"];
    await runDetached(root, [
      "--name",
      "dd",
      ...flags,
      "--device",
      "/dev/fuse:/dev/fz",
      "busybox",
      "sh",
      "-c",
      script,
    ]);
    const expected = /^100\n200\n200\n100\ncrw------- .* 10, +229 .* \/dev\/fz\n$/;
    let logs = "";
    await eventually("the container has run", async () => {
      logs = await root.ok(["logs", "dd"]);
      return logs.includes("/dev/fz");
    });
    assert.match(logs, expected);
    await root.ok(["start", "dd"]);
    await eventually(
      "it has run again",
      async () => (await root.ok(["logs", "dd"])).split("/dev/fz").length === 3,
    );
  });
});
