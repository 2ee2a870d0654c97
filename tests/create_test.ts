// skiff create: every run flag, the container left "created" with its full id printed, `start`
// runs it (detached, as docker's start without -a); bad input exits 125 with nothing created.

import assert from "node:assert/strict";
import { eventually, inspect, status, withDetached } from "./detach_helpers.ts";

Deno.test("create: prints the full id, Created in ps -a, start runs it", async () => {
  await withDetached(async (root) => {
    const r = await root.skiff([
      "create",
      "--name",
      "made",
      "-e",
      "GREETING=hi",
      "-w",
      "/tmp",
      "-l",
      "k=v",
      "--restart",
      "on-failure:2",
      "-m",
      "64m",
      "busybox",
      "sh",
      "-c",
      "echo $GREETING from $(pwd)",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await inspect(root, "made", "{{.Id}}"), id);
    assert.equal(await status(root, "made"), "created");
    assert.equal(
      (await root.ok(["ps", "-a", "--filter", "name=made", "--format", "{{.Status}}"])).trim(),
      "Created",
    );
    assert.equal((await root.ok(["ps", "-q"])).trim(), "", "not running");
    assert.equal(await inspect(root, "made", '{{index .Config.Labels "k"}}'), "v");
    assert.equal(await inspect(root, "made", "{{.HostConfig.RestartPolicy.Name}}"), "on-failure");
    assert.equal(await inspect(root, "made", "{{.HostConfig.Memory}}"), String(64 * 1024 * 1024));

    assert.equal((await root.ok(["start", "made"])).trim(), "made");
    await eventually("it ran and exited", async () => await status(root, "made") === "exited");
    assert.equal(await inspect(root, "made", "{{.State.ExitCode}}"), "0");
    assert.equal((await root.ok(["logs", "made"])).trim(), "hi from /tmp");
  });
});

Deno.test("create: -it without a terminal makes the container (nothing is attached yet); --rm is kept", async () => {
  await withDetached(async (root) => {
    const id = (await root.ok(["create", "-it", "--rm", "busybox", "sh"])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(
      await inspect(root, id, "{{.Config.Tty}} {{.Config.OpenStdin}} {{.HostConfig.AutoRemove}}"),
      "true true true",
    );
    assert.equal(await status(root, id), "created");
  });
});

// docker 20.10's create: 125 for what its CLI refuses itself (flags, their values), 1 for a wrong number
// of arguments and for what its daemon refuses
Deno.test("create: bad input exits with docker's code and line and creates nothing", async () => {
  await withDetached(async (root) => {
    const cases: [string[], RegExp, number][] = [
      [["create"], /"skiff create" requires at least 1 argument/, 1],
      [["create", "--bogus", "busybox"], /unknown flag: --bogus/, 125],
      [["create", "-d", "busybox"], /unknown shorthand flag: 'd' in -d/, 125],
      [["create", "-m", "lots", "busybox"], /invalid argument "lots" for "-m, --memory" flag/, 125],
      [["create", "--restart", "always", "--rm", "busybox"], /Conflicting options: --restart and --rm/, 125],
      [["create", "--add-host", "nocolon", "busybox"], /bad format for add-host/, 125],
      [["create", "-p", "99999:80", "busybox"], /invalid hostPort: 99999/, 125],
      [["create", "--tmpfs", "relative", "busybox"], /mount path must be absolute/, 1],
      [["create", "--stop-signal", "SIGNOPE", "busybox"], /SIGNOPE/, 1],
      [["create", "--name", "bad name", "busybox", "true"], /Invalid container name/, 1],
      [["create", "--entrypoint", "", "busybox"], /No command specified/, 1],
    ];
    for (const [args, message, code] of cases) {
      const r = await root.skiff(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stdout, "");
    }
    // flag errors point at create's help, not run's
    assert.match((await root.skiff(["create", "--bogus", "busybox"])).stderr, /skiff create --help/);
    // a missing image: docker's line, then the pull fails (Docker Hub is a closed port in tests)
    const missing = await root.skiff(["create", "nosuchimage"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Unable to find image 'nosuchimage:latest' locally\n/);
    assert.equal(missing.stdout, "");
    assert.deepEqual(root.containerIds(), [], "nothing was created");
    // a name in use: conflict, the first container stays alone
    await root.ok(["create", "--name", "taken", "busybox", "true"]);
    const dup = await root.skiff(["create", "--name", "taken", "busybox", "true"]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /Conflict. The container name "\/taken" is already in use/);
    assert.equal(root.containerIds().length, 1);
  });
});

// docker 20.10 on this machine, `docker start nosuch okc nosuch2` (okc created): okc on stdout; on stderr
//   Error response from daemon: No such container: nosuch
//   Error response from daemon: No such container: nosuch2
//   Error: failed to start containers: nosuch, nosuch2
// exit 1; a start that fails for its user is the daemon's line too
Deno.test("start: each failure's line, then docker's line naming the containers that did not start", async () => {
  await withDetached(async (root) => {
    await root.ok(["create", "--name", "okc", "busybox", "true"]);
    await root.ok(["create", "--name", "nouser", "-u", "nosuch", "busybox", "true"]);
    const r = await root.skiff(["start", "nosuch", "okc", "nouser"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "okc\n");
    assert.equal(
      r.stderr,
      "skiff: No such container: nosuch\n" +
        "skiff: unable to find user nosuch: no matching entries in passwd file\n" +
        "Error: failed to start containers: nosuch, nouser\n",
    );
  });
});
