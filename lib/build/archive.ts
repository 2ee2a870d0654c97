// ADD's local archives: a tar, plain or compressed with gzip, bzip2 or xz (docker's set), is extracted
// into the destination; a compressed file that is not a tar is copied as it is, as docker does.
// gzip is the web DecompressionStream; bzip2 and xz go through the host's `bzip2 -d` and `xz -d`
// (docker itself runs `xz -d` for xz; neither Deno nor node:zlib has them, and an npm decoder would
// be a dependency for a rare ADD).

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

/** `cmd -d -c` of `data` through the host's program of that name. */
async function decompressWith(cmd: string, data: Uint8Array): Promise<Uint8Array> {
  let child;
  try {
    child = new Deno.Command(cmd, {
      args: ["-d", "-c", "-q"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch {
    throw new SkiffError(`ADD of a ${cmd} archive needs the ${cmd} program on this host`);
  }
  const writer = child.stdin.getWriter();
  const written = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => {});
  const out = await child.output();
  await written;
  if (!out.success) {
    throw new SkiffError(`${cmd}: ${new TextDecoder().decode(out.stderr).trim() || "decompression failed"}`);
  }
  return out.stdout;
}

/** `data` decompressed when it is gzip, bzip2 or xz; else as it is. */
export async function decompress(data: Uint8Array): Promise<Uint8Array> {
  return startsWith(data, GZIP)
    ? await gunzip(data)
    : startsWith(data, BZIP2)
    ? await decompressWith("bzip2", data)
    : startsWith(data, XZ)
    ? await decompressWith("xz", data)
    : data;
}

/**
 * The archive's entries, names cleaned (absolute names and `..` refused as for layers); undefined
 * when the (decompressed) data is not a tar: the file is then copied as it is.
 */
export async function extractArchive(data: Uint8Array): Promise<TarWriteEntry[] | undefined> {
  const tar = await decompress(data);
  if (!isTar(tar)) return undefined;
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
