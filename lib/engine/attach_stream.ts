// The wire format of an attach, pure (no I/O), shared by the supervisor (attach.ts) and the client
// (attach_client.ts), and by a later HTTP API (docker's attach stream is the same):
//
// - without -t, each output chunk goes as one frame of docker's stdcopy: an 8-byte header (stream
//   1 = stdout, 2 = stderr, three zero bytes, the payload's length as a big-endian uint32), then the
//   payload. With -t the pty's bytes go raw (the container has one output stream).
// - client to supervisor: the caller's stdin, raw; its end is a half-close of the socket.
// - a foreground run served by the supervisor (foreground.ts): no stdin; stream 3 is skiff's own,
//   one last frame with the run's outcome as JSON (the container's bytes are only ever payload of
//   frames 1 and 2, so it cannot forge one); the client's bytes are signal numbers to pass on.
// - detach keys: docker's format (moby/term ToBytes) and an escape detector for the caller's input.

export const STREAM_STDOUT = 1, STREAM_STDERR = 2, STREAM_OUTCOME = 3;
const HEADER = 8;

/** One stdcopy frame holding `payload`. */
export function encodeFrame(stream: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const frame = new Uint8Array(HEADER + payload.length);
  frame[0] = stream;
  new DataView(frame.buffer).setUint32(4, payload.length);
  frame.set(payload, HEADER);
  return frame;
}

/** Splits a stdcopy byte stream back into (stream, payload) frames, whatever the read sizes. */
export class FrameDecoder {
  private pending = new Uint8Array(0);

  /** `outcome`: stream 3 (STREAM_OUTCOME) is expected too. */
  constructor(private readonly outcome = false) {}

  /** Feeds `chunk`; returns the frames it completed. Throws on a header that is not stdcopy's. */
  push(chunk: Uint8Array): { stream: number; payload: Uint8Array }[] {
    let data = chunk;
    if (this.pending.length) {
      data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending);
      data.set(chunk, this.pending.length);
    }
    const frames = [];
    let at = 0;
    while (data.length - at >= HEADER) {
      const stream = data[at];
      if (
        stream !== STREAM_STDOUT && stream !== STREAM_STDERR && !(this.outcome && stream === STREAM_OUTCOME)
      ) {
        throw new Error(`attach stream: unknown stream ${stream}`);
      }
      const size = new DataView(data.buffer, data.byteOffset + at + 4, 4).getUint32(0);
      if (data.length - at - HEADER < size) break;
      frames.push({ stream, payload: data.subarray(at + HEADER, at + HEADER + size) });
      at += HEADER + size;
    }
    this.pending = data.slice(at);
    return frames;
  }
}

/** docker's default detach keys: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = new Uint8Array([16, 17]);

const CTRL_NAMES = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

/**
 * docker's --detach-keys (moby/term ToBytes): comma-separated keys, each a single character,
 * `ctrl-X` for X in @, a-z, [, \, ], ^, _ (lower case), or `DEL`. undefined when invalid.
 */
export function parseDetachKeys(spec: string): Uint8Array | undefined {
  const codes: number[] = [];
  for (const key of spec.split(",")) {
    if (key.length === 1 && key.charCodeAt(0) < 0x80) { // one byte, as Go counts a string's length
      codes.push(key.charCodeAt(0));
      continue;
    }
    const ctrl = key.startsWith("ctrl-") && key.length === 6 ? CTRL_NAMES.indexOf(key[5]) : -1;
    if (ctrl >= 0) codes.push(ctrl);
    else if (key === "DEL") codes.push(127);
    else return undefined;
  }
  return new Uint8Array(codes);
}

/**
 * Watches the caller's input for the detach keys, as docker's escape proxy does: bytes that start
 * the sequence are held back; the rest of the sequence detaches, anything else releases them.
 */
export class EscapeDetector {
  private matched = 0;
  constructor(private readonly keys: Uint8Array) {}

  /** The bytes to pass on, and whether the sequence completed (what follows it is dropped). */
  feed(chunk: Uint8Array): { pass: Uint8Array; detach: boolean } {
    if (this.keys.length === 0) return { pass: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        if (++this.matched === this.keys.length) return { pass: new Uint8Array(out), detach: true };
        continue;
      }
      for (let i = 0; i < this.matched; i++) out.push(this.keys[i]);
      this.matched = b === this.keys[0] ? 1 : 0;
      if (this.matched === 0) out.push(b);
      else if (this.keys.length === 1) return { pass: new Uint8Array(out), detach: true };
    }
    return { pass: new Uint8Array(out), detach: false };
  }
}
