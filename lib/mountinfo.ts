// The one reader of /proc/<pid>/mountinfo (proc(5)): cgroup hierarchies, exec's cgroup mounts and
// the mounts left below a removed container's directory all read it through here. Pure parsing
// apart from the read, so the parser is unit-tested on text.

export interface MountInfo {
  mountId: number;
  parentId: number;
  /** "major:minor" of the filesystem's device */
  device: string;
  /** the directory of the filesystem that is mounted here ("/" for its root) */
  root: string;
  mountPoint: string;
  mountOptions: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Undoes the kernel's octal escapes (space \040, tab \011, newline \012, backslash \134). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses mountinfo text; malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const fields = line.slice(0, dash).split(" ");
    const [fsType, source = "", superOptions = ""] = line.slice(dash + 3).split(" ");
    if (fields.length < 6 || !fsType) continue;
    out.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2],
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      mountOptions: fields[5],
      fsType,
      source: unescape(source),
      superOptions,
    });
  }
  return out;
}

/** The mounts of this process's mount namespace. */
export function readMountInfo(path = "/proc/self/mountinfo"): MountInfo[] {
  return parseMountInfo(Deno.readTextFileSync(path));
}
