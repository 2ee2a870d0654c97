#!/bin/sh
# The issue's 6-step build bench: skiff build against docker's classic builder (DOCKER_BUILDKIT=0),
# paired and interleaved by farm-bench: a cold build (--no-cache), a rebuild with nothing changed,
# and a rebuild after the COPY source changed. Needs the peers (/tmp/peers/env.sh) for docker.
# Usage: sh bench/build.sh [RUNS]
set -eu
RUNS=${1:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. /tmp/peers/env.sh
W=/tmp/skiff-build-bench
rm -rf "$W"; mkdir -p "$W/root" "$W/skiff" "$W/docker"
SKIFF="$HERE/.deno/bin/deno run -A $HERE/main.ts --root $W/root"
$SKIFF import "$PEER_ROOTFS_TAR" localhost/bb:latest >/dev/null
for d in skiff docker; do
  head -c 5000000 /dev/urandom > "$W/$d/data.bin"
  cat > "$W/$d/Dockerfile" <<'DF'
FROM localhost/bb:latest
WORKDIR /app
COPY data.bin /app/
RUN sha256sum /app/data.bin > /app/sum
RUN seq 1 20000 > /app/lines && ls -la /app > /app/listing
CMD ["cat", "/app/sum"]
DF
done
# one byte of the COPY source changes before each build
change() { echo "sh -c 'head -c 8 /dev/urandom | dd of=$W/$1/data.bin conv=notrunc status=none && exec $2'"; }
DOCKER="env DOCKER_BUILDKIT=0 $PEER_DOCKER build -q"
echo "== cold (--no-cache)"
farm-bench -n "$RUNS" --timeout 900 --vs "$DOCKER --no-cache -t bench $W/docker" -- $SKIFF build -q --no-cache -t bench "$W/skiff"
echo "== nothing changed"
farm-bench -n "$RUNS" --timeout 900 --vs "$DOCKER -t bench $W/docker" -- $SKIFF build -q -t bench "$W/skiff"
echo "== the COPY source changed"
eval "farm-bench -n $RUNS --timeout 900 --vs \"$(change docker "$DOCKER -t bench $W/docker")\" -- $(change skiff "$SKIFF build -q -t bench $W/skiff")"
