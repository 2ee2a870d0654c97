// A Go text/template subset, enough for docker's --format users: fields and chains, variables,
// pipelines, if/else if/with/range (with else, break, continue), comments, trim markers, Go's
// builtin functions plus docker's (json, split, join, title, lower, upper, pad, truncate), and Go's
// way of printing values (`map[k:v]`, `[a b]`, `{x y}`, `<no value>`, `<nil>`).
//
// The npm package @ctrl/golang-template was measured first (see lib/format/README.md): it passed 5
// of 17 docker-style probes (no pipelines, variables, printf, json, trim markers or Go value
// printing), so skiff carries this one.
//
// Values are plain JS data. Objects are Go maps (missing key → `<no value>`, printed sorted as
// `map[k:v]`) unless wrapped with goStruct(), which makes them structs (missing field is an error,
// printed `{v1 v2}` in field order), as docker's inspect types are. A function-valued field is a
// method: `{{.Label "k"}}` calls it with the arguments.

import { type ErrorKind, SkiffError } from "../errors.ts";
import { formatFloatG } from "./gofloat.ts";

export { formatFloatG };

// ---------------------------------------------------------------------------------------------
// Value model

const STRUCT = Symbol("goStruct");

/** Marks an object as a Go struct named `typeName` (non-enumerable: JSON output is unchanged). */
export function goStruct<T extends object>(typeName: string, obj: T): T {
  Object.defineProperty(obj, STRUCT, { value: typeName, enumerable: false });
  return obj;
}

const STRINGER = Symbol("goStringer");

/**
 * Gives a struct Go's String() method: a template prints it with that text (fmt's %v does), its
 * JSON is unchanged (docker's blkiodev.ThrottleDevice prints as "/dev/vda:1048576").
 */
export function goStringer<T extends object>(obj: T, text: string): T {
  Object.defineProperty(obj, STRINGER, { value: text, enumerable: false });
  return obj;
}

/**
 * Go's nil map and nil slice: empty in a template (`map[]`, `[]`, len 0) but `null` in JSON, as
 * docker prints an unset `HostConfig.Sysctls` or `Ulimits`.
 */
export function goNilMap(): Record<string, never> {
  return Object.defineProperty({}, "toJSON", { value: () => null, enumerable: false });
}
export function goNilSlice<T>(): T[] {
  return Object.defineProperty([] as T[], "toJSON", { value: () => null, enumerable: false });
}

function structName(v: unknown): string | undefined {
  return v !== null && typeof v === "object" ? (v as Record<symbol, string>)[STRUCT] : undefined;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && structName(v) === undefined;
}

/** Go's name of a value's type, for error messages. */
function typeName(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  if (Array.isArray(v)) return "[]interface {}";
  if (typeof v === "function") return "func";
  return structName(v) ?? "map[string]interface {}";
}

function formatNumber(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? String(n) : formatFloatG(n);
}

/** fmt's %v of a value (text/template prints results this way). */
export function goString(v: unknown): string {
  if (v === undefined) return "<no value>";
  return formatValue(v);
}

function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatNumber(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "function") return "0x1"; // Go prints a func's address
  if (Array.isArray(v)) return `[${v.map(formatValue).join(" ")}]`;
  const obj = v as Record<string, unknown>;
  const stringer = (v as Record<symbol, unknown>)[STRINGER];
  if (typeof stringer === "string") return stringer;
  if (structName(v) !== undefined) {
    // every field, the omitempty ones kept out of the JSON (non-enumerable) too, as Go prints a struct
    return `{${
      Object.getOwnPropertyNames(obj).filter((k) => k !== "toJSON" && typeof obj[k] !== "function").map((k) =>
        formatValue(obj[k])
      ).join(" ")
    }}`;
  }
  return `map[${Object.keys(obj).sort().map((k) => `${k}:${formatValue(obj[k])}`).join(" ")}]`;
}

/** Go's truth: false, 0, nil and empty strings, slices and maps are false; structs are true. */
function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "function") return true;
  if (structName(v) !== undefined) return true;
  return Object.keys(v as object).length > 0;
}

