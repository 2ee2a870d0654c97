// --blkio-weight-device and --device-read-bps/-write-bps/-read-iops/-write-iops: docker's CLI
// parsing (opts/throttledevice.go, opts/weightdevice.go) with its words, and the kernel's lines for
// them. Pure: the devices are looked up on the host when the container starts (limits.ts).

/** docker's blkiodev.ThrottleDevice as HostConfig keeps it: the host path as given, bytes or IOs per second. */
export interface ThrottleDevice {
  Path: string;
  Rate: number;
}

/** docker's blkiodev.WeightDevice: the host path as given, a weight of 10..1000 (0: none). */
export interface WeightDevice {
  Path: string;
  Weight: number;
}

/** The four throttle flags, by docker's HostConfig field, with the kind of limit each sets. */
export const THROTTLE_FLAGS = {
  BlkioDeviceReadBps: { flag: "device-read-bps", iops: false, kind: "readBps" },
  BlkioDeviceWriteBps: { flag: "device-write-bps", iops: false, kind: "writeBps" },
  BlkioDeviceReadIOps: { flag: "device-read-iops", iops: true, kind: "readIops" },
  BlkioDeviceWriteIOps: { flag: "device-write-iops", iops: true, kind: "writeIops" },
} as const;
export type ThrottleField = keyof typeof THROTTLE_FLAGS;
/** The HostConfig fields of the throttle flags, in docker's order. */
export const THROTTLE_FIELDS = Object.keys(THROTTLE_FLAGS) as ThrottleField[];

/**
 * go-units RAMInBytes (docker 20.10's CLI): a number with an optional fraction, one optional
 * space, a binary unit k/m/g/t/p with an optional "i" and "b". undefined when it does not parse.
 */
export function ramInBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!m || !/^\d+(\.\d+)?$/.test(m[1])) return undefined; // "1.2.3": ParseFloat refuses it
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[
    (m[2] ?? "").toLowerCase() as "" | "k" | "m" | "g" | "t" | "p"
  ];
  const bytes = Math.trunc(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** PATH:VALUE split at the first colon, with docker's two refusals of the path. */
function splitDevice(value: string): [string, string] {
  const colon = value.indexOf(":");
  if (colon === -1) throw new Error(`bad format: ${value}`);
  const path = value.slice(0, colon);
  if (!path.startsWith("/dev/")) throw new Error(`bad format for device path: ${value}`);
  return [path, value.slice(colon + 1)];
}

/**
 * One --device-read-bps/-write-bps (iops false: a size with docker's units) or -read-iops/-write-iops
 * (iops true: a plain unsigned integer) value. Throws an Error with docker's words (the caller adds
 * `invalid argument "..." for "--flag" flag: `).
 */
export function parseThrottleDevice(value: string, iops: boolean): ThrottleDevice {
  const [path, rateText] = splitDevice(value);
  const rate = iops ? (/^\d+$/.test(rateText) ? Number(rateText) : undefined) : ramInBytes(rateText);
  if (rate === undefined || !Number.isSafeInteger(rate)) {
    throw new Error(
      iops
        ? `invalid rate for device: ${value}. The correct format is <device-path>:<number>. Number must be a positive integer`
        : `invalid rate for device: ${value}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb`,
    );
  }
  return { Path: path, Rate: rate };
}

/** One --blkio-weight-device value: 10..1000, or 0 (docker takes it and applies nothing). */
export function parseWeightDevice(value: string): WeightDevice {
  const [path, weightText] = splitDevice(value);
  const weight = /^\d+$/.test(weightText) ? Number(weightText) : NaN;
  if (!Number.isSafeInteger(weight) || (weight > 0 && (weight < 10 || weight > 1000))) {
    throw new Error(`invalid weight for device: ${value}`);
  }
  return { Path: path, Weight: weight };
}

/** The throttle kinds of CgroupLimits, with their v1 file and v2 io.max key. */
export const THROTTLE_KINDS = {
  readBps: { v1File: "blkio.throttle.read_bps_device", ioMaxKey: "rbps" },
  writeBps: { v1File: "blkio.throttle.write_bps_device", ioMaxKey: "wbps" },
  readIops: { v1File: "blkio.throttle.read_iops_device", ioMaxKey: "riops" },
  writeIops: { v1File: "blkio.throttle.write_iops_device", ioMaxKey: "wiops" },
} as const;
export type ThrottleKind = keyof typeof THROTTLE_KINDS;

/**
 * The v2 io.max lines of the throttles, one per device: "MAJ:MIN rbps=N wbps=N riops=N wiops=N".
 * A rate of 0 is "max": on v1 it lifts the device's limit, and io.max refuses 0 (EINVAL).
 */
export function ioMaxLines(entries: readonly [ThrottleKind, string, number][]): string[] {
  const perDevice = new Map<string, string[]>();
  for (const [kind, device, rate] of entries) {
    const setting = `${THROTTLE_KINDS[kind].ioMaxKey}=${rate === 0 ? "max" : rate}`;
    perDevice.set(device, [...perDevice.get(device) ?? [], setting]);
  }
  return [...perDevice].map(([device, settings]) => `${device} ${settings.join(" ")}`);
}
