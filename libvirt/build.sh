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
#                             (`path debs`: the packages' folder)
#   libvirt/build.sh source   make the patched Debian source package (cached)
#   libvirt/build.sh check-source
#                             make it, then unpack it and check what is in it
#   libvirt/build.sh debs     build the Debian packages from it (cached; long:
#                             not run by scripts/test.sh)
#   libvirt/build.sh verify-debs
#                             check the built packages' versions and content
#                             (--skip-without-build: exit 77 when there are none)
#
# Reproducible: the Debian version and the sha256 of its three source files are
# pinned below; the build folder is named after the version and a hash of the
# patches, this script's configuration and the compiler, so a changed patch
# builds afresh and an unchanged one is never rebuilt. Compiles run under
# `nice -n 19`. Build dependencies: scripts/setup-libvirt-build.sh (build), and
# scripts/setup-libvirt-debs.sh (debs: all of Debian's Build-Depends).
set -euo pipefail

DEB_VERSION="9.0.0-4+deb12u2"
UPSTREAM_VERSION="9.0.0"
declare -A SHA256=(
  ["libvirt_${DEB_VERSION}.dsc"]=4c6794d4af567cb984d1996a7c9f6b66102f5ccb81faffe2dcef8a95656a16f0
  ["libvirt_${UPSTREAM_VERSION}.orig.tar.xz"]=deca5cff1b7baac297bca9663907c61f71a47183371dc7ac019c107806d5435a
  ["libvirt_${DEB_VERSION}.debian.tar.xz"]=5152a991ed16d3e155f7e14645d654cf2dbf0e60cbd256c4db121593097a1006
)

# Where the pinned version still is once a Debian point release has replaced
# it in the archive: snapshot.debian.org keeps every file Debian published,
# addressed by its sha1 (the .dsc's Checksums-Sha1 gives the others').
SNAPSHOT_URL="${PTNETMAP_SNAPSHOT_URL:-https://snapshot.debian.org/file}"
declare -A SHA1=(
  ["libvirt_${DEB_VERSION}.dsc"]=f2a5a564c39455869ed42a5d49f96a213ec60d04
  ["libvirt_${UPSTREAM_VERSION}.orig.tar.xz"]=43b6ebfd7dc0ff360e75a89b25012f734c76b653
  ["libvirt_${UPSTREAM_VERSION}.orig.tar.xz.asc"]=f79da57b6908014c3a59c4462406ae725794bbbf
  ["libvirt_${DEB_VERSION}.debian.tar.xz"]=15ab086ce2a3d6882d6204fdf4093feecfa32f90
)

# The patched source package: Debian's version plus ours, so that apt sees it
# as newer than Debian's 9.0.0-4+deb12u2 and older than Debian's next update.
PKG_VERSION="${DEB_VERSION}+ptnetmap1"
PKG_MAINTAINER="ptnetmap developers <ptnetmap@localhost>"
PKG_PATCH_DIR="ptnetmap"  # under debian/patches/
# Packages the checks require among those built (all of Debian's binary
# packages for the architecture are required too, from the .dsc).
PKG_REQUIRED=(libvirt0 libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu
              libvirt-daemon-system)

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

# The source package and the .debs depend on Debian's version, ours, the
# changelog's maintainer and the patches (their Date headers give the date).
debs_key() {
  {
    echo "$DEB_VERSION $PKG_VERSION $PKG_MAINTAINER $PKG_PATCH_DIR"
    patches | xargs cat
  } | sha256sum | cut -c1-12
}

DEBS_ROOT="$CACHE/libvirt-debs-$DEB_VERSION-$(debs_key)"
SOURCE_DIR="$DEBS_ROOT/source"
DEBS_DIR="$DEBS_ROOT/debs"
PKG_DSC="$SOURCE_DIR/libvirt_${PKG_VERSION}.dsc"

verify() {
  local f
  for f in "${!SHA256[@]}"; do
    [ -f "$DL/$f" ] || return 1
    echo "${SHA256[$f]}  $DL/$f" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
  done
}

