// Makes a distributable layer blob (gzip tar) from an unpacked layer dir, for images whose original
// blob is not stored (imported ones). Deterministic: entries sorted by name, overlay whiteouts
// turned back into OCI `.wh.` markers, hard links as link entries.

import { join } from "../path.ts";
import { lgetxattr } from "../../ffi/libc.ts";
import { Sha256 } from "../image/digest.ts";
import type { ImageStore } from "../image/store.ts";
import { type TarWriteEntry, writeTar } from "../image/tar.ts";

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export interface GeneratedLayer {
  diffId: string;
  digest: string;
  size: number;
}

function* walk(dir: string, rel: string, links: Map<string, string>): Generator<TarWriteEntry> {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  for (const name of names) {
    const abs = join(dir, name);
    const path = rel ? `${rel}/${name}` : name;
    const st = Deno.lstatSync(abs);
    const mode = (st.mode ?? 0) & 0o7777;
    const base = {
      mode,
      uid: st.uid ?? 0,
      gid: st.gid ?? 0,
      mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000),
    };
    const type = (st.mode ?? 0) & S_IFMT;
    if (type === S_IFCHR && (st.rdev ?? 0) === 0) {
      // an overlay whiteout (0/0 char device) is an OCI `.wh.` marker in a distributed layer
      yield { ...base, name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: "file", mode: 0o644 };
      continue;
    }
    if (st.isDirectory) {
      yield { ...base, name: `${path}/`, type: "dir" };
      let opaque: Uint8Array | null = null;
      try {
        opaque = lgetxattr(abs, "trusted.overlay.opaque");
      } catch { /* no xattr support */ }
      if (opaque && new TextDecoder().decode(opaque) === "y") {
        yield { ...base, name: `${path}/.wh..wh..opq`, type: "file", mode: 0o644 };
      }
      yield* walk(abs, path, links);
      continue;
    }
    if (st.isSymlink) {
      yield { ...base, name: path, type: "symlink", linkname: Deno.readLinkSync(abs) };
      continue;
    }
    if (st.isFile && (st.nlink ?? 1) > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first) {
        yield { ...base, name: path, type: "link", linkname: first };
        continue;
      }
      links.set(key, path);
    }
    if (st.isFile) {
      yield { ...base, name: path, type: "file", data: Deno.readFileSync(abs) };
    } else if (type === S_IFCHR || type === S_IFBLK) {
      const rdev = st.rdev ?? 0;
      yield {
        ...base,
        name: path,
        type: type === S_IFCHR ? "char" : "block",
        devmajor: (rdev >> 8) & 0xfff,
        devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
      };
    } else if (type === S_IFIFO) {
      yield { ...base, name: path, type: "fifo" };
    }
  }
}

/** Tars and gzips `diffDir` into the store's blobs; returns the new diffID and blob digest. */
export async function generateLayerBlob(store: ImageStore, diffDir: string): Promise<GeneratedLayer> {
  const diffHash = new Sha256();
  async function* tarChunks(): AsyncGenerator<Uint8Array<ArrayBuffer>> {
    for (const entry of walk(diffDir, "", new Map())) {
      const bytes = writeTar([entry], { endMarker: false }) as Uint8Array<ArrayBuffer>;
      diffHash.update(bytes);
      yield bytes;
    }
    const end = new Uint8Array(1024);
    diffHash.update(end);
    yield end;
  }
  const { digest, size } = await storeGzipped(store, ReadableStream.from(tarChunks()));
  return { diffId: diffHash.digest(), digest, size };
}

/** Gzips a stored plain-tar blob into a new blob (same diffID); returns the new blob's digest and size. */
export async function gzipBlob(store: ImageStore, path: string): Promise<{ digest: string; size: number }> {
  return await storeGzipped(store, (await Deno.open(path)).readable);
}

/** Gzips a stream into a new blob of the store (written aside, renamed in by its digest). */
async function storeGzipped(
  store: ImageStore,
  plain: ReadableStream<Uint8Array<ArrayBuffer>>,
): Promise<{ digest: string; size: number }> {
  const tmp = store.makeTmpDir("blob");
  try {
    const blobPath = join(tmp, "blob");
    const file = Deno.openSync(blobPath, { write: true, create: true, mode: 0o644 });
    const blobHash = new Sha256();
    try {
      for await (const chunk of plain.pipeThrough(new CompressionStream("gzip"))) {
        blobHash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += file.writeSync(chunk.subarray(off));
      }
    } finally {
      file.close();
    }
    const digest = blobHash.digest();
    Deno.mkdirSync(store.root.blobs, { recursive: true });
    Deno.renameSync(blobPath, store.blobPath(digest));
    return { digest, size: blobHash.size };
  } finally {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* gone */ }
  }
}
