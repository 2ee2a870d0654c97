#!/usr/bin/env bash
# Lists what skiff may have left on this machine, one line per item: mounts that mention skiff,
# skiff cgroups (the parents included), processes of test roots, skiff network links (container veths;
# the default bridge too once it has no container), nft tables (skiff's own too), and NAT rules (nft table ip skiff,
# iptables chains SKIFF*) of containers or bridges that no longer exist.
# Prints nothing when the machine is clean. Used by test.sh; handy by hand after a failed run.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# mount points (field 5) and sources (after " - ") that mention skiff; the checkout itself may sit
# in a folder called skiff on a bind mount, so the repo and its ancestors do not count
awk -v repo="$repo" '{
  mp = $5; src = ""
  for (i = 7; i <= NF; i++) if ($i == "-") { src = $(i + 2); break }
  if ((mp ~ /skiff/ || src ~ /skiff/) && index(repo "/", mp "/") != 1) print "mount " mp " (" src ")"
}' /proc/self/mountinfo

# skiff's parent groups too: they go with the last container's group
for dir in /sys/fs/cgroup/*/skiff /sys/fs/cgroup/skiff; do
  [ -d "$dir" ] || continue
  echo "cgroup $dir"
  find "$dir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sed 's/^/cgroup /'
done

for proc in /proc/[0-9]*; do
  pid=${proc#/proc/}
  [ "$pid" = "$$" ] && continue
  cmd=$( { tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null) || continue
  case "$cmd" in
    *skiff-test-*) echo "process $pid: ${cmd:0:160}" ;;
    "")
      # a container's PID 1 before its execve: a fork of skiff's Deno that dropped all its memory
      # (lib/runtime/stage.ts), so it has no command line to show
      exe=$(readlink "$proc/exe" 2>/dev/null) || continue
      case "$exe" in */deno) echo "process $pid: a container's PID 1 left before its execve ($exe)" ;; esac
      ;;
  esac
done

# skiff's links: a container's veth (veth + 7 hex of its id + 4 random hex) outlives nothing of it, and the
# default bridge goes ~2 s after its last container (lib/network/gc.ts: waited for here, up to 10 s, while
# it has no port); any skiff* link left is a leak
for _ in $(seq 50); do
  [ -d /sys/class/net/skiff0 ] || break
  [ -z "$(ls /sys/class/net/skiff0/brif 2>/dev/null)" ] || break
  sleep 0.2
done
if command -v ip >/dev/null; then
  ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2)
    if ($2 ~ /^skiff/ || $2 ~ /^veth[0-9a-f]{11}$/) print "link " $2 }'
fi
# a rule's tag is skiff:<root key>:<container id>: a leak when no state root here has that container
container_exists() {
  local d
  for d in /var/lib/skiff/containers/"$1" ${SKIFF_ROOT:+"$SKIFF_ROOT"/containers/"$1"} /tmp/skiff-test-*/containers/"$1"; do
    [ -d "$d" ] && return 0
  done
  return 1
}
link_exists() { [ -e "/sys/class/net/$1" ]; }

if command -v nft >/dev/null; then
  # skiff's own table goes with its last bridge (lib/network/gc.ts); any skiff table left is a leak
  nft list tables 2>/dev/null | awk '$3 ~ /skiff/ { print "nft table " $2 " " $3 }'
  nft list chain ip skiff ports 2>/dev/null | grep -o 'comment "skiff:[0-9a-f]*:[0-9a-f]*"' | tr -d '"' |
    while read -r _ tag; do container_exists "${tag##*:}" || echo "nft rule of a removed container: $tag"; done
  nft -j list set ip skiff bridges 2>/dev/null | grep -o '"elem": \[[^]]*\]' | grep -o '"[^"]*"' | tr -d '"' |
    grep -v '^elem$' | while read -r br; do link_exists "$br" || echo "nft set element of a removed bridge: $br"; done
fi
if command -v iptables-save >/dev/null; then
  { iptables-save -t nat; iptables-save -t raw; } 2>/dev/null | grep -o -- '--comment "\?skiff[-:][^" ]*' | sed 's/.*--comment "\?//' | sort -u |
    while read -r tag; do
      case "$tag" in
        skiff-net:*) link_exists "${tag#skiff-net:}" || echo "iptables rules of a removed bridge: $tag" ;;
        skiff:*) container_exists "${tag##*:}" || echo "iptables rule of a removed container: $tag" ;;
      esac
    done
fi
exit 0
