#!/bin/sh
# The issue's 6-step build bench: `skiff build` next to docker's classic builder (DOCKER_BUILDKIT=0),
# docker's BuildKit (DOCKER_BUILDKIT=1, when the daemon has it) and `podman build`, in three cases:
# a cold build (--no-cache), a rebuild with nothing changed, and a rebuild after one byte of the COPY
# source changed (the change is made before the timed build). The engines run interleaved round by
# round (each round runs every engine once, in an order rotated every round), so load on a shared
# machine falls on all of them alike; each round's skiff/engine ratio is kept and their median shown.
# Wall time of the whole command, taken with date(1). Peers (docker, podman) come from the project's
# peers set-up (/tmp/peers/env.sh); absent ones are skipped.
# Usage: sh bench/build.sh [ROUNDS]
set -eu
ROUNDS=${1:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ -f /tmp/peers/env.sh ] && . /tmp/peers/env.sh
W=/tmp/skiff-build-bench
rm -rf "$W"
mkdir -p "$W/root"
SKIFF="$HERE/.deno/bin/deno run -A $HERE/main.ts --root $W/root"
$SKIFF import "$PEER_ROOTFS_TAR" localhost/bb:latest >/dev/null

# engine name and the build command (context dir and flags are appended)
ENGINES="skiff"
cmd_skiff="$SKIFF build -q"
if [ -n "${PEER_DOCKER:-}" ] && $PEER_DOCKER version >/dev/null 2>&1; then
  $PEER_DOCKER image inspect localhost/bb:latest >/dev/null 2>&1 ||
    $PEER_DOCKER import "$PEER_ROOTFS_TAR" localhost/bb:latest >/dev/null
  ENGINES="$ENGINES docker"
  cmd_docker="env DOCKER_BUILDKIT=0 $PEER_DOCKER build -q"
  mkdir -p "$W/probe" && printf 'FROM localhost/bb:latest\nRUN true\n' >"$W/probe/Dockerfile"
  if env DOCKER_BUILDKIT=1 $PEER_DOCKER build -q "$W/probe" >/dev/null 2>&1; then
    ENGINES="$ENGINES buildkit"
    cmd_buildkit="env DOCKER_BUILDKIT=1 $PEER_DOCKER build -q"
  else
    echo "BuildKit: not available from the docker peer, skipped" >&2
  fi
else
  echo "docker: no peer, skipped" >&2
fi
if command -v podman >/dev/null 2>&1 && podman version >/dev/null 2>&1; then
  podman image exists localhost/bb:latest || podman import -q "$PEER_ROOTFS_TAR" localhost/bb:latest >/dev/null
  ENGINES="$ENGINES podman"
  cmd_podman="podman build -q --layers"
else
  echo "podman: not configured, skipped" >&2
fi

for e in $ENGINES; do
  mkdir -p "$W/$e"
  head -c 5000000 /dev/urandom >"$W/$e/data.bin"
  cat >"$W/$e/Dockerfile" <<'DF'
FROM localhost/bb:latest
WORKDIR /app
COPY data.bin /app/
RUN sha256sum /app/data.bin > /app/sum
RUN seq 1 20000 > /app/lines && ls -la /app > /app/listing
CMD ["cat", "/app/sum"]
DF
done

now() { date +%s%N; }
# one timed build: ENGINE EXTRA-FLAGS; prints seconds
timed() {
  eval "c=\$cmd_$1"
  t0=$(now)
  $c $2 -t "skiff-build-bench-$1" "$W/$1" >/dev/null 2>"$W/$1.err" || {
    echo "$1 failed: $(cat "$W/$1.err")" >&2
    exit 1
  }
  echo "$(now) $t0" | awk '{ printf "%.4f\n", ($1 - $2) / 1e9 }'
}
change() { head -c 8 /dev/urandom | dd of="$W/$1/data.bin" conv=notrunc status=none; }

run_case() { # NAME FLAGS CHANGE(yes|no)
  name=$1 flags=$2 changes=$3
  : >"$W/times"
  n=$(echo $ENGINES | wc -w)
  for e in $ENGINES; do timed "$e" "$flags" >/dev/null || exit 1; done # warm-up: the state the case starts from
  r=0
  while [ $r -lt "$ROUNDS" ]; do
    i=0
    # rotate the order every round
    set -- $ENGINES
    k=$((r % n))
    while [ $k -gt 0 ]; do
      first=$1
      shift
      set -- "$@" "$first"
      k=$((k - 1))
    done
    for e in "$@"; do
      [ "$changes" = yes ] && change "$e"
      t=$(timed "$e" "$flags") || exit 1
      echo "$r $e $t" >>"$W/times"
    done
    r=$((r + 1))
  done
  echo "== $name ($ROUNDS rounds)"
  awk -v engines="$ENGINES" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { t[$1, $2] = $3; rounds[$1] = 1 }
    END {
      ne = split(engines, e, " ")
      for (k = 1; k <= ne; k++) {
        n = 0; m = 0
        for (r in rounds) { v[++n] = t[r, e[k]]; if (k > 1) q[++m] = t[r, "skiff"] / t[r, e[k]] }
        line = sprintf("%-9s median %.3f s", e[k], median(v, n))
        if (k > 1) line = line sprintf("   skiff/%s %.2f (median of the rounds'"'"' ratios)", e[k], median(q, m))
        print line
      }
    }' "$W/times"
}

echo "engines: $ENGINES; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
run_case "cold (--no-cache)" "--no-cache" no
run_case "nothing changed" "" no
run_case "the COPY source changed" "" yes
for e in $ENGINES; do
  case $e in
  skiff) ;;
  podman) podman rmi -f skiff-build-bench-podman >/dev/null 2>&1 || true ;;
  *) $PEER_DOCKER rmi -f "skiff-build-bench-$e" >/dev/null 2>&1 || true ;;
  esac
done
rm -rf "$W"
