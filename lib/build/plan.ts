// Build planning, pure (unit-tested without root): a parsed Dockerfile → its stages, the stages the
// target needs, the step count docker prints, and per instruction what it does to the image config
// (config-only instructions), the command a RUN runs, and the cache key and history line of a step.
// The executor (build.ts) supplies what only the store knows: the base image's config and the
// content hash of COPY sources.

import { parseGoDuration } from "../format/duration.ts";
import { SkiffError } from "../errors.ts";
import type { ImageRunConfig } from "../state/types.ts";
import {
  type Dockerfile,
  DockerfileSyntaxError,
  type Instruction,
  parseDockerfile,
  parseJsonForm,
} from "./parse.ts";
import { processWord, processWords, splitKeyValues, type Vars } from "./shell.ts";
import { sha256Hex } from "./hash.ts";

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as docker does */
  name?: string;
  from: Instruction;
  /** the FROM argument, with the meta ARGs substituted */
  base: string;
  /** FROM --platform */
  platform?: string;
  instructions: Instruction[];
}

export interface BuildPlan {
  file: string;
  escape: string;
  metaArgs: Instruction[];
  /** meta ARG values (defaults, overridden by --build-arg) */
  metaValues: Map<string, string>;
  stages: Stage[];
  /** stages to build, in order; the last is the result */
  build: Stage[];
  /** docker's `Step N/M` total over what is built */
  totalSteps: number;
}

/** docker's predefined ARGs: usable with --build-arg without an ARG line, and left out of history. */
export const PREDEFINED_ARGS = new Set([
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "FTP_PROXY",
  "ftp_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
]);

const flag = (instr: Instruction, name: string) => instr.flags.find((f) => f.name === name)?.value;

function stageRef(plan: { stages: Stage[] }, ref: string): Stage | undefined {
  if (/^\d+$/.test(ref)) return plan.stages[Number(ref)];
  const lower = ref.toLowerCase();
  return plan.stages.find((s) => s.name === lower);
}

