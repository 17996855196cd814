#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# deploy.debs: the two Debian packages, built by CPack from a build tree, hold
# what an installed host needs, and DKMS builds the module from the packaged
# sources against the lab kernel's headers (natively: no root filesystem is
# changed; DKMS works in a private tree).
#
#   tests/deploy/debs_test.sh BUILD_DIR KERNEL_RELEASE
#
# The full install into a clean Debian 12 root is install_test.sh.
set -euo pipefail

BUILD=$(realpath "$1")
KREL=$2
HERE=$(dirname "$(realpath "$0")")
T=$(mktemp -d /tmp/ptnm-debs.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILED=0

ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=1; }
expect() {  # expect WHAT COMMAND...: passes when COMMAND succeeds
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
[ -n "$version" ] || { fail "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake"; exit 1; }

# 1. Build both packages into a private directory.
if ! (cd "$BUILD" && cpack --config CPackConfig.cmake -B "$T/out") >"$T/cpack.log" 2>&1; then
	cat "$T/cpack.log"; fail "cpack builds the packages"; exit 1
fi
agent_deb=$(ls "$T"/out/ptnetmap_"$version"_*.deb)
dkms_deb=$(ls "$T"/out/ptnetmap-dkms_"$version"_all.deb)
ok "cpack built $(basename "$agent_deb") and $(basename "$dkms_deb")"

# 2. The agent package.
dpkg-deb --contents "$agent_deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/agent.files"
for f in /usr/bin/ptnetd /usr/bin/ptctl /usr/bin/ptgen /usr/bin/ptbridge \
	/usr/lib/systemd/system/ptnetd.service /etc/ptnetmap/ptnetd.conf \
	/usr/share/doc/ptnetmap/operator-guide.md; do
	expect "ptnetmap contains $f" grep -qx "$f" "$T/agent.files"
done
dpkg-deb --ctrl-tarfile "$agent_deb" | tar -x -C "$T" --one-top-level=agent.ctrl
expect "ptnetmap marks /etc/ptnetmap/ptnetd.conf as a conffile" \
	grep -qx /etc/ptnetmap/ptnetd.conf "$T/agent.ctrl/conffiles"
expect "ptnetmap's postinst creates the socket groups" \
	grep -q 'addgroup --quiet --system' "$T/agent.ctrl/postinst"
depends=$(dpkg-deb --field "$agent_deb" Depends)
case "$depends" in
*libgrpc++*libprotobuf*|*libprotobuf*libgrpc++*) ok "ptnetmap depends on the shared libraries (dpkg-shlibdeps): $depends" ;;
*) fail "ptnetmap Depends lacks gRPC/protobuf: $depends" ;;
esac
dpkg-deb -x "$agent_deb" "$T/agent"
expect "the packaged ptnetd runs" "$T/agent/usr/bin/ptnetd" --version
# absl parses the whole flag file before --version: an unknown or bad flag fails.
expect "ptnetd accepts the packaged /etc/ptnetmap/ptnetd.conf" \
	"$T/agent/usr/bin/ptnetd" --flagfile="$T/agent/etc/ptnetmap/ptnetd.conf" --version
# The unit, checked by systemd; ExecStart must exist, so it points at the
# extracted binary for the check.
mkdir -p "$T/unit"
sed "s|^ExecStart=/usr/bin/ptnetd|ExecStart=$T/agent/usr/bin/ptnetd|" \
	"$T/agent/usr/lib/systemd/system/ptnetd.service" >"$T/unit/ptnetd.service"
if out=$(systemd-analyze verify "$T/unit/ptnetd.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify accepts ptnetd.service"
else
	fail "systemd-analyze verify ptnetd.service: $out"
fi
for directive in ProtectSystem=strict NoNewPrivileges=yes StateDirectory=ptnetmap \
	"CapabilityBoundingSet=CAP_NET_ADMIN CAP_IPC_LOCK CAP_CHOWN" \
	"ExecStart=/usr/bin/ptnetd --flagfile=/etc/ptnetmap/ptnetd.conf"; do
	expect "ptnetd.service has $directive" grep -qx "$directive" \
		"$T/agent/usr/lib/systemd/system/ptnetd.service"
done

# 3. The DKMS package: every source file of the module, the ABI headers.
src=/usr/src/ptnetmap-$version
dpkg-deb --contents "$dkms_deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/dkms.files"
for f in "$HERE"/../../kmod/*.c "$HERE"/../../kmod/*.h "$HERE"/../../kmod/Kbuild; do
	expect "ptnetmap-dkms contains kmod/$(basename "$f")" grep -qx "$src/kmod/$(basename "$f")" "$T/dkms.files"
done
for f in "$HERE"/../../include/net/*.h; do
	expect "ptnetmap-dkms contains include/net/$(basename "$f")" \
		grep -qx "$src/include/net/$(basename "$f")" "$T/dkms.files"
done
expect "ptnetmap-dkms contains dkms.conf" grep -qx "$src/dkms.conf" "$T/dkms.files"
expect "ptnetmap-dkms is Architecture: all" test "$(dpkg-deb --field "$dkms_deb" Architecture)" = all
expect "ptnetmap-dkms depends on dkms" grep -q dkms <<<"$(dpkg-deb --field "$dkms_deb" Depends)"

# 4. DKMS builds the module from the packaged sources, in a private tree.
if [ ! -e "/usr/src/linux-headers-$KREL/Makefile" ]; then
	fail "no headers for $KREL (scripts/setup.sh installs them)"
else
	dpkg-deb -x "$dkms_deb" "$T/root"
	mkdir -p "$T/dkms" "$T/install"
	d=(dkms --dkmstree "$T/dkms" --sourcetree "$T/root/usr/src" --installtree "$T/install"
		-m ptnetmap -v "$version" -k "$KREL")
	if "${d[@]}" add >"$T/dkms.log" 2>&1 &&
		"${d[@]}" build --kernelsourcedir "/usr/src/linux-headers-$KREL" >>"$T/dkms.log" 2>&1; then
		ko=$(find "$T/dkms/ptnetmap/$version/$KREL" -name 'ptnetmap.ko*' | head -1)
		vermagic=$(modinfo -F vermagic "$ko" 2>/dev/null || true)
		if [ -n "$ko" ] && [ "${vermagic%% *}" = "$KREL" ]; then
			ok "dkms built ptnetmap.ko for $KREL from the packaged sources"
		else
			fail "dkms build left no module for $KREL (found '$ko', vermagic '$vermagic')"
		fi
	else
		cat "$T/dkms.log"
		[ -f "$T/dkms/ptnetmap/$version/build/make.log" ] && cat "$T/dkms/ptnetmap/$version/build/make.log"
		fail "dkms add/build of the packaged sources"
	fi
fi

if [ "$FAILED" -ne 0 ]; then
	echo "deploy.debs: some checks failed"
	exit 1
fi
echo "deploy.debs: all checks passed"