/** json.Marshal as docker's `json` function does it: maps sorted, structs in field order, no HTML escaping. */
export function goJson(v: unknown): string {
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  if (v === undefined || v === null || typeof v === "function") return "null";
  if (typeof v === "string") {
    return JSON.stringify(v).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  }
  if (typeof v === "number") return isFinite(v) ? JSON.stringify(v) : "null";
  if (typeof v === "bigint") return v.toString(); // int64 values beyond a double (nanosecond times)
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
  const obj = v as Record<string, unknown>;
  let keys = Object.keys(obj).filter((k) => obj[k] !== undefined && typeof obj[k] !== "function");
  if (structName(v) === undefined) keys = keys.sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${goJson(obj[k])}`).join(",")}}`;
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * A template that does not parse: docker prints `template parsing error: ...`; its CLI exits 1 for a
 * list's --format and 64 for inspect's and version's (`exitCode`, given by those verbs).
 */
export class TemplateParseError extends SkiffError {
  static override readonly defaultKind: ErrorKind = "invalid-argument";
  constructor(message: string, exitCode?: number, prefix = "template parsing error") {
    super(`${prefix}: ${message}`, exitCode);
    this.name = "TemplateParseError";
  }
}

/** A template that parsed but failed on the data (e.g. a field the type does not have): exit 1 as in docker. */
export class TemplateExecError extends SkiffError {
  constructor(message: string) {
    super(message, 1);
    this.name = "TemplateExecError";
  }
}

// ---------------------------------------------------------------------------------------------
// Lexer

type TokKind =
  | "field" // .Name (value without the dot)
  | "dot" // .
  | "var" // $ or $name
  | "string"
  | "number"
  | "bool"
  | "nil"
  | "ident"
  | "char"
  | "pipe" // |
  | "lparen"
  | "rparen"
  | "declare" // :=
  | "assign" // =
  | "comma"
  | "space";

interface Token {
  kind: TokKind;
  text: string;
  value?: string | number | boolean;
  /** Offset of the token in the whole template source (for error positions). */
  pos: number;
}

const KEYWORDS = new Set([
  "if",
  "else",
  "end",
  "range",
  "with",
  "break",
  "continue",
  "define",
  "template",
  "block",
]);

function lexAction(src: string, line: number, base: number): Token[] {
  const toks: Token[] = [];
  let i = 0;
  // every branch emits before advancing, so i is the token's start
  const emit = (t: Omit<Token, "pos">): void => void toks.push({ ...t, pos: base + i });
  const err = (m: string): never => {
    throw new TemplateParseError(`template: :${line}: ${m}`);
  };
  const isAlnum = (c: string) => /[\p{L}\p{N}_]/u.test(c);
  while (i < src.length) {
    const c = src[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      let j = i;
      while (j < src.length && " \t\r\n".includes(src[j])) j++;
      emit({ kind: "space", text: src.slice(i, j) });
      i = j;
    } else if (c === "|") {
      emit({ kind: "pipe", text: c });
      i++;
    } else if (c === "(") {
      emit({ kind: "lparen", text: c });
      i++;
    } else if (c === ")") {
      emit({ kind: "rparen", text: c });
      i++;
    } else if (c === ",") {
      emit({ kind: "comma", text: c });
      i++;
    } else if (c === ":") {
      if (src[i + 1] !== "=") err("expected :=");
      emit({ kind: "declare", text: ":=" });
      i += 2;
    } else if (c === "=") {
      emit({ kind: "assign", text: "=" });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === "\\") j++;
        if (src[j] === "\n") err("unterminated quoted string");
        j++;
      }
      if (j >= src.length) err("unterminated quoted string");
      const text = src.slice(i, j + 1);
      emit({ kind: "string", text, value: unquoteGo(text, err) });
      i = j + 1;
    } else if (c === "`") {
      const j = src.indexOf("`", i + 1);
      if (j === -1) err("unterminated raw quoted string");
      emit({ kind: "string", text: src.slice(i, j + 1), value: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === "'") {
      const m = /^'(\\.|[^'\\])'/.exec(src.slice(i));
      if (!m) err("unterminated character constant");
      const ch = m![1].startsWith("\\") ? unquoteGo(`"${m![1]}"`, err) : m![1];
      emit({ kind: "char", text: m![0], value: ch.codePointAt(0)! });
      i += m![0].length;
    } else if (c === "." && !/[0-9]/.test(src[i + 1] ?? "")) {
      let j = i + 1;
      while (j < src.length && isAlnum(src[j])) j++;
      if (j === i + 1) emit({ kind: "dot", text: "." });
      else emit({ kind: "field", text: src.slice(i, j), value: src.slice(i + 1, j) });
      i = j;
    } else if (c === "$") {
      let j = i + 1;
      while (j < src.length && isAlnum(src[j])) j++;
      emit({ kind: "var", text: src.slice(i, j) });
      i = j;
    } else if (/[0-9+\-.]/.test(c)) {
      const m = /^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*)?\.?\d*([eE][+-]?\d+)?)/.exec(
        src.slice(i),
      );
      const text = m?.[0] ?? "";
      if (!text || !/\d/.test(text) || (i + text.length < src.length && isAlnum(src[i + text.length]))) {
        err(`bad number syntax: "${src.slice(i).split(/[\s)|]/)[0]}"`);
      }
      const clean = text.replaceAll("_", "");
      const neg = clean.startsWith("-");
      const body = clean.replace(/^[+-]/, "");
      const n = /^0[oO]/.test(body)
        ? parseInt(body.slice(2), 8)
        : /^0[bB]/.test(body)
        ? parseInt(body.slice(2), 2)
        : Number(body);
      emit({ kind: "number", text, value: neg ? -n : n });
      i += text.length;
    } else if (isAlnum(c)) {
      let j = i;
      while (j < src.length && isAlnum(src[j])) j++;
      const word = src.slice(i, j);
      if (word === "true" || word === "false") {
        emit({ kind: "bool", text: word, value: word === "true" });
      } else if (word === "nil") emit({ kind: "nil", text: word });
      else emit({ kind: "ident", text: word });
      i = j;
    } else {
      const cp = src.codePointAt(i)!;
      err(`bad character U+${cp.toString(16).toUpperCase().padStart(4, "0")} '${String.fromCodePoint(cp)}'`);
    }
  }
  return toks;
}

