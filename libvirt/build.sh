#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds Debian 12's libvirt 9.0 with our patches (libvirt/patches/*.patch:
# <interface type='ptnetmap'>) and runs libvirt's own tests for it.
#
#   libvirt/build.sh fetch    download and verify Debian's source package (cached)
#   libvirt/build.sh check    the patches apply to it (seconds; needs fetch)
#   libvirt/build.sh build    fetch, apply, configure and compile (cached by content)
#   libvirt/build.sh test     run libvirt's tests from the cached build
#                             (--skip-without-build: exit 77 when there is none)
#   libvirt/build.sh all      build then test (the default)
#   libvirt/build.sh path     print the cached build's folder
#
# Reproducible: the Debian version and the sha256 of its three source files are
# pinned below; the build folder is named after the version and a hash of the
# patches, this script's configuration and the compiler, so a changed patch
# builds afresh and an unchanged one is never rebuilt. Compiles run under
# `nice -n 19`. Build dependencies: scripts/setup-libvirt-build.sh.
set -euo pipefail

DEB_VERSION="9.0.0-4+deb12u2"
UPSTREAM_VERSION="9.0.0"
declare -A SHA256=(
  ["libvirt_${DEB_VERSION}.dsc"]=4c6794d4af567cb984d1996a7c9f6b66102f5ccb81faffe2dcef8a95656a16f0
  ["libvirt_${UPSTREAM_VERSION}.orig.tar.xz"]=deca5cff1b7baac297bca9663907c61f71a47183371dc7ac019c107806d5435a
  ["libvirt_${DEB_VERSION}.debian.tar.xz"]=5152a991ed16d3e155f7e14645d654cf2dbf0e60cbd256c4db121593097a1006
)

# Only what the QEMU driver, its daemons, virsh and the tests need.
MESON_OPTIONS=(
  --buildtype=debugoptimized -Dsystem=true
  # Debian's helper folder: libvirtd runs /usr/lib/libvirt/virt-aa-helper,
  # where the lab's AppArmor test puts the patched one.
  --libexecdir=lib/libvirt
  -Ddocs=disabled -Dtests=enabled -Dexpensive_tests=disabled -Dnls=disabled
  -Dwireshark_dissector=disabled -Dpolkit=disabled -Dsasl=disabled
  -Dapparmor=enabled -Dsecdriver_apparmor=enabled -Dselinux=enabled
  -Ddriver_qemu=enabled -Ddriver_libvirtd=enabled -Ddriver_remote=enabled
  -Ddriver_test=enabled -Ddriver_network=enabled -Ddriver_secrets=enabled
  -Ddriver_lxc=disabled -Ddriver_ch=disabled -Ddriver_libxl=disabled
  -Ddriver_esx=disabled -Ddriver_hyperv=disabled -Ddriver_vbox=disabled
  -Ddriver_openvz=disabled -Ddriver_vz=disabled -Ddriver_bhyve=disabled
  -Ddriver_vmware=disabled -Ddriver_interface=disabled
  -Dstorage_disk=disabled -Dstorage_fs=disabled -Dstorage_gluster=disabled
  -Dstorage_iscsi=disabled -Dstorage_iscsi_direct=disabled -Dstorage_lvm=disabled
  -Dstorage_mpath=disabled -Dstorage_rbd=disabled -Dstorage_scsi=disabled
  -Dstorage_vstorage=disabled -Dstorage_zfs=disabled
  -Dcurl=disabled -Dlibssh=disabled -Dlibssh2=disabled -Dlibpcap=disabled
  -Daudit=disabled -Dfuse=disabled -Dglusterfs=disabled -Dlibiscsi=disabled
  -Dsanlock=disabled -Dnetcf=disabled -Dopenwsman=disabled -Ddtrace=disabled
  -Dnss=disabled -Dlogin_shell=disabled -Dbash_completion=disabled
  -Dyajl=enabled -Dlibnl=enabled -Dcapng=enabled -Dattr=enabled -Dnumactl=enabled
  -Dudev=enabled -Dpciaccess=enabled -Dreadline=enabled -Dblkid=enabled
)
# libvirt's tests that cover the patches (and their neighbours).
TESTS=(qemuxml2argvtest qemuxml2xmltest virschematest genericxml2xmltest
       qemuhotplugtest domaincapstest)

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${PTNETMAP_CACHE:-$HOME/.cache/ptnetmap}"
SRC_CACHE="$CACHE/libvirt-src"
DL="$SRC_CACHE/$DEB_VERSION"

log() { printf 'libvirt/build.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

patches() { find "$HERE/patches" -maxdepth 1 -name '*.patch' | LC_ALL=C sort; }

build_key() {
  {
    echo "$DEB_VERSION"
    printf '%s\n' "${MESON_OPTIONS[@]}"
    cc --version | head -1
    patches | xargs cat
  } | sha256sum | cut -c1-12
}

BUILD_ROOT="$CACHE/libvirt-$DEB_VERSION-$(build_key)"

verify() {
  local f
  for f in "${!SHA256[@]}"; do
    [ -f "$DL/$f" ] || return 1
    echo "${SHA256[$f]}  $DL/$f" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
  done
}

# Debian's source package, through apt with a private deb-src list: nothing
# of the system's apt configuration changes.
fetch() {
  verify && return 0
  command -v dpkg-source >/dev/null || die "dpkg-source missing: run scripts/setup-libvirt-build.sh"
  local apt="$SRC_CACHE/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$DL"
  cat > "$apt/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
LIST
  local -a opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
                 -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
                 -o APT::Sandbox::User=root -qq)
  log "fetching Debian's libvirt $DEB_VERSION"
  apt-get "${opts[@]}" update >/dev/null
  (cd "$DL" && apt-get "${opts[@]}" source --download-only "libvirt=$DEB_VERSION" >/dev/null) ||
    die "apt-get source libvirt=$DEB_VERSION failed (is the version still in the archive?)"
  verify || die "checksum mismatch for libvirt $DEB_VERSION: refusing to build"
}

