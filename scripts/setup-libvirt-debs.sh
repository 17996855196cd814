#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs what `libvirt/build.sh debs` needs to build the patched libvirt's
# Debian packages: all of Debian's Build-Depends for libvirt 9.0 (every
# driver, the docs, the test suite), a few hundred packages. The list is not
# kept here: it is read from the pinned Debian source package that
# libvirt/build.sh fetches, so it is the one the package build checks.
# Idempotent (dpkg-checkbuilddeps decides whether anything is missing) and
# it never removes a package (see below); kept
# apart from scripts/setup-libvirt-build.sh because only the opt-in package
# build needs this much.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD_SH="$HERE/../libvirt/build.sh"

log() { printf 'setup-libvirt-debs: %s\n' "$*" >&2; }
# shellcheck source=scripts/apt.sh
. "$HERE/apt.sh"

# The tools to fetch and read the source package, and the package build's
# own needs beyond Build-Depends (dpkg-buildpackage, a compiler, fakeroot).
BASE=(dpkg-dev build-essential fakeroot xz-utils apt)

apt_install "${BASE[@]}"
"$BUILD_SH" fetch
dsc="$("$BUILD_SH" path debian-dsc)"

# dpkg-checkbuilddeps reads debian/control; take it from the Debian tarball
# instead of unpacking the whole source.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$(dirname "$dsc")/$(sed -n 's/^ [0-9a-f]\{64\} [0-9]* \(.*\.debian\.tar\.xz\)$/\1/p' "$dsc" | head -1)" \
  -C "$tmp" debian/control
# Whatever apt wants to remove for them, keep: `apt-get build-dep` would
# remove libcurl4-openssl-dev and prometheus-cpp-dev (the agent's, from
# scripts/setup.sh) because Debian's libvirt wants the conflicting
# libcurl4-gnutls-dev. So install what build-dep would install, less the
# packages that conflict with installed ones; libvirt/build.sh debs knows
# the one exception that leaves (libcurl4-openssl-dev stands in).
conflicts_with() {  # PKG REMOVED...: does PKG's Conflicts/Breaks name one?
  local pkg="$1" fields r
  shift
  fields="$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
            sed -n 's/^\(Conflicts\|Breaks\): //p' | tr ',|' '  ' | awk '{for (i = 1; i <= NF; i++) print $i}')"
  for r in "$@"; do
    grep -qxF "$r" <<<"$fields" && return 0
  done
  return 1
}

if dpkg-checkbuilddeps "$tmp/debian/control" 2>/dev/null; then
  exit 0
fi
$SUDO apt-get update -qq
# apt reads the Build-Depends from the .dsc itself (a path, not a name).
sim="$(apt-get build-dep -s --no-install-recommends "$dsc" 2>/dev/null)"
mapfile -t removed < <(sed -n 's/^Remv \([^ ]*\).*/\1/p' <<<"$sim")
mapfile -t wanted < <(sed -n 's/^Inst \([^ ]*\).*/\1/p' <<<"$sim")
install=()
for pkg in "${wanted[@]}"; do
  if [ "${#removed[@]}" -gt 0 ] && conflicts_with "$pkg" "${removed[@]}"; then
    log "not installing $pkg: it conflicts with installed ${removed[*]}"
  else
    install+=("$pkg")
  fi
done
if [ "${#install[@]}" -gt 0 ]; then
  if apt-get install -s --no-install-recommends "${install[@]}" 2>/dev/null | grep -q '^Remv '; then
    log "installing ${install[*]} would remove packages: refusing (install by hand)"
    exit 1
  fi
  log "installing ${#install[@]} of libvirt's Build-Depends (and their dependencies)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${install[@]}" >/dev/null
fi
# What is still missing (libcurl4-gnutls-dev next to the agent's curl).
dpkg-checkbuilddeps "$tmp/debian/control" 2>&1 | sed 's/^/setup-libvirt-debs: /' >&2 || true
