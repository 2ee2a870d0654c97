// Media types, size limits and platforms: the light half of manifest.ts (no zod), for the paths
// that must start fast (a pull of an image that is already present, argument checks).

import { SkiffError } from "../errors.ts";

export const MEDIA = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
} as const;

/** What we send in Accept: both single-image and multi-platform forms. */
export const MANIFEST_ACCEPT = [
  MEDIA.dockerManifest,
  MEDIA.dockerManifestList,
  MEDIA.ociManifest,
  MEDIA.ociIndex,
].join(", ");

/** docker's limit for a manifest body, also used for configs (a config is metadata, not data). */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;
export const CONFIG_SIZE_LIMIT = 8 * 1024 * 1024;

export interface PlainDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const GO_ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64", arm: "arm", s390x: "s390x" };

export function hostPlatform(): Platform {
  const architecture = GO_ARCH[Deno.build.arch] ?? Deno.build.arch;
  return { os: "linux", architecture, ...(architecture === "arm64" ? { variant: "v8" } : {}) };
}

const KNOWN_OS =
  "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 solaris windows zos"
    .split(" ");
const KNOWN_ARCH =
  "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm"
    .split(" ");
const ARCH_ALIAS: Record<string, string> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
};

/** Parses OS/ARCH[/VARIANT] like docker's --platform (also accepts just ARCH or OS). */
export function parsePlatform(value: string): Platform {
  const parts = value.toLowerCase().split("/");
  const bad = value.split("/").find((p) => !/^[A-Za-z0-9_-]+$/.test(p));
  if (bad !== undefined) {
    throw new SkiffError(
      `"${bad}" is an invalid component of "${value}": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`,
    );
  }
  if (parts.length > 3) throw new SkiffError(`"${value}": cannot parse platform specifier: invalid argument`);
  let [os, architecture, variant] = parts;
  if (parts.length === 1) {
    // containerd's rule: one word is an OS it knows, else an architecture it knows
    if (KNOWN_OS.includes(os)) architecture = hostPlatform().architecture;
    else if (KNOWN_ARCH.includes(ARCH_ALIAS[os] ?? os)) {
      architecture = os;
      os = "linux";
    } else throw new SkiffError(`"${value}": unknown operating system or architecture: invalid argument`);
  }
  architecture = ARCH_ALIAS[architecture] ?? architecture;
  if (architecture === "arm64" && !variant) variant = "v8";
  if (architecture === "arm" && !variant) variant = "v7";
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * Whether an image's config is of the platform asked for (run/create --platform): the same OS and
 * architecture, and the variant when both name one (arm64's default v8 counts as named).
 */
export function platformMatches(
  wanted: Platform,
  image: { os?: string; architecture?: string; variant?: string },
): boolean {
  const variant = image.variant ?? (image.architecture === "arm64" ? "v8" : undefined);
  return (image.os ?? "linux") === wanted.os && image.architecture === wanted.architecture &&
    (!wanted.variant || !variant || wanted.variant === variant);
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Picks the index entry for a platform, as containerd's matcher does (arm64's v8 is optional). */
export function selectPlatform<D extends PlainDescriptor>(
  index: { manifests: D[] },
  want: Platform,
): D | undefined {
  const candidates = index.manifests.filter((m) =>
    m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture &&
    (m.mediaType === MEDIA.dockerManifest || m.mediaType === MEDIA.ociManifest)
  );
  const variantOf = (m: D) => {
    const v = m.platform?.variant;
    if (!v && want.architecture === "arm64") return "v8";
    return v;
  };
  return candidates.find((m) => variantOf(m) === want.variant) ??
    (want.variant === undefined ? candidates[0] : undefined) ??
    candidates.find((m) => variantOf(m) === undefined);
}
