#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# e2e: netmap mode in a KVM guest. The lab VM (the host) attaches pipe end
# gp{1, with two rings each way, to a level-2 guest (pt_server.py, stock
# ivshmem-doorbell); a host ptgen uses the other end, gp}1. In the guest,
# ptgen opens the ptnetmap interface as `netmap:ethX`: the host port's own
# rings and buffers, mapped from BAR2. A pipe, not a VALE switch, because it
# never drops: a full ring holds the sender back, so every count below is
# exact however slowly the nested emulation runs. Checked:
#   1. guest -> host on TX ring 1 (NR_REG_ONE_NIC): every packet arrives
#      verified; the interface has no carrier while netmap mode has the rings
#   2. host -> guest on all rings (NR_REG_ALL_NIC): every packet arrives
#      verified, and ring interrupts (MSI-X) wake ptgen rx
#   3. ping/pong round trips guest <-> host (JSON printed)
#   4. once ptgen exits the interface works again: it pings the host's stack
#      (a veth pair, bridged onto gp}1 by ptbridge meanwhile)
#   5. netmap mode again, host -> guest
#   6. with nothing to receive ptgen rx sleeps in poll(); the device unbinds
#      under it: ptgen fails instead of hanging, an application that held
#      the mapping of BAR2 (map_revoke) gets SIGBUS on every page of it,
#      the guest kernel stays clean (lab.py checks its log and unloads the
#      module), and the device binds and comes up again
# Usage: netmap_mode.sh BUILD_DIR (in the lab VM: lab.py run --kvm).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../e2e/lib.sh"
build=${1:?usage: netmap_mode.sh BUILD_DIR}
ptgen=$build/tools/ptgen
map_revoke=$build/tests/guest/map_revoke
mac=02:50:54:4e:4d:11
stack_mac=02:50:54:4e:4d:fe	# v1, the host stack's end of the veth
host_end='netmap:gp}1'
count=${NETMAP_MODE_COUNT:-200000}
again=20000
pings=2000

fail() { echo "FAIL: $*"; exit 1; }

