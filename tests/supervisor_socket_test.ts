// Finding 8: whoever can talk to the supervisor's socket can run any container as root. Before the
// fix the socket followed the caller's umask (srwxrwxrwx under `umask 000`) and served every peer:
// an unprivileged user sent {"op":"run"} and got a privileged container with / mounted (1 of 1
// tries on the old code: the request is deterministic, no race). Now the socket is 0600 in a 0700
// directory, and a peer that is neither root nor the state root's owner is disconnected unread.

import assert from "node:assert/strict";
import { compileStatic } from "./cprog.ts";
import { MAIN } from "./helpers.ts";
import { runDetached, supervisorPids, withDetached } from "./detach_helpers.ts";
import type { RunRequest } from "../lib/engine/create_run.ts";
import { parseVolumeFlag } from "../lib/runtime/mountflag.ts";
import { NO_RESOURCE_LIMITS } from "../lib/state/types.ts";

const NOBODY = 65534;

// argv: socket path, request line, who: "nobody" drops every id to 65534 before connecting;
// "fsroot" keeps euid 65534 (what SO_PEERCRED reports) but fsuid 0, which gets it past the
// socket's file permissions: only the peer check stands between it and the supervisor.
const CLIENT = `
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 4) return 9;
  if (!strcmp(argv[3], "nobody")) {
    if (setgroups(0, NULL) || setresgid(${NOBODY}, ${NOBODY}, ${NOBODY}) ||
        setresuid(${NOBODY}, ${NOBODY}, ${NOBODY})) { perror("drop"); return 9; }
  } else if (!strcmp(argv[3], "fsroot")) {
    if (setresuid(0, ${NOBODY}, 0)) { perror("setresuid"); return 9; }
    setfsuid(0);
    if (setfsuid(-1) != 0) { fprintf(stderr, "setfsuid failed\\n"); return 9; }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) { printf("connect: %s\\n", strerror(errno)); return 0; }
  char line[65536];
  snprintf(line, sizeof line, "%s\\n", argv[2]);
  /* the supervisor may close a refused peer before the request is even sent: no SIGPIPE */
  if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) { printf("write: %s\\n", strerror(errno)); return 0; }
  char reply[4096];
  ssize_t n, total = 0;
  while ((n = read(fd, reply + total, sizeof reply - 1 - total)) > 0) total += n;
  reply[total] = 0;
  printf("reply: %s", reply);
  return 0;
}
`;

/** `run -d --privileged -v /:/host busybox true`, as the CLI sends it to the supervisor. */
function attackRequest(name: string): string {
  const run: RunRequest = {
    imageRef: "busybox",
    volumes: [parseVolumeFlag("/:/host")],
    signalProxy: true,
    container: {
      name,
      command: ["true"],
      env: [],
      tty: false,
      interactive: false,
      labels: {},
      autoRemove: false,
      privileged: true,
      readOnlyRootfs: false,
      capAdd: [],
      capDrop: [],
      resources: NO_RESOURCE_LIMITS,
    },
  };
  return JSON.stringify({ op: "run", run });
}

async function client(socket: string, request: string, who: "nobody" | "fsroot" | "root"): Promise<string> {
  const bin = await compileStatic("supervisor-client", CLIENT);
  const out = await new Deno.Command(bin, { args: [socket, request, who], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${text}${new TextDecoder().decode(out.stderr)}`);
  return text;
}

const mode = (path: string) => (Deno.lstatSync(path).mode ?? 0) & 0o777;

Deno.test("supervisor socket: private under umask 000, and peers other than root are refused", async () => {
  await withDetached(async (root) => {
    // a supervisor started by a command under umask 000
    const started = await new Deno.Command("sh", {
      args: [
        "-c",
        'umask 000; exec "$0" run -A "$1" --root "$2" run -d --name keep busybox sleep 60',
        Deno.execPath(),
        MAIN,
        root.path,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { SKIFF_DOCKER_HUB_HOST: "127.0.0.1:2" },
    }).output();
    assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
    assert.equal(supervisorPids(root).length, 1);
    const socket = `${root.path}/supervisor/sock`;
    assert.ok(Deno.lstatSync(socket).isSocket);
    assert.equal(mode(socket).toString(8), "600");
    assert.equal(mode(`${root.path}/supervisor`).toString(8), "700");
    assert.equal(Deno.lstatSync(socket).uid, 0);

    const before = root.containerIds().sort();
    // an unprivileged user cannot even reach it
    assert.equal(await client(socket, attackRequest("evil1"), "nobody"), "connect: Permission denied\n");
    // a peer of another uid that gets past the file permissions: disconnected, nothing read or done
    // (closed unread: the request is either refused at send, or sent and answered by nothing)
    assert.match(
      await client(socket, attackRequest("evil2"), "fsroot"),
      /^(reply: |write: (Broken pipe|Connection reset by peer)\n)$/,
    );
    assert.deepEqual(root.containerIds().sort(), before);
    assert.equal((await root.skiff(["inspect", "evil2"])).code, 1);
    // attach and resize go through the same check: no stream, no reply for that peer
    const keep = (await root.ok(["inspect", "-f", "{{.Id}}", "keep"])).trim();
    for (
      const op of [{ op: "attach", id: keep, stdin: true }, { op: "resize", id: keep, rows: 1, cols: 1 }]
    ) {
      assert.match(
        await client(socket, JSON.stringify(op), "fsroot"),
        /^(reply: |write: (Broken pipe|Connection reset by peer)\n)$/,
      );
    }
    assert.equal(
      await client(socket, JSON.stringify({ op: "resize", id: keep, rows: 1, cols: 1 }), "root"),
      'reply: {"ok":true}\n',
    );

    // the same request from root is served: the refusals above are the peer check, not a bad request
    const served = await client(socket, attackRequest("control"), "root");
    assert.match(served, /^reply: \{"ok":true/);
    assert.equal(root.containerIds().length, before.length + 1);
    // and the CLI, as root, still gets its containers
    await runDetached(root, ["busybox", "true"]);
  });
});
