#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything ptnetmap needs on a Debian 12 machine, from Debian's own
# packages, and prepares the lab kernel (see tests/lab/README.md).
#
# Idempotent: when everything is already present it only checks and returns in
# about a second. Downloads are cached outside the source tree, in
# $PTNETMAP_CACHE (default: ~/.cache/ptnetmap).
set -euo pipefail

CACHE="${PTNETMAP_CACHE:-$HOME/.cache/ptnetmap}"
log() { printf 'setup: %s\n' "$*" >&2; }
# shellcheck source=scripts/apt.sh
. "$(dirname "$0")/apt.sh"

# Build tools and libraries (userspace is C++20 against Debian 12's packages).
PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev prometheus-cpp-dev libsqlite3-dev sqlite3
  # ptctl domain attach|detach: libvirt's C API.
  libvirt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # The lab: Debian's kernel under QEMU with a busybox initramfs.
  qemu-system-x86 busybox-static cpio kmod zstd xz-utils
  # Real peers used by tests.
  prometheus iproute2
  # Stock libvirt in the lab (tests/libvirt): libvirtd with its QEMU driver, virsh.
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  # ... confined by AppArmor as on an operator's host: apparmor_parser and
  # the base abstractions (libvirt's own profiles: see below).
  apparmor
  # The benchmark suite's plots (scripts/bench.sh).
  python3-matplotlib
  # Deployment (deploy/, tests/deploy): Ansible and its linter, DKMS, a
  # clean Debian root for the package install test and systemd-nspawn to boot
  # it (deploy.fleet); promtool is in prometheus.
  ansible-core ansible-lint dkms debootstrap python3-yaml systemd-container
  # OpenStack plugins (plugins/): os-vif plugin and ML2 driver, their unit tests
  # (Neutron's test base, a fake ptnetd over grpcio, stubs from grpc_tools);
  # python3-nova and Nova's test dependencies for the Nova patch series
  # (plugins/nova/check_patch.sh); setuptools builds the plugin's wheel.
  python3-os-vif python3-neutron python3-neutron-lib python3-nova
  python3-grpcio python3-protobuf python3-grpc-tools python3-pytest
  python3-oslotest python3-testscenarios python3-fixtures python3-ddt
  python3-wsgi-intercept python3-requests-mock python3-setuptools
)

mkdir -p "$CACHE"
apt_install "${PACKAGES[@]}"

# libvirtd in the lab VM (tests/libvirt) mounts tmpfs on these: the lab's root
# is the host's filesystem, read-only, and libvirt-daemon without
# libvirt-daemon-system ships none of them.
for dir in /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
  [ -d "$dir" ] || $SUDO mkdir -p "$dir"
done

# The lab kernel: the release Debian's linux-image-amd64 points at today. Once
# chosen it is remembered in the cache, so the lab does not change under a
# developer's feet; `rm "$CACHE/kernel-release"` picks the newest again.
if [ ! -s "$CACHE/kernel-release" ]; then
  [ -f "$CACHE/.apt-updated" ] || { $SUDO apt-get update -qq; touch "$CACHE/.apt-updated"; }
  meta=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$meta" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
  echo "${meta#linux-image-}" > "$CACHE/kernel-release"
fi
KREL=$(cat "$CACHE/kernel-release")

apt_install "linux-headers-$KREL"

# unpack_deb PKG VERSION DEST: Debian's package PKG (VERSION, or apt's
# candidate when empty) unpacked into DEST, not installed; the .deb is kept
# in $CACHE/debs, and DEST appears whole or not at all.
unpack_deb() {
  local pkg="$1" version="$2" dest="$3" deb
  deb="${pkg}_${version:-*}_*.deb"
  deb="${deb//:/%3a}"  # an epoch's colon, as apt names the file
  mkdir -p "$CACHE/debs" "$dest.tmp"
  if ! compgen -G "$CACHE/debs/$deb" >/dev/null; then
    (cd "$CACHE/debs" && apt-get download -q "$pkg${version:+=$version}" >/dev/null)
  fi
  # shellcheck disable=SC2086  # $deb is a glob
  dpkg-deb -x "$CACHE"/debs/$deb "$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

KDIR="$CACHE/kernel/$KREL"
if [ ! -f "$KDIR/boot/vmlinuz-$KREL" ]; then
  log "fetching linux-image-$KREL"
  unpack_deb "linux-image-$KREL" "" "$KDIR"
fi

# libvirt's AppArmor profiles (libvirtd's, virt-aa-helper's, the QEMU
# template and abstraction) ship in libvirt-daemon-system, which also brings
# polkitd and systemd units this machine must not get: the package matching
# the installed libvirt-daemon is unpacked into the cache instead, and the
# lab (tests/libvirt) loads its profiles from there.
LV_VERSION=$(dpkg-query -W -f='${Version}' libvirt-daemon)
LV_PROFILES="$CACHE/libvirt-apparmor/$LV_VERSION"
if [ ! -f "$LV_PROFILES/etc/apparmor.d/usr.sbin.libvirtd" ]; then
  log "fetching libvirt-daemon-system $LV_VERSION (its AppArmor profiles)"
  unpack_deb libvirt-daemon-system "$LV_VERSION" "$LV_PROFILES"
fi

log "ready: kernel $KREL, cache $CACHE"
