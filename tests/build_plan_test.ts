// build planning without root: the Dockerfile parser, docker's word processing, stages and
// --target, config instructions, RUN's cache-key command, and the .dockerignore matcher.

import { deepStrictEqual as assertEqual, throws as assertThrows } from "node:assert/strict";
import { parseDockerfile } from "../lib/build/parse.ts";
import { processWord, processWords } from "../lib/build/shell.ts";
import {
  cacheKey,
  commandOf,
  configStep,
  planBuild,
  runBuildArgs,
  runHistoryCommand,
  type StageState,
} from "../lib/build/plan.ts";
import { cleanSource, globToRegExp } from "../lib/build/copy.ts";

Deno.test("parser: continuations, comments inside them, escape directive, JSON form, flags", () => {
  const df = parseDockerfile(
    '# escape=`\n# syntax=docker/dockerfile:1\nFROM busybox AS b\n# a comment\nRUN echo a `\n# dropped\n  b\nCOPY --from=b --chown=1:2 a* /x/\nCMD ["a","b"]\nCMD [not json\n',
  );
  assertEqual(df.escape, "`");
  assertEqual(df.syntax, "docker/dockerfile:1");
  const [from, run, copy, cmd, bad] = df.instructions;
  assertEqual([from.keyword, from.rest, from.line], ["FROM", "busybox AS b", 3]);
  assertEqual(run.rest, "echo a   b");
  assertEqual(run.line, 5);
  assertEqual(copy.flags, [{ name: "from", value: "b" }, { name: "chown", value: "1:2" }]);
  assertEqual(copy.rest, "a* /x/");
  assertEqual(cmd.json, ["a", "b"]);
  assertEqual(bad.json, undefined);
});

Deno.test("parser: heredocs, <<- strips tabs, quoted name", () => {
  const df = parseDockerfile(
    "FROM x\nRUN <<EOF\necho hi\n  two\nEOF\nCOPY <<-'END' /f\n\tbody $X\n\tEND\nRUN true\n",
  );
  const [, run, copy, last] = df.instructions;
  assertEqual(run.heredocs, [{ name: "EOF", content: "echo hi\n  two\n", chomp: false, quoted: false }]);
  assertEqual(copy.heredocs[0].content, "body $X\n");
  assertEqual(copy.heredocs[0].quoted, true);
  assertEqual(last.line, 9);
  assertEqual(commandOf(run, {}), ["/bin/sh", "-c", "echo hi\n  two\n"]);
});

Deno.test("parser: an unknown instruction and a missing argument name the file and line", () => {
  assertThrows(
    () => parseDockerfile("FROM x\n\nFOO bar\n", "df/Dockerfile.dev"),
    /df\/Dockerfile\.dev:3: unknown instruction: FOO/,
  );
  assertThrows(() => parseDockerfile("FROM x\nRUN\n"), /Dockerfile:2: RUN requires at least one argument/);
  assertThrows(() => parseDockerfile("FROM x\nRUN <<EOF\necho\n"), /Dockerfile:2: unterminated heredoc/);
});

Deno.test("shell words: docker's substitution forms and quoting", () => {
  const env = new Map([["A", "1"], ["E", ""], ["S", "a b"]]);
  assertEqual(processWord("$A${A}x", env), "11x");
  assertEqual(processWord("${U:-def}|${E:-def}|${E-def}|${A:+set}|${U:+set}", env), "def|def||set|");
  assertEqual(processWord("'$A' \"$A\" \\$A", env), "$A 1 $A");
  assertEqual(processWord('"a\\"b"', env), 'a"b');
  assertEqual(processWords("$S 'c d' e", env), ["a", "b", "c d", "e"]);
  assertEqual(processWords('"$S"', env), ["a b"]);
  assertEqual(processWord("`$A", env, "`"), "$A");
  assertThrows(() => processWord("${U:?need U}", env), /U: need U/);
});