function unquoteGo(text: string, err: (m: string) => never): string {
  const body = text.slice(1, -1);
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = body[++i];
    const simple: Record<string, string> = {
      n: "\n",
      t: "\t",
      r: "\r",
      "\\": "\\",
      '"': '"',
      "'": "'",
      a: "\x07",
      b: "\b",
      f: "\f",
      v: "\v",
      "0": "\0",
    };
    if (n === "x" || n === "u" || n === "U") {
      const len = n === "x" ? 2 : n === "u" ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) err(`invalid syntax: ${text}`);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += len;
    } else if (n in simple) out += simple[n];
    else err(`invalid syntax: ${text}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parse tree

type Arg =
  & (
    | { kind: "field"; chain: string[]; text: string }
    | { kind: "dot" }
    | { kind: "var"; name: string; chain: string[]; text: string }
    | { kind: "const"; value: unknown }
    | { kind: "nil" }
    | { kind: "ident"; name: string }
    | { kind: "pipe"; pipe: Pipe; chain: string[]; text: string }
  )
  & { pos: number };

interface Command {
  args: Arg[];
  /** The command's source text and offset, as Go shows them in execution errors. */
  text: string;
  pos: number;
}

interface Pipe {
  decl: string[];
  assign: boolean; // `=` instead of `:=`
  cmds: Command[];
  text: string;
  line: number;
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipe }
  | { kind: "if" | "with"; pipe: Pipe; list: Node[]; elseList: Node[] | null }
  | { kind: "range"; pipe: Pipe; list: Node[]; elseList: Node[] | null }
  | { kind: "break" | "continue" };

interface RawAction {
  kind: "text" | "action";
  text: string;
  line: number;
  /** Offset of `text` in the whole source. */
  offset: number;
}

/** Splits the source into text and action pieces, applying the {{- and -}} trim markers. */
function splitSource(src: string): RawAction[] {
  const out: RawAction[] = [];
  let i = 0;
  let line = 1;
  let trimNextText = false;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    let text = open === -1 ? src.slice(i) : src.slice(i, open);
    if (trimNextText) text = text.replace(/^[ \t\r\n]+/, "");
    if (open === -1) {
      if (text) out.push({ kind: "text", text, line, offset: i });
      break;
    }
    const trimLeft = /^\{\{-[ \t\r\n]/.test(src.slice(open));
    if (trimLeft) text = text.replace(/[ \t\r\n]+$/, "");
    if (text) out.push({ kind: "text", text, line, offset: i });
    line += (src.slice(i, open).match(/\n/g) ?? []).length;
    let j = open + (trimLeft ? 3 : 2);
    // find the closing }}, skipping quoted strings and comments
    let close = -1;
    while (j < src.length) {
      const c = src[j];
      if (c === '"' || c === "`" || c === "'") {
        const end = c === "`" ? src.indexOf("`", j + 1) : findQuoteEnd(src, j, c);
        if (end === -1) break;
        j = end + 1;
      } else if (src.startsWith("/*", j)) {
        const end = src.indexOf("*/", j + 2);
        if (end === -1) throw new TemplateParseError(`template: :${line}: unclosed comment`);
        j = end + 2;
      } else if (src.startsWith("}}", j)) {
        close = j;
        break;
      } else j++;
    }
    if (close === -1) throw new TemplateParseError(`template: :${line}: unclosed action`);
    const trimRight = /[ \t\r\n]-$/.test(src.slice(open, close)) && close - 2 > open + 2;
    const inner = src.slice(open + (trimLeft ? 3 : 2), trimRight ? close - 2 : close);
    out.push({ kind: "action", text: inner, line, offset: open + (trimLeft ? 3 : 2) });
    line += (src.slice(open, close).match(/\n/g) ?? []).length;
    trimNextText = trimRight;
    i = close + 2;
  }
  return out;
}

function findQuoteEnd(src: string, start: number, quote: string): number {
  for (let j = start + 1; j < src.length; j++) {
    if (src[j] === "\\") j++;
    else if (src[j] === quote) return j;
    else if (src[j] === "\n") return -1;
  }
  return -1;
}

class Parser {
  private pos = 0;
  constructor(private pieces: RawAction[]) {}

  parse(): Node[] {
    const { list, end } = this.parseList();
    if (end) throw new TemplateParseError(`template: :${end.line}: unexpected {{${end.word}}}`);
    return list;
  }

  /** Parses nodes until {{end}}, {{else ...}} or EOF; returns the terminator. */
  private parseList(): { list: Node[]; end?: { word: string; rest: Token[]; line: number } } {
    const list: Node[] = [];
    while (this.pos < this.pieces.length) {
      const piece = this.pieces[this.pos++];
      if (piece.kind === "text") {
        list.push({ kind: "text", text: piece.text });
        continue;
      }
      const trimmed = piece.text.trim();
      if (trimmed.startsWith("/*")) {
        if (!trimmed.endsWith("*/")) {
          throw new TemplateParseError(`template: :${piece.line}: comment ends before closing delimiter`);
        }
        continue;
      }
      const toks = lexAction(piece.text, piece.line, piece.offset).filter((t, i, all) =>
        // spaces only matter between operands; drop leading/trailing ones
        t.kind !== "space" || (i > 0 && i < all.length - 1)
      );
      const first = toks[0];
      if (first?.kind === "ident" && KEYWORDS.has(first.text)) {
        const rest = toks.slice(1).filter((t, i) => !(i === 0 && t.kind === "space"));
        switch (first.text) {
          case "end":
          case "else":
            return { list, end: { word: first.text, rest, line: piece.line } };
          case "if":
          case "with":
          case "range":
            list.push(this.parseControl(first.text, rest, piece.line));
            continue;
          case "break":
          case "continue":
            list.push({ kind: first.text });
            continue;
          default:
            throw new TemplateParseError(`template: :${piece.line}: {{${first.text}}} is not supported`);
        }
      }
      const pipe = parsePipe(toks, piece.line, piece.text.trim(), false);
      if (pipe.cmds.length === 0) {
        throw new TemplateParseError(`template: :${piece.line}: missing value for command`);
      }
      list.push({ kind: "action", pipe });
    }
    return { list };
  }

  private parseControl(kind: "if" | "with" | "range", toks: Token[], line: number): Node {
    const pipe = parsePipe(toks, line, toks.map((t) => t.text).join(""), kind === "range");
    if (pipe.cmds.length === 0) throw new TemplateParseError(`template: :${line}: missing value for ${kind}`);
    const { list, end } = this.parseList();
    if (!end) throw new TemplateParseError(`template: :${line}: unexpected EOF`);
    let elseList: Node[] | null = null;
    if (end.word === "else") {
      const rest = end.rest;
      if (rest.length > 0 && rest[0].kind === "ident" && (rest[0].text === "if" || rest[0].text === "with")) {
        // {{else if x}} is {{else}}{{if x}}...{{end}}{{end}} sharing the one {{end}}
        if (kind === "range" || rest[0].text !== kind) {
          throw new TemplateParseError(`template: :${end.line}: unexpected {{else ${rest[0].text}}}`);
        }
        const nested = this.parseControl(
          rest[0].text as "if" | "with",
          rest.slice(1).filter((t, i) => !(i === 0 && t.kind === "space")),
          end.line,
        );
        elseList = [nested];
        return { kind, pipe, list, elseList } as Node;
      }
      if (rest.length > 0) {
        throw new TemplateParseError(`template: :${end.line}: unexpected ${rest[0].text} in else`);
      }
      const tail = this.parseList();
      if (!tail.end) throw new TemplateParseError(`template: :${line}: unexpected EOF`);
      if (tail.end.word !== "end") {
        throw new TemplateParseError(`template: :${tail.end.line}: expected end; found {{else}}`);
      }
      elseList = tail.list;
    } else if (end.rest.length > 0) {
      throw new TemplateParseError(`template: :${end.line}: unexpected ${end.rest[0].text} in end`);
    }
    return { kind, pipe, list, elseList } as Node;
  }
}

