# Sourced by the other scripts: repo paths and the project-local Deno on PATH.
# shellcheck shell=bash
SKIFF_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SKIFF_DENO_VERSION=2.9.6
SKIFF_DENO_DIR=$SKIFF_REPO/.deno
# install.sh links the pinned binary here; it goes first so a different system deno never wins
export PATH="$SKIFF_DENO_DIR/bin:$PATH"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
export SKIFF_REPO SKIFF_DENO_VERSION SKIFF_DENO_DIR

# Runs skiff from the compiled binary when it is present and newer than the sources, else from source.
skiff_cmd() {
  if [ -x "$SKIFF_REPO/skiff" ] && [ -z "$(find "$SKIFF_REPO/main.ts" "$SKIFF_REPO/lib" -newer "$SKIFF_REPO/skiff" -name '*.ts' -print -quit)" ]; then
    "$SKIFF_REPO/skiff" "$@"
  else
    deno run -A --v8-flags=--no-lazy "$SKIFF_REPO/main.ts" "$@"
  fi
}
