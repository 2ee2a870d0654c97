// docker's -u and --group-add: "name", "uid", "name:group", "uid:gid", looked up in the container's
// /etc/passwd and /etc/group. execUserOf is the pure part: runc's GetExecUser and GetAdditionalGroups
// (libcontainer/user, as vendored by docker 20.10.24) plus dockerd's getUser, which puts the primary
// gid first among the supplementary groups (the CVE-2022-36109 fix). readUserFiles reads the two files
// through a root directory fd. Sync only: it runs in the init stage and in exec.

import { fstatfsType, O, read } from "../../ffi/libc.ts";
import { closeFd, fstat, reopenPinned, tryOpenInRoot } from "../fs/at.ts";
import { MAX_ID } from "./spec.ts";

export interface ExecUser {
  uid: number;
  gid: number;
  /** setgroups(2): the primary gid, the user's groups in /etc/group, then --group-add (no repeats). */
  additionalGids: number[];
  /** HOME when the environment has none: the first passwd entry of the final uid, else "/". */
  home: string;
}

/**
 * The image's files as read; null: absent (or not a regular file), as runc treats a failed open; an
 * Error: unreadable (too large), reported when the lookup needs the file, as runc's read errors are.
 */
export type UserFile = Uint8Array | Error | null;
export interface UserFiles {
  passwd: UserFile;
  group: UserFile;
}

/**
 * Longest /etc/passwd line (bytes, without its newline) that runc's bufio.Scanner takes: docker
 * fails a 70 KB line. /etc/group lines have no limit in runc 1.1.5 (docker 20.10.24 ran with a
 * 1.4 MB one; moby/sys/user since stops at 1 MiB): only MAX_USER_FILE bounds them here.
 */
export const MAX_PASSWD_LINE = 64 * 1024 - 1;
/**
 * Neither runc nor docker caps the whole file; skiff reads at most this much, so a file that a
 * container filled with newlines costs a bounded time. Beyond it the lookup fails.
 */
export const MAX_USER_FILE = 16 * 1024 * 1024;

const RANGE_ERROR = `uids and gids must be in range 0-${MAX_ID}`;
const TOO_LONG = "bufio.Scanner: token too long";

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

/** Go's strconv.Atoi with the error dropped (runc's parseParts): not a number → 0, beyond int64 → clamped. */
function atoi(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) return 0;
  const n = BigInt(s);
  const max = 2n ** 63n - 1n;
  return Number(n > max ? max : n < -max - 1n ? -max - 1n : n);
}

/** runc's parseNumeric: a name (undefined), an id in 0..MAX_ID, or the range error. */
function numericArg(s: string): number | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = BigInt(s);
  if (n < 0n || n > BigInt(MAX_ID)) throw new Error(RANGE_ERROR);
  return Number(n);
}

// Go's bytes.TrimSpace: ASCII space, NEL, NBSP and Unicode's Z categories (JS trim() differs: BOM, NEL)
const TRIM = /^[\t\n\v\f\r \u0085\u00a0\p{Z}]+|[\t\n\v\f\r \u0085\u00a0\p{Z}]+$/gu;

/** The file's lines as runc's scanner yields them, trimmed; throws its error on a line too long. */
function* lines(data: Uint8Array | Error, maxLine: number, skipComments: boolean): Generator<string[]> {
  if (data instanceof Error) throw data;
  const decoder = new TextDecoder();
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0x0a, start);
    if (end === -1) end = data.length;
    if (end - start > maxLine) throw new Error(TOO_LONG);
    const line = decoder.decode(data.subarray(start, end)).replace(TRIM, "");
    start = end + 1;
    if (line === "" || (skipComments && line.startsWith("#"))) continue;
    yield line.split(":");
  }
}

/** runc's ParsePasswdFilter: blank lines skipped, "#" lines are entries too; short lines fill what they have. */
function passwdEntries(data: Uint8Array | Error, keep: (u: PasswdEntry) => boolean): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of lines(data, MAX_PASSWD_LINE, false)) {
    const u = { name: f[0], uid: atoi(f[2] ?? ""), gid: atoi(f[3] ?? ""), home: f[5] ?? "" };
    if (keep(u)) out.push(u);
  }
  return out;
}

/** runc's ParseGroupFilter: blank and "#" lines skipped; members split on "," untrimmed. */
function groupEntries(data: Uint8Array | Error, keep: (g: GroupEntry) => boolean): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of lines(data, Infinity, true)) {
    const g = { name: f[0], gid: atoi(f[2] ?? ""), members: f[3] ? f[3].split(",") : [] };
    if (keep(g)) out.push(g);
  }
  return out;
}

function inRange(id: number): number {
  if (id < 0 || id > MAX_ID) throw new Error(RANGE_ERROR); // a passwd/group entry: never wrap to root
  return id;
}

/** The reason a file could not be parsed, with runc's wording. */
function parseFailure(e: unknown): string {
  return (e as Error).message;
}

/**
 * docker's getUser: -u (runc's GetExecUser with no defaults) and --group-add (GetAdditionalGroups).
 * Throws an Error with docker's wording. Pure: the files' bytes come in.
 */
