// Column alignment as docker prints tables: Go's text/tabwriter with docker's settings
// (minwidth 10, tabwidth 1, padding 3, pad with spaces). Cells end at a tab; text after a line's
// last tab is not part of a column and is never padded. A column block is a run of consecutive
// lines that have a cell in that column, and each block gets its own width, as in Go.

export interface TabwriterOptions {
  minWidth: number;
  padding: number;
}

export const DOCKER_TABLE: TabwriterOptions = { minWidth: 10, padding: 3 };

/** Display width of a cell: Go's tabwriter counts runes. */
const cellWidth = (s: string) => [...s].length;

/** Aligns tab-separated text the way Go's tabwriter does with docker's settings. */
export function alignTabs(text: string, opts: TabwriterOptions = DOCKER_TABLE): string {
  const endsWithNewline = text.endsWith("\n");
  const rawLines = (endsWithNewline ? text.slice(0, -1) : text).split("\n");
  const out: string[] = [];
  // a line without any tab ends all column blocks (Go flushes there)
  let segment: string[][] = [];
  const flush = () => {
    if (segment.length) out.push(...formatSegment(segment, opts));
    segment = [];
  };
  for (const line of rawLines) {
    const cells = line.split("\t");
    segment.push(cells);
    if (cells.length === 1) flush();
  }
  flush();
  return out.join("\n") + (endsWithNewline ? "\n" : "");
}

function formatSegment(lines: string[][], opts: TabwriterOptions): string[] {
  const widths: number[] = [];
  const result: string[] = new Array(lines.length);
  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i];
      let s = "";
      cells.forEach((c, j) => {
        if (j < widths.length && j < cells.length - 1) {
          s += c + " ".repeat(Math.max(0, widths[j] - cellWidth(c)));
        } else s += c;
      });
      result[i] = s;
    }
  };
  // Go's recursive block formatting (text/tabwriter Writer.format)
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i].length - 1) continue;
      writeLines(line0, i);
      line0 = i;
      let width = opts.minWidth;
      for (; i < line1; i++) {
        if (column >= lines[i].length - 1) break;
        width = Math.max(width, cellWidth(lines[i][column]) + opts.padding);
      }
      widths.push(width);
      format(line0, i);
      widths.pop();
      line0 = i;
      i--; // the outer loop's i++ must look at line `i` again
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return result;
}

/**
 * Aligns rows the way docker's tabwriter does (minwidth 10, padding 3): every column but the last is
 * padded to max(10, widest cell + 3).
 */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 10, [...cell].length + 3);
    });
  }
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join(""))
    .join("\n");
}
