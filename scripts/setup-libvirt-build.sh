#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs what libvirt/build.sh needs to build Debian's libvirt 9.0 with our
# patches: the subset of Debian's build dependencies that the configuration
# in libvirt/build.sh uses (QEMU driver, daemons, virsh, tests), about 50 packages, mostly small -dev packages.
# Idempotent; kept out of scripts/setup.sh because only the opt-in libvirt
# build needs it.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PACKAGES=(
  dpkg-dev patch xz-utils meson ninja-build pkg-config gcc
  libglib2.0-dev libxml2-dev libxml2-utils xsltproc python3-docutils
  libgnutls28-dev libtirpc-dev libyajl-dev libnl-3-dev libnl-route-3-dev
  libcap-ng-dev libacl1-dev libattr1-dev libapparmor-dev libselinux1-dev
  libudev-dev libpciaccess-dev libdevmapper-dev libnuma-dev libreadline-dev
  libblkid-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
printf 'setup-libvirt-build: installing %s\n' "${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
