// Renders pull/push progress the way the docker CLI does: per-layer status lines, redrawn in place
// with progress bars on a terminal, one plain line per status change otherwise. The engine only
// emits events; the CLI owns the writer.

import { humanSize } from "../format/human.ts";

export type LayerStatus =
  | "Pulling fs layer"
  | "Waiting"
  | "Downloading"
  | "Retrying"
  | "Verifying Checksum"
  | "Download complete"
  | "Extracting"
  | "Pull complete"
  | "Already exists"
  | "Preparing"
  | "Pushing"
  | "Pushed"
  | "Layer already exists"
  | "Mounted from";

export type ProgressEvent =
  | { kind: "message"; text: string }
  | { kind: "layer"; id: string; status: LayerStatus; current?: number; total?: number; detail?: string };

export type ProgressSink = (event: ProgressEvent) => void;

export const shortId = (digest: string) => digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);

function bar(current: number, total: number): string {
  const width = 50;
  const filled = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const arrow = filled < width ? ">" : "";
  return `[${"=".repeat(Math.max(0, filled - (arrow ? 1 : 0)))}${arrow}${" ".repeat(width - filled)}]`;
}

/** Writes progress to a stream: plain lines, or a redrawn block of lines on a terminal. */
export class ProgressRenderer {
  private readonly enc = new TextEncoder();
  private readonly order: string[] = [];
  private readonly lines = new Map<string, string>();
  private drawn = 0;
  private lastDraw = 0;
  private pending?: ReturnType<typeof setTimeout>;

  constructor(private readonly out: { writeSync(p: Uint8Array): number }, private readonly tty: boolean) {}

  private write(text: string) {
    const data = this.enc.encode(text);
    let off = 0;
    while (off < data.length) off += this.out.writeSync(data.subarray(off));
  }

  readonly sink: ProgressSink = (e) => {
    if (e.kind === "message") {
      this.flush();
      // messages end a block of layer lines: later layer events start a new block
      this.order.length = 0;
      this.lines.clear();
      this.drawn = 0;
      this.write(`${e.text}\n`);
      return;
    }
    const text = e.status === "Mounted from" ? `Mounted from ${e.detail ?? ""}` : e.status;
    if (!this.tty) {
      // plain output: a line per status change, no byte counts (docker does the same without a tty)
      if (e.status === "Downloading" || e.status === "Extracting" || e.status === "Pushing") {
        if (this.lines.get(e.id) === e.status) return;
      }
      this.lines.set(e.id, e.status);
      this.write(`${e.id}: ${text}\n`);
      return;
    }
    if (!this.lines.has(e.id)) this.order.push(e.id);
    const progress = e.current !== undefined && e.total
      ? ` ${bar(e.current, e.total)}  ${humanSize(e.current, 4)}/${humanSize(e.total, 4)}`
      : "";
    this.lines.set(e.id, `${e.id}: ${text}${progress}`);
    const now = Date.now();
    if (progress && now - this.lastDraw < 100) {
      this.pending ??= setTimeout(() => {
        this.pending = undefined;
        this.draw();
      }, 100);
      return;
    }
    this.draw();
  };

  private draw() {
    if (!this.tty) return;
    this.lastDraw = Date.now();
    let text = this.drawn ? `\x1b[${this.drawn}A` : "";
    for (const id of this.order) text += `\x1b[2K\r${this.lines.get(id)}\n`;
    this.drawn = this.order.length;
    this.write(text);
  }

  /** Draws the final state (call before printing anything else). */
  flush() {
    if (this.pending) {
      clearTimeout(this.pending);
      this.pending = undefined;
    }
    this.draw();
  }
}
