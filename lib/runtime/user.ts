// docker's -u: "name", "uid", "name:group", "uid:gid", looked up in the container's /etc/passwd and
// /etc/group (read after pivot_root, so paths are the container's). Sync reads only: it runs in
// the init stage.

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

function readLines(path: string): string[][] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return []; // an image without the file: numeric ids still work
  }
  return text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
}

function passwd(path: string): PasswdEntry[] {
  return readLines(path).filter((f) => f.length >= 6).map((f) => ({
    name: f[0],
    uid: Number(f[2]),
    gid: Number(f[3]),
    home: f[5],
  }));
}

function groups(path: string): GroupEntry[] {
  return readLines(path).filter((f) => f.length >= 3).map((f) => ({
    name: f[0],
    gid: Number(f[2]),
    members: (f[3] ?? "").split(",").filter(Boolean),
  }));
}

const isId = (s: string) => /^\d+$/.test(s);

/** runc's largest uid or gid (libcontainer/user: 2^31 - 1). */
export const MAX_ID = 2 ** 31 - 1;

/**
 * Resolves a -u value, plus --group-add groups (names or gids). Throws an Error with runc's wording
 * when a name is unknown.
 */
export function resolveUser(
  spec: string,
  groupAdd: string[] = [],
  passwdPath = "/etc/passwd",
  groupPath = "/etc/group",
): ExecUser {
  const [userPart, groupPart] = spec.includes(":")
    ? [spec.slice(0, spec.indexOf(":")), spec.slice(spec.indexOf(":") + 1)]
    : [spec, undefined];
  const users = passwd(passwdPath);
  const userName = userPart || "0";
  const entry = isId(userName)
    ? users.find((u) => u.uid === Number(userName))
    : users.find((u) => u.name === userName);
  if (!entry && !isId(userName)) {
    throw new Error(`unable to find user ${userName}: no matching entries in passwd file`);
  }
  const uid = entry ? entry.uid : Number(userName);
  let gid = entry ? entry.gid : 0;
  const allGroups = groups(groupPath);
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
