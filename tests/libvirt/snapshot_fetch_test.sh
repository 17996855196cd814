#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# libvirt.fetch_snapshot: when Debian's archive no longer has the pinned
# libvirt (a point release replaced it), libvirt/build.sh fetches it from
# snapshot.debian.org by sha1. Offline: a local HTTP server stands in for
# the snapshot, serving the files of the real (cached) download under their
# sha1 names, and the fetch goes into an empty cache with apt skipped.
#   1. a good mirror: the fetch succeeds, the files check out, the patches
#      apply to what came (build.sh check);
#   2. a mirror that serves a tampered file: the fetch fails, says so, and
#      leaves no file in the cache that a later run would take;
#   3. the good mirror again: that later run succeeds.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD_SH="$HERE/../../libvirt/build.sh"
failures=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; failures=$((failures + 1)); }

tmp="$(mktemp -d)"
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The real download (through apt, or already cached) is what is served.
"$BUILD_SH" fetch
src="$(dirname "$("$BUILD_SH" path debian-dsc)")"
good="$tmp/good" evil="$tmp/evil"
mkdir -p "$good" "$evil"
for f in "$src"/libvirt_*; do
  sha="$(sha1sum "$f" | cut -d' ' -f1)"
  cp "$f" "$good/$sha"
  cp "$f" "$evil/$sha"
done
# The tampered mirror: the Debian tarball, one byte changed, under its name.
debian_sha="$(sha1sum "$src"/libvirt_*.debian.tar.xz | cut -d' ' -f1)"
printf 'X' | dd of="$evil/$debian_sha" bs=1 seek=100 conv=notrunc status=none

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$tmp" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done

fetch_from() {  # MIRROR-FOLDER CACHE: build.sh fetch with apt skipped
  PTNETMAP_CACHE="$2" PTNETMAP_LIBVIRT_APT=skip \
    PTNETMAP_SNAPSHOT_URL="http://127.0.0.1:$port/$1" "$BUILD_SH" fetch
}

# 1. A good mirror.
cache1="$tmp/cache1"
if out="$(fetch_from good "$cache1" 2>&1)"; then
  ok "fetched from the snapshot with apt skipped"
else
  bad "fetch from a good snapshot mirror failed: $out"
fi
got="$cache1/libvirt-src/$(basename "$src")"
if (cd "$got" && sha256sum libvirt_* | sed 's|  | |') | sort | diff -q - <( (cd "$src" && sha256sum libvirt_* | sed 's|  | |') | sort) >/dev/null; then
  ok "the snapshot's files are Debian's (same sha256 as the archive's)"
else
  bad "the files fetched from the snapshot differ from the archive's"
fi
if out="$(PTNETMAP_CACHE="$cache1" PTNETMAP_LIBVIRT_APT=skip "$BUILD_SH" check 2>&1)"; then
  ok "the patches apply to the source from the snapshot"
else
  bad "build.sh check on the snapshot's source: $out"
fi

# 2. A tampered file.
cache2="$tmp/cache2"
if out="$(fetch_from evil "$cache2" 2>&1)"; then
  bad "a tampered snapshot file was accepted"
elif grep -q "does not match its sha1" <<<"$out"; then
  ok "a tampered snapshot file is refused: $(grep -m1 'does not match' <<<"$out")"
else
  bad "the tampered fetch failed without saying why: $out"
fi
left="$(find "$cache2/libvirt-src" -name 'libvirt_*.debian.tar.xz*' 2>/dev/null)"
if [ -z "$left" ]; then
  ok "nothing of the tampered file is left in the cache"
else
  bad "the tampered download is still in the cache: $left"
fi

# 3. The same cache, the good mirror: the later run is not fooled either way.
if out="$(fetch_from good "$cache2" 2>&1)"; then
  ok "a later fetch from a good mirror into the same cache succeeds"
else
  bad "the fetch after the tampered one failed: $out"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
