// Unit tests of the Go-template subset, the tabwriter alignment and docker's human wording.
// Expected strings are what Go's text/template / docker print for the same input.

import assert from "node:assert/strict";
import {
  formatFloatG,
  goJson,
  goQuote,
  goString,
  goStruct,
  parseTemplate,
  renderTemplate,
  splitTableDirective,
  sprintf,
  TemplateExecError,
  TemplateParseError,
} from "../lib/format/template.ts";
import { alignTabs } from "../lib/format/table.ts";
import {
  containerStatus,
  ellipsis,
  humanDuration,
  humanSize,
  shortId,
  timeAgo,
} from "../lib/format/human.ts";

const data = {
  ID: "0123456789abcdef",
  Name: "/web",
  Args: ["-c", "echo hi"],
  Empty: [],
  Nil: null,
  Zero: 0,
  Float: 1.5,
  Big: 1e21,
  True: true,
  Config: { Labels: { b: "2", a: "1", "com.example.x": "y" }, Env: ["A=1", "B=2"] },
  State: { Running: true, ExitCode: 0, Status: "running" },
  Mounts: [{ Source: "/src", Destination: "/dst" }, { Source: "/s2", Destination: "/d2" }],
};
const r = (t: string, d: unknown = data) => renderTemplate(t, d);

Deno.test("template: fields, chains, dot and root variable", () => {
  assert.equal(r("{{.Name}}"), "/web");
  assert.equal(r("{{.State.Status}}"), "running");
  assert.equal(r("{{.ID}} and {{.Name}}"), "0123456789abcdef and /web");
  assert.equal(r("{{.}}", "plain"), "plain");
  assert.equal(r("{{range .Mounts}}{{$.Name}}{{end}}"), "/web/web");
  assert.equal(r("{{with .State}}{{.Status}}{{end}}"), "running");
});

Deno.test("template: Go's printing of maps, slices, bools, numbers, nil and missing", () => {
  assert.equal(r("{{.Config.Labels}}"), "map[a:1 b:2 com.example.x:y]");
  assert.equal(r("{{.Args}}"), "[-c echo hi]");
  assert.equal(r("{{.Empty}}"), "[]");
  assert.equal(r("{{.True}}"), "true");
  assert.equal(r("{{.Zero}} {{.Float}} {{.Big}}"), "0 1.5 1e+21");
  assert.equal(r("{{.Nil}}"), "<nil>");
  assert.equal(r("{{.Missing}}"), "<no value>");
  assert.equal(r("{{.Config.Missing}}"), "<no value>");
  assert.equal(r("{{.Mounts}}"), "[map[Destination:/dst Source:/src] map[Destination:/d2 Source:/s2]]");
  const st = goStruct("T", { A: "x", B: 2, C: ["p", "q"], D: { k: "v" }, E: null });
  assert.equal(goString(st), "{x 2 [p q] map[k:v] <nil>}");
});

