#!/usr/bin/env bash
# Regenerates the committed launcher bytes of the dist files (scripts/dist/launcher-<arch>.b64) from
# scripts/dist/launcher.c, for x86-64 and arm64. Needs gcc and gcc-aarch64-linux-gnu (Debian 12:
# apt-get install gcc gcc-aarch64-linux-gnu); scripts/dist.sh only decodes the committed bytes, so a
# machine without a compiler builds the dist files too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
build() { # arch compiler-prefix
  local arch=$1 cc=$2
  "${cc}gcc" -O2 -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie -fno-builtin \
    -fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables -Wall -Wextra -Wno-unused-parameter \
    -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -s -o "$tmp/$arch" "$here/launcher.c"
  if "${cc}nm" -D "$tmp/$arch" 2>/dev/null | grep -q .; then
    echo "the $arch launcher is not static" >&2
    exit 1
  fi
  base64 -w 76 "$tmp/$arch" >"$here/launcher-$arch.b64"
  echo "wrote scripts/dist/launcher-$arch.b64 ($(wc -c <"$tmp/$arch") bytes)"
}
build x86_64 ""
build aarch64 aarch64-linux-gnu-
