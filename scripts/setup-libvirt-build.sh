#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs what libvirt/build.sh needs to build Debian's libvirt 9.0 with our
# patches: the subset of Debian's build dependencies that the configuration
# in libvirt/build.sh uses (QEMU driver, daemons, virsh, tests), about 50 packages, mostly small -dev packages.
# Idempotent; kept out of scripts/setup.sh because only the opt-in libvirt
# build needs it.
set -euo pipefail

log() { printf 'setup-libvirt-build: %s\n' "$*" >&2; }
# shellcheck source=scripts/apt.sh
. "$(dirname "$0")/apt.sh"

PACKAGES=(
  dpkg-dev patch xz-utils meson ninja-build pkg-config gcc
  libglib2.0-dev libxml2-dev libxml2-utils xsltproc python3-docutils
  libgnutls28-dev libtirpc-dev libyajl-dev libnl-3-dev libnl-route-3-dev
  libcap-ng-dev libacl1-dev libattr1-dev libapparmor-dev libselinux1-dev
  libudev-dev libpciaccess-dev libdevmapper-dev libnuma-dev libreadline-dev
  libblkid-dev
)

apt_install "${PACKAGES[@]}"
