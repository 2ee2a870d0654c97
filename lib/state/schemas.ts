// zod schemas of the state files off the hot paths (validate.ts says why the hot ones are
// hand-written): layer.json, the registry bookkeeping under <root>/registry/, the docker config
// file that holds credentials, and the lines of json-file logs. Import only from modules that the
// start-up guard (tests/startup_test.ts) does not cover: zod costs ~10 ms to load.

import { z } from "zod";
import { InvalidState } from "./validate.ts";

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);

/** layers/<hex>/layer.json */
export const layerInfoSchema = z.looseObject({
  diffId: digest,
  chainId: digest,
  parent: digest.nullable(),
  size: z.number().int().nonnegative(),
});

/** registry/blob-sources.json: digest → registry → repositories the blob came from. */
export const blobSourcesSchema = z.record(z.string(), z.record(z.string(), z.array(z.string())));

/** registry/generated-layers.json: layers skiff compressed for a push. */
export const generatedIndexSchema = z.record(
  z.string(),
  z.looseObject({ diffId: digest, digest, size: z.number().int().nonnegative() }),
);

/** The docker config file (~/.docker/config.json), as far as skiff reads it. */
export const dockerConfigSchema = z.looseObject({
  auths: z.record(
    z.string(),
    z.looseObject({
      auth: z.string().optional(),
      username: z.string().optional(),
      password: z.string().optional(),
      identitytoken: z.string().optional(),
    }),
  ).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});

/** The first problem zod found, as one line: `path.to.field: message`. */
export function zodDetail(e: z.ZodError): string {
  const issue = e.issues[0];
  if (!issue) return "invalid";
  const at = issue.path.map(String).join(".");
  return at ? `${at}: ${issue.message}` : issue.message;
}

/** Parses a state file's text against a schema; InvalidState for bad JSON and for a bad shape. */
export function parseWith<T>(text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidState(
      text.trim() === "" ? "the file is empty" : `not valid JSON (${(e as Error).message})`,
    );
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new InvalidState(zodDetail(r.error));
  return r.data;
}

/** Reads and checks a state file; `fallback` when it does not exist. */
export function readStateOr<T>(path: string, schema: z.ZodType<T>, fallback: T): T {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return fallback;
    throw e;
  }
  return parseWith(text, schema);
}