function parsePipe(allToks: Token[], line: number, text: string, allowTwoVars: boolean): Pipe {
  const toks = allToks.filter((t, i) => !(t.kind === "space" && (i === 0 || i === allToks.length - 1)));
  const err = (m: string): never => {
    throw new TemplateParseError(`template: :${line}: ${m}`);
  };
  const decl: string[] = [];
  let assign = false;
  let i = 0;
  // $x := ..., $x = ..., $k, $v := ... (range only)
  const nonSpace = toks.filter((t) => t.kind !== "space");
  const declIdx = nonSpace.findIndex((t) => t.kind === "declare" || t.kind === "assign");
  if (nonSpace[0]?.kind === "var" && declIdx > 0) {
    const head = nonSpace.slice(0, declIdx);
    const vars = head.filter((t) => t.kind === "var");
    const commas = head.filter((t) => t.kind === "comma");
    const ok = head.length === vars.length + commas.length &&
      (vars.length === 1 || (vars.length === 2 && commas.length === 1 && head[1].kind === "comma"));
    if (ok) {
      if (vars.length === 2 && !allowTwoVars) err("too many declarations in command");
      decl.push(...vars.map((v) => v.text));
      assign = nonSpace[declIdx].kind === "assign";
      // skip past the operator in the original token list
      let seen = 0;
      for (; i < toks.length; i++) {
        if (toks[i].kind !== "space") seen++;
        if (seen === declIdx + 1) {
          i++;
          break;
        }
      }
    }
  }
  const { cmds, next } = parseCommands(toks, i, line, false);
  if (next < toks.length) err(`unexpected "${toks[next].text}" in command`);
  if (decl.length && cmds.length === 0) err("missing value for command");
  return { decl, assign, cmds, text, line };
}

/** Parses `cmd | cmd | ...` starting at i; stops at a `)` when inside parentheses. */
function parseCommands(
  toks: Token[],
  start: number,
  line: number,
  inParens: boolean,
): { cmds: Command[]; next: number } {
  const err = (m: string): never => {
    throw new TemplateParseError(`template: :${line}: ${m}`);
  };
  const cmds: Command[] = [];
  let args: Arg[] = [];
  let i = start;
  let cmdStart = -1; // token index of the current command's first operand
  let needSpace = false; // operands must be separated by spaces
  const finish = () => {
    if (args.length === 0) err("missing value for command");
    const text = toks.slice(cmdStart, i).map((t) => t.text).join("").trim();
    cmds.push({ args, text, pos: toks[cmdStart].pos });
    args = [];
    cmdStart = -1;
  };
  while (i < toks.length) {
    const t = toks[i];
    if (t.kind === "space") {
      needSpace = false;
      i++;
      continue;
    }
    if (t.kind === "rparen") {
      if (!inParens) err(`unexpected right paren`);
      break;
    }
    if (t.kind === "pipe") {
      finish();
      needSpace = false;
      i++;
      continue;
    }
    if (needSpace) err(`unexpected "${t.text}" in operand`);
    if (cmdStart === -1) cmdStart = i;
    const pos = t.pos;
    let arg: Arg;
    switch (t.kind) {
      case "field": {
        const chain = [t.value as string];
        while (toks[i + 1]?.kind === "field") chain.push(toks[++i].value as string);
        arg = { kind: "field", chain, text: "." + chain.join("."), pos };
        break;
      }
      case "dot":
        arg = { kind: "dot", pos };
        break;
      case "var": {
        const chain: string[] = [];
        while (toks[i + 1]?.kind === "field") chain.push(toks[++i].value as string);
        arg = { kind: "var", name: t.text, chain, text: t.text + chain.map((c) => "." + c).join(""), pos };
        break;
      }
      case "string":
      case "number":
      case "bool":
      case "char":
        arg = { kind: "const", value: t.value, pos };
        break;
      case "nil":
        arg = { kind: "nil", pos };
        break;
      case "ident":
        if (KEYWORDS.has(t.text)) err(`unexpected <${t.text}> in command`);
        if (!(t.text in FUNCS)) err(`function "${t.text}" not defined`);
        arg = { kind: "ident", name: t.text, pos };
        break;
      case "lparen": {
        const inner = parseCommands(toks, i + 1, line, true);
        if (toks[inner.next]?.kind !== "rparen") err("unclosed left paren");
        if (inner.cmds.length === 0) err("missing value for parenthesized pipeline");
        const text = toks.slice(i, inner.next + 1).map((x) => x.text).join("");
        i = inner.next;
        const chain: string[] = [];
        while (toks[i + 1]?.kind === "field") chain.push(toks[++i].value as string);
        arg = {
          kind: "pipe",
          pipe: { decl: [], assign: false, cmds: inner.cmds, text, line },
          chain,
          text,
          pos,
        };
        break;
      }
      default:
        return err(`unexpected "${t.text}" in command`);
    }
    args.push(arg);
    needSpace = true;
    i++;
  }
  if (args.length) finish();
  else if (cmds.length && i <= toks.length && toks[i - 1]?.kind === "pipe") err("missing command after pipe");
  return { cmds, next: i };
}

// ---------------------------------------------------------------------------------------------
// Functions

type Fn = (...args: unknown[]) => unknown;

function needArgs(name: string, args: unknown[], n: number): void {
  if (args.length !== n) {
    throw new Error(`wrong number of args for ${name}: want ${n} got ${args.length}`);
  }
}

function length(v: unknown): number {
  if (typeof v === "string") return new TextEncoder().encode(v).length; // Go's len counts bytes
  if (Array.isArray(v)) return v.length;
  if (isMap(v)) return Object.keys(v).length;
  throw new Error(`error calling len: len of type ${typeName(v)}`);
}

