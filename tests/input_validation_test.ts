// Finding 10: values that end up in a file inside the container (resolv.conf, hosts, hostname) or
// that skiff would otherwise mangle are checked as docker checks them: one line on stderr, docker's
// wording, exit 125, nothing made. Before the fix a newline in --dns-search wrote an extra
// `nameserver` line into resolv.conf, --group-add 99999999999 wrapped to gid 1215752191,
// --env-file /dev/zero read forever, and pax numbers like size=0.5 were taken.

import assert from "node:assert/strict";
import { withBusybox } from "./helpers.ts";
import { type TarEntry, TarReader } from "../lib/image/tar.ts";
import { execUserOf } from "../lib/runtime/user.ts";

const refusals: [string, string[], string][] = [
  [
    "--dns-search with a newline (a nameserver line smuggled into resolv.conf)",
    ["--dns-search", "a.com\nnameserver 6.6.6.6"],
    'skiff: invalid argument "a.com\\nnameserver 6.6.6.6" for "--dns-search" flag: a.com\\nnameserver 6.6.6.6 is not a valid domain',
  ],
  [
    "--dns-search that is no domain",
    ["--dns-search", "-bad-.com"],
    'skiff: invalid argument "-bad-.com" for "--dns-search" flag: -bad-.com is not a valid domain',
  ],
  [
    "--dns-option with a newline",
    ["--dns-option", "ndots:1\nnameserver 6.6.6.6"],
    'skiff: invalid argument "ndots:1\\nnameserver 6.6.6.6" for "--dns-option" flag: "ndots:1\\nnameserver 6.6.6.6" is not a valid DNS option',
  ],
  [
    "--add-host whose name carries a second hosts line",
    ["--add-host", "evil\n6.6.6.6 registry:1.1.1.1"],
    'skiff: invalid argument "evil\\n6.6.6.6 registry:1.1.1.1" for "--add-host" flag: bad format for add-host: "evil\\n6.6.6.6 registry:1.1.1.1"',
  ],
  ["-h with a newline", ["-h", "a\n6.6.6.6 b"], "skiff: invalid hostname format: a\\n6.6.6.6 b"],
  [
    "--group-add beyond runc's range",
    ["--group-add", "99999999999"],
    "skiff: uids and gids must be in range 0-2147483647",
  ],
  ["--group-add 2^31", ["--group-add", "2147483648"], "skiff: uids and gids must be in range 0-2147483647"],
];

