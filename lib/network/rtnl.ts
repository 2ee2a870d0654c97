// The rtnetlink executor: one socket, requests sent one at a time and their ACK (or answer) read
// back; a kernel refusal becomes a SysError with the errno's name, as a failed libc call does.

import {
  close,
  errnoName,
  netlinkReceive,
  netlinkSend,
  netlinkSocket,
  strerror,
  SysError,
} from "../../ffi/mod.ts";
import * as nl from "./netlink.ts";

let nextSeq = 1;

export class Rtnl {
  private buf = new Uint8Array(16384);

  /** A socket of the calling thread's network namespace, or one given (made in another namespace). */
  constructor(readonly fd: number = netlinkSocket()) {}

  close(): void {
    close(this.fd);
  }

  /** Sends a request built with `build(seq)`; returns the answers before its ACK. Throws SysError. */
  request(what: string, build: (seq: number) => Uint8Array<ArrayBuffer>): nl.Reply[] {
    const seq = nextSeq++;
    netlinkSend(this.fd, build(seq));
    const answers: nl.Reply[] = [];
    for (;;) {
      const n = netlinkReceive(this.fd, this.buf);
      for (const reply of nl.parseReplies(this.buf.subarray(0, n))) {
        if (reply.seq !== seq) continue; // a late answer to an earlier request
        if (reply.type === nl.NLMSG.ERROR) {
          const code = nl.errorCode(reply);
          if (code === 0) return answers;
          throw new SysError(`netlink ${what}`, code, errnoName(code), strerror(code));
        }
        if (reply.type === nl.NLMSG.DONE) return answers;
        answers.push({ ...reply, payload: reply.payload.slice() });
      }
    }
  }

  /** The index of the link named so, or undefined when there is none (ENODEV). */
  linkIndex(name: string): number | undefined {
    try {
      const [answer] = this.request(`getlink ${name}`, (seq) => nl.getLink(seq, name));
      return answer ? nl.linkIndex(answer) : undefined;
    } catch (e) {
      if (e instanceof SysError && e.code === "ENODEV") return undefined;
      throw e;
    }
  }

  /** Deletes a link by name; false when there was none. */
  deleteLink(name: string): boolean {
    try {
      this.request(`dellink ${name}`, (seq) => nl.deleteLink(seq, name));
      return true;
    } catch (e) {
      if (e instanceof SysError && e.code === "ENODEV") return false;
      throw e;
    }
  }
}

/** Runs `fn` with a socket of this thread's namespace, closed after. */
export function withRtnl<T>(fn: (rtnl: Rtnl) => T): T {
  const rtnl = new Rtnl();
  try {
    return fn(rtnl);
  } finally {
    rtnl.close();
  }
}