const state = (config = {}): StageState => ({
  config,
  args: new Map(),
  escape: "\\",
  buildArgs: new Map(),
  metaValues: new Map(),
});
const instr = (line: string) => parseDockerfile(`FROM x\n${line}\n`).instructions[1];

Deno.test("config steps: ENV both forms, LABEL, CMD/ENTRYPOINT forms, EXPOSE, VOLUME, WORKDIR", () => {
  const s = state({ Env: ["PATH=/bin"] });
  s.config = configStep(s, instr('ENV A=1 B="x y" C=$A')).config;
  assertEqual(s.config.Env, ["PATH=/bin", "A=1", "B=x y", "C=1"]);
  s.config = configStep(s, instr("ENV D legacy value $A")).config;
  assertEqual(s.config.Env?.at(-1), "D=legacy value 1");
  s.config = configStep(s, instr('LABEL "k 1"=v a=$B')).config;
  assertEqual(s.config.Labels, { "k 1": "v", a: "x y" });
  s.config = configStep(s, instr("CMD echo $A")).config;
  assertEqual(s.config.Cmd, ["/bin/sh", "-c", "echo $A"]);
  s.config = configStep(s, instr('ENTRYPOINT ["/e"]')).config;
  assertEqual(s.config.Cmd, ["/bin/sh", "-c", "echo $A"]); // a CMD of this stage survives
  const fresh = state({ Cmd: ["base"] });
  assertEqual(configStep(fresh, instr("ENTRYPOINT /e")).config.Cmd, null); // the base's does not
  s.config = configStep(s, instr("EXPOSE 80 53/udp")).config;
  assertEqual(s.config.ExposedPorts, { "80/tcp": {}, "53/udp": {} });
  s.config = configStep(s, instr('VOLUME ["/data", "/$A"]')).config;
  assertEqual(Object.keys(s.config.Volumes ?? {}), ["/data", "/1"]);
  s.config = configStep(s, instr("WORKDIR /a")).config;
  s.config = configStep(s, instr("WORKDIR b/../c")).config;
  assertEqual(s.config.WorkingDir, "/a/c");
  s.config = configStep(s, instr('SHELL ["/bin/bash", "-c"]')).config;
  assertEqual(commandOf(instr("RUN x"), s.config), ["/bin/bash", "-c", "x"]);
  s.config = configStep(s, instr("HEALTHCHECK --interval=5s --retries=3 CMD curl -f x")).config;
  assertEqual(s.config.Healthcheck, { Test: ["CMD-SHELL", "curl -f x"], Interval: 5e9, Retries: 3 });
  s.config = configStep(s, instr("ONBUILD RUN echo hi")).config;
  assertEqual(s.config.OnBuild, ["RUN echo hi"]);
  s.config = configStep(s, instr("STOPSIGNAL SIGKILL")).config;
  assertEqual(s.config.StopSignal, "SIGKILL");
  assertThrows(() => configStep(s, instr("SHELL /bin/sh")), /JSON form/);
});

Deno.test("ARG: defaults, --build-arg, ENV wins in substitution, RUN's cache command", async () => {
  const s = state({ Env: ["E=env"] });
  s.buildArgs = new Map([["V", "cli"], ["HTTP_PROXY", "p"]]);
  configStep(s, instr("ARG V=def W=w E=arg"));
  assertEqual(s.args.get("V"), "cli");
  assertEqual(configStep(s, instr("LABEL l=$V-$W-$E")).config.Labels, { l: "cli-w-env" });
  // a RUN sees the declared args with values (ENV shadows E) and the predefined proxy args
  const args = runBuildArgs(s);
  assertEqual(args, ["V=cli", "W=w", "HTTP_PROXY=p"]);
  assertEqual(runHistoryCommand(["/bin/sh", "-c", "x"], args), "|3 V=cli W=w HTTP_PROXY=p /bin/sh -c x");
  // a changed value changes the RUN key; the ARG line itself keeps its key (docker: cache hit)
  const other = state({ Env: ["E=env"] });
  other.buildArgs = new Map([["V", "other"]]);
  const argStep = configStep(other, instr("ARG V=def W=w E=arg"));
  assertEqual(argStep.createdBy, configStep(s, instr("ARG V=def W=w E=arg")).createdBy);
  const k1 = await cacheKey("sha256:p", runHistoryCommand(["x"], runBuildArgs(s)));
  const k2 = await cacheKey("sha256:p", runHistoryCommand(["x"], runBuildArgs(other)));
  assertEqual(k1 === k2, false);
});