Deno.test("template: structs reject unknown fields, maps don't", () => {
  const st = goStruct("*types.Thing", { A: 1 });
  assert.throws(() => r("{{.B}}", st), (e: Error) => {
    assert.ok(e instanceof TemplateExecError);
    assert.equal(
      e.message,
      `template: :1:2: executing "" at <.B>: can't evaluate field B in type *types.Thing`,
    );
    return true;
  });
  assert.throws(
    () => parseTemplate("{{.B}}").execute({ A: 1 }, { missingKeyError: true }),
    /map has no entry for key "B"/,
  );
  assert.throws(() => r("{{.Nil.X}}"), /nil pointer evaluating/);
  // Go's line:column of the failing node, and the whole command for a function call
  assert.throws(
    () => r('ab\n  {{printf "%s" .Nil.X}}'),
    /template: :2:16: executing "" at <\.Nil\.X>: nil pointer/,
  );
  assert.throws(
    () => r("{{index .Args 5}}"),
    (e: Error) =>
      e.message ===
        `template: :1:2: executing "" at <index .Args 5>: error calling index: index out of range: 5`,
  );
  assert.throws(() => r("{{.Name.X}}"), /can't evaluate field X in type string/);
});

Deno.test("template: json", () => {
  assert.equal(r("{{json .Args}}"), '["-c","echo hi"]');
  assert.equal(r("{{json .Config.Labels}}"), '{"a":"1","b":"2","com.example.x":"y"}');
  assert.equal(r("{{json .Nil}}"), "null");
  assert.equal(r('{{json "<&>"}}'), '"<&>"'); // docker's json func turns HTML escaping off
  const st = goStruct("T", { Z: 1, A: 2 });
  assert.equal(goJson(st), '{"Z":1,"A":2}'); // structs keep field order
  assert.equal(goJson({ toJSON: () => ({ b: 1, a: 2 }) }), '{"a":2,"b":1}');
});

Deno.test("template: range over slices and maps, with $k $v, else, break, continue", () => {
  assert.equal(r("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"), "/src:/dst /s2:/d2 ");
  assert.equal(r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"), "a=1;b=2;com.example.x=y;");
  assert.equal(r("{{range $i, $e := .Args}}{{$i}}:{{$e}} {{end}}"), "0:-c 1:echo hi ");
  assert.equal(r("{{range $e := .Args}}[{{$e}}]{{end}}"), "[-c][echo hi]");
  assert.equal(r("{{range .Empty}}x{{else}}none{{end}}"), "none");
  assert.equal(r("{{range .Nil}}x{{else}}none{{end}}"), "none");
  assert.equal(r('{{range .Args}}{{if eq . "-c"}}{{continue}}{{end}}{{.}}{{end}}'), "echo hi");
  assert.equal(r("{{range .Args}}{{.}}{{break}}{{end}}"), "-c");
  assert.equal(r("{{range 3}}{{.}}{{end}}"), "012");
});

Deno.test("template: index, len, join, split, upper, lower, title, pad, truncate", () => {
  assert.equal(r('{{index .Config.Labels "a"}}'), "1");
  assert.equal(r('{{index .Config.Labels "com.example.x"}}'), "y");
  assert.equal(r('{{index .Config.Labels "nope"}}'), "");
  assert.equal(r("{{index .Args 1}}"), "echo hi");
  assert.throws(() => r("{{index .Args 5}}"), /index out of range: 5/);
  assert.equal(r("{{len .Args}} {{len .Config.Labels}} {{len .Name}}"), "2 3 4");
  assert.equal(r('{{join .Args ","}}'), "-c,echo hi");
  assert.equal(r('{{split "a:b:c" ":"}}'), "[a b c]");
  assert.equal(r('{{upper .Name}} {{lower "ABC"}} {{title "hello world"}}'), "/WEB abc Hello World");
  assert.equal(r('{{pad "x" 1 2}}|'), " x  |");
  assert.equal(r("{{truncate .ID 4}}"), "0123");
});

Deno.test("template: if / else if / else, and/or/not, comparisons", () => {
  assert.equal(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
  assert.equal(r("{{if .Zero}}a{{else if .Empty}}b{{else if .True}}c{{else}}d{{end}}"), "c");
  assert.equal(r("{{if not .Nil}}nil{{end}}"), "nil");
  assert.equal(r("{{if and .True .Zero}}y{{else}}n{{end}}"), "n");
  assert.equal(r("{{or .Zero .Name}}"), "/web");
  assert.equal(r("{{and .True .Name}}"), "/web");
  assert.equal(r('{{if eq .State.Status "exited" "running"}}match{{end}}'), "match");
  assert.equal(
    r("{{if gt .Float 1.0}}big{{end}} {{lt 1 2}} {{ne 1 1}} {{le 2 2}} {{ge 1 2}}"),
    "big true false true false",
  );
  assert.throws(() => r('{{eq 1 "a"}}'), /incompatible types for comparison/);
});

Deno.test("template: pipelines, parentheses, variables, printf, print, println", () => {
  assert.equal(r("{{.Name | upper}}"), "/WEB");
  assert.equal(r('{{.Name | printf "%s!" | upper}}'), "/WEB!");
  assert.equal(r("{{(index .Mounts 1).Source}}"), "/s2");
  assert.equal(r("{{len (index .Mounts 0)}}"), "2");
  assert.equal(r('{{$n := .Name}}{{$n}}{{$n = "x"}}{{$n}}'), "/webx");
  assert.equal(
    r('{{printf "%s=%d %q %v %5.2f|%-4s|%x" "a" 42 "q" .Args 3.14159 "ab" 255}}'),
    'a=42 "q" [-c echo hi]  3.14|ab  |ff',
  );
  assert.equal(r('{{printf "%d" "x"}}'), "%!d(string=x)");
  assert.equal(r('{{printf "%q" .Args}}'), '["-c" "echo hi"]');
  assert.equal(r('{{slice .ID 0 12}}|{{.ID | printf "%.4s"}}'), "0123456789ab|0123");
  assert.equal(r('{{printf "%s %s" "x"}}'), "x %!s(MISSING)");
  assert.equal(r('{{print 1 2 "a" 3}}'), "1 2a3");
  assert.equal(r("{{println .Name 2}}"), "/web 2\n");
  assert.equal(r("{{println}}"), "\n");
  assert.equal(sprintf("%05d|%+d|%t|%c|%T", [42, 5, true, 65, "s"]), "00042|+5|true|A|string");
});

Deno.test("template: trim markers and comments", () => {
  assert.equal(r("a  {{- .Name -}}  b"), "a/webb");
  assert.equal(r("a \n {{- .Name}} \n b"), "a/web \n b");
  assert.equal(r("{{range .Args -}}\n  {{.}}\n{{- end}}"), "-cecho hi");
  assert.equal(r("x{{/* a comment */}}y"), "xy");
  assert.equal(r("x {{- /* c */ -}} y"), "xy");
  assert.equal(r("{{-3}}"), "-3"); // not a trim marker without the space
});

Deno.test("template: string literals", () => {
  assert.equal(r('{{"a\\tb\\n\\u00e9"}}'), "a\tb\né");
  assert.equal(r("{{`raw\\n`}}"), "raw\\n");
  assert.equal(r("{{printf \"%c\" 'x'}}"), "x");
  assert.equal(goQuote('sh -c "x"\n'), '"sh -c \\"x\\"\\n"');
});

Deno.test("template: parse errors have docker's wording and exit 125", () => {
  const cases: [string, RegExp][] = [
    ["{{.Name", /template: :1: unclosed action/],
    ["{{nope .Name}}", /function "nope" not defined/],
    ["{{if .Name}}x", /unexpected EOF/],
    ["{{end}}", /unexpected \{\{end\}\}/],
    ["{{}}", /missing value for command/],
    ["{{.Name !}}", /bad character U\+0021 '!'/],
    ["{{$x}}", /undefined variable "\$x"/],
    ["line1\n{{.A | }}", /template: :2: missing command after pipe|missing value for command/],
  ];
  for (const [tpl, re] of cases) {
    assert.throws(() => parseTemplate(tpl), (e: Error) => {
      assert.ok(e instanceof TemplateParseError, `${tpl}: ${e}`);
      assert.equal((e as TemplateParseError).exitCodeGiven, false); // the verb's: 1, inspect's 64
      assert.match(e.message, /^template parsing error: /);
      assert.match(e.message, re, tpl);
      return true;
    });
  }
});

Deno.test('template: methods with arguments (docker\'s .Label "k")', () => {
  const row = goStruct("*formatter.ContainerContext", {
    Names: "web",
    Label: (k: string) => ({ a: "1" } as Record<string, string>)[k] ?? "",
  });
  assert.equal(r('{{.Label "a"}}|{{.Label "b"}}|{{"a" | .Label}}', row), "1||1");
  assert.throws(() => r('{{.Names "x"}}', row), /cannot be invoked as function|non-function/);
});

Deno.test("template: table directive and docker's tabwriter", () => {
  assert.deepEqual(splitTableDirective("table {{.ID}}\t{{.Names}}"), {
    table: true,
    body: "{{.ID}}\t{{.Names}}",
  });
  assert.deepEqual(splitTableDirective("{{.ID}}"), { table: false, body: "{{.ID}}" });
  const text = "CONTAINER ID\tIMAGE\tNAMES\n0123456789ab\tbusybox:latest\tx\n";
  assert.equal(
    alignTabs(text),
    "CONTAINER ID   IMAGE            NAMES\n0123456789ab   busybox:latest   x\n",
  );
  // minimum cell width 10 (docker's tabwriter minwidth), 3 spaces padding
  assert.equal(alignTabs("A\tB\nx\ty\n"), "A         B\nx         y\n");
  // runes, not bytes: "…" is one column
  assert.equal(alignTabs("ab…cdefghijk\tZ\nx\tY\n"), "ab…cdefghijk   Z\nx              Y\n");
});

Deno.test("human: durations, statuses and sizes as docker words them", () => {
  assert.equal(humanDuration(500), "Less than a second");
  assert.equal(humanDuration(1000), "1 second");
  assert.equal(humanDuration(3000), "3 seconds");
  assert.equal(humanDuration(61_000), "About a minute");
  assert.equal(humanDuration(5 * 60_000), "5 minutes");
  assert.equal(humanDuration(3_600_000), "About an hour");
  assert.equal(humanDuration(3 * 3_600_000), "3 hours");
  assert.equal(humanDuration(3 * 86_400_000), "3 days");
  assert.equal(humanDuration(20 * 86_400_000), "2 weeks");
  assert.equal(humanDuration(90 * 86_400_000), "3 months");
  assert.equal(humanDuration(800 * 86_400_000), "2 years");
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(timeAgo("2026-01-01T11:00:00Z", now), "About an hour ago");
  const base = { Paused: false, Restarting: false, ExitCode: 0 };
  assert.equal(
    containerStatus({
      ...base,
      Status: "running",
      StartedAt: "2026-01-01T11:59:57Z",
      FinishedAt: "0001-01-01T00:00:00Z",
    }, now),
    "Up 3 seconds",
  );
  assert.equal(
    containerStatus({
      ...base,
      Status: "exited",
      ExitCode: 3,
      StartedAt: "2026-01-01T11:00:00Z",
      FinishedAt: "2026-01-01T11:58:00Z",
    }, now),
    "Exited (3) 2 minutes ago",
  );
  assert.equal(
    containerStatus({
      ...base,
      Status: "created",
      StartedAt: "0001-01-01T00:00:00Z",
      FinishedAt: "0001-01-01T00:00:00Z",
    }, now),
    "Created",
  );
  assert.equal(humanSize(0), "0B");
  assert.equal(humanSize(999), "999B");
  assert.equal(humanSize(1000), "1kB");
  assert.equal(humanSize(1_240_000), "1.24MB");
  assert.equal(humanSize(12_345), "12.3kB");
  assert.equal(humanSize(4_261_550), "4.26MB");
  assert.equal(formatFloatG(0.00001), "1e-05");
  assert.equal(formatFloatG(123456, 3), "1.23e+05");
  assert.equal(shortId("sha256:0123456789abcdef"), "0123456789ab");
  assert.equal(ellipsis("sh -c 'while true; do x; done'", 20), "sh -c 'while true; …");
  assert.equal(ellipsis("short", 20), "short");
});

Deno.test("list formats: default table, table TEMPLATE, json, plain template, header from field names", async () => {
  const { compileListFormat } = await import("../lib/format/list.ts");
  const { imageRow, imagesHeaderRow, DEFAULT_IMAGES_FORMAT } = await import("../lib/inspect/images.ts");
  const image = {
    id: `sha256:${"a1".repeat(32)}`,
    repoTags: ["busybox:latest"],
    repoDigests: [],
    layers: [],
    config: { rootfs: { type: "layers" as const, diff_ids: [] } },
    created: new Date(Date.now() - 3 * 3600_000).toISOString(),
    size: 4_261_550,
  };
  const row = imageRow({ image, repository: "busybox", tag: "latest", digest: "<none>", noTrunc: false });
  const def = compileListFormat("", DEFAULT_IMAGES_FORMAT);
  assert.equal(def.table, true);
  assert.equal(
    def.render([row], imagesHeaderRow()),
    "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n" +
      "busybox      latest    a1a1a1a1a1a1   3 hours ago   4.26MB\n",
  );
  const custom = compileListFormat("table {{.Repository}}:{{.Tag}}\\t{{.Size}}", DEFAULT_IMAGES_FORMAT);
  assert.equal(custom.render([row], imagesHeaderRow()), "REPOSITORY:TAG   SIZE\nbusybox:latest   4.26MB\n");
  assert.equal(
    compileListFormat("{{.ID}}", DEFAULT_IMAGES_FORMAT).render([row, row], null),
    "a1a1a1a1a1a1\na1a1a1a1a1a1\n",
  );
  const json = JSON.parse(compileListFormat("json", DEFAULT_IMAGES_FORMAT).render([row], null));
  assert.equal(json.Repository, "busybox");
  assert.equal(json.Size, "4.26MB");
  assert.ok(compileListFormat("{{.Size}}", "").uses("Size"));
  assert.ok(!compileListFormat("{{.SizeRw}}", "").uses("Size"));
  assert.throws(() => compileListFormat("{{.Repository", ""), TemplateParseError);
});
