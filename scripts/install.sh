#!/usr/bin/env bash
# Installs what skiff needs on a fresh Debian 12 machine that has node and npm, as root. Idempotent:
# a second run changes nothing and reaches no network when everything is already there.
#
#   bash scripts/install.sh          Deno 2.9.6 (project-local, from npm), busybox-static, nftables
#                                    (the bridge network's NAT), npm deps
#   bash scripts/install.sh --test   also the packages the test suite uses
#
# Networks used: the Debian archive (apt) and the npm registry, nothing else.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DEBIAN_FRONTEND=noninteractive

with_test=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test=1 ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (skiff needs root, and apt-get does too)"
[ "$(uname -s)" = Linux ] || die "skiff runs on Linux only"

# --- Deno, pinned, from the npm package (it ships the binary; nothing else is downloaded) -------
deno_platform_package() {
  case "$(uname -m)" in
    x86_64) echo "@deno/linux-x64-glibc" ;;
    aarch64 | arm64) echo "@deno/linux-arm64-glibc" ;;
    *) die "no Deno build for $(uname -m)" ;;
  esac
}

install_deno() {
  local link=$SKIFF_DENO_DIR/bin/deno
  if [ -x "$link" ] && "$link" --version 2>/dev/null | grep -q "^deno $SKIFF_DENO_VERSION "; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to install Deno (apt-get install npm)"
  say "installing Deno $SKIFF_DENO_VERSION into $SKIFF_DENO_DIR (npm)"
  mkdir -p "$SKIFF_DENO_DIR/bin"
  # --ignore-scripts: npm may block postinstall scripts anyway; the binary is in the platform package
  npm install --prefix "$SKIFF_DENO_DIR" --no-audit --no-fund --loglevel=error --ignore-scripts \
    "deno@$SKIFF_DENO_VERSION" >/dev/null
  local bin
  bin=$SKIFF_DENO_DIR/node_modules/$(deno_platform_package)/deno
  [ -f "$bin" ] || die "the npm package did not bring $bin"
  chmod 755 "$bin"
  ln -sfn "$bin" "$link"
  "$link" --version | grep -q "^deno $SKIFF_DENO_VERSION " || die "$link is not Deno $SKIFF_DENO_VERSION"
  # a system-wide `deno` for users' shells, but never replace one that is already there
  if ! command -v deno >/dev/null 2>&1 || [ "$(command -v deno)" = "$link" ]; then
    [ -e /usr/local/bin/deno ] || ln -s "$link" /usr/local/bin/deno
  fi
}

# --- Debian packages ------------------------------------------------------------------------------
missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

apt_updated=0
apt_install() {
  local missing
  missing=$(missing_packages "$@")
  [ -n "$missing" ] || return 0
  say "apt-get install ${missing//$'\n'/ }"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# nftables: every run on the default bridge needs kernel NAT (the way out, published ports); skiff
# uses `nft`, or `iptables` where only that is installed, and without either only --network none|host
apt_install busybox-static ca-certificates nftables
if [ "$with_test" = 1 ]; then
  # apache2-utils: htpasswd for the Basic-auth registry; openssl: the token server key and TLS certs
  # iptables: the NAT tests run both executors; iproute2: the tests' own namespaces and links
  apt_install skopeo docker-registry nftables iptables iproute2 util-linux procps tar gzip curl apache2-utils openssl
  # gcc + libc6-dev: the security tests compile their attack programs statically
  apt_install gcc libc6-dev
  # libcap2-bin: setcap/getcap, the file-capability tests (build layers, volumes)
  apt_install libcap2-bin
  # exec's program interpreter on arm64, run under qemu-user (tests/exec_program_test.ts; ~15 s here)
  apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
  # hyperfine only makes the benchmark nicer; the bench has a built-in loop without it
  apt_install hyperfine 2>/dev/null || say "hyperfine not available; bench/main.ts will use its own loop"
fi

install_deno

# --- npm dependencies of skiff itself (zod), cached in Deno's cache -------------------------------
(cd "$SKIFF_REPO" && deno install --quiet >/dev/null) || die "deno install failed"

say "ready: $(deno --version | head -1) at $(command -v deno)"
