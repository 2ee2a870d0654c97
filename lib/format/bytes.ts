// docker's byte sizes as flags and log options give them (go-units RAMInBytes): its own module,
// since every verb's flag parser loads it.

import { UsageError } from "../errors.ts";

/** Parses docker's byte sizes: 12, 12b, 512k, 64m, 1g (case-insensitive, base 1024). */
export function parseBytes(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?$/i.exec(value.trim());
  if (!m) throw new UsageError(`invalid argument "${value}" for "${flag}" flag: invalid size: '${value}'`);
  const unit = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[
    m[2].toLowerCase() as "" | "b" | "k" | "m" | "g" | "t" | "p"
  ];
  return Math.floor(Number(m[1]) * unit);
}
