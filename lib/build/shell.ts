// docker's word processing for Dockerfile arguments (moby's shell lexer): quotes, the escape
// character, and variable substitution `$V`, `${V}`, `${V:-word}`, `${V:+word}` (and BuildKit's
// `${V-word}`, `${V+word}`, `${V:?msg}`), with the values in scope (ARG and ENV). Used for exactly
// the instructions where docker applies it (plan.ts); RUN, CMD and ENTRYPOINT leave it to the shell.

import { SkiffError } from "../errors.ts";

export type Vars = ReadonlyMap<string, string>;

class Lexer {
  private pos = 0;
  constructor(private readonly s: string, private readonly env: Vars, private readonly escape: string) {}

  /** Words of the input: split on unquoted whitespace (unquoted expansions split too). */
  words(split: boolean): string[] {
    const out: string[] = [];
    let word = "";
    let inWord = false;
    const push = () => {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
    };
    const addUnquoted = (text: string) => {
      for (const ch of text) {
        if (split && /\s/.test(ch)) push();
        else {
          word += ch;
          inWord = true;
        }
      }
    };
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (split && /\s/.test(ch)) {
        this.pos++;
        push();
        continue;
      }
      if (ch === this.escape) {
        this.pos++;
        if (this.pos < this.s.length) word += this.s[this.pos++];
        inWord = true;
        continue;
      }
      if (ch === "'") {
        this.pos++;
        const end = this.s.indexOf("'", this.pos);
        if (end < 0) {
          throw new SkiffError("unexpected end of statement while looking for matching single-quote");
        }
        word += this.s.slice(this.pos, end);
        this.pos = end + 1;
        inWord = true;
        continue;
      }
      if (ch === '"') {
        this.pos++;
        word += this.doubleQuoted();
        inWord = true;
        continue;
      }
      if (ch === "$") {
        addUnquoted(this.dollar());
        continue;
      }
      word += ch;
      inWord = true;
      this.pos++;
    }
    push();
    return out;
  }

  private doubleQuoted(): string {
    let out = "";
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === "$") {
        out += this.dollar();
        continue;
      }
      if (ch === this.escape) {
        const next = this.s[this.pos + 1];
        // inside double quotes the escape only escapes these (docker's rule)
        if (next === '"' || next === "$" || next === this.escape) {
          out += next;
          this.pos += 2;
          continue;
        }
      }
      out += ch;
      this.pos++;
    }
    throw new SkiffError("unexpected end of statement while looking for matching double-quote");
  }

  private name(): string {
    const m = /^[a-zA-Z0-9_]+/.exec(this.s.slice(this.pos));
    if (!m) return "";
    this.pos += m[0].length;
    return m[0];
  }

  /** At a `$`: the expansion's value (a lone `$` stays). */
  private dollar(): string {
    this.pos++;
    if (this.s[this.pos] !== "{") {
      const name = this.name();
      if (!name) return "$";
      return this.env.get(name) ?? "";
    }
    this.pos++;
    const name = this.name();
    if (!name) throw new SkiffError(`missing ':' in substitution`);
    const ch = this.s[this.pos];
    if (ch === "}") {
      this.pos++;
      return this.env.get(name) ?? "";
    }
    let op = "";
    if (ch === ":") {
      op = ":" + (this.s[this.pos + 1] ?? "");
      this.pos += 2;
    } else if (ch === "-" || ch === "+" || ch === "?") {
      op = ch;
      this.pos++;
    } else {
      throw new SkiffError(`unsupported modifier (${ch}) in substitution`);
    }
    const word = this.untilBrace();
    const value = this.env.get(name);
    switch (op) {
      case ":-":
        return value ? value : word;
      case "-":
        return value !== undefined ? value : word;
      case ":+":
        return value ? word : "";
      case "+":
        return value !== undefined ? word : "";
      case ":?":
        if (!value) throw new SkiffError(`${name}: ${word || "is not allowed to be unset"}`);
        return value;
      case "?":
        if (value === undefined) throw new SkiffError(`${name}: ${word || "is not allowed to be unset"}`);
        return value;
      default:
        throw new SkiffError(`unsupported modifier (${op}) in substitution`);
    }
  }

  /** The word of `${V:-word}` up to the closing brace, itself expanded. */
  private untilBrace(): string {
    let out = "";
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (ch === "}") {
        this.pos++;
        return out;
      }
      if (ch === "$") {
        out += this.dollar();
        continue;
      }
      if (ch === this.escape && this.pos + 1 < this.s.length) {
        out += this.s[this.pos + 1];
        this.pos += 2;
        continue;
      }
      if (ch === "'" || ch === '"') {
        this.pos++;
        if (ch === '"') out += this.doubleQuoted();
        else {
          const end = this.s.indexOf("'", this.pos);
          if (end < 0) {
            throw new SkiffError("unexpected end of statement while looking for matching single-quote");
          }
          out += this.s.slice(this.pos, end);
          this.pos = end + 1;
        }
        continue;
      }
      out += ch;
      this.pos++;
    }
    throw new SkiffError("syntax error: missing '}'");
  }
}

/** One word: quotes removed, variables substituted, whitespace kept (docker's ProcessWord). */
export function processWord(word: string, env: Vars, escape = "\\"): string {
  return new Lexer(word, env, escape).words(false).join("");
}

/** Whitespace-separated words, quotes grouping (docker's ProcessWords). */
export function processWords(text: string, env: Vars, escape = "\\"): string[] {
  return new Lexer(text, env, escape).words(true);
}

/**
 * `KEY=VALUE ...` (or the legacy `KEY VALUE`) of ENV, LABEL and ARG: split on unquoted whitespace
 * with the quotes left in, as docker's parser does; the words are processed afterwards.
 */
export function splitKeyValues(rest: string, escape: string, instruction: string): [string, string][] {
  const raw = rawWords(rest, escape);
  if (raw.length === 0) throw new SkiffError(`${instruction} requires at least one argument`);
  if (!raw[0].includes("=")) {
    // legacy form: the first word is the key, the rest of the line (as written) the value
    const m = /^\s*(\S+)\s+(.*)$/s.exec(rest);
    if (!m) throw new SkiffError(`${instruction} names can not be blank`);
    return [[m[1], m[2]]];
  }
  return raw.map((w) => {
    const eq = w.indexOf("=");
    if (eq < 0) {
      throw new SkiffError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    }
    if (eq === 0) throw new SkiffError(`${instruction} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Splits on unquoted whitespace keeping quotes and escapes as written. */
export function rawWords(s: string, escape: string): string[] {
  const out: string[] = [];
  let word = "";
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (!quote && /\s/.test(ch)) {
      if (word) out.push(word);
      word = "";
      continue;
    }
    if (ch === escape && i + 1 < s.length && quote !== "'") {
      word += ch + s[++i];
      continue;
    }
    if (quote && ch === quote) quote = "";
    else if (!quote && (ch === '"' || ch === "'")) quote = ch;
    word += ch;
  }
  if (word) out.push(word);
  return out;
}