function indexValue(item: unknown, ...keys: unknown[]): unknown {
  let v = item;
  for (const k of keys) {
    if (Array.isArray(v) || typeof v === "string") {
      if (typeof k !== "number") {
        throw new Error(`error calling index: cannot index slice/array with type ${typeName(k)}`);
      }
      const len = typeof v === "string" ? v.length : v.length;
      if (k < 0 || k >= len) throw new Error(`error calling index: index out of range: ${k}`);
      v = typeof v === "string" ? v.charCodeAt(k) : v[k];
    } else if (isMap(v)) {
      if (typeof k !== "string") {
        throw new Error(`error calling index: value has type ${typeName(k)}; should be string`);
      }
      // a missing key gives the element type's zero value; docker's maps are map[string]string
      v = Object.hasOwn(v, k) ? v[k] : "";
    } else if (v === null || v === undefined) {
      throw new Error("error calling index: index of untyped nil");
    } else {
      throw new Error(`error calling index: can't index item of type ${typeName(v)}`);
    }
  }
  return v;
}

function compare(name: string, a: unknown, b: unknown): number {
  const basic = (x: unknown) => typeof x === "string" || typeof x === "number" || typeof x === "boolean";
  if (!basic(a) || !basic(b)) {
    if (name === "eq" || name === "ne") {
      if ((a === null || a === undefined) && (b === null || b === undefined)) return 0;
      if (a === null || b === null) return 1;
    }
    throw new Error(`error calling ${name}: invalid type for comparison`);
  }
  if (typeof a !== typeof b) throw new Error(`error calling ${name}: incompatible types for comparison`);
  if (typeof a === "boolean" && name !== "eq" && name !== "ne") {
    throw new Error(`error calling ${name}: invalid type for comparison`);
  }
  return a === b ? 0 : (a as number) < (b as number) ? -1 : 1;
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function sprint(args: unknown[]): string {
  let out = "";
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string") out += " ";
    out += formatValue(a);
  });
  return out;
}

/** fmt.Sprintf for the verbs templates use: %v %s %d %q %x %X %o %b %f %e %g %t %c %T %%. */
export function sprintf(format: string, args: unknown[]): string {
  let out = "";
  let argi = 0;
  const re = /%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?([a-zA-Z%])/gy;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf("%", i);
    if (pct === -1) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    re.lastIndex = pct;
    const m = re.exec(format);
    if (!m) {
      out += "%!(NOVERB)";
      break;
    }
    i = re.lastIndex;
    const [, flags, widthSpec, precSpec, verb] = m;
    if (verb === "%") {
      out += "%";
      continue;
    }
    const takeInt = (spec: string | undefined): number | undefined => {
      if (spec === undefined) return undefined;
      if (spec !== "*") return Number(spec);
      const v = args[argi++];
      return typeof v === "number" ? v : undefined;
    };
    const width = takeInt(widthSpec);
    const prec = m[0].includes(".") ? takeInt(precSpec) ?? 0 : undefined;
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argi++];
    const s = formatVerb(verb, arg, flags, prec);
    let padded = s;
    if (width !== undefined && [...s].length < width) {
      const pad = width - [...s].length;
      if (flags.includes("-")) padded = s + " ".repeat(pad);
      else if (flags.includes("0") && /[dfegxXob]/.test(verb) && typeof arg === "number") {
        const sign = /^[+-]/.test(s) ? s[0] : "";
        padded = sign + "0".repeat(pad) + s.slice(sign.length);
      } else padded = " ".repeat(pad) + s;
    }
    out += padded;
  }
  if (argi < args.length) {
    out += `%!(EXTRA ${args.slice(argi).map((a) => `${typeName(a)}=${formatValue(a)}`).join(", ")})`;
  }
  return out;
}

function formatVerb(verb: string, arg: unknown, flags: string, prec: number | undefined): string {
  const bad = () => `%!${verb}(${typeName(arg)}=${formatValue(arg)})`;
  const plus = flags.includes("+") ? "+" : flags.includes(" ") ? " " : "";
  const signed = (n: number, s: string) => (n >= 0 ? plus : "") + s;
  // fmt applies a verb to each element of a slice: %q of [a b] is ["a" "b"]
  if (Array.isArray(arg) && verb !== "T" && verb !== "v" && !(verb === "s" && prec !== undefined)) {
    return `[${arg.map((x) => formatVerb(verb, x, flags, prec)).join(" ")}]`;
  }
  switch (verb) {
    case "v":
      return typeof arg === "number" ? signed(arg, formatNumber(arg)) : formatValue(arg);
    case "s": {
      if (typeof arg === "number" || typeof arg === "boolean") return bad();
      const s = formatValue(arg);
      return prec !== undefined ? [...s].slice(0, prec).join("") : s;
    }
    case "q":
      if (typeof arg === "string") return goQuote(arg);
      if (typeof arg === "number" && Number.isInteger(arg)) return `'${String.fromCodePoint(arg)}'`;
      return bad();
    case "d":
      return typeof arg === "number" && Number.isInteger(arg) ? signed(arg, String(arg)) : bad();
    case "c":
      return typeof arg === "number" && Number.isInteger(arg) ? String.fromCodePoint(arg) : bad();
    case "b":
    case "o":
    case "x":
    case "X": {
      const radix = verb === "b" ? 2 : verb === "o" ? 8 : 16;
      let s: string;
      if (typeof arg === "number" && Number.isInteger(arg)) {
        s = (arg < 0 ? "-" : "") + Math.abs(arg).toString(radix);
        if (flags.includes("#") && radix === 16) s = s.replace(/^(-?)/, "$10x");
      } else if (typeof arg === "string" && radix === 16) {
        s = Array.from(new TextEncoder().encode(arg), (b) => b.toString(16).padStart(2, "0")).join("");
      } else return bad();
      return verb === "X" ? s.toUpperCase() : s;
    }
    case "f":
    case "F":
      return typeof arg === "number" ? signed(arg, arg.toFixed(prec ?? 6)) : bad();
    case "e":
    case "E": {
      if (typeof arg !== "number") return bad();
      const s = arg.toExponential(prec ?? 6).replace(/e([+-])(\d)$/, "e$10$2");
      return signed(arg, verb === "E" ? s.toUpperCase() : s);
    }
    case "g":
    case "G":
      return typeof arg === "number" ? signed(arg, formatFloatG(arg, prec ?? -1)) : bad();
    case "t":
      return typeof arg === "boolean" ? String(arg) : bad();
    case "T":
      return typeName(arg);
    default:
      return bad();
  }
}

