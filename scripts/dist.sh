#!/usr/bin/env bash
# Builds dist/skiff-linux-x86_64 and dist/skiff-linux-aarch64: one executable file each that carries
# the pinned Deno runtime (from npm's @deno/linux-*-glibc packages, as scripts/install.sh gets Deno),
# skiff's code and its npm dependencies (zod, @balena/dockerignore) in Deno's npm cache layout.
#
#   bash scripts/dist.sh            both files
#   bash scripts/dist.sh x86_64     one of them (x86_64 | aarch64)
#
# Each file is [launcher][payload][trailer] (scripts/dist/launcher.c says what the launcher does): the
# payload is an uncompressed ustar archive of `deno` (first), `start` (the command line), `skiff/` and
# `deno-dir/`, built the same way every time (sorted, mtime 0, owner 0), so the same sources give the
# same file and cache key.
# Needs deno (scripts/install.sh), npm (only for an architecture whose Deno is not installed here; the npm
# registry only when Deno's cache lacks skiff's npm dependencies), GNU tar, sha256sum and base64.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SKIFF_REPO"

say() { echo "dist.sh: $*" >&2; }
die() { echo "dist.sh: $*" >&2; exit 1; }

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 aarch64)
for arch in "${arches[@]}"; do
  case "$arch" in x86_64 | aarch64) ;; *) die "unknown architecture: $arch (x86_64 or aarch64)" ;; esac
done
command -v deno >/dev/null || die "deno is needed to build (bash scripts/install.sh)"

build=dist/.build
mkdir -p "$build"
# this build's own files: builds running at once (two test runs) do not meet
work=$(mktemp -d "$build/work.XXXXXX")
trap 'rm -rf "$work"' EXIT # a failed build leaves no copy of the sources for deno lint/fmt to find

npm_package() { # arch -> the npm package that carries Deno for it
  case "$1" in x86_64) echo "@deno/linux-x64-glibc" ;; aarch64) echo "@deno/linux-arm64-glibc" ;; esac
}

# The pinned Deno binary for an architecture: the one install.sh installed when it matches, else the
# npm package's tarball (npm pack: no install, so no os/cpu check against this machine).
runtime() { # arch -> path of its deno binary
  local arch=$1 pkg local_bin dir tgz
  pkg=$(npm_package "$arch")
  local_bin=$SKIFF_DENO_DIR/node_modules/$pkg/deno
  if [ -f "$local_bin" ] && [ "$(uname -m)" = "$arch" ] &&
    "$local_bin" --version 2>/dev/null | grep -q "^deno $SKIFF_DENO_VERSION "; then
    echo "$local_bin"
    return
  fi
  dir=$build/runtime-$arch-$SKIFF_DENO_VERSION # kept for the next build
  if [ ! -f "$dir/package/deno" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch $pkg@$SKIFF_DENO_VERSION"
    say "fetching $pkg@$SKIFF_DENO_VERSION (npm pack)"
    local fetch=$work/runtime-$arch
    mkdir -p "$fetch"
    tgz=$(cd "$fetch" && npm pack --silent --loglevel=error "$pkg@$SKIFF_DENO_VERSION" | tail -1)
    tar -C "$fetch" -xzf "$fetch/$tgz" package/deno
    rm -f "$fetch/$tgz"
    mv -T "$fetch" "$dir" 2>/dev/null || { echo "$fetch/package/deno"; return; } # another build's won
  fi
  echo "$dir/package/deno"
}

# skiff's code and a Deno cache that holds only its npm dependencies (the same for both architectures)
stage=$work/stage
mkdir -p "$stage/skiff"
cp -r main.ts deno.json deno.lock lib ffi "$stage/skiff/"
# seeded from this machine's Deno cache (install.sh filled it), so that deno install needs no network
npm_cache=$(deno info --json 2>/dev/null | sed -n 's/^ *"npmCache": "\(.*\)",$/\1/p')
for pkg in zod @balena/dockerignore; do
  if [ -n "$npm_cache" ] && [ -f "$npm_cache/registry.npmjs.org/$pkg/registry.json" ]; then
    mkdir -p "$(dirname "$stage/deno-dir/npm/registry.npmjs.org/$pkg")"
    cp -r "$npm_cache/registry.npmjs.org/$pkg" "$stage/deno-dir/npm/registry.npmjs.org/$pkg"
  fi
done
(cd "$stage/skiff" && DENO_DIR="$SKIFF_REPO/$stage/deno-dir" deno install --quiet --frozen >/dev/null) ||
  die "deno install of skiff's npm dependencies failed"
find "$stage/deno-dir" -mindepth 1 -maxdepth 1 ! -name npm -exec rm -rf {} +
[ -d "$stage/deno-dir/npm/registry.npmjs.org/zod" ] || die "the staged Deno cache has no zod"
# How the launcher starts skiff (the one place that says it): one argument a line, "./x" is the
# unpacked directory's x; the caller's arguments follow, DENO_DIR is the directory's deno-dir.
# --cached-only: the server is offline, the npm dependencies are in deno-dir already.
printf '%s\n' ./deno run -A --cached-only --config ./skiff/deno.json ./skiff/main.ts >"$stage/start"

u64le() { # value -> 8 bytes, little-endian
  local v=$1 i out=""
  for i in 0 1 2 3 4 5 6 7; do
    out+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255)))
  done
  printf "$out"
}

for arch in "${arches[@]}"; do
  deno_bin=$(runtime "$arch")
  rm -f "$stage/deno"
  cp "$deno_bin" "$stage/deno"
  chmod 755 "$stage/deno"
  payload=$work/payload-$arch.tar
  tar --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$stage" -cf "$payload" deno start skiff deno-dir
  launcher=$work/launcher-$arch
  base64 -d "scripts/dist/launcher-$arch.b64" >"$launcher"
  sha=$(sha256sum "$payload" | cut -d' ' -f1)
  out=dist/skiff-linux-$arch
  {
    cat "$launcher" "$payload"
    printf 'skiff-dist-v1\0\0\0'
    u64le "$(stat -c %s "$launcher")"
    u64le "$(stat -c %s "$payload")"
    u64le "$(stat -c %s "$stage/deno")"
    u64le 0
    printf "$(echo "$sha" | sed 's/../\\x&/g')"
  } >"$work/out"
  chmod 755 "$work/out"
  mv -f "$work/out" "$out"
  rm -f "$payload" "$launcher"
  say "wrote $out ($(stat -c %s "$out") bytes, key ${sha:0:24})"
done