/** Parses and plans: the stages, and those `target` (default the last) needs. */
export function planBuild(
  text: string,
  opts: { file?: string; buildArgs?: Map<string, string | undefined>; target?: string } = {},
): BuildPlan {
  const file = opts.file ?? "Dockerfile";
  const df: Dockerfile = parseDockerfile(text, file);
  const buildArgs = opts.buildArgs ?? new Map();
  const metaArgs: Instruction[] = [];
  const metaValues = new Map<string, string>();
  const stages: Stage[] = [];
  const wrap = <T>(instr: Instruction, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DockerfileSyntaxError || !(e instanceof SkiffError)) throw e;
      throw new DockerfileSyntaxError(`${file}:${instr.line}: ${e.message}`);
    }
  };
  for (const instr of df.instructions) {
    if (instr.keyword === "FROM") {
      wrap(instr, () => {
        const words = processWords(instr.rest, metaValues, df.escape);
        if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === "as")) {
          throw new SkiffError("FROM requires either one or three arguments");
        }
        const name = words.length === 3 ? words[2].toLowerCase() : undefined;
        if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name)) {
          throw new SkiffError(
            `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
          );
        }
        if (name && stages.some((s) => s.name === name)) throw new SkiffError(`duplicate name ${name}`);
        const platform = flag(instr, "platform");
        stages.push({ index: stages.length, name, from: instr, base: words[0], platform, instructions: [] });
      });
      continue;
    }
    if (stages.length === 0) {
      if (instr.keyword !== "ARG") {
        throw new DockerfileSyntaxError(`${file}:${instr.line}: no build stage in current context`);
      }
      metaArgs.push(instr);
      wrap(instr, () => {
        for (const [k, v] of argDecls(instr, metaValues, df.escape)) {
          const value = buildArgs.has(k) ? buildArgs.get(k) : v;
          if (value !== undefined) metaValues.set(k, value);
        }
      });
      continue;
    }
    stages.at(-1)!.instructions.push(instr);
  }
  if (stages.length === 0) throw new DockerfileSyntaxError(`${file}: no build stage in current context`);
  let last = stages.length - 1;
  if (opts.target !== undefined) {
    const t = stageRef({ stages: stages.filter((s) => s.name) }, opts.target);
    if (!t) throw new SkiffError(`failed to reach build target ${opts.target} in Dockerfile`, 1);
    last = t.index;
  }
  // the stages the result needs: FROM <stage> and COPY --from=<stage>, transitively
  const needed = new Set<number>();
  const visit = (s: Stage) => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    const base = stageRef({ stages: stages.slice(0, s.index) }, s.base);
    if (base && !/^\d+$/.test(s.base)) visit(base);
    for (const instr of s.instructions) {
      if (instr.keyword !== "COPY") continue;
      const from = flag(instr, "from");
      if (from === undefined) continue;
      const ref = stageRef({ stages: stages.slice(0, s.index) }, processWord(from, metaValues, df.escape));
      if (ref) visit(ref);
      else if (/^\d+$/.test(from)) {
        throw new DockerfileSyntaxError(
          `${file}:${instr.line}: invalid from flag value ${from}: refers to current build stage`,
        );
      }
    }
  };
  visit(stages[last]);
  const build = stages.filter((s) => needed.has(s.index));
  const totalSteps = metaArgs.length + build.reduce((n, s) => n + 1 + s.instructions.length, 0);
  return { file, escape: df.escape, metaArgs, metaValues, stages, build, totalSteps };
}

/** The stage a `--from` or FROM names among the stages before `before`, if any. */
export function findStage(plan: BuildPlan, ref: string, before: number): Stage | undefined {
  return stageRef({ stages: plan.stages.slice(0, before) }, ref);
}

/** ARG declarations: name and default (undefined when none). */
export function argDecls(instr: Instruction, vars: Vars, escape: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  for (const word of instr.rest.trim().split(/\s+(?=(?:[^"']*["'][^"']*["'])*[^"']*$)/)) {
    const eq = word.indexOf("=");
    if (eq < 0) out.push([word, undefined]);
    else out.push([word.slice(0, eq), processWord(word.slice(eq + 1), vars, escape)]);
  }
  return out;
}

// ---- per-stage evaluation ----

/** What a stage's steps see: the config so far and the ARGs in scope. */
export interface StageState {
  config: ImageRunConfig;
  /** ARGs declared in this stage with their values (in declaration order) */
  args: Map<string, string | undefined>;
  escape: string;
  /** --build-arg values */
  buildArgs: Map<string, string | undefined>;
  /** meta ARG values, for `ARG name` without a default */
  metaValues: Map<string, string>;
  /** a CMD was set in this stage (an ENTRYPOINT after it keeps it) */
  cmdSetInStage?: boolean;
}

/** ENV entries as a map. */
function envMap(env: string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf("=");
    out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? "" : e.slice(eq + 1));
  }
  return out;
}

/** The values substitution sees: ARGs with a value, overridden by ENV (docker's precedence). */
export function substitutionVars(state: StageState): Map<string, string> {
  const vars = new Map<string, string>();
  for (const [k, v] of state.args) if (v !== undefined) vars.set(k, v);
  for (const [k, v] of envMap(state.config.Env)) vars.set(k, v);
  return vars;
}

/** The build args a RUN gets in its environment (and its cache key): declared ones with a value. */
export function runBuildArgs(state: StageState): string[] {
  const env = envMap(state.config.Env);
  const out: string[] = [];
  for (const [k, v] of state.args) if (v !== undefined && !env.has(k)) out.push(`${k}=${v}`);
  for (const [k, v] of state.buildArgs) {
    if (PREDEFINED_ARGS.has(k) && !state.args.has(k) && v !== undefined) out.push(`${k}=${v}`);
  }
  return out;
}

const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** The argv of RUN (or CMD/ENTRYPOINT's shell form): exec form as given, else the SHELL + the line. */
export function commandOf(instr: Instruction, config: ImageRunConfig): string[] {
  if (instr.json) return instr.json;
  let line = instr.rest;
  // a heredoc RUN: the body is the script (docker runs it through the shell)
  if (instr.heredocs.length && /^<<-?["']?\w+["']?\s*$/.test(line.trim())) line = instr.heredocs[0].content;
  return [...(config.Shell ?? DEFAULT_SHELL), line];
}

/** The `|N K=V ...` prefix docker puts before a RUN's command in its history and cache key. */
export function runHistoryCommand(argv: string[], buildArgs: string[]): string {
  const cmd = argv.join(" ");
  return buildArgs.length ? `|${buildArgs.length} ${buildArgs.join(" ")} ${cmd}` : cmd;
}

/** docker's history line for a config-only (or COPY) step. */
export const nop = (text: string) => `/bin/sh -c #(nop) ${text}`;

/** Go's %q-ish rendering of a string list, as docker's history shows CMD ["a" "b"]. */
const goList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(" ")}]`;

export interface ConfigStep {
  config: ImageRunConfig;
  /** history created_by (and, with the parent, the cache key) */
  createdBy: string;
}

const HEALTH_DURATIONS = ["interval", "timeout", "start-period", "start-interval"];

/**
 * A config-only instruction applied to the stage (ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME,
 * USER, WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, ARG). ARG changes `state.args`.
 */
export function configStep(state: StageState, instr: Instruction): ConfigStep & { author?: string } {
  const config: ImageRunConfig = { ...state.config };
  const vars = substitutionVars(state);
  const esc = state.escape;
  const word = (w: string) => processWord(w, vars, esc);
  switch (instr.keyword) {
    case "ENV": {
      const env = [...(config.Env ?? [])];
      const shown: string[] = [];
      for (const [k, raw] of splitKeyValues(instr.rest, esc, "ENV")) {
        // each pair sees the ones before it on the same line
        const value = processWord(raw, new Map([...vars, ...envMap(env)]), esc);
        const i = env.findIndex((e) => e.split("=", 1)[0] === k);
        if (i < 0) env.push(`${k}=${value}`);
        else env[i] = `${k}=${value}`;
        shown.push(`${k}=${value}`);
      }
      config.Env = env;
      return { config, createdBy: nop(`ENV ${shown.join(" ")}`) };
    }
    case "LABEL": {
      const labels = { ...(config.Labels ?? {}) };
      const shown: string[] = [];
      for (const [k, v] of splitKeyValues(instr.rest, esc, "LABEL")) {
        const key = word(k), value = word(v);
        labels[key] = value;
        shown.push(`${key}=${value}`);
      }
      config.Labels = labels;
      return { config, createdBy: nop(`LABEL ${shown.join(" ")}`) };
    }
    case "MAINTAINER": {
      const author = instr.rest.trim();
      return { config, createdBy: nop(`MAINTAINER ${author}`), author };
    }
    case "CMD":
    case "ENTRYPOINT": {
      const argv = commandOf(instr, config);
      if (instr.keyword === "CMD") {
        config.Cmd = argv;
        state.cmdSetInStage = true;
      } else {
        config.Entrypoint = argv;
        // docker: ENTRYPOINT resets a CMD inherited from the base image, not one set in this stage
        if (!state.cmdSetInStage) config.Cmd = null;
      }
      return { config, createdBy: nop(` ${instr.keyword} ${goList(argv)}`) };
    }
    case "EXPOSE": {
      const ports = { ...(config.ExposedPorts ?? {}) };
      const shown: string[] = [];
      for (const p of processWords(instr.rest, vars, esc)) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new SkiffError(`invalid containerPort: ${p}`);
        const key = p.includes("/") ? p.toLowerCase() : `${p}/tcp`;
        ports[key] = {};
        shown.push(key);
      }
      config.ExposedPorts = ports;
      return { config, createdBy: nop(` EXPOSE ${shown.join(" ")}`) };
    }
    case "VOLUME": {
      const vols = { ...(config.Volumes ?? {}) };
      const list = instr.json ? instr.json.map(word) : processWords(instr.rest, vars, esc);
      for (const v of list) {
        if (v.trim() === "") throw new SkiffError("VOLUME specified can not be an empty string");
        vols[v] = {};
      }
      config.Volumes = vols;
      return { config, createdBy: nop(` VOLUME ${goList(list)}`) };
    }
    case "USER": {
      config.User = word(instr.rest.trim());
      return { config, createdBy: nop(`USER ${config.User}`) };
    }
    case "WORKDIR": {
      const dir = word(instr.rest.trim());
      config.WorkingDir = resolveWorkdir(config.WorkingDir, dir);
      return { config, createdBy: nop(`WORKDIR ${config.WorkingDir}`) };
    }
    case "STOPSIGNAL": {
      const sig = word(instr.rest.trim());
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) throw new SkiffError(`Invalid signal: ${sig}`);
      config.StopSignal = sig;
      return { config, createdBy: nop(` STOPSIGNAL [${sig}]`) };
    }
    case "SHELL": {
      if (!instr.json || instr.json.length === 0) {
        throw new SkiffError("SHELL requires the arguments to be in JSON form");
      }
      config.Shell = instr.json;
      return { config, createdBy: nop(`SHELL ${goList(instr.json)}`) };
    }
    case "HEALTHCHECK": {
      const rest = instr.rest.trim();
      const m = /^(\S+)\s*(.*)$/s.exec(rest);
      if (!m) throw new SkiffError("HEALTHCHECK requires an argument");
      const type = m[1].toUpperCase();
      if (type === "NONE") {
        if (m[2].trim() || instr.flags.length) throw new SkiffError("HEALTHCHECK NONE takes no arguments");
        config.Healthcheck = { Test: ["NONE"] };
      } else if (type === "CMD") {
        const json = parseJsonForm(m[2]);
        const hc: NonNullable<ImageRunConfig["Healthcheck"]> = {
          Test: json ? ["CMD", ...json] : ["CMD-SHELL", m[2]],
        };
        for (const f of instr.flags) {
          const key = f.name;
          if (HEALTH_DURATIONS.includes(key)) {
            const ns = parseGoDuration(f.value ?? "");
            const field = {
              interval: "Interval",
              timeout: "Timeout",
              "start-period": "StartPeriod",
              "start-interval": "StartInterval",
            }[key]!;
            (hc as Record<string, unknown>)[field] = ns;
          } else if (key === "retries") {
            const n = Number(f.value);
            if (!Number.isInteger(n) || n < 0) {
              throw new SkiffError(`strconv.ParseInt: parsing "${f.value}": invalid syntax`);
            }
            hc.Retries = n;
          } else throw new SkiffError(`Unknown flag: ${key}`);
        }
        config.Healthcheck = hc;
      } else throw new SkiffError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`);
      return { config, createdBy: nop(`HEALTHCHECK &{${goList(config.Healthcheck.Test)} ...}`) };
    }
    case "ONBUILD": {
      const inner = instr.rest.trim();
      const kw = /^(\S+)/.exec(inner)?.[1].toUpperCase() ?? "";
      if (kw === "ONBUILD") throw new SkiffError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (kw === "FROM" || kw === "MAINTAINER") {
        throw new SkiffError(`${kw} isn't allowed as an ONBUILD trigger`);
      }
      config.OnBuild = [...(config.OnBuild ?? []), inner];
      return { config, createdBy: nop(`ONBUILD ${inner}`) };
    }
    case "ARG": {
      const shown: string[] = [];
      for (const [k, def] of argDecls(instr, vars, esc)) {
        let value = state.buildArgs.has(k) ? state.buildArgs.get(k) : def;
        if (value === undefined && state.metaValues.has(k) && def === undefined) {
          value = state.metaValues.get(k);
        }
        state.args.set(k, value);
        shown.push(def === undefined ? k : `${k}=${def}`);
      }
      return { config, createdBy: nop(`ARG ${shown.join(" ")}`) };
    }
    default:
      throw new SkiffError(`${instr.keyword} is not a config instruction`);
  }
}

/** WORKDIR relative to the previous one, cleaned. */
export function resolveWorkdir(current: string | undefined, dir: string): string {
  const joined = dir.startsWith("/") ? dir : `${current || "/"}/${dir}`;
  return cleanPath(joined);
}

/** Go's path.Clean for absolute paths. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** A step's cache key: the parent image, what the step does, and what it reads. */
export async function cacheKey(
  parentId: string,
  createdBy: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  return `sha256:${await sha256Hex(JSON.stringify({ parent: parentId, createdBy, ...extra }))}`;
}
