#!/usr/bin/env bash
# Builds dist/skiff-linux-x86_64 and dist/skiff-linux-aarch64: one executable file each that carries
# the pinned Deno runtime (from npm's @deno/linux-*-glibc packages, as scripts/install.sh gets Deno),
# and skiff's code as its bundle (scripts/bundle.sh), which holds its npm dependencies (zod,
# @balena/dockerignore).
#
#   bash scripts/dist.sh            both files
#   bash scripts/dist.sh x86_64     one of them (x86_64 | aarch64)
#
# Each file is [launcher][payload][trailer] (scripts/dist/launcher.c says what the launcher does): the
# payload is an uncompressed ustar archive of `deno` (first), `start` (the command line), `skiff/` and
# `deno-dir/`, built the same way every time (sorted, mtime 0, owner 0), so the same sources give the
# same file and cache key.
# Needs deno (scripts/install.sh; its cache holds skiff's npm dependencies for the bundle), npm (only for
# an architecture whose Deno is not installed here), GNU tar, sha256sum and base64.
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

# skiff's code as its bundle (scripts/bundle.sh: a few JavaScript files that hold zod and
# @balena/dockerignore, the same for both architectures; exec ~20% less CPU than from the sources) and
# an empty Deno cache, which the first runs fill with the code cache of the unpacked directory
stage=$work/stage
mkdir -p "$stage/deno-dir"
bash scripts/bundle.sh "$stage/skiff" || die "scripts/bundle.sh failed"
[ -f "$stage/skiff/main.js" ] && [ -f "$stage/skiff/lib/image/file_worker.js" ] || die "the bundle has no entries"
# How the launcher starts skiff (the one place that says it): one argument a line, "./x" is the
# unpacked directory's x; the caller's arguments follow, DENO_DIR is the directory's deno-dir. The
# bundle's own options (scripts/bundle.sh): no config, lazy dynamic imports, V8's --no-lazy (skiff's
# re-executions take the same, lib/runtime/self.ts).
printf '%s\n' ./deno run -A --no-config --unstable-lazy-dynamic-imports --v8-flags=--no-lazy ./skiff/main.js \
  >"$stage/start"

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
