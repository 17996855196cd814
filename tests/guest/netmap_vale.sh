#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# e2e: netmap mode in a KVM guest over a VALE switch. The lab VM (the host)
# attaches a private port of switch vale0, vale0:vm1, to a level-2 guest
# (ptnm-ivshmem-server, stock ivshmem-doorbell); a host ptgen uses another
# port of the same switch, vale0:h. In the guest, ptgen opens the ptnetmap
# interface as `netmap:ethX`: the rings of vale0:vm1 in BAR2. Checked, with
# every frame verified (checksums, sequence):
#   1. guest -> host: COUNT frames at RATE pps
#   2. host -> guest: COUNT frames at RATE pps
# A switch never holds its sender back: what arrives while the receiver's
# ring is full is dropped (and counted by the switch). So the senders keep to
# a rate the receivers can follow under nested emulation (5k pps), in bursts
# of at most 32 frames (an eighth of the port's 256-slot rings), and each
# direction must deliver at least half; no frame may be damaged or
# reordered, and a total loss fails.
#
# The two sides take turns: the host's receiver is ready before the guest
# boots; the host sends 10 s after its receiver ends (--idle 5 once frames
# stop), by when the guest's receiver has long opened the port.
# Usage: netmap_vale.sh BUILD_DIR (in the lab VM: lab.py run --kvm).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: netmap_vale.sh BUILD_DIR}
ptgen=$build/tools/ptgen
mac=02:50:54:4e:4d:31
count=${NETMAP_VALE_COUNT:-30000}
rate=${NETMAP_VALE_RATE:-5k}
# A bound that separates a working path from a broken one (nothing, or a
# stall after one ring: under 1%), not a rate: a nested guest descheduled
# for 50 ms misses a ring's worth at 5k pps.
min_pct=50

fail() { echo "FAIL: $*"; exit 1; }

# json_of FILE KEY: a number from ptgen's JSON summary.
json_of() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# check WHAT FILE: the receiver's summary is within the bounds above.
check() {
	[ -s "$2" ] || fail "$1: no summary from ptgen rx"
	got=$(json_of "$2" packets)
	[ "$(json_of "$2" corrupted)" = 0 ] || fail "$1: damaged frames"
	[ "$(json_of "$2" out_of_order)" = 0 ] || fail "$1: reordered frames"
	[ "$got" -gt 0 ] || fail "$1: nothing arrived"
	[ $((got * 100)) -ge $((count * min_pct)) ] ||
		fail "$1: $got of $count frames arrived (less than $min_pct%)"
	echo "$1: $got of $count frames arrived verified, $((count - got)) dropped by the switch"
}

if [ "${2:-}" = --inside ]; then
	count=$3 rate=$4
	fail() { echo "FAIL: $*"; dmesg | tail -15; exit 1; }
	ifname=""
	for dev in /sys/class/net/*; do
		[ "$(cat "$dev/address")" = "$mac" ] && ifname=$(basename "$dev")
	done
	[ -n "$ifname" ] || fail "no ptnetmap interface in the guest"
	# The interface stays down: nothing but ptgen's frames leaves the guest.
	tmp=$(mktemp -d)
	echo "guest: $ifname"

	# 1. guest -> host (the host's receiver was ready before we booted).
	"$ptgen" tx -i "netmap:$ifname" -n "$count" -r "$rate" -b 32 -q --json \
		>"$tmp/tx1.json" 2>"$tmp/tx1.err" || { cat "$tmp/tx1.err"; fail "ptgen tx"; }
	echo "guest tx: $(cat "$tmp/tx1.json")"

	# 2. host -> guest: the host sends 10 s after its receiver is done.
	"$ptgen" rx -i "netmap:$ifname" -n "$count" --verify --idle 15 -q --json \
		>"$tmp/rx2.json" 2>"$tmp/rx2.err" || [ -s "$tmp/rx2.json" ] ||
		{ cat "$tmp/rx2.err"; fail "ptgen rx"; }
	echo "guest rx: $(cat "$tmp/rx2.json")"
	check "host -> guest" "$tmp/rx2.json"
	exit 0
fi

tmp=$(mktemp -d)
"$build/qemu/ptnm-ivshmem-server" --name vm1 --port vale0:vm1 --mac "$mac" --dir "$tmp" \
	>"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q '^ready' "$tmp/server.log" && break; sleep 0.1; done
grep -q '^ready' "$tmp/server.log" || { cat "$tmp/server.log"; fail "the attachment was not created"; }

# The host's side, in the guest's order: its receiver is ready before the
# guest boots.
(
	timeout 400 "$ptgen" rx -i vale0:h -n "$count" --verify --idle 5 -q --json \
		>"$tmp/rx1.json" 2>"$tmp/rx1.err"
	[ -e "$tmp/stop" ] && exit 0
	# The guest's receiver opens the port right after its sender ends.
	sleep 10
	timeout 300 "$ptgen" tx -i vale0:h -n "$count" -r "$rate" -b 32 -q --json \
		>"$tmp/tx2.json" 2>"$tmp/tx2.err"
	echo $? >"$tmp/tx2.rc"
) &
host=$!
for _ in $(seq 300); do grep -q ': ready' "$tmp/rx1.err" 2>/dev/null && break; sleep 0.1; done
grep -q ': ready' "$tmp/rx1.err" || { kill "$server"; fail "host ptgen rx did not start"; }

"$here/../lab/lab.py" guest --quiet --timeout 500 --module "$build/kmod/ptnetmap.ko" \
	--qemu-arg "-chardev socket,id=iv0,path=$tmp/vm1.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=3,ioeventfd=on" \
	-- "$0" "$build" --inside "$count" "$rate"
rc=$?
# The guest gave up early: the host's side would wait in vain.
[ "$rc" -eq 0 ] || { touch "$tmp/stop"; pkill -P "$host" 2>/dev/null; }
wait "$host"
python3 "$here/../lib/ptkern.py" stats vale0:vm1 vale0:h
kill -TERM "$server"
wait "$server"
grep '^counters ' "$tmp/server.log"
grep -q '^detached vm1' "$tmp/server.log" || { cat "$tmp/server.log"; fail "the attachment was not detached"; }
grep '^counters ' "$tmp/server.log" | grep -qv '"errors": 0}' && fail "the guest broke the ring protocol"

[ "$rc" -eq 0 ] || fail "guest side (status $rc)"
echo "host rx: $(cat "$tmp/rx1.json")"
echo "host tx: $(cat "$tmp/tx2.json" 2>/dev/null)"
[ "$(cat "$tmp/tx2.rc")" = 0 ] || { cat "$tmp/tx2.err"; fail "host tx"; }
check "guest -> host" "$tmp/rx1.json"
echo "PASS: netmap mode in a KVM guest over VALE: $count frames each way at $rate pps, verified"