Deno.test("plan: meta ARGs in FROM, stages by name and index, --target builds only what it needs", () => {
  const text = [
    "ARG BASE=busybox",
    "FROM $BASE AS deps",
    "RUN a",
    "FROM busybox AS unused",
    "RUN b",
    "FROM deps AS build",
    "COPY --from=0 /x /y",
    "FROM scratch",
    "COPY --from=build /y /z",
  ].join("\n");
  const p = planBuild(text);
  assertEqual(p.stages.map((s) => s.base), ["busybox", "busybox", "deps", "scratch"]);
  assertEqual(p.build.map((s) => s.index), [0, 2, 3]);
  assertEqual(p.totalSteps, 1 + 2 + 2 + 2);
  const t = planBuild(text, { target: "unused", buildArgs: new Map([["BASE", "alpine"]]) });
  assertEqual(t.build.map((s) => s.index), [1]);
  assertEqual(planBuild(text, { buildArgs: new Map([["BASE", "alpine"]]) }).stages[0].base, "alpine");
  assertThrows(() => planBuild(text, { target: "nope" }), /failed to reach build target nope/);
  assertThrows(() => planBuild("RUN x\n"), /Dockerfile:1: no build stage/);
  assertThrows(() => planBuild("FROM a AS x\nFROM b AS x\n"), /duplicate name x/);
});

Deno.test("COPY sources: outside the context is refused, globs are Go's filepath.Match", () => {
  assertThrows(() => cleanSource("../x"), /forbidden path outside the build context: \.\.\/x/);
  assertThrows(() => cleanSource("a/../../x"), /forbidden path/);
  assertEqual(cleanSource("./a/../b/"), "b");
  assertEqual(cleanSource("/abs"), "abs"); // absolute sources are relative to the context
  const re = globToRegExp("src/*.t?t");
  assertEqual(["src/a.txt", "src/b/a.txt", "src/.tst", "src/a.tx"].map((p) => re.test(p)), [
    true,
    false,
    true,
    false,
  ]);
  assertEqual(globToRegExp("[a-c]x").test("bx"), true);
  assertEqual(globToRegExp("[!a-c]x").test("bx"), false);
});

Deno.test(".dockerignore: @balena/dockerignore passes docker's rules", async () => {
  const mod = await import("@balena/dockerignore");
  const make = mod.default as unknown as (o: object) => { add(p: string[]): { ignores(p: string): boolean } };
  const cases: [string[], string, boolean][] = [
    [["**/*.go"], "a/b/c.go", true],
    [["**/*.go"], "c.go", true],
    [["a/**/z"], "a/z", true],
    [["*.md", "!README.md"], "README.md", false],
    [["*.md", "!README.md"], "x.md", true],
    [["/dir"], "dir/f", true],
    [["./a/../b"], "b", true],
    [["*/tmp*"], "x/tmpfile", true],
    [["*/tmp*"], "x/y/tmpfile", false],
    [["docs", "!docs/keep"], "docs/keep", false],
    [["docs", "!docs/keep"], "docs/other", true],
    [["!x", "x"], "x", true],
  ];
  for (const [patterns, path, want] of cases) {
    assertEqual(make({ ignorecase: false }).add(patterns).ignores(path), want, `${patterns} ${path}`);
  }
});
