// run's stage programs (lib/runtime/stage_program.ts): their order and encoding, without root. The
// programs run for real in every container test; these pin the orders the security rests on.

import assert from "node:assert/strict";
import { SYSCALL_NUMBERS } from "../ffi/libc.ts";
import { encodeProgram, type ExecProgram } from "../lib/runtime/exec_program.ts";
import {
  type ContainerPlan,
  planContainerProgram,
  planForkProgram,
  planNamespacesProgram,
} from "../lib/runtime/stage_program.ts";

const sys = SYSCALL_NUMBERS.x86_64;
const labels = (p: ExecProgram) => p.steps.map((s) => s.label);

/** Every argument that names another step's result names an earlier one of the same program. */
function resultsComeFirst(p: ExecProgram) {
  p.steps.forEach((step, i) => {
    for (const arg of step.args ?? []) {
      if (typeof arg === "object" && "resultValue" in arg) {
        const at = p.steps.findIndex((s) => s.label === arg.resultValue);
        assert.ok(at >= 0 && at < i, `${step.label} uses ${arg.resultValue} before it is made`);
      }
    }
  });
}

Deno.test("stage fork program: out of skiff's memory, parent-death signal, only its own fds, then it waits", () => {
  const p = planForkProgram({
    sys,
    rseq: { offset: 2336n, size: 20, signature: 0x53053053 },
    stdio: [7, 8, undefined],
    keep: [20, 11, 12, 13],
    goFd: 11,
    errorFd: 13,
    next: 0x7f0000010000n,
    newPidNamespace: true,
    setupFailed: 125,
  });
  const l = labels(p);
  assert.deepEqual(l.slice(0, 4), [
    "rseq unregister",
    "unmap",
    "prctl PR_SET_PDEATHSIG",
    "prctl PR_SET_DUMPABLE",
  ]);
  assert.equal(p.cloneFlags, 0x20000000, "PID 1 of a new PID namespace");
  // fds 0 and 1 from the pipes; then every fd above 2 but the kept ones is closed
  const dups = p.steps.filter((s) => s.label === "dup3").map((s) => s.args);
  assert.deepEqual(dups, [[7, 0, 0], [8, 1, 0]]);
  const closed = p.steps.filter((s) => s.label === "close_range").map((s) => s.args);
  assert.deepEqual(closed, [[3, 10, 0], [14, 19, 0], [21, 0xffffffff, 0]]);
  assert.ok(l.indexOf("close_range") > l.lastIndexOf("dup3"), "the pipes are taken before the rest goes");
  const wait = p.steps[p.steps.length - 2];
  assert.equal(wait.label, "wait");
  assert.equal(wait.zeroFails, true, "EOF on the go pipe (skiff gone) ends it");
  assert.deepEqual(p.steps[p.steps.length - 1], {
    label: "next",
    op: "chain",
    args: [0x7f0000010000n],
    exitCode: 125,
  });
  assert.equal(planForkProgram({ ...planArgs(), newPidNamespace: false }).cloneFlags, 0);
});

function planArgs() {
  return {
    sys,
    rseq: null,
    stdio: [undefined, undefined, undefined] as [undefined, undefined, undefined],
    keep: [3],
    goFd: 3,
    errorFd: 3,
    next: 1n,
    newPidNamespace: true,
    setupFailed: 125,
  };
}

Deno.test("stage namespaces program: the mount namespace joined last, then proc mounted by PID 1, ready, wait", () => {
  const p = planNamespacesProgram({
    sys,
    pidfd: 9,
    namespaces: [
      { fd: 30, type: 0x08000000, name: "ipc" },
      { fd: 31, type: 0x04000000, name: "uts" },
      { fd: 32, type: 0x40000000, name: "net" },
      { fd: 33, type: 0x00020000, name: "mnt" },
    ],
    procTarget: 34,
    oomScoreAdj: 500,
    readyFd: 12,
    goFd: 11,
    errorFd: 13,
    next: 2n,
    setupFailed: 125,
  });
  const l = labels(p);
  resultsComeFirst(p);
  assert.ok(l.indexOf("write oom_score_adj") < l.indexOf("setns mnt"), "through the host's /proc");
  assert.deepEqual(l.filter((x) => x.startsWith("setns")), [
    "setns ipc",
    "setns uts",
    "setns net",
    "setns mnt",
  ]);
  const getfd = p.steps.find((s) => s.label === "getfd mnt")!;
  assert.deepEqual(getfd.args, [9, 33, 0], "skiff's fd, pulled through skiff's pidfd");
  assert.ok(l.indexOf("setns mnt") < l.indexOf("fchdir /proc"));
  assert.ok(l.indexOf("fchdir /proc") < l.indexOf("mount /proc"));
  assert.ok(l.indexOf("mount /proc") < l.indexOf("ready"));
  assert.deepEqual(l.slice(-2), ["wait", "next"]);
});