# Debian's source package: through apt (with a private deb-src list: nothing
# of the system's apt configuration changes), else from snapshot.debian.org;
# either way checked against the sha256 sums above. PTNETMAP_LIBVIRT_APT=skip
# goes to the snapshot at once.
fetch() {
  verify && return 0
  command -v dpkg-source >/dev/null || die "dpkg-source missing: run scripts/setup-libvirt-build.sh"
  mkdir -p "$DL"
  if [ "${PTNETMAP_LIBVIRT_APT:-}" = skip ] || ! fetch_apt; then
    log "apt did not give libvirt $DEB_VERSION: fetching it from $SNAPSHOT_URL"
    fetch_snapshot || die "libvirt $DEB_VERSION is neither in Debian's archive nor at $SNAPSHOT_URL"
  fi
  verify || die "checksum mismatch for libvirt $DEB_VERSION: refusing to build"
}

# Each file by its sha1, checked before it takes its name: a broken or
# hostile mirror leaves nothing behind that a later run would trust.
fetch_snapshot() {
  local f part
  for f in "${!SHA1[@]}"; do
    part="$DL/$f.part"
    curl -fsSL --retry 2 --connect-timeout 20 --max-time 600 -o "$part" \
      "$SNAPSHOT_URL/${SHA1[$f]}" || { rm -f "$part"; log "cannot download $f"; return 1; }
    if ! echo "${SHA1[$f]}  $part" | sha1sum --quiet -c - >/dev/null 2>&1; then
      rm -f "$part"
      log "$f from $SNAPSHOT_URL does not match its sha1: discarded"
      return 1
    fi
    mv "$part" "$DL/$f"
  done
}

