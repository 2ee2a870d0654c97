// Shared test harness: a temp state root per test, running skiff as a real process, a busybox
// rootfs built from the host's static busybox, and a leak check that fails the test when a mount,
// cgroup or process that mentions the test's root or its containers is left behind.

import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { allRuleTags } from "../lib/network/nat.ts";
import { parseTag, rootKey } from "../lib/network/nat_plan.ts";

// Docker Hub names resolve to a closed loopback port in every skiff a test starts (they inherit this
// process's environment): tests send traffic only to 127.0.0.0/8, never to the internet.
Deno.env.set("SKIFF_DOCKER_HUB_HOST", "127.0.0.1:2");

export const MAIN = fromFileUrl(new URL("../main.ts", import.meta.url));
export const BUSYBOX = "/bin/busybox";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** A temp state root and a `skiff` runner bound to it. */
export class TestRoot {
  private constructor(readonly path: string) {}

  static async create(): Promise<TestRoot> {
    return new TestRoot(await Deno.makeTempDir({ prefix: "skiff-test-" }));
  }

  /** Runs `skiff --root <root> ...args` and collects its output. */
  async skiff(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return await runSkiff(["--root", this.path, ...args], opts);
  }

  /** Like skiff() but throws with the output when the exit code is not 0. */
  async ok(args: string[], opts: RunOptions = {}): Promise<string> {
    const r = await this.skiff(args, opts);
    if (r.code !== 0) {
      throw new Error(`skiff ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r.stdout;
  }

  /** Container ids recorded under this root (also those whose record is half-written). */
  containerIds(): string[] {
    try {
      return [...Deno.readDirSync(join(this.path, "containers"))].map((e) => e.name);
    } catch {
      return [];
    }
  }

  /**
   * Removes every container (rm -f), then checks that nothing the test made is left, then removes
   * the root. Throws a description of each leak.
   */
  async cleanup(): Promise<void> {
    const ids = this.containerIds();
    if (ids.length) await this.skiff(["rm", "-f", ...ids]);
    // a supervisor stays a while after a foreground run (lib/engine/monitor.ts LINGER_MS): SIGTERM
    // ends that wait, and it exits with its spare PID 1 and groups removed
    await stopSupervisor(this.path);
    // a supervisor a test killed outright leaves its spare's groups to the next supervisor of the
    // root (monitor.ts sweepSpares): the test's is the last
    await sweepSpareGroups(this.path);
    // user-defined networks the test left: their bridges go with them
    const networks = userNetworkIds(this.path);
    if (networks.length) await this.skiff(["network", "rm", ...networks]);
    // a veth goes with its network namespace, which the kernel tears down asynchronously (tens of
    // ms): give it a bounded while before calling it a leak
    for (let waited = 0; waited < 5000 && findLeaks(this.path, ids).links.length; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // a holder exits once the container it watches has: give it a bounded while as well
    const orphanHolders = () => holders().filter((h) => !existsPath(`/proc/${h.watches}`)).length;
    for (let waited = 0; waited < 2000 && orphanHolders(); waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const leaks = findLeaks(this.path, ids);
    for (const id of networks) {
      try {
        Deno.lstatSync(`/sys/class/net/br-${id.slice(0, 12)}`);
        leaks.links.push(`br-${id.slice(0, 12)}`);
      } catch { /* removed with its network */ }
    }
    for (const link of leaks.links) {
      await new Deno.Command("ip", { args: ["link", "del", link] }).output().catch(() => {});
    }
    // remove what we can even when there are leaks, so one failure does not cascade
    for (const pid of leaks.pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    for (const m of leaks.mounts.reverse()) {
      await new Deno.Command("umount", { args: ["-l", m] }).output();
    }
    for (const cg of leaks.cgroups.reverse()) {
      try {
        Deno.removeSync(cg);
      } catch { /* busy */ }
    }
    if (leaks.rules.length) {
      const { sweepPorts } = await import("../lib/network/nat.ts");
      const { StateRoot } = await import("../lib/state/root.ts");
      sweepPorts(new StateRoot(this.path), () => false, true);
    }
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
    const problems = [
      ...leaks.links.map((l) => `link ${l}`),
      ...leaks.leases.map((l) => `address lease ${l}`),
      ...leaks.mounts.map((m) => `mount ${m}`),
      ...leaks.cgroups.map((c) => `cgroup ${c}`),
      ...leaks.pids.map((p) => `process ${p}`),
      ...leaks.rules.map((r) => `NAT rule ${r}`),
    ];
    if (problems.length) throw new Error(`leaked after test:\n  ${problems.join("\n  ")}`);
  }
}

/** What a new supervisor of `root` would remove first: the groups of its killed predecessor's spare. */
async function sweepSpareGroups(root: string): Promise<void> {
  try {
    Deno.lstatSync(join(root, "supervisor", "spares"));
  } catch {
    return;
  }
  const { sweepSpares } = await import("../lib/engine/monitor.ts");
  const { StateRoot } = await import("../lib/state/root.ts");
  sweepSpares(new StateRoot(root));
}

/**
 * Pids of processes whose command line names the supervisor of the root at `root`; not its forks
 * (a spare PID 1 shows its parent's command line until it has dropped skiff's memory, a ms or so).
 */
export function supervisorPidsOf(root: string): number[] {
  const found = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (!cmd.includes("__supervisor") || !cmd.includes(root)) continue;
      const ppid = Number(/PPid:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${e.name}/status`))?.[1]);
      found.set(Number(e.name), ppid);
    } catch { /* exited */ }
  }
  return [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid);
}