for (const [what, flags, line] of refusals) {
  Deno.test(`input: ${what} is refused as docker does`, async () => {
    await withBusybox(async (root) => {
      const r = await root.skiff(["run", "--rm", ...flags, "busybox", "true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stdout, "");
      // one line: the value's newline is quoted, as pflag's %q does
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.ok(r.stderr.startsWith(line), `${r.stderr}\n!= ${line}`);
      assert.deepEqual(root.containerIds(), []);
    });
  });
}

Deno.test("input: accepted values are written as docker writes them", async () => {
  await withBusybox(async (root) => {
    const out = await root.ok([
      "run",
      "--rm",
      "--dns-search",
      "example.com.",
      "--dns-option",
      "ndots:2",
      "--add-host",
      "db:10.0.0.7",
      "-h",
      "box",
      "busybox",
      "sh",
      "-c",
      "grep -E '^(search|options|nameserver)' /etc/resolv.conf | grep -v nameserver; grep -w db /etc/hosts; hostname",
    ]);
    assert.equal(out, "search example.com\noptions ndots:2\n10.0.0.7\tdb\nbox\n");
    // "." alone: no search line, not even the host's
    assert.equal(
      await root.ok([
        "run",
        "--rm",
        "--dns-search",
        ".",
        "busybox",
        "sh",
        "-c",
        "grep -c ^search /etc/resolv.conf; true",
      ]),
      "0\n",
    );
    // the largest gid runc takes is fine
    assert.match(
      await root.ok(["run", "--rm", "--group-add", "2147483647", "busybox", "id", "-G"]),
      /(^|\s)2147483647(\s|$)/,
    );
  });
});

Deno.test("input: --group-add numbers out of range are refused by the user lookup too", () => {
  const files = {
    passwd: new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"),
    group: new TextEncoder().encode("root:x:0:\n"),
  };
  assert.throws(() => execUserOf("0", ["99999999999"], files), /uids and gids must be in range 0-2147483647/);
  assert.deepEqual(execUserOf("0", ["2147483647"], files).additionalGids, [0, 2147483647]);
});

Deno.test("input: --env-file is read as docker's scanner reads it", async () => {
  await withBusybox(async (root) => {
    // /dev/zero: no newline ever; docker stops at its 64 KiB line limit (before: skiff read forever)
    const started = performance.now();
    const zero = await root.skiff(["run", "--rm", "--env-file", "/dev/zero", "busybox", "true"]);
    assert.equal(zero.code, 125, zero.stderr);
    assert.equal(zero.stderr, "skiff: bufio.Scanner: token too long\n");
    assert.ok(performance.now() - started < 15_000);

    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/blank-name`, "A B=1\n");
      const blank = await root.skiff(["run", "--rm", "--env-file", `${dir}/blank-name`, "busybox", "true"]);
      assert.equal(blank.code, 125);
      assert.equal(
        blank.stderr,
        "skiff: poorly formatted environment: variable 'A B' contains whitespaces\n",
      );

      await Deno.writeFile(`${dir}/latin1`, new Uint8Array([0x41, 0x3d, 0xe9, 0x0a]));
      const latin1 = await root.skiff(["run", "--rm", "--env-file", `${dir}/latin1`, "busybox", "true"]);
      assert.equal(latin1.code, 125);
      assert.equal(
        latin1.stderr,
        `skiff: env file ${dir}/latin1 contains invalid utf8 bytes at line 1: [65 61 233]\n`,
      );

      // comments, blank lines, CRLF, a last line without newline, and a line just under the limit
      const long = "L=" + "x".repeat(64 * 1024 - 3);
      await Deno.writeTextFile(`${dir}/ok`, `# comment\n\n  A=1\r\n${long}\nB=2`);
      const ok = await root.ok([
        "run",
        "--rm",
        "--env-file",
        `${dir}/ok`,
        "busybox",
        "sh",
        "-c",
        'echo "$A$B ${#L}"',
      ]);
      assert.equal(ok, `12 ${64 * 1024 - 3}\n`);
      await Deno.writeTextFile(`${dir}/too-long`, long + "xx\n");
      const tooLong = await root.skiff(["run", "--rm", "--env-file", `${dir}/too-long`, "busybox", "true"]);
      assert.equal(tooLong.stderr, "skiff: bufio.Scanner: token too long\n");
      assert.deepEqual(root.containerIds(), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("input: --format fields a row lacks are template errors (exit 1), as in docker", async () => {
  await withBusybox(async (root) => {
    await root.ok(["run", "--name", "cc", "busybox", "true"]);
    await root.ok(["volume", "create", "vol"]);
    // docker 20.10's words and type names (checked against its CLI): ps checks its template on an
    // empty row before it lists anything, so a filter that matches nothing fails the same way
    const parsing = "template parsing error: template: :1:2";
    const ps = "failed to execute template: template: :1:2";
    const cases: [string[], string, string][] = [
      [["ps", "-a", "--format", "{{.Bogus}}"], ps, "*formatter.ContainerContext"],
      [["ps", "-f", "name=nomatch", "--format", "{{.Bogus}}"], ps, "*formatter.ContainerContext"],
      [
        ["ps", "--format", "table {{.Bogus}}"],
        "failed to execute template: template: :1:8",
        "*formatter.ContainerContext",
      ],
      [["images", "--format", "{{.Bogus}}"], parsing, "*formatter.imageContext"],
      [["volume", "ls", "--format", "{{.Bogus}}"], parsing, "*formatter.volumeContext"],
      [["network", "ls", "--format", "{{.Bogus}}"], parsing, "*network.networkContext"],
      [["history", "--format", "{{.Bogus}}", "busybox"], parsing, "*image.historyContext"],
      [["stats", "--no-stream", "-a", "--format", "{{.Bogus}}"], parsing, "*container.statsContext"],
    ];
    for (const [args, at, type] of cases) {
      const r = await root.skiff(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.equal(
        r.stderr,
        `skiff: ${at}: executing "" at <.Bogus>: can't evaluate field Bogus in type ${type}\n`,
      );
    }
    const unparsed = await root.skiff(["ps", "--format", "{{.ID"]);
    assert.equal(unparsed.code, 1);
    assert.equal(unparsed.stderr, "skiff: failed to parse template: template: :1: unclosed action\n");
    // inspect runs the template on the raw JSON after the typed value: missingkey=error
    for (
      const args of [["inspect", "-f", "{{.Bogus}}", "cc"], ["volume", "inspect", "-f", "{{.Bogus}}", "vol"]]
    ) {
      const r = await root.skiff(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "\n");
      assert.equal(
        r.stderr,
        'template parsing error: template: :1:2: executing "" at <.Bogus>: map has no entry for key "Bogus"\n',
      );
    }
    assert.equal(await root.ok(["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "vol"]), "vol local\n");
    assert.equal(await root.ok(["volume", "ls", "--format", "{{.Name}}"]), "vol\n");
  });
});

// ---- pax numbers ----

const enc = new TextEncoder();
function octal(b: Uint8Array, off: number, len: number, n: number) {
  b.set(enc.encode(n.toString(8).padStart(len - 1, "0") + "\0"), off);
}
/** A ustar header block. */
function header(name: string, type: string, size: number): Uint8Array {
  const b = new Uint8Array(512);
  b.set(enc.encode(name), 0);
  octal(b, 100, 8, 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, 0);
  b.set(enc.encode(type), 156);
  b.set(enc.encode("ustar\0" + "00"), 257);
  b.fill(0x20, 148, 156);
  const sum = b.reduce((a, c) => a + c, 0);
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}
const padded = (data: Uint8Array) => {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
};
/** A tar with one file "f" of 4 bytes whose pax header sets key=value. */
function paxTar(key: string, value: string): Uint8Array {
  let record = ` ${key}=${value}\n`;
  let length = record.length;
  while (String(length).length + record.length !== length) length = String(length).length + record.length;
  record = `${length}${record}`;
  const body = enc.encode(record);
  const parts = [
    header("PaxHeaders/f", "x", body.length),
    padded(body),
    header("f", "0", 4),
    padded(enc.encode("data")),
    new Uint8Array(1024),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
function readAll(tar: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  const reader = new TarReader((e) => {
    entries.push(e);
    return undefined;
  });
  reader.push(tar);
  reader.finish();
  return entries;
}
/** GNU tar's verdict on the same archive: does it list it without complaint? */
async function gnuTarAccepts(tar: Uint8Array): Promise<boolean> {
  const path = await Deno.makeTempFile({ suffix: ".tar" });
  try {
    await Deno.writeFile(path, tar);
    const out = await new Deno.Command("tar", { args: ["-tvf", path], stdout: "null", stderr: "null" })
      .output();
    return out.success;
  } finally {
    await Deno.remove(path);
  }
}

const malformed: [string, string][] = [
  ["size", "0.5"],
  ["size", "1e1"],
  ["size", "+4"],
  ["size", " 4"],
  ["size", "0x4"],
  ["size", "-4"],
  ["size", ""],
  ["uid", "1.5"],
  ["uid", "-1"],
  ["uid", "4294967296"],
  ["gid", "1e3"],
  ["mtime", "abc"],
  ["mtime", "+5"],
  ["mtime", ".5"],
  ["mtime", "-"],
];
Deno.test("tar: pax numbers in forms GNU tar refuses are refused", async () => {
  for (const [key, value] of malformed) {
    const tar = paxTar(key, value);
    assert.throws(() => readAll(tar), new RegExp(`bad pax ${key}`), `${key}=${value} was taken`);
    assert.equal(await gnuTarAccepts(tar), false, `GNU tar takes ${key}=${value}`);
  }
  // GNU tar 1.34 reads a time's leading digits and ignores what follows ("1e9" is 1 s); skiff takes
  // only the decimal forms writers produce
  for (const value of ["1e9", "5abc", "5.5.5"]) {
    assert.throws(() => readAll(paxTar("mtime", value)), /bad pax mtime/);
  }
});

Deno.test("tar: pax numbers in GNU tar's forms are taken", async () => {
  const cases: [string, string, keyof TarEntry, number][] = [
    ["size", "4", "size", 4],
    ["uid", "4294967295", "uid", 4294967295],
    ["gid", "1000", "gid", 1000],
    ["mtime", "1700000000.25", "mtime", 1700000000.25],
    ["mtime", "-5", "mtime", -5],
  ];
  for (const [key, value, field, expected] of cases) {
    const tar = paxTar(key, value);
    const [entry] = readAll(tar);
    assert.equal(entry[field], expected, `${key}=${value}`);
    assert.equal(await gnuTarAccepts(tar), true, `GNU tar refuses ${key}=${value}`);
  }
});