fetch_apt() {
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
  apt-get "${opts[@]}" update >/dev/null || return 1
  (cd "$DL" && apt-get "${opts[@]}" source --download-only "libvirt=$DEB_VERSION" >/dev/null) || {
    log "apt-get source libvirt=$DEB_VERSION failed (no longer in the archive?)"
    return 1
  }
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

# need_built MARKER WHAT VERB [--skip-without-build]: carries on when MARKER
# exists; else exits 77 (ctest's "skipped") with --skip-without-build, or fails.
need_built() {
  [ -f "$1" ] && return 0
  if [ "${4:-}" = "--skip-without-build" ]; then
    log "no $2: skipped (libvirt/build.sh $3 makes it)"
    exit 77
  fi
  die "no $2: run libvirt/build.sh $3"
}

run_tests() {
  need_built "$BUILD_ROOT/build/.built" "cached build at $BUILD_ROOT" build "${1:-}"
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

# --- The patched Debian source package -------------------------------------

# The files a .dsc names (its Files: field), one a line.
dsc_files() {
  sed -n '/^Files:/,/^[^ ]/ s/^ [0-9a-f]\{32\} [0-9]* //p' "$1"
}

# Our patches go into Debian's quilt series after Debian's own, in a folder
# of their own so that their names cannot clash with Debian's.
add_our_patches() {
  local tree="$1" series="$1/debian/patches/series" p
  [ "$(cat "$tree/debian/source/format")" = "3.0 (quilt)" ] ||
    die "Debian's libvirt is no longer in 3.0 (quilt) format: the patches need another way in"
  mkdir -p "$tree/debian/patches/$PKG_PATCH_DIR"
  [ -z "$(tail -c1 "$series")" ] || echo >> "$series"
  for p in $(patches); do
    cp "$p" "$tree/debian/patches/$PKG_PATCH_DIR/"
    echo "$PKG_PATCH_DIR/$(basename "$p")" >> "$series"
  done
}

# The changelog entry's date: the newest of Debian's last entry and our
# patches' Date headers. Not the clock: dpkg-source takes SOURCE_DATE_EPOCH
# from the changelog, so the same inputs give byte-identical tarballs.
pkg_epoch() {
  local tree="$1" newest p d e
  newest="$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Timestamp)"
  for p in $(patches); do
    d="$(sed -n '/^$/q; s/^Date: //p' "$p")"
    [ -n "$d" ] || die "$(basename "$p") has no Date header"
    e="$(date -u -d "$d" +%s)"
    if [ "$e" -gt "$newest" ]; then newest="$e"; fi
  done
  echo "$newest"
}

write_changelog() {
  local tree="$1" epoch="$2" cl="$1/debian/changelog" p
  {
    printf 'libvirt (%s) bookworm; urgency=medium\n\n' "$PKG_VERSION"
    printf "  * Add <interface type='ptnetmap'>: ports of the ptnetmap host agent\n"
    printf '    (debian/patches/%s/):\n' "$PKG_PATCH_DIR"
    for p in $(patches); do printf '    - %s\n' "$(basename "$p")"; done
    printf '\n -- %s  %s\n\n' "$PKG_MAINTAINER" "$(date -u -R -d "@$epoch")"
    cat "$cl"
  } > "$cl.new"
  mv "$cl.new" "$cl"
}

# Makes the source package in DEST (.dsc, .debian.tar.xz and Debian's orig
# tarball), from Debian's tree with its patches unapplied.
make_source_package() {
  local dest="$1" work tree f epoch
  work="$(mktemp -d "${dest%/}.work.XXXXXX")"
  tree="$work/libvirt-$UPSTREAM_VERSION"
  dpkg-source --no-check --skip-patches -x "$DL/libvirt_${DEB_VERSION}.dsc" "$tree" >/dev/null
  add_our_patches "$tree"
  epoch="$(pkg_epoch "$tree")"  # its own line: a failure stops the script
  write_changelog "$tree" "$epoch"
  # -b first applies the whole series, Debian's then ours: a patch that does
  # not apply on top of Debian's stops here.
  if ! (cd "$work" && dpkg-source -b "libvirt-$UPSTREAM_VERSION") > "$work/dpkg-source.log" 2>&1; then
    tail -20 "$work/dpkg-source.log" >&2
    rm -rf "$work"
    die "dpkg-source -b failed for libvirt $PKG_VERSION"
  fi
  mkdir -p "$dest"
  mv "$work/libvirt_${PKG_VERSION}.dsc" "$dest/"
  for f in $(dsc_files "$dest/libvirt_${PKG_VERSION}.dsc"); do
    cp -L "$work/$f" "$dest/"
  done
  rm -rf "$work"
}

source_package() {
  fetch
  if [ -f "$SOURCE_DIR/.done" ]; then
    log "cached: $PKG_DSC"
    return 0
  fi
  rm -rf "$SOURCE_DIR"
  mkdir -p "$DEBS_ROOT"
  make_source_package "$SOURCE_DIR"
  touch "$SOURCE_DIR/.done"
  log "source package: $PKG_DSC"
}

# What should be in the source package, checked from the outside: the .dsc's
# version, a second build from the same inputs byte-identical, an unpack with
# dpkg-source (checksums, then Debian's series and ours applied), the series
# in order and every one of our patches present in the unpacked tree.
check_source() {
  source_package
  local tmp f got want p
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  got="$(sed -n 's/^Version: //p' "$PKG_DSC")"
  [ "$got" = "$PKG_VERSION" ] || die "$PKG_DSC: Version $got, not $PKG_VERSION"

  make_source_package "$tmp/again"
  for f in "libvirt_${PKG_VERSION}.dsc" "libvirt_${PKG_VERSION}.debian.tar.xz"; do
    cmp -s "$SOURCE_DIR/$f" "$tmp/again/$f" || die "$f differs when built again: not reproducible"
  done
  rm -rf "$tmp/again"

  dpkg-source -x "$PKG_DSC" "$tmp/src" > "$tmp/x.log" 2>&1 ||
    { cat "$tmp/x.log" >&2; die "dpkg-source -x $PKG_DSC failed"; }
  got="$(dpkg-parsechangelog -l "$tmp/src/debian/changelog" -S Version)"
  [ "$got" = "$PKG_VERSION" ] || die "unpacked changelog says $got, not $PKG_VERSION"

  # The series: Debian's, unchanged, then ours in order.
  want="$(tar -xJOf "$DL/libvirt_${DEB_VERSION}.debian.tar.xz" debian/patches/series
          patches | xargs -n1 basename | sed "s|^|$PKG_PATCH_DIR/|")"
  diff <(echo "$want") "$tmp/src/debian/patches/series" >&2 ||
    die "debian/patches/series is not Debian's series followed by ours"
  # dpkg-source applied all of it.
  diff <(grep -v '^[[:space:]]*\(#\|$\)' "$tmp/src/debian/patches/series" | awk '{print $1}') \
    "$tmp/src/.pc/applied-patches" >&2 || die "dpkg-source -x did not apply the whole series"

  grep -q 'VIR_DOMAIN_NET_TYPE_PTNETMAP' "$tmp/src/src/conf/domain_conf.h" ||
    die "the unpacked tree has no VIR_DOMAIN_NET_TYPE_PTNETMAP (patch 0001)"
  # Each of our patches is in the tree: they come off again, newest first.
  for p in $(patches | LC_ALL=C sort -r); do
    patch -d "$tmp/src" -R -p1 --batch --quiet --no-backup-if-mismatch < "$p" >/dev/null ||
      die "$(basename "$p") is not applied in the unpacked source package"
  done
  log "source package OK: $PKG_DSC ($(patches | wc -l) patches after Debian's, reproducible)"
}

# --- The Debian packages ----------------------------------------------------

# Debian's test suite runs (DEB_BUILD_OPTIONS without nocheck) unless
# PTNETMAP_DEBS_NOCHECK=1.
deb_build_options() {
  local parallel
  parallel="parallel=$(nproc)"
  if [ "${PTNETMAP_DEBS_NOCHECK:-0}" = 1 ]; then echo "$parallel nocheck"; else echo "$parallel"; fi
}

# dpkg-buildpackage checks the Build-Depends itself; this allows one known
# exception. Debian's libvirt wants libcurl4-gnutls-dev, which conflicts with
# libcurl4-openssl-dev, which prometheus-cpp-dev (the agent's dependency,
# scripts/setup.sh) needs: on a machine set up for this project the two
# cannot both be installed. libvirt's meson finds libcurl through pkg-config
# either way; the packages then depend on libcurl4 instead of libcurl3-gnutls.
# Prints the dpkg-buildpackage flag to use (-d) or nothing.
builddeps_flag() {
  local tree="$1" unmet
  unmet="$({ (cd "$tree" && dpkg-checkbuilddeps 2>&1) || true; } |
           sed -n 's/^dpkg-checkbuilddeps: error: Unmet build dependencies: //p')"
  [ -n "$unmet" ] || return 0
  if [ "$unmet" = "libcurl4-gnutls-dev" ] &&
     [ "$(dpkg-query -W -f='${Status}' libcurl4-openssl-dev 2>/dev/null)" = "install ok installed" ]; then
    log "building against libcurl4-openssl-dev instead of libcurl4-gnutls-dev (they conflict; see build.sh)"
    echo "-d"
    return 0
  fi
  die "unmet Build-Depends: $unmet (run scripts/setup-libvirt-debs.sh)"
}

