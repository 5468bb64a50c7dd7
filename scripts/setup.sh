#!/usr/bin/env bash
# Install what lorebot and its tests need on Debian bookworm: system packages
# (public-inbox, kernel source and build tools, cross compilers, chromium)
# and the Python virtual environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  git perl public-inbox libplack-middleware-reverseproxy-perl
  linux-source-6.12 build-essential flex bison bc libelf-dev libssl-dev dwarves cpio kmod
  rsync ccache bubblewrap gcc-powerpc64le-linux-gnu gcc-aarch64-linux-gnu
  chromium chromium-driver
  liburcu-dev
  clang lld llvm
  qemu-system-x86 redis-server postgresql
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# KUnit under QEMU with KVM: the sandboxed run keeps /dev/kvm's group (kvm, mode 0660
# as udev makes it); where nothing gave it one (a container's /dev), do as udev does
if [ -c /dev/kvm ] && [ "$(stat -c %g /dev/kvm)" -eq 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  getent group kvm >/dev/null || $SUDO groupadd -r kvm
  $SUDO chgrp kvm /dev/kvm && $SUDO chmod 0660 /dev/kvm
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test,scale]'
