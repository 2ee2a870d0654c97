// ADD's local archives: a tar, plain or gzip-compressed, is extracted into the destination (docker
// extracts identity, gzip, bzip2 and xz; bzip2 and xz are refused here with a clear message).

import { SkiffError } from "../errors.ts";
import { TarReader, type TarWriteEntry } from "../image/tar.ts";
import { cleanEntryPath } from "../image/unpack.ts";

const startsWith = (data: Uint8Array, magic: number[]) => magic.every((b, i) => data[i] === b);
const GZIP = [0x1f, 0x8b];
const BZIP2 = [0x42, 0x5a, 0x68];
const XZ = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

const isTar = (data: Uint8Array) =>
  data.length >= 512 && new TextDecoder().decode(data.subarray(257, 262)) === "ustar";

/** True for what docker's ADD would extract. */
export function isArchive(data: Uint8Array): boolean {
  return startsWith(data, GZIP) || startsWith(data, BZIP2) || startsWith(data, XZ) || isTar(data);
}

async function gunzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The archive's entries, names cleaned (absolute names and `..` refused as for layers). */
export async function extractArchive(data: Uint8Array): Promise<TarWriteEntry[]> {
  if (startsWith(data, BZIP2) || startsWith(data, XZ)) {
    throw new SkiffError("ADD of bzip2 and xz archives is not supported yet; use a tar or tar.gz archive");
  }
  const tar = startsWith(data, GZIP) ? await gunzip(data) : data;
  if (!isTar(tar)) throw new SkiffError("ADD: the gzip file is not a tar archive");
  const out: TarWriteEntry[] = [];
  const reader = new TarReader((e) => {
    const name = cleanEntryPath(e.name);
    if (name === "") return undefined;
    const chunks: Uint8Array[] = [];
    const entry: TarWriteEntry = {
      name,
      type: e.type === "unsupported" ? "file" : e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: Math.trunc(e.mtime),
      linkname: e.type === "link" ? cleanEntryPath(e.linkname) : e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
    };
    if (e.type === "unsupported") return undefined;
    out.push(entry);
    return {
      data: (c) => chunks.push(c.slice()),
      end: () => {
        if (e.type === "file") {
          const total = chunks.reduce((n, c) => n + c.length, 0);
          const buf = new Uint8Array(total);
          let off = 0;
          for (const c of chunks) {
            buf.set(c, off);
            off += c.length;
          }
          entry.data = buf;
        }
      },
    };
  });
  reader.push(tar);
  reader.finish();
  return out;
}
