#!/usr/bin/env bash
# skiff in one command: installs what is missing (scripts/install.sh), builds a tiny image from the
# host's static busybox, runs a container from it that shows its own hostname, processes and root,
# removes it, and leaves nothing behind (everything lives in a temp state root).
#
#   sudo bash scripts/demo.sh
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && exec sudo -E bash "$0" "$@"
  echo "demo.sh: run as root" >&2
  exit 1
fi
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$SKIFF_REPO/scripts/install.sh"

work=$(mktemp -d /tmp/skiff-demo-XXXXXX)
root=$work/root
skiff() { skiff_cmd --root "$root" "$@"; }
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s$ skiff %s%s\n' "$bold" "$*" "$plain"; }

cleanup() {
  local ids
  ids=$(ls "$root/containers" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || skiff rm -f $ids >/dev/null 2>&1 || true
  if grep -q " $work/" /proc/self/mountinfo; then
    echo "demo.sh: mounts left under $work; not deleting it:" >&2
    grep " $work/" /proc/self/mountinfo | awk '{ print "  " $5 }' >&2
    return 1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A root filesystem: static busybox and its applets, enough /etc for `ps` and a shell.
rootfs=$work/rootfs
busybox=$(command -v busybox)
mkdir -p "$rootfs"/{bin,etc,root,tmp,proc,sys,dev} "$root"
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
# what the container runs: a script, so `ps` shows a short command line
cat >"$rootfs/bin/show" <<'SCRIPT'
#!/bin/sh
echo "hostname: $(hostname)"
echo "--- ps: only the container's own processes"
ps
echo "--- ls /: its own root"
ls /
SCRIPT
chmod 755 "$rootfs/bin/show"
tar -C "$rootfs" -cf "$work/demo.tar" .

echo "host: $(hostname), $(ps -e --no-headers | wc -l) processes, state root $root"
step import demo.tar demo:latest
skiff import "$work/demo.tar" demo:latest
step images
skiff images
step run --name skiff-demo demo:latest show
skiff run --name skiff-demo demo:latest show
step ps -a
skiff ps -a
step rm skiff-demo
skiff rm skiff-demo
echo
echo "demo.sh: done; removing $work"
