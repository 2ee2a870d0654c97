// `--security-opt`: docker CLI's parseSecurityOpts (a seccomp profile file is read and sent as its
// compacted JSON, which is what HostConfig.SecurityOpt keeps), then the daemon's checks (known keys,
// a profile docker can decode), all before anything is created.

import { ClientCheckError, goOpenErrorText, SkiffError } from "../errors.ts";
import { securitySettings } from "../seccomp/mod.ts";

/** Go's json.Compact: whitespace outside strings removed, everything else byte for byte. */
export function compactJson(text: string): string {
  let out = "", inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") {
      out += c;
    }
  }
  return out;
}

function readProfile(path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = goOpenErrorText(e);
    throw new ClientCheckError(`opening seccomp profile (${path}) failed: open ${path}: ${why}`);
  }
  try {
    JSON.parse(text);
  } catch (e) {
    throw new ClientCheckError(
      `compacting json for seccomp profile (${path}) failed: ${(e as Error).message}`,
    );
  }
  return compactJson(text);
}

/** The flag's values as HostConfig.SecurityOpt keeps them; docker's errors for bad ones. */
export function securityOptFlags(values: string[]): string[] {
  const out = values.map((opt) => {
    let sep = opt.indexOf("=");
    if (sep === -1 && opt !== "no-new-privileges") sep = opt.indexOf(":");
    if (opt !== "no-new-privileges" && (sep === -1 || sep === opt.length - 1)) {
      throw new ClientCheckError(`invalid --security-opt: ${JSON.stringify(opt)}`);
    }
    const key = opt.slice(0, sep), value = opt.slice(sep + 1);
    if (key === "seccomp" && value !== "builtin" && value !== "unconfined") {
      return `seccomp=${readProfile(value)}`;
    }
    return opt;
  });
  securitySettings(out); // the daemon's check of the keys
  return out;
}

/** A custom profile must decode as docker's format (zod; loaded only when there is one). */
export async function checkSeccompProfiles(securityOpt: string[]): Promise<void> {
  const settings = securitySettings(securityOpt);
  if (typeof settings.seccomp !== "object") return;
  const { parseProfileJson } = await import("../seccomp/profile.ts");
  const { resolveProfile, nativeArch } = await import("../seccomp/resolve.ts");
  const profile = parseProfileJson(settings.seccomp.json);
  const actions = [profile.defaultAction, ...(profile.syscalls ?? []).map((s) => s.action)];
  if (actions.includes("SCMP_ACT_NOTIFY")) throw new SkiffError("seccomp: SCMP_ACT_NOTIFY is not supported");
  const arch = nativeArch();
  if (arch) resolveProfile(profile, { arch, capabilities: [], kernel: [0, 0] }); // name/names, archMap
}