/** SIGTERMs the supervisor of `root`, if one runs, and waits (bounded) until it is gone. */
export async function stopSupervisor(root: string): Promise<void> {
  for (const pid of supervisorPidsOf(root)) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  for (let waited = 0; waited < 5000 && supervisorPidsOf(root).length; waited += 25) {
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function runSkiff(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (opts.timeoutMs) timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The ids of the user-defined networks of a root (their state files). */
function userNetworkIds(root: string): string[] {
  try {
    return [...Deno.readDirSync(join(root, "network"))].map((e) => /^([0-9a-f]{64})\.json$/.exec(e.name)?.[1])
      .filter((id): id is string => !!id);
  } catch {
    return [];
  }
}

export interface Leaks {
  /** Host ends of the test's containers' veth pairs (veth, 7 hex of the id, 4 random hex). */
  links: string[];
  /** Address leases still held in the root ("ip container"), and bridges of its user networks. */
  leases: string[];
  mounts: string[];
  cgroups: string[];
  pids: number[];
  /** Tags of skiff's NAT rules (nft table ip skiff, iptables chain SKIFF) of this root's containers. */
  rules: string[];
}

function existsPath(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The holders of containers' terminals and stdin pipes running on this host (their exe is the
 * sealed memfd "skiff-holder"), each with the pid it watches (its pidfd's fdinfo; -1: exited).
 */
export function holders(): { pid: number; watches: number; fds: string[] }[] {
  const out: { pid: number; watches: number; fds: string[] }[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (!Deno.readLinkSync(`/proc/${e.name}/exe`).startsWith("/memfd:skiff-holder")) continue;
      let watches = -1;
      const fds: string[] = [];
      for (const fd of Deno.readDirSync(`/proc/${e.name}/fd`)) {
        const target = Deno.readLinkSync(`/proc/${e.name}/fd/${fd.name}`);
        fds.push(`${fd.name} ${target}`);
        if (!target.includes("pidfd")) continue;
        const info = Deno.readTextFileSync(`/proc/${e.name}/fdinfo/${fd.name}`);
        watches = Number(/Pid:\s+(-?\d+)/.exec(info)?.[1] ?? -1);
      }
      out.push({ pid: Number(e.name), watches, fds });
    } catch { /* exited, or not ours to read */ }
  }
  return out;
}

/**
 * Mounts, cgroups and processes that mention the root path or one of the container ids, their veth
 * links and address leases, and skiff's parent cgroups when they are empty (the tests run one at a time: no other container is meant to run).
 */
export function findLeaks(root: string, ids: string[]): Leaks {
  const mentions = (s: string) => s.includes(root) || ids.some((id) => s.includes(id));
  const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m) => m && mentions(m));
  const cgroups: string[] = [];
  for (const base of cgroupBases()) {
    // skiff's parent group must go with the last container's: once a test is done, none is left
    const parent = join(base, "skiff");
    try {
      if ([...Deno.readDirSync(parent)].every((e) => !e.isDirectory)) cgroups.push(parent);
    } catch { /* absent: good */ }
    for (const id of ids) {
      for (const p of [join(base, "skiff", id), join(base, id)]) {
        try {
          if (Deno.statSync(p).isDirectory) cgroups.push(p);
        } catch { /* absent: good */ }
      }
    }
  }
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (mentions(cmdline)) pids.push(Number(e.name));
    } catch { /* exited */ }
  }
  // a container's holder (lib/engine/holder.ts) outlives nothing: once the container it watches is
  // gone, it must be too (it has no command line to mention the root)
  for (const h of holders()) if (!existsPath(`/proc/${h.watches}`)) pids.push(h.pid);
  let links: string[] = [];
  try {
    const prefixes = ids.map((id) => `veth${id.slice(0, 7)}`);
    links = [...Deno.readDirSync("/sys/class/net")].map((e) => e.name)
      .filter((name) => name.length === 15 && prefixes.some((p) => name.startsWith(p)));
  } catch { /* no sysfs */ }
  // every network's leases: the default bridge's and the user networks' (connect's included)
  const leases: string[] = [];
  try {
    for (const e of Deno.readDirSync(join(root, "network"))) {
      if (!e.name.endsWith(".json") || e.name === "ports.json") continue;
      try {
        const state = JSON.parse(Deno.readTextFileSync(join(root, "network", e.name)));
        for (const [ip, l] of Object.entries(state.Leases ?? {})) {
          leases.push(`${ip} ${(l as { Container: string }).Container}`);
        }
      } catch { /* not a network's state */ }
    }
  } catch { /* no network was ever used */ }
  // every container of the root is gone by now: any rule of the root's is a leak
  // (a root that never published has no ports.json: the rules are written after it, the listing
  // costs two processes)
  const key = rootKey(root);
  let published = false;
  try {
    published = Deno.statSync(join(root, "network", "ports.json")).isFile;
  } catch { /* never published */ }
  const rules = published ? allRuleTags().filter((tag) => parseTag(tag)?.rootKey === key) : [];
  return { links, leases, mounts, cgroups, pids, rules };
}

