// The output of `network inspect` and `volume inspect`: docker's indented JSON array, `-f json` as one
// line, or a Go template run on each object's JSON with missingkey=error (a field the object lacks is
// an error of its own line and makes the exit code 1, the other objects still print).

import { goJson, type Template, TemplateExecError } from "./template.ts";

/**
 * The text to print for `found`; template errors are appended to `errors`. `emptyLine`: with a
 * template and nothing found, docker's volume inspect still prints an empty line.
 */
export function renderInspect(
  found: unknown[],
  format: string,
  template: Template | undefined,
  errors: string[],
  emptyLine = false,
): string {
  if (template) {
    const lines: string[] = [];
    for (const object of found) {
      try {
        lines.push(template.execute(JSON.parse(goJson(object)), { missingKeyError: true }) + "\n");
      } catch (e) {
        if (!(e instanceof TemplateExecError)) throw e;
        errors.push(`template parsing error: ${e.message}`);
      }
    }
    return lines.length || !emptyLine ? lines.join("") : "\n";
  }
  if (format === "json") return `[${found.map(goJson).join(",")}]\n`;
  return JSON.stringify(found, null, 4) + "\n";
}
