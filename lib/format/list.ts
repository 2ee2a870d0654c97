// --format for docker's list commands (ps, images): "" or "table" is the command's default table,
// "table TEMPLATE" renders a header row plus one row per item through docker's tabwriter, "json" is
// one JSON object per line, and anything else is a Go template printed once per item.

import { alignTabs } from "./table.ts";
import {
  parseTemplate,
  splitTableDirective,
  type Template,
  TemplateExecError,
  TemplateParseError,
  unescapeFormat,
} from "./template.ts";

export interface ListFormat {
  /** True when rows go through the table header and alignment. */
  readonly table: boolean;
  /** The template body as executed (after `table`, trimmed, `\t`/`\n` escapes expanded). */
  readonly body: string;
  /** True when the template mentions `.Name` (e.g. ps computes sizes only when `.Size` is used). */
  uses(field: string): boolean;
  /**
   * The output text: for a table, the header is the template executed on `header` (an object whose
   * fields hold the column titles); each row ends with a newline.
   */
  render(rows: unknown[], header: unknown): string;
}

/**
 * Parses a list --format up front, so a bad template fails (TemplateParseError, exit 1) before the
 * command reads or changes anything.
 */
export function compileListFormat(format: string, defaultTable: string): ListFormat {
  let f = format;
  if (f === "" || f === "table") f = defaultTable;
  else if (f === "json") f = "{{json .}}";
  const { table, body: raw } = splitTableDirective(f);
  // docker trims spaces around the template and expands the \t and \n users type in shells
  const body = unescapeFormat(raw.replace(/^ +| +$/g, ""));
  const template: Template = parseTemplate(body);
  return {
    table,
    body,
    uses: (field) => new RegExp(`\\.${field}\\b`).test(body),
    render(rows, header) {
      try {
        const lines = rows.map((r) => template.execute(r) + "\n");
        if (!table) return lines.join("");
        return alignTabs(template.execute(header) + "\n" + lines.join(""));
      } catch (e) {
        // docker's formatter: `template parsing error: ` before an execution error too
        if (e instanceof TemplateExecError) {
          throw new TemplateExecError(`template parsing error: ${e.message}`);
        }
        throw e;
      }
    },
  };
}

/**
 * docker ps's own check of a --format before it asks for any container: the text as typed (`table`
 * and escapes included, so the columns match docker's) parsed and run once on an empty row, so a
 * field the row lacks fails even when no container is listed.
 */
export function checkPsFormat(format: string, emptyRow: unknown): void {
  let template: Template;
  try {
    template = parseTemplate(format);
  } catch (e) {
    if (!(e instanceof TemplateParseError)) throw e;
    throw new TemplateParseError(
      e.message.replace(/^template parsing error: /, ""),
      undefined,
      "failed to parse template",
    );
  }
  try {
    template.execute(emptyRow);
  } catch (e) {
    if (e instanceof TemplateExecError) {
      throw new TemplateExecError(`failed to execute template: ${e.message}`);
    }
    throw e;
  }
}