function cgroupBases(): string[] {
  const bases = ["/sys/fs/cgroup"];
  try {
    for (const e of Deno.readDirSync("/sys/fs/cgroup")) {
      if (e.isDirectory) bases.push(join("/sys/fs/cgroup", e.name));
    }
  } catch { /* no cgroupfs */ }
  return bases;
}

/** Test-scoped root: creates it, runs fn, always cleans up and checks for leaks. */
export async function withRoot(fn: (root: TestRoot) => Promise<void>): Promise<void> {
  const root = await TestRoot.create();
  let failure: unknown;
  try {
    await fn(root);
  } catch (e) {
    failure = e;
  }
  try {
    await root.cleanup();
  } catch (e) {
    if (!failure) failure = e;
  }
  if (failure) throw failure;
}

/**
 * A minimal busybox rootfs tarball (static busybox + applet symlinks + passwd/group), made once per
 * test process in a temp dir. Returns the tar's path.
 */
let busyboxTarPromise: Promise<string> | undefined;
export function busyboxTar(): Promise<string> {
  busyboxTarPromise ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "skiff-bbtar-" });
    const rootfs = join(dir, "rootfs");
    for (const d of ["bin", "etc", "tmp", "root", "home/user", "proc", "sys", "dev"]) {
      Deno.mkdirSync(join(rootfs, d), { recursive: true });
    }
    Deno.chmodSync(join(rootfs, "tmp"), 0o1777);
    Deno.copyFileSync(BUSYBOX, join(rootfs, "bin/busybox"));
    Deno.chmodSync(join(rootfs, "bin/busybox"), 0o755);
    const applets = new TextDecoder().decode(
      (await new Deno.Command(BUSYBOX, { args: ["--list"] }).output()).stdout,
    )
      .split("\n").filter((a) => a && a !== "busybox");
    for (const a of applets) Deno.symlinkSync("busybox", join(rootfs, "bin", a));
    Deno.writeTextFileSync(
      join(rootfs, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    Deno.writeTextFileSync(
      join(rootfs, "etc/group"),
      "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n",
    );
    const tar = join(dir, "busybox.tar");
    const out = await new Deno.Command("tar", { args: ["-C", rootfs, "-cf", tar, "."] }).output();
    if (!out.success) throw new Error(`tar failed: ${new TextDecoder().decode(out.stderr)}`);
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    return tar;
  })();
  return busyboxTarPromise;
}

/** A root with the busybox image imported as `busybox:latest`. */
export async function withBusybox(fn: (root: TestRoot) => Promise<void>): Promise<void> {
  await withRoot(async (root) => {
    await root.ok(["import", await busyboxTar(), "busybox:latest"]);
    await fn(root);
  });
}
