// The pieces of -t's terminal on the real kernel, without a container: a pty of a devpts instance
// mounted for the test (runtime/console.ts; TIOCGPTPEER and the by-number fallback for kernels
// before 4.13), the refusal of a /dev/pts that is not a devpts, and the console socket's peer check
// (engine/console_socket.ts): only the stage's own connection hands over a master.

import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { close, connectUnix, O, open, pipe, ptyNumber, read, sendFd, write } from "../ffi/libc.ts";
import { fstat } from "../lib/fs/at.ts";
import { openPtyIn } from "../lib/runtime/console.ts";
import { ConsoleSocket } from "../lib/engine/console_socket.ts";
import { StateRoot } from "../lib/state/root.ts";

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A fresh mount of `fstype` on a temp dir of the host's, unmounted and removed afterwards. */
async function withMount(fstype: string, options: string, fn: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "skiff-console-" });
  try {
    await sh("mount", ["-t", fstype, "-o", options, `skiff-${fstype}`, dir]);
    try {
      await fn(dir);
    } finally {
      await sh("umount", ["-l", dir]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ptsOptions = "newinstance,ptmxmode=0666,mode=0620,gid=5";

for (const peer of [true, false]) {
  Deno.test(`console: a pty of the devpts at hand (${peer ? "TIOCGPTPEER" : "by number, before 4.13"})`, async () => {
    await withMount("devpts", ptsOptions, (dir) => {
      const ptsFd = open(dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
      try {
        const pty = openPtyIn(ptsFd, peer);
        try {
          // the slave is that devpts' entry for the master's number (136 = the pty slaves' major)
          const slave = fstat(pty.slave);
          assertEquals([slave.rdevMajor, slave.rdevMinor], [136, ptyNumber(pty.master)]);
          assertEquals(slave.key, fstat(open(`${dir}/${ptyNumber(pty.master)}`, O.PATH | O.CLOEXEC)).key);
          // and they talk: the slave's output (onlcr: \n becomes \r\n) reaches the master
          write(pty.slave, new TextEncoder().encode("hi\n"));
          const buf = new Uint8Array(16);
          assertEquals(new TextDecoder().decode(buf.subarray(0, read(pty.master, buf))), "hi\r\n");
        } finally {
          close(pty.master);
          close(pty.slave);
        }
      } finally {
        close(ptsFd);
      }
    });
  });
}

Deno.test("console: a /dev/pts that is not a devpts is refused before anything in it is opened", async () => {
  // what a container with CAP_SYS_ADMIN and CAP_MKNOD could leave there: a tmpfs with a ptmx node
  await withMount("tmpfs", "size=64k", async (dir) => {
    await sh("mknod", [`${dir}/ptmx`, "c", "5", "2"]);
    const fd = open(dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    try {
      assertThrows(() => openPtyIn(fd), /\/dev\/pts is not a devpts/);
    } finally {
      close(fd);
    }
  });
});

const FFI = fromFileUrl(new URL("../ffi/libc.ts", import.meta.url));

/** A stand-in for the init stage: connects, sends the read end of a pipe holding `said`, waits. */
async function fakeStage(script: string, socketPath: string): Promise<Deno.ChildProcess> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, `import * as c from "${FFI}";\n${script}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", file, socketPath],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  child.status.finally(() => Deno.remove(file).catch(() => {}));
  return child;
}

const SENDS = `
const s = c.connectUnix(Deno.args[0]);
const [r, w] = c.pipe();
c.write(w, new TextEncoder().encode("from-stage"));
c.sendFd(s, r);
Deno.exit(c.read(s, new Uint8Array(1)) === 1 ? 0 : 3);
`;

/** What the pipe whose read end `fd` is holds. */
function pipeText(fd: number): string {
  const buf = new Uint8Array(64);
  return new TextDecoder().decode(buf.subarray(0, read(fd, buf)));
}

async function withTmpRoot(fn: (root: StateRoot) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempDir({ prefix: "skiff-console-root-" });
  const root = new StateRoot(path);
  await Deno.mkdir(root.tmp);
  try {
    await fn(root);
    assertEquals([...Deno.readDirSync(root.tmp)], [], "the socket's name is removed");
  } finally {
    await Deno.remove(path, { recursive: true });
  }
}

Deno.test("console socket: only the stage's own connection hands over the master", async () => {
  await withTmpRoot(async (root) => {
    const socket = ConsoleSocket.listen(root);
    const stage = await fakeStage(SENDS, socket.path);
    // another process of the host's connects first and offers its own fd: closed unread
    const foreign = connectUnix(socket.path);
    const [r, w] = pipe();
    write(w, new TextEncoder().encode("foreign"));
    sendFd(foreign, r);
    close(r);
    close(w);
    const master = await socket.receiveMaster(stage);
    assert(master !== undefined);
    try {
      assertEquals(pipeText(master), "from-stage");
    } finally {
      close(master);
    }
    // hung up on, never answered (ECONNRESET: closed with its message unread)
    assertThrows(() => read(foreign, new Uint8Array(1)), /Connection reset/);
    close(foreign);
    socket.ready();
    assertEquals((await stage.status).code, 0); // the stage got its "ready"
  });
});

Deno.test("console socket: a stage that exits before it sends resolves to no master", async () => {
  await withTmpRoot(async (root) => {
    for (const script of ["Deno.exit(1);", "c.connectUnix(Deno.args[0]); Deno.exit(1);"]) {
      const socket = ConsoleSocket.listen(root);
      const stage = await fakeStage(script, socket.path);
      assertEquals(await socket.receiveMaster(stage), undefined);
      socket.close();
      await stage.status;
    }
  });
});

Deno.test("console socket: closed by the parent (a failed launch), the waiting stage reads EOF", async () => {
  await withTmpRoot(async (root) => {
    const socket = ConsoleSocket.listen(root);
    const stage = await fakeStage(SENDS, socket.path);
    const master = await socket.receiveMaster(stage);
    assert(master !== undefined);
    close(master);
    socket.close(); // no ready(): the stage must not go on
    assertEquals((await stage.status).code, 3);
  });
});