function containerPlan(over: Partial<ContainerPlan> = {}): ContainerPlan {
  return {
    sys,
    pidfd: 9,
    rootFd: 40,
    newCgroupNamespace: true,
    stdio: [{ fd: 41, targets: [0, 1, 2] }],
    tty: true,
    workingDir: "/work",
    readOnlyRoot: true,
    detached: false,
    path: "/bin/sh",
    argv: ["sh"],
    env: ["PATH=/bin"],
    errorFd: 13,
    setupFailed: 125,
    notFound: 127,
    notExecutable: 126,
    uid: 1000,
    gid: 1000,
    additionalGids: [],
    capabilities: 0xa80425fbn,
    privileged: false,
    lastCap: 40,
    held: 0x1fffeffffffn,
    seccomp: { filter: new Uint8Array(16), flags: 0 },
    noNewPrivileges: false,
    ...over,
  };
}

Deno.test("stage container program: pivot_root first, cgroupns after it, credentials, the filter, execve last", () => {
  const p = planContainerProgram(containerPlan());
  const l = labels(p);
  const at = (label: string) => l.indexOf(label);
  resultsComeFirst(p);
  assert.deepEqual(l.slice(0, 6), [
    "getfd root",
    "fchdir root",
    "close root",
    "pivot_root",
    "umount2",
    "chdir /",
  ]);
  assert.ok(at("unshare cgroup") > at("umount2"), "its root is the container's group, joined by now");
  assert.ok(at("chdir") > at("pivot_root"), "-w resolved in the container's root");
  assert.ok(at("remount / read-only") > at("chdir"), "a missing -w was made before");
  assert.ok(at("close_range") < at("setresuid"), "no fd of skiff's caller crosses the execve");
  assert.ok(at("seccomp") < at("prctl PR_CAPBSET_DROP"), "without no_new_privs: while CAP_SYS_ADMIN lasts");
  assert.ok(at("prctl PR_SET_PDEATHSIG") > at("setresuid"), "armed again after the credentials change");
  assert.ok(at("ioctl TIOCSCTTY") > at("dup3"), "-t: the pty is its controlling terminal");
  assert.deepEqual(l.slice(-3), ["rt_sigprocmask", "execve", "exit_group"]);
  const pdeath = p.steps.find((s) => s.label === "prctl PR_SET_PDEATHSIG")!;
  assert.deepEqual(pdeath.args, [1, 9]);
  const detached = planContainerProgram(containerPlan({ detached: true, noNewPrivileges: true }));
  assert.deepEqual(detached.steps.find((s) => s.label === "prctl PR_SET_PDEATHSIG")!.args, [1, 0]);
  const dl = labels(detached);
  assert.ok(dl.indexOf("seccomp") > dl.indexOf("prctl PR_SET_NO_NEW_PRIVS"), "under no_new_privs: last");
  // --init: execveat of the sealed init, pulled from skiff
  const init = planContainerProgram(containerPlan({ initFd: 42, argv: ["/sbin/docker-init", "--", "sh"] }));
  const exec = init.steps.find((s) => s.label === "execve")!;
  assert.equal(exec.nr, sys.execveat);
  assert.deepEqual(exec.args?.[0], { resultValue: "getfd init" });
  resultsComeFirst(init);
});

Deno.test("stage programs: a result passed on is flagged in the encoding, a chain holds its address", () => {
  const p = planContainerProgram(containerPlan({ seccomp: undefined }));
  const layout = {
    base: 0x7f0000000000n,
    size: 4 * 1024 * 1024,
    codeSize: 65536,
    cloneNr: 56,
    clone3Nr: 435,
    stackSize: 16384,
    dataOffset: 65536 + 131072,
  };
  const bytes = encodeProgram(p, layout);
  const v = new DataView(bytes.buffer);
  const entry = (i: number) => 80 + 80 * i;
  const fchdir = p.steps.findIndex((s) => s.label === "fchdir root");
  const getfd = p.steps.findIndex((s) => s.label === "getfd root");
  assert.equal(v.getUint32(entry(fchdir) + 4, true), 0x100, "F_RESULT_ARG(0)");
  assert.equal(v.getBigUint64(entry(fchdir) + 24, true), BigInt(getfd), "the step whose result it takes");
  const pivot = p.steps.findIndex((s) => s.label === "pivot_root");
  const dotAt = Number(v.getBigUint64(entry(pivot) + 24, true) - layout.base - BigInt(layout.dataOffset));
  assert.deepEqual([...bytes.subarray(dotAt, dotAt + 2)], [0x2e, 0]); // "." in this program's own data
  const fork = planForkProgram({ ...planArgs(), next: 0x7f0000030000n });
  const forkBytes = encodeProgram(fork, { ...layout, dataOffset: 65536 });
  const fv = new DataView(forkBytes.buffer);
  const chain = fork.steps.length - 1;
  assert.equal(fv.getUint32(entry(chain), true), 5, "OP_CHAIN");
  assert.equal(fv.getBigUint64(entry(chain) + 24, true), 0x7f0000030000n);
  assert.equal(fv.getBigUint64(8, true), 17n | 0x20000000n, "clone(SIGCHLD | CLONE_NEWPID)");
  const wait = fork.steps.findIndex((s) => s.label === "wait");
  assert.equal(fv.getUint32(entry(wait) + 4, true), 2, "F_ZERO_FAILS");
});
