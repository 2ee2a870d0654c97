// A file-writing thread of the layer unpacker (see file_pool.ts): runs FileJobs in the order they
// arrive and reports each through its group's shared counters, never by message, because the main
// thread waits for them blocked in Atomics.wait.

import {
  type FileJob,
  GROUP_DONE,
  GROUP_ERROR_BYTES,
  GROUP_ERROR_LEN,
  GROUP_FAILED,
  POOL_READY,
  writeFileJob,
} from "./file_job.ts";

const encoder = new TextEncoder();

function fail(counters: Int32Array, bytes: Uint8Array, message: string): void {
  // the first failure of a group wins; the main thread reports it once the group is drained
  if (Atomics.compareExchange(counters, GROUP_FAILED, 0, 1) !== 0) return;
  const { written } = encoder.encodeInto(message, bytes);
  Atomics.store(counters, GROUP_ERROR_LEN, written);
}

addEventListener("message", (event) => {
  const msg = (event as MessageEvent).data;
  if (msg.ready) {
    const ready = new Int32Array(msg.ready as SharedArrayBuffer);
    Atomics.add(ready, POOL_READY, 1);
    Atomics.notify(ready, POOL_READY);
    return;
  }
  const counters = new Int32Array(msg.group as SharedArrayBuffer, 0, 4);
  for (const job of msg.jobs as FileJob[]) {
    try {
      writeFileJob(job);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      fail(
        counters,
        new Uint8Array(msg.group, GROUP_ERROR_BYTES),
        `failed to unpack layer entry "${job.name}": ${detail}`,
      );
    } finally {
      Atomics.add(counters, GROUP_DONE, 1);
      Atomics.notify(counters, GROUP_DONE);
    }
  }
});
