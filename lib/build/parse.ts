// The Dockerfile parser: docker's line grammar (moby/buildkit frontend/dockerfile/parser) without
// its evaluation. Parser directives at the top (`# escape=`, `# syntax=`), comments, line
// continuations with the escape character, heredocs (`RUN <<EOF`, `COPY <<EOF /f`), leading
// `--flag=value` options, and the JSON (exec) form. Variable substitution is not done here: it
// depends on the instruction and on the ARG/ENV values in scope (shell.ts, plan.ts).

import { SkiffError } from "../errors.ts";

export interface Heredoc {
  name: string;
  content: string;
  /** `<<-`: leading tabs stripped */
  chomp: boolean;
  /** a quoted name: no expansion in the body */
  quoted: boolean;
}

export interface Instruction {
  /** upper case: RUN, COPY, ... */
  keyword: string;
  /** as written, after the flags, continuations joined (heredoc bodies not included) */
  rest: string;
  /** `--name=value` options before the arguments, in order */
  flags: { name: string; value: string | undefined }[];
  /** JSON exec form, when `rest` is a JSON array of strings */
  json?: string[];
  heredocs: Heredoc[];
  /** 1-based line of the instruction's first line */
  line: number;
  /** the instruction as docker shows it in `Step N/M : ...` */
  original: string;
}

export interface Dockerfile {
  escape: string;
  instructions: Instruction[];
  /** `# syntax=`: accepted and ignored (no frontend images here) */
  syntax?: string;
}

export class DockerfileSyntaxError extends SkiffError {}

const KNOWN = new Set([
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "MAINTAINER",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
]);

/** Instructions whose arguments may open heredocs (docker's heredoc-capable set). */
const HEREDOC_KEYWORDS = new Set(["RUN", "COPY", "ADD"]);

const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const HEREDOC_RE = /<<(-?)\s*(["']?)([a-zA-Z_][a-zA-Z0-9_]*)\2/g;

/** The JSON form: a JSON array of strings, else undefined (docker then takes the shell form). */
export function parseJsonForm(rest: string): string[] | undefined {
  const t = rest.trim();
  if (!t.startsWith("[")) return undefined;
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
  } catch { /* shell form */ }
  return undefined;
}

/** Splits leading `--name[=value]` flags off an instruction's arguments. */
function splitFlags(rest: string): { flags: Instruction["flags"]; rest: string } {
  const flags: Instruction["flags"] = [];
  let s = rest;
  while (true) {
    const m = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(s);
    if (!m) break;
    flags.push({ name: m[1], value: m[2] });
    s = s.slice(m[0].length);
  }
  return { flags, rest: s };
}

/** Parses a Dockerfile; `file` names it in errors (`Dockerfile:3`). */
export function parseDockerfile(text: string, file = "Dockerfile"): Dockerfile {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let escape = "\\";
  let syntax: string | undefined;
  let i = 0;
  // parser directives: only at the very top, before any other line (even a blank one ends them)
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (key !== "escape" && key !== "syntax" && key !== "check") break;
    if (seen.has(key)) {
      throw new DockerfileSyntaxError(`${file}:${i + 1}: only one ${key} parser directive can be used`);
    }
    seen.add(key);
    if (key === "escape") {
      if (m[2] !== "\\" && m[2] !== "`") {
        throw new DockerfileSyntaxError(
          `${file}:${i + 1}: invalid escape token '${m[2]}' does not match ` + "` or \\",
        );
      }
      escape = m[2];
    } else if (key === "syntax") syntax = m[2];
  }
  const continuation = new RegExp(`${escape === "\\" ? "\\\\" : "`"}[ \\t]*$`);
  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const first = lines[i].replace(/^\s+/, "");
    const startLine = i + 1;
    i++;
    if (first === "" || first.startsWith("#")) continue;
    // join continuation lines; comment lines inside are dropped, as docker does
    let logical = first;
    while (continuation.test(logical)) {
      logical = logical.replace(continuation, "");
      let next: string | undefined;
      while (i < lines.length) {
        const candidate = lines[i];
        i++;
        const trimmed = candidate.replace(/^\s+/, "");
        if (trimmed.startsWith("#")) continue;
        if (trimmed === "") continue; // empty continuation lines are allowed (docker warns)
        next = candidate;
        break;
      }
      if (next === undefined) break;
      logical += next;
    }
    logical = logical.replace(/\s+$/, "");
    const m = /^(\S+)\s*(.*)$/s.exec(logical);
    if (!m) continue;
    const keyword = m[1].toUpperCase();
    if (!KNOWN.has(keyword)) {
      throw new DockerfileSyntaxError(`${file}:${startLine}: unknown instruction: ${m[1]}`);
    }
    const { flags, rest } = keyword === "ONBUILD" ? { flags: [], rest: m[2] } : splitFlags(m[2]);
    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(keyword) && !rest.trim().startsWith("[")) {
      for (const h of rest.matchAll(HEREDOC_RE)) {
        const chomp = h[1] === "-";
        const body: string[] = [];
        let closed = false;
        while (i < lines.length) {
          const raw = lines[i];
          i++;
          const lineText = chomp ? raw.replace(/^\t+/, "") : raw;
          if (lineText === h[3]) {
            closed = true;
            break;
          }
          body.push(lineText);
        }
        if (!closed) throw new DockerfileSyntaxError(`${file}:${startLine}: unterminated heredoc ${h[3]}`);
        heredocs.push({
          name: h[3],
          content: body.map((l) => l + "\n").join(""),
          chomp,
          quoted: h[2] !== "",
        });
      }
    }
    const needsArgs = !["HEALTHCHECK"].includes(keyword);
    if (needsArgs && rest.trim() === "" && heredocs.length === 0) {
      throw new DockerfileSyntaxError(`${file}:${startLine}: ${keyword} requires at least one argument`);
    }
    instructions.push({
      keyword,
      rest,
      flags,
      json: parseJsonForm(rest),
      heredocs,
      line: startLine,
      original: logical,
    });
  }
  return { escape, instructions, ...(syntax ? { syntax } : {}) };
}
