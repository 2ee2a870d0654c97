#!/usr/bin/env bash
# skiff as a handful of JavaScript files (`deno bundle`), for a distribution whose sources do not
# change after it is unpacked: `scripts/bundle.sh [OUTDIR]` (default .bundle/ of the checkout), then
#
#   deno run -A --no-config --unstable-lazy-dynamic-imports --v8-flags=--no-lazy OUTDIR/main.js COMMAND ...
#
# Deno loads a module for ~0.1 ms plus its size; `exec` loads ~35 of skiff's modules, which the bundle
# makes a few files (exec ~9% less CPU than from source). --v8-flags=--no-lazy as scripts/skiff
# (lib/runtime/self.ts START_V8_FLAGS: Deno's code cache then holds every function). skiff's
# re-executions (self.ts) and its file workers run the bundle's own entries, with the V8 flags skiff
# was started with, when skiff runs from one. A source checkout keeps running main.ts: a bundle is
# not rebuilt when a source changes. The bundle holds its npm packages (zod, @balena/dockerignore): it
# runs with an empty DENO_DIR, on a server that has no npm cache.
#
# Two things made the lead's first try (52 ms for `version`, 22 from source) slower than the sources:
# - esbuild's CommonJS shim (for the one CommonJS package, @balena/dockerignore) imports node:module
#   at the top of a chunk every entry loads: that starts Deno's Node compatibility (~15-20 ms) at
#   every start. It is replaced here by a require that loads the built-in only when called.
# - `--no-config` also drops deno.json's `unstable: lazy-dynamic-imports`: Deno then reads and
#   compiles every chunk the verb table could import (zod included) before running a line.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/env.sh"
out=$(realpath -m "${1:-$SKIFF_REPO/.bundle}")
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.bundle-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$SKIFF_REPO"
# the entries keep their paths below the checkout: main.js and lib/image/file_worker.js; the chunks
# they share sit next to main.js
deno bundle --quiet --platform deno --code-splitting --outdir "$tmp" \
  main.ts lib/image/file_worker.ts
sed -i \
  -e '/^import { createRequire as __deno_internal_createRequire } from "node:module";$/d' \
  -e 's/^var __require = __deno_internal_createRequire(import.meta.url);$/var __require = (m) => process.getBuiltinModule(m);/' \
  "$tmp"/*.js
if grep -l 'node:module' "$tmp"/*.js "$tmp"/lib/*/*.js >&2; then
  echo "bundle.sh: a chunk still imports node:module (esbuild's shim changed?)" >&2
  exit 1
fi
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