# Sum of the interrupts of our ring vectors.
ring_irqs() {
	awk '/ptnetmap-ring/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

guest_side() {
	fail() { echo "FAIL: $*"; dmesg | tail -15; exit 1; }
	ifname=$(ifname_of "$mac") || fail "no ptnetmap interface in the guest"
	pci=$(basename "$(readlink -f "/sys/class/net/$ifname/device")")
	# Only ptgen's packets may reach the verifying receivers: no IPv6
	# chatter, no ARP (static neighbours on both sides).
	sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip addr add 10.99.0.1/24 dev "$ifname"
	ip neigh replace 10.99.0.2 lladdr "$stack_mac" dev "$ifname"
	ip link set "$ifname" up || fail "START refused"
	[ "$(cat "/sys/class/net/$ifname/carrier")" = 1 ] || fail "no carrier after START"
	echo "guest: $ifname ($pci) is up"
	tmp=$(mktemp -d)

	# 1. guest -> host on TX ring 1 only; no carrier meanwhile (at a rate
	# that keeps netmap mode on for a few seconds).
	"$ptgen" tx -i "netmap:$ifname-1" -n "$count" -r 50k -q --json \
		>"$tmp/tx1.json" 2>"$tmp/tx1.err" &
	tx=$!
	sleep 1.5
	kill -0 "$tx" 2>/dev/null || fail "ptgen tx ended before the carrier check"
	carrier=$(cat "/sys/class/net/$ifname/carrier")
	# Down until phase 4 (before netmap mode ends, so the interface does
	# not take ring 0 back): what the host sends waits in the RX rings.
	ip link set "$ifname" down
	wait "$tx" || { cat "$tmp/tx1.err"; fail "ptgen tx (netmap mode, ring 1)"; }
	echo "guest tx: $(cat "$tmp/tx1.json")"
	[ "$carrier" = 0 ] || fail "the interface kept its carrier in netmap mode"
	echo "guest: no carrier while netmap mode held the rings"

	# 2. host -> guest on all rings.
	irqs=$(ring_irqs)
	"$ptgen" rx -i "netmap:$ifname" -n "$count" --verify --idle 30 -q --json \
		>"$tmp/rx2.json" 2>"$tmp/rx2.err" || { cat "$tmp/rx2.err"; fail "ptgen rx (netmap mode)"; }
	echo "guest rx: $(cat "$tmp/rx2.json")"
	irqs=$(($(ring_irqs) - irqs))
	echo "guest: $irqs ring interrupts during rx"
	[ "$irqs" -gt 0 ] || fail "no ring interrupt woke ptgen rx"

	# 3. round trips against the host's pong.
	"$ptgen" ping -i "netmap:$ifname" -n "$pings" --reply-timeout 3 -q --json \
		>"$tmp/ping.json" 2>"$tmp/ping.err" || { cat "$tmp/ping.err"; fail "ptgen ping"; }
	echo "guest ping: $(cat "$tmp/ping.json")"

	# 4. the interface has the rings again.
	ip link set "$ifname" up || fail "START refused after netmap mode"
	for _ in $(seq 50); do
		[ "$(cat "/sys/class/net/$ifname/carrier")" = 1 ] && break
		sleep 0.1
	done
	[ "$(cat "/sys/class/net/$ifname/carrier")" = 1 ] ||
		fail "no carrier after netmap mode ended"
	busybox ping -c 5 -W 5 10.99.0.2 || fail "ping to the host's stack after netmap mode"
	echo "guest: the interface works again after netmap mode"

	# 5. netmap mode again; the interface tells the host to go on.
	python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"go", ("10.99.0.2", 9999))' ||
		fail "UDP to the host"
	sleep 1
	ip link set "$ifname" down
	# Whatever the stack's traffic left in the rings is not ptgen's.
	"$ptgen" rx -i "netmap:$ifname" -d 2 -q --json >"$tmp/drain.json" 2>/dev/null
	echo "guest: drained $(sed 's/.*"packets":\([0-9]*\).*/\1/' "$tmp/drain.json") stray packets"
	"$ptgen" rx -i "netmap:$ifname" -n "$again" --verify --idle 30 -q --json \
		>"$tmp/rx5.json" 2>"$tmp/rx5.err" || { cat "$tmp/rx5.err"; fail "ptgen rx, second time"; }
	echo "guest rx again: $(cat "$tmp/rx5.json")"

	# 6. nothing arrives any more: ptgen rx must sleep in poll(); then the
	# device goes away under it.
	"$ptgen" rx -i "netmap:$ifname" --idle 100 -q >/dev/null 2>"$tmp/rx6.err" &
	rx=$!
	"$map_revoke" "netmap:$ifname" "$tmp/mapped" >"$tmp/revoke.out" 2>&1 &
	holder=$!
	for _ in $(seq 100); do [ -e "$tmp/mapped" ] && break; sleep 0.1; done
	[ -e "$tmp/mapped" ] || { cat "$tmp/revoke.out"; fail "map_revoke did not map the port"; }
	sleep 2
	t0=$(cpu_ticks "$rx")
	sleep 3
	t1=$(cpu_ticks "$rx")
	state=$(awk '{ print $3 }' "/proc/$rx/stat")
	echo "guest rx idle: state $state, wchan $(cat "/proc/$rx/wchan"), $((t1 - t0)) ticks of CPU in 3 s"
	[ "$state" = S ] && [ $((t1 - t0)) -le 30 ] ||
		fail "ptgen rx does not sleep while nothing arrives"
	echo "$pci" >/sys/bus/pci/drivers/ptnetmap/unbind || fail "unbind"
	for _ in $(seq 50); do kill -0 "$rx" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$rx" 2>/dev/null; then
		kill "$rx"
		fail "ptgen rx still runs after its device went away"
	fi
	wait "$rx" && fail "ptgen rx succeeded on a device that went away"
	echo "guest: after unbind ptgen rx stopped: $(tail -1 "$tmp/rx6.err")"
	for _ in $(seq 50); do kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$holder" 2>/dev/null && { kill "$holder"; fail "map_revoke still polls a device that went away"; }
	wait "$holder" || { cat "$tmp/revoke.out"; fail "the mapping of BAR2 outlived the device"; }
	echo "guest: $(cat "$tmp/revoke.out")"
	echo "$pci" >/sys/bus/pci/drivers/ptnetmap/bind || fail "bind again"
	found=$(ifname_of "$mac") || fail "no interface after binding the device again"
	ip link set "$found" up || fail "START refused after rebinding"
	echo "guest: rebound as $found, up"
	exit 0
}

if [ "${2:-}" = --inside ]; then
	count=$3
	guest_side
fi

sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
modprobe veth || fail "no veth"
ip link add v0 type veth peer name v1 || fail "veth"
ip link set v1 address "$stack_mac"
ip addr add 10.99.0.2/24 dev v1
ip neigh replace 10.99.0.1 lladdr "$mac" dev v1
ip link set v0 up && ip link set v1 up
tmp=$(mktemp -d)
python3 -u "$here/../e2e/pt_server.py" "$tmp/vm1.sock" --name vm1 --port 'gp{1' --shared \
	--mac "$mac" --rings 2 >"$tmp/server.log" 2>&1 &
server=$!
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.99.0.2", 9999))
s.settimeout(900)
open(sys.argv[1], "wb").write(s.recv(64))' "$tmp/go" &
go=$!

# Ends the host's side early (the lab waits for every process of the job).
cleanup() {
	touch "$tmp/stop"
	pkill -P "$host" 2>/dev/null
	kill "$go" "$server" 2>/dev/null
}

# The pipe must be the attachment's before the host's end opens it.
for _ in $(seq 600); do [ -S "$tmp/vm1.sock" ] && break; sleep 0.1; done
[ -S "$tmp/vm1.sock" ] || { cat "$tmp/server.log"; kill "$go" "$server"; fail "the attachment was not created"; }

# The host's side, in the guest's order; "stop" ends it early.
(
	timeout 400 "$ptgen" rx -i "$host_end" -n "$count" --verify --idle 30 -q --json \
		>"$tmp/rx1.json" 2>"$tmp/rx1.err"
	echo $? >"$tmp/rx1.rc"
	# TX ring 0 only, so the guest's receiver sees one ordered stream.
	[ -e "$tmp/stop" ] || timeout 400 "$ptgen" tx -i "$host_end-0" -n "$count" -q --json \
		>"$tmp/tx2.json" 2>"$tmp/tx2.err"
	echo $? >"$tmp/tx2.rc"
	[ -e "$tmp/stop" ] || timeout 200 "$ptgen" pong -i "$host_end" -n "$pings" --idle 30 -q --json \
		>"$tmp/pong.json" 2>"$tmp/pong.err"
	bridge=""
	if [ ! -e "$tmp/stop" ]; then
		"$build/tools/ptbridge" -i "$host_end" -i netmap:v0 -q >"$tmp/bridge.log" 2>&1 &
		bridge=$!
	fi
	# The guest's interface pings the stack, then says "go" and goes down.
	for _ in $(seq 1000); do [ -s "$tmp/go" ] || [ -e "$tmp/stop" ] && break; sleep 0.2; done
	[ -n "$bridge" ] && kill "$bridge" && wait "$bridge"
	sleep 10
	[ -e "$tmp/stop" ] || timeout 200 "$ptgen" tx -i "$host_end-0" -n "$again" -q --json \
		>"$tmp/tx5.json" 2>"$tmp/tx5.err"
	echo $? >"$tmp/tx5.rc"
) &
host=$!

# Not --quiet: the guest's output comes live, so a run stopped for time
# shows how far it got.
"$here/../lab/lab.py" guest --timeout 500 --module "$build/kmod/ptnetmap.ko" \
	--qemu-arg "-chardev socket,id=iv0,path=$tmp/vm1.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=5,ioeventfd=on" \
	-- "$0" "$build" --inside "$count"
rc=$?
# The guest gave up early: the host's side would wait in vain.
[ "$rc" -eq 0 ] || cleanup
kill "$go" 2>/dev/null
wait "$server"
grep -q "detached vm1" "$tmp/server.log" || { cat "$tmp/server.log"; fail "the attachment was not detached"; }
wait "$host"

for f in rx1 tx2 pong tx5; do
	echo "host $f: $(cat "$tmp/$f.json" 2>/dev/null)"
done
[ "$rc" -eq 0 ] || fail "guest side (status $rc)"
[ "$(cat "$tmp/rx1.rc")" = 0 ] || { cat "$tmp/rx1.err"; fail "host rx: not every guest packet arrived verified"; }
[ "$(cat "$tmp/tx2.rc")" = 0 ] || { cat "$tmp/tx2.err"; fail "host tx"; }
[ "$(cat "$tmp/tx5.rc")" = 0 ] || { cat "$tmp/tx5.err"; fail "host tx, second netmap session"; }
echo "PASS: netmap mode in a KVM guest: $count packets each way verified, RTT, interface resumes, unbind safe (mapping revoked)"
