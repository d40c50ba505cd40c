#!/usr/bin/env bash
# Quick start on a fresh Debian machine:  bash scripts/run.sh demo   |   bash scripts/run.sh test
# Installs what is missing (Debian packages as root, pnpm, the workspace), builds, then runs.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"; shift || true

# Real parts the tests run against (and the demo uses when present): Debian's packages.
# ARM: qemu-system-arm (qemu-system-aarch64), qemu-user-static + arch-test (foreign roots, armhf
# Node), python3 (plays systemd's notify socket with sender credentials in the notify tests).
TEST_PACKAGES=(apache2 haproxy openssh-server openssh-client iproute2 snmp chromium qemu-system-x86 seabios ipxe-qemu busybox-static kmod cpio mmdebstrap e2fsprogs systemd xfsprogs openssl qemu-utils gpg qemu-system-arm qemu-user-static arch-test python3 dnsmasq util-linux etcd-server etcd-client curl)
DEMO_PACKAGES=(haproxy)

need_apt() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: missing Debian packages (install them as root): ${missing[*]}" >&2
    return 0
  fi
  echo "run.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_node() {
  command -v pnpm >/dev/null 2>&1 || npm install -g pnpm@10 >/dev/null
  pnpm install --frozen-lockfile --reporter=silent
  pnpm -s build
}

case "$mode" in
  demo)
    need_apt "${DEMO_PACKAGES[@]}"
    setup_node
    exec pnpm -s pifleet demo "$@"
    ;;
  test)
    need_apt "${TEST_PACKAGES[@]}"
    setup_node
    exec pnpm -s test "$@"
    ;;
  *)
    echo "usage: bash scripts/run.sh demo|test [args]" >&2
    exit 2
    ;;
esac