/** strconv.Quote: a double-quoted Go string literal. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\x07") out += "\\a";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\v") out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + '"';
}

function asString(_fn: string, v: unknown): string {
  if (typeof v !== "string") throw new Error(`wrong type for value; expected string; got ${typeName(v)}`);
  return v;
}

const FUNCS: Record<string, Fn> = {
  // Go builtins (and/or are evaluated lazily in the executor)
  and: () => undefined,
  or: () => undefined,
  not: (...a) => {
    needArgs("not", a, 1);
    return !truth(a[0]);
  },
  len: (...a) => {
    needArgs("len", a, 1);
    return length(a[0]);
  },
  index: (...a) => {
    if (a.length < 1) throw new Error("wrong number of args for index: want at least 1 got 0");
    return indexValue(a[0], ...a.slice(1));
  },
  slice: (...a) => {
    const [item, ...idx] = a;
    if (typeof item !== "string" && !Array.isArray(item)) {
      throw new Error(`error calling slice: can't slice item of type ${typeName(item)}`);
    }
    const from = (idx[0] as number | undefined) ?? 0;
    const to = (idx[1] as number | undefined) ?? item.length;
    if (from < 0 || to > item.length || from > to) throw new Error(`error calling slice: index out of range`);
    return item.slice(from, to);
  },
  print: (...a) => sprint(a),
  printf: (...a) => {
    if (a.length < 1) throw new Error("wrong number of args for printf: want at least 1 got 0");
    return sprintf(asString("printf", a[0]), a.slice(1));
  },
  println: (...a) => a.map(formatValue).join(" ") + "\n",
  eq: (...a) => {
    if (a.length < 2) throw new Error("error calling eq: missing argument for comparison");
    return a.slice(1).some((b) => compare("eq", a[0], b) === 0);
  },
  ne: (...a) => {
    needArgs("ne", a, 2);
    return compare("ne", a[0], a[1]) !== 0;
  },
  lt: (...a) => {
    needArgs("lt", a, 2);
    return compare("lt", a[0], a[1]) < 0;
  },
  le: (...a) => {
    needArgs("le", a, 2);
    return compare("le", a[0], a[1]) <= 0;
  },
  gt: (...a) => {
    needArgs("gt", a, 2);
    return compare("gt", a[0], a[1]) > 0;
  },
  ge: (...a) => {
    needArgs("ge", a, 2);
    return compare("ge", a[0], a[1]) >= 0;
  },
  html: (...a) =>
    sprint(a).replace(
      /[&'<>"\0]/g,
      (c) => ({ "&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\0": "\uFFFD" })[c]!,
    ),
  js: (...a) =>
    sprint(a).replace(/[\\'"<>&=\n\r\t]/g, (c) =>
      ({
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "<": "\\u003C",
        ">": "\\u003E",
        "&": "\\u0026",
        "=": "\\u003D",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
      })[c]!),
  urlquery: (...a) => encodeURIComponent(sprint(a)).replace(/%20/g, "+"),
  // docker's additions (cli/templates)
  json: (...a) => {
    needArgs("json", a, 1);
    return goJson(a[0]);
  },
  split: (...a) => {
    needArgs("split", a, 2);
    return asString("split", a[0]).split(asString("split", a[1]));
  },
  join: (...a) => {
    needArgs("join", a, 2);
    if (!Array.isArray(a[0])) {
      throw new Error(`wrong type for value; expected []string; got ${typeName(a[0])}`);
    }
    return a[0].map(formatValue).join(asString("join", a[1]));
  },
  title: (...a) => {
    needArgs("title", a, 1);
    return asString("title", a[0]).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_, p, c) => p + c.toUpperCase());
  },
  lower: (...a) => {
    needArgs("lower", a, 1);
    return asString("lower", a[0]).toLowerCase();
  },
  upper: (...a) => {
    needArgs("upper", a, 1);
    return asString("upper", a[0]).toUpperCase();
  },
  pad: (...a) => {
    needArgs("pad", a, 3);
    return " ".repeat(a[1] as number) + asString("pad", a[0]) + " ".repeat(a[2] as number);
  },
  truncate: (...a) => {
    needArgs("truncate", a, 2);
    const s = [...asString("truncate", a[0])];
    return s.length > (a[1] as number) ? s.slice(0, a[1] as number).join("") : s.join("");
  },
};

// ---------------------------------------------------------------------------------------------
// Executor

class Break {}
class Continue {}

interface Scope {
  vars: Map<string, unknown>;
  parent?: Scope;
}

function lookupVar(scope: Scope, name: string, pipe: Pipe): unknown {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    if (s.vars.has(name)) return s.vars.get(name);
  }
  throw new TemplateParseError(`template: :${pipe.line}: undefined variable "${name}"`);
}

function setVar(scope: Scope, name: string, value: unknown, pipe: Pipe): void {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    if (s.vars.has(name)) {
      s.vars.set(name, value);
      return;
    }
  }
  throw new TemplateParseError(`template: :${pipe.line}: undefined variable "${name}"`);
}

/** Checks every variable is declared before use, as Go's parser does. */
function checkVars(nodes: Node[], declared: Set<string>[]): void {
  const has = (n: string) => declared.some((s) => s.has(n));
  const checkPipe = (p: Pipe) => {
    for (const c of p.cmds) {
      for (const a of c.args) {
        if (a.kind === "var" && !has(a.name)) {
          throw new TemplateParseError(`template: :${p.line}: undefined variable "${a.name}"`);
        }
        if (a.kind === "pipe") checkPipe(a.pipe);
      }
    }
    if (p.assign) {
      for (const d of p.decl) {
        if (!has(d)) throw new TemplateParseError(`template: :${p.line}: undefined variable "${d}"`);
      }
    }
  };
  for (const n of nodes) {
    if (n.kind === "action") {
      checkPipe(n.pipe);
      if (!n.pipe.assign) { for (const d of n.pipe.decl) declared[declared.length - 1].add(d); }
    } else if (n.kind === "if" || n.kind === "with" || n.kind === "range") {
      checkPipe(n.pipe);
      const inner = new Set(n.pipe.assign ? [] : n.pipe.decl);
      checkVars(n.list, [...declared, inner]);
      if (n.elseList) checkVars(n.elseList, [...declared, new Set()]);
    }
  }
}

