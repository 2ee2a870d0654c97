// Loading a seccomp profile in docker's JSON format (moby profiles/seccomp), validated with zod.
// Only for custom profiles (`--security-opt seccomp=FILE`): the default profile is typed data and
// `run` with it never loads this module.

import { z } from "zod";
import { SkiffError } from "../errors.ts";
import { ACTIONS, OPERATORS, type SeccompProfile } from "./profile_types.ts";

const uint = z.number().int().nonnegative();
const u64 = uint.max(Number.MAX_SAFE_INTEGER);

const condition = z.object({
  caps: z.array(z.string()).nullish(),
  arches: z.array(z.string()).nullish(),
  minKernel: z.string().regex(/^\d+\.\d+$/, 'invalid kernel version, expected "<kernel>.<major>"').nullish(),
});

const syscall = z.object({
  name: z.string().optional(),
  names: z.array(z.string()).nullish(),
  action: z.enum(ACTIONS),
  errnoRet: uint.max(0xffff).nullish(),
  args: z.array(z.object({
    index: uint.max(5),
    value: u64,
    valueTwo: u64.nullish(),
    op: z.enum(OPERATORS),
  })).nullish(),
  comment: z.string().optional(),
  includes: condition.nullish(),
  excludes: condition.nullish(),
});

const profileSchema = z.object({
  defaultAction: z.enum(ACTIONS),
  defaultErrnoRet: uint.max(0xffff).nullish(),
  architectures: z.array(z.string()).nullish(),
  archMap: z.array(z.object({
    architecture: z.string(),
    subArchitectures: z.array(z.string()).nullable(),
  })).nullish(),
  flags: z.array(z.string()).nullish(),
  listenerPath: z.string().optional(),
  listenerMetadata: z.string().optional(),
  syscalls: z.array(syscall).nullish(),
});

/** JSON's nulls (Go's zero values) as absent fields. */
const dropNulls = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, dropNulls(v)]),
    );
  }
  return value;
};

/** A profile's JSON text → the profile; docker's wording when it is not one. */
export function parseProfileJson(text: string): SeccompProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SkiffError(`Decoding seccomp profile failed: ${(e as Error).message}`);
  }
  const result = profileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? ` at ${issue.path.join(".")}` : "";
    throw new SkiffError(`Decoding seccomp profile failed: ${issue.message}${where}`);
  }
  return dropNulls(result.data) as SeccompProfile;
}
