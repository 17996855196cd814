#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# deploy.install: both packages install with apt into a clean Debian 12 root
# (debootstrap, minbase), DKMS builds and installs ptnetmap.ko there for the
# lab kernel, the agent's binaries run, and a purge leaves nothing behind.
#
#   tests/deploy/install_test.sh BUILD_DIR KERNEL_RELEASE
#
# Needs root, debootstrap and Debian's mirror. The minbase root is cached as a
# tarball in $PTNETMAP_CACHE/deploy (about 45 s to make once), and so are the
# .debs apt downloads into it (headers, compiler, gRPC: about 150 MB once).
set -euo pipefail

BUILD=$(realpath "$1")
KREL=$2
CACHE="${PTNETMAP_CACHE:-$HOME/.cache/ptnetmap}/deploy"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
T=$(mktemp -d /tmp/ptnm-install.XXXXXX)
R="$T/root"
FAILED=0
MOUNTS=()

cleanup() {
	local m
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=1; }
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; MOUNTS+=("$2"); }
t0=$SECONDS

# 1. A clean Debian 12 root.
mkdir -p "$CACHE/apt-archives/partial"
if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
	echo "making the Debian 12 minbase root (debootstrap, cached afterwards)"
	mkdir -p "$CACHE/debootstrap-debs"
	debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" bookworm "$T/boot" "$MIRROR" >"$T/debootstrap.log" 2>&1 ||
		{ tail -20 "$T/debootstrap.log"; fail "debootstrap bookworm"; exit 1; }
	tar -C "$T/boot" -cf "$CACHE/bookworm-minbase.tar.tmp" . && mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
	rm -rf "$T/boot"
fi
mkdir -p "$R"
tar -C "$R" -xf "$CACHE/bookworm-minbase.tar"
ok "clean Debian 12 root ($(cat "$R/etc/debian_version")) in $((SECONDS - t0)) s"

# 2. The packages, from a fresh cpack run.
(cd "$BUILD" && cpack --config CPackConfig.cmake -B "$T/debs") >"$T/cpack.log" 2>&1 ||
	{ cat "$T/cpack.log"; fail "cpack"; exit 1; }
mkdir -p "$R/tmp/debs"
cp "$T"/debs/*.deb "$R/tmp/debs/"
dkms_deb=$(cd "$R/tmp/debs" && ls ptnetmap-dkms_*_all.deb)
agent_deb=$(cd "$R/tmp/debs" && ls ptnetmap_*_amd64.deb)
version=$(dpkg-deb --field "$R/tmp/debs/$dkms_deb" Version)

bind /proc "$R/proc"
bind /sys "$R/sys"
bind /dev "$R/dev"
bind "$CACHE/apt-archives" "$R/var/cache/apt/archives"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# Debian 12 with its updates and security suites (the lab kernel's headers
# usually come from bookworm-security): the host's own Debian sources.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	cp /etc/apt/sources.list.d/debian.sources "$R/etc/apt/sources.list.d/"
	: >"$R/etc/apt/sources.list"
else
	cp /etc/apt/sources.list "$R/etc/apt/sources.list"
fi

# 3. Install with apt, as an operator would: dependencies come from Debian.
if in_root apt-get update -qq >"$T/apt.log" 2>&1 &&
	in_root apt-get install -y -q --no-install-recommends "linux-headers-$KREL" \
		"/tmp/debs/$dkms_deb" "/tmp/debs/$agent_deb" >>"$T/apt.log" 2>&1; then
	ok "apt installed ptnetmap-dkms, ptnetmap and linux-headers-$KREL ($((SECONDS - t0)) s)"
else
	tail -40 "$T/apt.log"
	fail "apt-get install of the packages"
	exit 1
fi

# 4. DKMS built the module for the lab kernel (through the headers' hook or
# the package's postinst, whichever ran last).
status=$(in_root dkms status -m ptnetmap -v "$version" -k "$KREL" 2>&1 || true)
if [[ "$status" == *"$KREL"*installed* ]]; then
	ok "dkms status: $status"
else
	fail "dkms did not install ptnetmap for $KREL: '$status'"
	grep -i -A5 'dkms\|ptnetmap' "$T/apt.log" | tail -30
fi
ko=$(find "$R/lib/modules/$KREL" -name 'ptnetmap.ko*' 2>/dev/null | head -1)
vermagic=$( [ -n "$ko" ] && modinfo -F vermagic "$ko" 2>/dev/null || true)
if [ -n "$ko" ] && [ "${vermagic%% *}" = "$KREL" ]; then
	ok "ptnetmap.ko installed at ${ko#"$R"} for $KREL"
else
	fail "no ptnetmap.ko for $KREL under /lib/modules (found '$ko', vermagic '$vermagic')"
fi

# 5. The agent package.
for g in ptnetmap ptnetmap-vm; do
	if in_root getent group "$g" >/dev/null; then ok "group $g created"; else fail "group $g missing"; fi
done
for bin in ptnetd ptctl ptgen ptbridge; do
	missing=$(in_root ldd "/usr/bin/$bin" 2>&1 | grep 'not found' || true)
	if [ -z "$missing" ]; then ok "$bin finds every library in the clean root"
	else fail "$bin lacks libraries in the clean root: $missing"; fi
done
if in_root ptnetd --flagfile=/etc/ptnetmap/ptnetd.conf --version >/dev/null 2>&1 &&
	in_root ptctl --help >/dev/null 2>&1; then
	ok "ptnetd (with the packaged flag file) and ptctl run"
else
	fail "ptnetd --version or ptctl --help fails in the clean root"
fi
if in_root test -f /etc/ptnetmap/ptnetd.conf -a -f /usr/lib/systemd/system/ptnetd.service; then
	ok "config file and systemd unit installed"
else
	fail "config file or unit missing"
fi

# 6. Purge: the module and the agent go away.
if in_root apt-get purge -y -q ptnetmap ptnetmap-dkms >>"$T/apt.log" 2>&1; then
	left=$(find "$R/lib/modules/$KREL" -name 'ptnetmap.ko*' 2>/dev/null; ls -d "$R/usr/src/ptnetmap-$version" "$R/etc/ptnetmap" 2>/dev/null || true)
	if [ -z "$left" ]; then ok "apt-get purge removes the module, its sources and the config"
	else fail "left after purge: $left"; fi
else
	tail -20 "$T/apt.log"
	fail "apt-get purge"
fi

echo "deploy.install took $((SECONDS - t0)) s"
if [ "$FAILED" -ne 0 ]; then
	echo "deploy.install: some checks failed"
	exit 1
fi
echo "deploy.install: all checks passed"