class Executor {
  private out: string[] = [];
  private inRange = 0;

  constructor(private source: string, private root: unknown, private missingKeyError = false) {}

  run(nodes: Node[]): string {
    this.walk(nodes, this.root, { vars: new Map([["$", this.root]]) });
    return this.out.join("");
  }

  /** Go's execution error: `template: :LINE:COL: executing "" at <NODE>: MSG`. */
  private fail(pos: number, at: string, msg: string): never {
    const before = this.source.slice(0, pos);
    const line = (before.match(/\n/g) ?? []).length + 1;
    const col = pos - (before.lastIndexOf("\n") + 1);
    throw new TemplateExecError(`template: :${line}:${col}: executing "" at <${at}>: ${msg}`);
  }

  private walk(nodes: Node[], dot: unknown, scope: Scope): void {
    for (const n of nodes) {
      switch (n.kind) {
        case "text":
          this.out.push(n.text);
          break;
        case "action": {
          const v = this.evalPipe(n.pipe, dot, scope);
          if (n.pipe.decl.length === 0) this.out.push(goString(v));
          break;
        }
        case "if":
        case "with": {
          const inner: Scope = { vars: new Map(), parent: scope };
          const v = this.evalPipe(n.pipe, dot, inner);
          if (truth(v)) this.walk(n.list, n.kind === "with" ? v : dot, inner);
          else if (n.elseList) this.walk(n.elseList, dot, { vars: new Map(), parent: scope });
          break;
        }
        case "range":
          this.range(n, dot, scope);
          break;
        case "break":
          throw new Break();
        case "continue":
          throw new Continue();
      }
    }
  }

  private range(n: Extract<Node, { kind: "range" }>, dot: unknown, scope: Scope): void {
    const inner: Scope = { vars: new Map(), parent: scope };
    const pipe = { ...n.pipe, decl: [] };
    const v = this.evalPipe(pipe, dot, inner);
    let items: [unknown, unknown][];
    if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (isMap(v)) items = Object.keys(v).sort().map((k) => [k, v[k]]);
    else if (typeof v === "number" && Number.isInteger(v)) {
      items = Array.from({ length: Math.max(v, 0) }, (_, i) => [i, i]);
    } else if (v === null || v === undefined) items = [];
    else this.fail(n.pipe.cmds[0].pos, n.pipe.text, `range can't iterate over ${formatValue(v)}`);
    if (items!.length === 0) {
      if (n.elseList) this.walk(n.elseList, dot, { vars: new Map(), parent: scope });
      return;
    }
    this.inRange++;
    try {
      for (const [key, item] of items!) {
        const iter: Scope = { vars: new Map(), parent: scope };
        if (n.pipe.decl.length === 1) iter.vars.set(n.pipe.decl[0], item);
        if (n.pipe.decl.length === 2) {
          iter.vars.set(n.pipe.decl[0], key);
          iter.vars.set(n.pipe.decl[1], item);
        }
        try {
          this.walk(n.list, item, iter);
        } catch (e) {
          if (e instanceof Break) break;
          if (e instanceof Continue) continue;
          throw e;
        }
      }
    } finally {
      this.inRange--;
    }
  }

  private evalPipe(pipe: Pipe, dot: unknown, scope: Scope): unknown {
    let value: unknown = undefined;
    let first = true;
    for (const cmd of pipe.cmds) {
      value = this.evalCommand(pipe, cmd, dot, scope, first ? NO_FINAL : value);
      first = false;
    }
    for (const d of pipe.decl) {
      if (pipe.assign) setVar(scope, d, value, pipe);
      else scope.vars.set(d, value);
    }
    return value;
  }

  private evalCommand(pipe: Pipe, cmd: Command, dot: unknown, scope: Scope, final: unknown): unknown {
    const [head, ...rest] = cmd.args;
    const hasFinal = final !== NO_FINAL;
    const notFn = (what: string) => {
      if (rest.length || hasFinal) this.fail(head.pos, what, `can't give argument to non-function ${what}`);
    };
    switch (head.kind) {
      case "field":
        return this.evalChain(pipe, head.pos, dot, head.chain, head.text, rest, final, dot, scope);
      case "var": {
        const base = lookupVar(scope, head.name, pipe);
        if (head.chain.length === 0) {
          notFn(head.text);
          return base;
        }
        return this.evalChain(pipe, head.pos, base, head.chain, head.text, rest, final, dot, scope);
      }
      case "pipe": {
        const base = this.evalPipe(head.pipe, dot, { vars: new Map(), parent: scope });
        if (head.chain.length === 0) {
          notFn(head.text);
          return base;
        }
        return this.evalChain(pipe, head.pos, base, head.chain, head.text, rest, final, dot, scope);
      }
      case "ident":
        return this.callFunction(pipe, cmd, head.name, rest, final, dot, scope);
      case "dot":
        notFn(".");
        return dot;
      case "nil":
        this.fail(head.pos, "nil", "nil is not a command");
        break;
      case "const":
        notFn(String(head.value));
        return head.value;
    }
  }