export function execUserOf(spec: string, groupAdd: string[], files: UserFiles): ExecUser {
  const colon = spec.indexOf(":");
  const userPart = colon === -1 ? spec : spec.slice(0, colon);
  const groupPart = colon === -1 ? "" : spec.slice(colon + 1).split(":")[0];
  const userId = numericArg(userPart);
  const groupId = numericArg(groupPart);

  let uid = 0, gid = 0;
  let matchedName = "";
  let users: PasswdEntry[] = [];
  if (files.passwd) {
    try {
      users = passwdEntries(
        files.passwd,
        (u) => userPart === "" ? u.uid === 0 : userId !== undefined ? u.uid === userId : u.name === userPart,
      );
    } catch (e) {
      throw new Error(`unable to find user ${userPart === "" ? "0" : userPart}: ${parseFailure(e)}`);
    }
  }
  if (users.length > 0) {
    matchedName = users[0].name;
    uid = inRange(users[0].uid);
    gid = inRange(users[0].gid);
  } else if (userPart !== "") {
    if (userId === undefined) {
      throw new Error(`unable to find user ${userPart}: no matching entries in passwd file`);
    }
    uid = userId;
  }

  let sgids: number[] = [];
  if (groupPart !== "" || matchedName !== "") {
    let groups: GroupEntry[] = [];
    if (files.group) {
      try {
        groups = groupEntries(
          files.group,
          (g) =>
            groupPart === ""
              ? g.members.includes(matchedName)
              : groupId !== undefined
              ? g.gid === groupId
              : g.name === groupPart,
        );
      } catch (e) {
        throw new Error(`unable to find groups for spec ${matchedName}: ${parseFailure(e)}`);
      }
    }
    if (groupPart !== "") {
      if (groups.length > 0) gid = inRange(groups[0].gid);
      else if (groupId !== undefined) gid = groupId;
      else throw new Error(`unable to find group ${groupPart}: no matching entries in group file`);
    } else sgids = groups.map((g) => inRange(g.gid));
  }

  const added = additionalGroups(groupAdd, files.group);
  const additionalGids = [...new Set([gid, ...sgids, ...added])];

  // runc looks the final uid up again for HOME: the first entry with that uid, whatever the name
  let home = "/";
  if (files.passwd) {
    const entry = passwdEntries(files.passwd, (u) => u.uid === uid)[0];
    if (entry) home = entry.home;
  }
  return { uid, gid, additionalGids, home };
}

/**
 * runc's GetAdditionalGroups: each name or gid's first group in the file, a number not in it as is.
 * (runc 1.1.5 refused a group named twice, "--group-add staff --group-add staff"; moby/sys/user
 * since takes it, and so does skiff.)
 */
function additionalGroups(groupAdd: string[], group: UserFile): number[] {
  if (groupAdd.length === 0) return [];
  const wanted = groupAdd.map((name) => ({ name, gid: numericArg(name) }));
  const matches = (w: { name: string; gid?: number }, g: GroupEntry) =>
    g.name === w.name || (w.gid !== undefined && g.gid === w.gid);
  let groups: GroupEntry[] = [];
  if (group) {
    try {
      groups = groupEntries(group, (g) => wanted.some((w) => matches(w, g)));
    } catch (e) {
      throw new Error(`Unable to find additional groups [${groupAdd.join(" ")}]: ${parseFailure(e)}`);
    }
  }
  return wanted.map((w) => {
    const found = groups.find((g) => matches(w, g));
    if (found) return inRange(found.gid);
    if (w.gid === undefined) {
      throw new Error(`Unable to find group ${w.name}: no matching entries in group file`);
    }
    return w.gid;
  });
}

const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;

/**
 * `path` in the root `rootFd`, read by the regular file it names, or null. Resolved with
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (a symlink to a host path stays in the root, /proc/self/fd
 * links are refused), opened O_PATH and checked before any read: a FIFO or device is never opened,
 * and a file of /proc or /sys (the reader's environ, mountinfo, kmsg: skiff's, not the
 * container's) is not read. At most MAX_USER_FILE bytes: past that the lookup fails.
 */
function readInRoot(rootFd: number, path: string): UserFile {
  const pathFd = tryOpenInRoot(rootFd, path, O.PATH);
  if (pathFd < 0) return null;
  try {
    const st = fstat(pathFd);
    if (st.type !== "file") return null;
    const fs = fstatfsType(pathFd);
    if (fs === PROC_SUPER_MAGIC || fs === SYSFS_MAGIC) return null;
    const fd = reopenPinned(pathFd, path);
    try {
      // sized by fstat, grown if the file grew meanwhile; one byte more shows the end
      let buf = new Uint8Array(Math.min(st.size, MAX_USER_FILE) + 1);
      let length = 0;
      for (;;) {
        if (length === buf.length) {
          if (length > MAX_USER_FILE) return new Error(`${path} is larger than ${MAX_USER_FILE >> 20} MiB`);
          const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_USER_FILE + 1));
          bigger.set(buf);
          buf = bigger;
        }
        const n = read(fd, buf.subarray(length));
        if (n === 0) return buf.subarray(0, length);
        length += n;
      }
    } finally {
      closeFd(fd);
    }
  } finally {
    closeFd(pathFd);
  }
}

/** The container's /etc/passwd and /etc/group, through its root's directory fd. */
export function readUserFiles(rootFd: number): UserFiles {
  return { passwd: readInRoot(rootFd, "/etc/passwd"), group: readInRoot(rootFd, "/etc/group") };
}

/** -u and --group-add resolved in the root `rootFd`; throws with docker's wording. */
export function resolveUser(spec: string, groupAdd: string[], rootFd: number): ExecUser {
  return execUserOf(spec, groupAdd, readUserFiles(rootFd));
}

export { MAX_ID };