debs() {
  source_package
  if [ -f "$DEBS_DIR/.built" ]; then
    log "cached: $DEBS_DIR"
    ls "$DEBS_DIR"/*.deb
    return 0
  fi
  command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage missing: run scripts/setup-libvirt-debs.sh"
  local work="$DEBS_ROOT/work" dbo flag t0=$SECONDS
  dbo="$(deb_build_options)"
  # An interrupted build starts again from the source package: debian/rules
  # cleans first anyway.
  rm -rf "$work" "$DEBS_DIR"
  mkdir -p "$work"
  dpkg-source -x "$PKG_DSC" "$work/libvirt-$UPSTREAM_VERSION" >/dev/null 2>&1 ||
    die "dpkg-source -x $PKG_DSC failed"
  flag="$(builddeps_flag "$work/libvirt-$UPSTREAM_VERSION")"
  log "dpkg-buildpackage -b (DEB_BUILD_OPTIONS='$dbo', nice -n 19; log in $DEBS_ROOT/debs.log)"
  if ! (cd "$work/libvirt-$UPSTREAM_VERSION" &&
        DEB_BUILD_OPTIONS="$dbo" nice -n 19 dpkg-buildpackage -b -uc -us ${flag:+"$flag"}) > "$DEBS_ROOT/debs.log" 2>&1; then
    tail -30 "$DEBS_ROOT/debs.log" >&2
    die "dpkg-buildpackage failed: $DEBS_ROOT/debs.log (Build-Depends: scripts/setup-libvirt-debs.sh)"
  fi
  mkdir -p "$DEBS_DIR"
  mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$DEBS_DIR/"
  rm -rf "$work"  # the build tree: gigabytes, and the log says what happened
  echo "DEB_BUILD_OPTIONS=$dbo dpkg-buildpackage -b -uc -us $flag" > "$DEBS_DIR/build-options"
  echo "$((SECONDS - t0))" >> "$DEBS_ROOT/debs-seconds"
  touch "$DEBS_DIR/.built"
  log "built in $((SECONDS - t0)) s: $DEBS_DIR"
  ls "$DEBS_DIR"/*.deb
}

# Debian's binary packages for this architecture, from the .dsc's
# Package-List ("name type section priority arch=LIST ...").
expected_packages() {
  local name rest arches a
  sed -n '/^Package-List:/,/^[^ ]/ s/^ //p' "$PKG_DSC" | while read -r name _ _ _ rest; do
    arches="${rest#arch=}"
    arches="${arches%% *}"
    for a in ${arches//,/ }; do
      if [ "$a" = all ] || dpkg-architecture -i"$a"; then
        echo "$name"
        break
      fi
    done
  done
}

# The .deb among the built ones that holds PATH (./usr/...).
deb_with() {
  local deb
  for deb in "$DEBS_DIR"/*.deb; do
    if dpkg-deb -c "$deb" | awk '{print $6}' | grep -qxF "$1"; then
      echo "$deb"
      return 0
    fi
  done
  return 1
}

# Copies PATH (./usr/...) out of DEB to OUT. To a file, not a pipe into
# `grep -q`: with pipefail, grep's early exit would fail the pipeline.
deb_file() { dpkg-deb --fsys-tarfile "$1" | tar -xO "$2" > "$3"; }

# Does DEB's PATH contain STRING (a fixed string, binary files too)?
deb_has() {
  local deb="$1" path="$2" string="$3" tmp rc=0
  tmp="$(mktemp)"
  deb_file "$deb" "$path" "$tmp" && grep -aqF "$string" "$tmp" || rc=1
  rm -f "$tmp"
  return "$rc"
}

verify_debs() {
  need_built "$DEBS_DIR/.built" "packages at $DEBS_DIR" debs "${1:-}"
  local deb ver pkg want n=0 failed=0 multiarch schema
  fail() { log "FAIL $*"; failed=$((failed + 1)); }
  for deb in "$DEBS_DIR"/*.deb; do
    ver="$(dpkg-deb -f "$deb" Version)"
    pkg="$(dpkg-deb -f "$deb" Package)"
    [ "$ver" = "$PKG_VERSION" ] || fail "$pkg: version $ver, not $PKG_VERSION"
    n=$((n + 1))
  done
  want="$(expected_packages)"
  [ "$(echo "$want" | wc -w)" -ge "${#PKG_REQUIRED[@]}" ] || fail "the .dsc's Package-List gave: $want"
  for pkg in $(printf '%s\n' "$want" "${PKG_REQUIRED[@]}" | sort -u); do
    compgen -G "$DEBS_DIR/${pkg}_${PKG_VERSION}_*.deb" >/dev/null || fail "no package $pkg"
  done

  # Our change inside: the schema accepts the type, libvirt0's parser
  # (patch 0001) and the QEMU driver (patch 0002) have their messages. Not
  # a bare "ptnetmap": the build path (~/.cache/ptnetmap/...) is in the
  # binaries too.
  schema=./usr/share/libvirt/schemas/domaincommon.rng
  if deb="$(deb_with "$schema")"; then
    deb_has "$deb" "$schema" "<value>ptnetmap</value>" ||
      fail "$(basename "$deb"): $schema has no ptnetmap"
  else
    fail "no package holds $schema"
  fi
  multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
  deb="$(compgen -G "$DEBS_DIR/libvirt0_${PKG_VERSION}_*.deb" || true)"
  [ -z "$deb" ] || deb_has "$deb" "./usr/lib/$multiarch/libvirt.so.0.9000.0" \
    "interface type='ptnetmap' takes either a 'switch' or a 'pipe' source, not both" ||
    fail "$(basename "$deb"): libvirt.so has no ptnetmap parser (patch 0001's message)"
  deb="$(compgen -G "$DEBS_DIR/libvirt-daemon-driver-qemu_${PKG_VERSION}_*.deb" || true)"
  [ -z "$deb" ] || deb_has "$deb" "./usr/lib/$multiarch/libvirt/connection-driver/libvirt_driver_qemu.so" \
    "interface type='ptnetmap' needs the ivshmem-doorbell device" ||
    fail "$(basename "$deb"): libvirt_driver_qemu.so has no ptnetmap support (patch 0002's message)"
  echo "libvirt debs: $n packages, $failed failures"
  [ "$failed" -eq 0 ]
}

case "${1:-all}" in
  fetch) fetch ;;
  check) check ;;
  build) build ;;
  test) run_tests "${2:-}" ;;
  all) build; run_tests ;;
  source) source_package; echo "$PKG_DSC" ;;
  check-source) check_source ;;
  debs) debs ;;
  verify-debs) verify_debs "${2:-}" ;;
  path)
    case "${2:-build}" in
      build) echo "$BUILD_ROOT" ;;
      debs) echo "$DEBS_DIR" ;;
      debian-dsc) echo "$DL/libvirt_${DEB_VERSION}.dsc" ;;
      *) die "path: build, debs or debian-dsc" ;;
    esac ;;
  *) sed -n '4,22p' "$0"; exit 2 ;;
esac
