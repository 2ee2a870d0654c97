// The pieces of -t's terminal on the real kernel, without a container: a pty of a devpts instance
// mounted for the test (runtime/console.ts; TIOCGPTPEER and the by-number fallback for kernels
// before 4.13) and the refusal of a /dev/pts that is not a devpts.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { close, O, open, ptyNumber, read, write } from "../ffi/libc.ts";
import { fstat } from "../lib/fs/at.ts";
import { openPtyIn } from "../lib/runtime/console.ts";

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