# Debian's tree (its own patch series applied by dpkg-source) plus ours.
unpack_and_patch() {
  local dest="$1" p
  rm -rf "$dest"
  dpkg-source --no-check -x "$DL/libvirt_${DEB_VERSION}.dsc" "$dest" >/dev/null
  rm -f "$(dirname "$dest")"/libvirt_*.orig.tar.xz  # dpkg-source's link to the tarball
  for p in $(patches); do
    patch -d "$dest" -p1 --batch --forward --quiet --no-backup-if-mismatch < "$p" ||
      die "$(basename "$p") does not apply to Debian's libvirt $DEB_VERSION"
  done
}

check() {
  fetch
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  unpack_and_patch "$tmp/src"
  log "$(patches | wc -l) patches apply to libvirt $DEB_VERSION"
}

# What is built: the QEMU driver's daemons and modules, virsh, the AppArmor
# helper, and the tests of TESTS with their mock libraries; not the rest of
# libvirt's ~200 test programs (minutes on two shared cores).
build_targets() {
  echo src/libvirtd src/virtqemud src/virtlogd src/virtlockd src/virt-aa-helper \
    src/libvirt_iohelper src/libvirt_driver_qemu.so src/libvirt_driver_network.so \
    src/libvirt_driver_nodedev.so src/libvirt_driver_nwfilter.so \
    src/libvirt_driver_secret.so src/libvirt_driver_storage.so \
    src/libvirt_storage_backend_fs.so src/libvirt_storage_file_fs.so src/lockd.so \
    tools/virsh
  printf 'tests/%s\n' "${TESTS[@]}"
  ninja -C "$BUILD_ROOT/build" -t targets all 2>/dev/null |
    grep -oE '^tests/lib[A-Za-z0-9_]*mock[A-Za-z0-9_]*\.so:' | tr -d : | sort -u
}

build() {
  fetch
  if [ -f "$BUILD_ROOT/build/.built" ]; then
    log "cached: $BUILD_ROOT"
    return 0
  fi
  local t0=$SECONDS
  mkdir -p "$BUILD_ROOT"
  # An interrupted build resumes where it stopped.
  if [ ! -f "$BUILD_ROOT/src/.patched" ]; then
    unpack_and_patch "$BUILD_ROOT/src"
    touch "$BUILD_ROOT/src/.patched"
    rm -rf "$BUILD_ROOT/build"
  fi
  export SOURCE_DATE_EPOCH
  SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -l "$BUILD_ROOT/src/debian/changelog" -S Timestamp)"
  if [ ! -f "$BUILD_ROOT/build/build.ninja" ]; then
    log "configuring in $BUILD_ROOT/build"
    rm -rf "$BUILD_ROOT/build"
    nice -n 19 meson setup "$BUILD_ROOT/build" "$BUILD_ROOT/src" "${MESON_OPTIONS[@]}" \
      > "$BUILD_ROOT/meson-setup.log" 2>&1 || die "meson setup failed: $BUILD_ROOT/meson-setup.log"
  fi
  log "compiling (nice -n 19; log in $BUILD_ROOT/ninja.log)"
  # shellcheck disable=SC2046
  nice -n 19 ninja -C "$BUILD_ROOT/build" $(build_targets) >> "$BUILD_ROOT/ninja.log" 2>&1 ||
    die "build failed: tail $BUILD_ROOT/ninja.log"
  echo "$((SECONDS - t0))" >> "$BUILD_ROOT/build-seconds"
  touch "$BUILD_ROOT/build/.built"
  log "built in $((SECONDS - t0)) s: $BUILD_ROOT"
}

run_tests() {
  if [ ! -f "$BUILD_ROOT/build/.built" ]; then
    if [ "${1:-}" = "--skip-without-build" ]; then
      log "no cached build at $BUILD_ROOT: skipped (libvirt/build.sh build makes it)"
      exit 77
    fi
    die "no cached build at $BUILD_ROOT: run libvirt/build.sh build"
  fi
  local t rc=0 passed=0 failed=0
  for t in "${TESTS[@]}"; do
    if (cd "$BUILD_ROOT/build/tests" && VIR_TEST_DEBUG=0 "./$t" > "$BUILD_ROOT/$t.log" 2>&1); then
      log "PASS $t"; passed=$((passed + 1))
    else
      log "FAIL $t (log: $BUILD_ROOT/$t.log)"; tail -20 "$BUILD_ROOT/$t.log" >&2
      failed=$((failed + 1)); rc=1
    fi
  done
  echo "libvirt: $passed passed, $failed failed"
  return $rc
}

case "${1:-all}" in
  fetch) fetch ;;
  check) check ;;
  build) build ;;
  test) run_tests "${2:-}" ;;
  all) build; run_tests ;;
  path) echo "$BUILD_ROOT" ;;
  *) sed -n '4,12p' "$0"; exit 2 ;;
esac
