// zod schemas of the state files off the hot paths (validate.ts says why the hot ones are
// hand-written): layer.json as `system check` judges it, and registry/generated-layers.json, which
// push reads. Import only from modules that no hot verb loads (tests/startup_test.ts guards run, ps,
// images, inspect, rm; pull's fast path must stay clear too): zod costs ~10 ms to load.

import { z } from "zod";
import { InvalidState, parseStateJson } from "./validate.ts";

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);

/** layers/<hex>/layer.json */
export const layerInfoSchema = z.looseObject({
  diffId: digest,
  chainId: digest,
  parent: digest.nullable(),
  size: z.number().int().nonnegative(),
});

/** registry/generated-layers.json: layers skiff compressed for a push. */
export const generatedIndexSchema = z.record(
  z.string(),
  z.looseObject({ diffId: digest, digest, size: z.number().int().nonnegative() }),
);

/** The first problem zod found, as one line: `path.to.field: message`. */
export function zodDetail(e: z.ZodError): string {
  const issue = e.issues[0];
  if (!issue) return "invalid";
  const at = issue.path.map(String).join(".");
  return at ? `${at}: ${issue.message}` : issue.message;
}

/** Parses a state file's text against a schema; InvalidState for bad JSON and for a bad shape. */
export function parseWith<T>(text: string, schema: z.ZodType<T>): T {
  const r = schema.safeParse(parseStateJson(text));
  if (!r.success) throw new InvalidState(zodDetail(r.error));
  return r.data;
}
