// docker's -u: "name", "uid", "name:group", "uid:gid", looked up in the container's /etc/passwd and
// /etc/group (read after pivot_root or setns, so paths are the container's). Sync reads only: it runs
// in the init stage and in exec's stage.

import { close, O, open, read } from "../../ffi/libc.ts";
import { openInRoot } from "../fs/at.ts";
import { MAX_ID } from "./spec.ts";

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups: every group of /etc/group that lists the user by name. */
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** More than any real passwd or group file: a link to /dev/zero must not eat skiff's memory. */
const MAX_ID_FILE = 4 << 20;

/**
 * The file's text, read by root from a tree the container controls: a FIFO or a device must not
 * block (O_NONBLOCK: a FIFO without writer reads as empty) and an endless file stops at MAX_ID_FILE.
 */
function readBounded(path: string, rootFd?: number): string {
  const flags = O.RDONLY | O.NONBLOCK | O.NOCTTY | O.CLOEXEC;
  const fd = rootFd === undefined ? open(path, flags) : openInRoot(rootFd, path, flags);
  try {
    let buf = new Uint8Array(64 * 1024);
    let length = 0;
    while (length < MAX_ID_FILE) {
      if (length === buf.length) {
        const bigger = new Uint8Array(buf.length * 4);
        bigger.set(buf);
        buf = bigger;
      }
      const n = read(fd, buf.subarray(length));
      if (n === 0) break;
      length += n;
    }
    return new TextDecoder().decode(buf.subarray(0, length));
  } finally {
    close(fd);
  }
}

function readLines(path: string, rootFd?: number): string[][] {
  let text: string;
  try {
    text = readBounded(path, rootFd);
  } catch {
    return []; // an image without the file: numeric ids still work
  }
  return text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
}

function passwd(path: string, rootFd?: number): PasswdEntry[] {
  return readLines(path, rootFd).filter((f) => f.length >= 6).map((f) => ({
    name: f[0],
    uid: Number(f[2]),
    gid: Number(f[3]),
    home: f[5],
  }));
}

function groups(path: string, rootFd?: number): GroupEntry[] {
  return readLines(path, rootFd).filter((f) => f.length >= 3).map((f) => ({
    name: f[0],
    gid: Number(f[2]),
    members: (f[3] ?? "").split(",").filter(Boolean),
  }));
}

const isId = (s: string) => /^\d+$/.test(s);

export { MAX_ID };

/**
 * Resolves a -u value, plus --group-add groups (names or gids). Throws an Error with runc's wording
 * when a name is unknown. With `rootFd` the files are looked up in that root (RESOLVE_IN_ROOT).
 */
export function resolveUser(
  spec: string,
  groupAdd: string[] = [],
  passwdPath = "/etc/passwd",
  groupPath = "/etc/group",
  rootFd?: number,
): ExecUser {
  const [userPart, groupPart] = spec.includes(":")
    ? [spec.slice(0, spec.indexOf(":")), spec.slice(spec.indexOf(":") + 1)]
    : [spec, undefined];
  const users = passwd(passwdPath, rootFd);
  const userName = userPart || "0";
  const entry = isId(userName)
    ? users.find((u) => u.uid === Number(userName))
    : users.find((u) => u.name === userName);
  if (!entry && !isId(userName)) {
    throw new Error(`unable to find user ${userName}: no matching entries in passwd file`);
  }
  const uid = entry ? entry.uid : Number(userName);
  let gid = entry ? entry.gid : 0;
  const allGroups = groups(groupPath, rootFd);
  if (groupPart !== undefined && groupPart !== "") {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = allGroups.find((g) => g.name === groupPart);
      if (!g) throw new Error(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  // an explicit group replaces the supplementary ones, as runc does
  const additionalGids = groupPart !== undefined || !entry
    ? []
    : allGroups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid);
  for (const extra of groupAdd) {
    let extraGid: number;
    if (isId(extra)) extraGid = Number(extra);
    else {
      const g = allGroups.find((g) => g.name === extra);
      if (!g) throw new Error(`unable to find group ${extra}: no matching entries in group file`);
      extraGid = g.gid;
    }
    if (extraGid > MAX_ID) throw new Error(`uids and gids must be in range 0-${MAX_ID}`);
    if (!additionalGids.includes(extraGid)) additionalGids.push(extraGid);
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new Error(`uids and gids must be in range 0-4294967294`);
  return { uid, gid, additionalGids, home: entry?.home || "/" };
}
