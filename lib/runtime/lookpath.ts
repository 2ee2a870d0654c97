// Go's exec.LookPath as runc runs it, and the container's /dev/null, both resolved in the
// container's root through its directory fd (exec, and run's setup before PID 1's pivot_root).

import { close, isNullDevice, O, pipe } from "../../ffi/libc.ts";
import { fstat, tryOpenInRoot } from "../fs/at.ts";
import { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND } from "./spec.ts";

/** Go's exec.LookPath as runc uses it, in the container's root and -w; docker's errors. */
export function lookPath(
  rootFd: number,
  workingDir: string,
  name: string,
  searchPath: string,
  failure: (message: string, exitCode: number) => Error,
): string {
  const executable = (path: string) => {
    const fd = tryOpenInRoot(rootFd, path.startsWith("/") ? path : `${workingDir}/${path}`, O.PATH);
    if (fd < 0) return fd === -2 || fd === -20 ? "missing" : "denied";
    try {
      const st = fstat(fd);
      return st.type !== "dir" && (st.perm & 0o111) ? "ok" : "denied";
    } finally {
      close(fd);
    }
  };
  if (name.includes("/")) {
    const found = executable(name);
    if (found === "missing") {
      throw failure(`exec: "${name}": stat ${name}: no such file or directory`, EXIT_NOT_FOUND);
    }
    if (found === "denied") throw failure(`exec: "${name}": permission denied`, EXIT_NOT_EXECUTABLE);
    return name;
  }
  for (const dir of searchPath.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (executable(candidate) === "ok") return candidate;
  }
  throw failure(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}

/**
 * What docker gives a command without -i: /dev/null. The container's own (skiff made it in the
 * container's /dev), never the host's: root in the container could chmod or chown that inode through
 * /proc/self/fd/0. Checked to be the null device (the container may have replaced it); otherwise an
 * empty pipe, which reads as EOF too.
 */
export function containerNull(rootFd: number): number {
  const fd = tryOpenInRoot(rootFd, "/dev/null", O.RDWR | O.NOFOLLOW | O.NONBLOCK | O.NOCTTY);
  if (fd >= 0) {
    try {
      if (isNullDevice(fd)) return fd;
    } catch { /* not a device */ }
    close(fd);
  }
  const [readEnd, writeEnd] = pipe();
  close(writeEnd);
  return readEnd;
}