  private evalArg(pipe: Pipe, arg: Arg, dot: unknown, scope: Scope): unknown {
    switch (arg.kind) {
      case "field":
        return this.evalChain(pipe, arg.pos, dot, arg.chain, arg.text, [], NO_FINAL, dot, scope);
      case "var": {
        const base = lookupVar(scope, arg.name, pipe);
        return arg.chain.length
          ? this.evalChain(pipe, arg.pos, base, arg.chain, arg.text, [], NO_FINAL, dot, scope)
          : base;
      }
      case "pipe": {
        const base = this.evalPipe(arg.pipe, dot, { vars: new Map(), parent: scope });
        return arg.chain.length
          ? this.evalChain(pipe, arg.pos, base, arg.chain, arg.text, [], NO_FINAL, dot, scope)
          : base;
      }
      case "ident":
        return this.callFunction(pipe, { pos: arg.pos, text: arg.name }, arg.name, [], NO_FINAL, dot, scope);
      case "dot":
        return dot;
      case "nil":
        return null;
      case "const":
        return arg.value;
    }
  }

  private evalChain(
    pipe: Pipe,
    pos: number,
    receiver: unknown,
    chain: string[],
    text: string,
    args: Arg[],
    final: unknown,
    dot: unknown,
    scope: Scope,
  ): unknown {
    let v = receiver;
    for (let i = 0; i < chain.length; i++) {
      const name = chain[i];
      const last = i === chain.length - 1;
      if (v === null) {
        this.fail(pos, text, `nil pointer evaluating ${typeName(v)}.${name}`);
      }
      if (v === undefined) {
        if (i === 0) this.fail(pos, text, `nil data; no entry for key "${name}"`);
        return undefined; // Go keeps the invalid value: prints <no value>
      }
      if (typeof v !== "object" || Array.isArray(v)) {
        this.fail(pos, text, `can't evaluate field ${name} in type ${typeName(v)}`);
      }
      const obj = v as Record<string, unknown>;
      const isStruct = structName(v) !== undefined;
      if (!Object.hasOwn(obj, name) && !(isStruct && typeof obj[name] === "function")) {
        if (isStruct) this.fail(pos, text, `can't evaluate field ${name} in type ${structName(v)}`);
        if (this.missingKeyError) this.fail(pos, text, `map has no entry for key "${name}"`);
        v = undefined;
        if (last && (args.length || final !== NO_FINAL)) {
          this.fail(pos, text, `can't give argument to non-function ${text}`);
        }
        continue;
      }
      const field = obj[name];
      if (typeof field === "function") {
        const callArgs = last ? args.map((a) => this.evalArg(pipe, a, dot, scope)) : [];
        if (last && final !== NO_FINAL) callArgs.push(final);
        try {
          v = (field as Fn).apply(obj, callArgs);
        } catch (e) {
          this.fail(pos, text, `error calling ${name}: ${(e as Error).message}`);
        }
      } else {
        if (last && (args.length || final !== NO_FINAL)) {
          this.fail(pos, text, `${name} has arguments but cannot be invoked as function`);
        }
        v = field;
      }
    }
    return v;
  }

  private callFunction(
    pipe: Pipe,
    at: { pos: number; text: string },
    name: string,
    args: Arg[],
    final: unknown,
    dot: unknown,
    scope: Scope,
  ): unknown {
    if (name === "and" || name === "or") {
      const all: (() => unknown)[] = args.map((a) => () => this.evalArg(pipe, a, dot, scope));
      if (final !== NO_FINAL) all.push(() => final);
      if (all.length === 0) {
        this.fail(at.pos, at.text, `wrong number of args for ${name}: want at least 1 got 0`);
      }
      let v: unknown;
      for (const get of all) {
        v = get();
        if (name === "and" ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    const values = args.map((a) => this.evalArg(pipe, a, dot, scope));
    if (final !== NO_FINAL) values.push(final);
    try {
      return FUNCS[name](...values);
    } catch (e) {
      if (e instanceof TemplateExecError) throw e;
      const msg = (e as Error).message;
      this.fail(
        at.pos,
        at.text,
        msg.startsWith("error calling") || msg.startsWith("wrong") ? msg : `error calling ${name}: ${msg}`,
      );
    }
  }
}

const NO_FINAL = Symbol("noFinal");

// ---------------------------------------------------------------------------------------------
// Public API

export interface Template {
  /** The source as given (without a `table` directive). */
  readonly source: string;
  /**
   * Renders the template against one value. `missingKeyError` is Go's option missingkey=error: a
   * missing map key fails instead of printing `<no value>` (docker inspect's fallback mode).
   */
  execute(data: unknown, opts?: { missingKeyError?: boolean }): string;
}

/** Parses a Go template; throws TemplateParseError (exit 125) on bad syntax or unknown functions. */
export function parseTemplate(source: string): Template {
  const nodes = new Parser(splitSource(source)).parse();
  checkVars(nodes, [new Set(["$"])]);
  return {
    source,
    execute: (data: unknown, opts?: { missingKeyError?: boolean }) =>
      new Executor(source, data, opts?.missingKeyError).run(nodes),
  };
}

/** One-shot parse and execute. */
/**
 * parseTemplate for `inspect` (container, image, volume, network) and `version`: docker's CLI exits
 * 64 for a template of theirs that does not parse, 1 for a list's.
 */
export function inspectTemplate(source: string): Template {
  try {
    return parseTemplate(source);
  } catch (e) {
    if (e instanceof TemplateParseError) {
      throw new TemplateParseError(e.message.replace(/^template parsing error: /, ""), 64);
    }
    throw e;
  }
}

export function renderTemplate(source: string, data: unknown): string {
  return parseTemplate(source).execute(data);
}

/** docker's `table` directive: `table {{.ID}}\t{{.Names}}` renders rows through a tabwriter with a header. */
export function splitTableDirective(format: string): { table: boolean; body: string } {
  if (format.startsWith("table")) {
    return { table: true, body: format.slice(5).replace(/^[ \t]+/, "") };
  }
  return { table: false, body: format };
}

/** Expands the `\t` and `\n` escapes docker users type in shell-quoted --format strings. */
export function unescapeFormat(format: string): string {
  return format.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
}
