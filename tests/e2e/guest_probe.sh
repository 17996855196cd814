#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# e2e: the guest driver binds an ivshmem-doorbell device that carries a
# ptnetmap port and only that one, creates its interface with the host's MAC,
# drives the control mailbox (START on up, STOP on down), and carries UDP
# datagrams of every size both ways through the rings and the CSB, all
# through the real doorbell (KVM ioeventfd) and MSI-X (KVM irqfd) path.
#
# Runs in the lab VM (label e2e, KVM): a fake host (fake_ptnm_host.py) serves
# one device with our layout and one foreign device; a level-2 guest loads
# ptnetmap.ko and runs this script with --inside.
set -u
here=$(cd "$(dirname "$0")" && pwd)
mac=02:50:54:4e:4d:07

fail() { echo "FAIL: $*"; exit 1; }

if [ "${1:-}" = --inside ]; then
	ivshmem=$(grep -l 0x1110 /sys/bus/pci/devices/*/device | wc -l)
	bound=$(ls /sys/bus/pci/drivers/ptnetmap 2>/dev/null | grep -c '^0000:')
	echo "ivshmem devices: $ivshmem, bound to ptnetmap: $bound"
	[ "$ivshmem" -eq 2 ] || fail "expected two ivshmem devices"
	[ "$bound" -eq 1 ] || fail "the driver must bind our device and only it"
	ifname=""
	for dev in /sys/class/net/*; do
		[ "$(cat "$dev/address")" = "$mac" ] && ifname=$(basename "$dev")
	done
	[ -n "$ifname" ] || fail "no interface with the host's MAC $mac"
	echo "interface $ifname has the host's MAC"
	ip link set "$ifname" up || fail "ip link set up: the host did not answer START"
	[ "$(cat "/sys/class/net/$ifname/carrier")" = 1 ] || fail "no carrier after START"
	echo "up: carrier on"
	ip addr add 10.99.0.1/24 dev "$ifname"
	ip neigh add 10.99.0.2 lladdr 02:50:54:4e:4d:fe dev "$ifname"
	python3 - <<'PY' || fail "UDP echo through the rings"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.99.0.1", 5000))
s.settimeout(5)
count = 300  # more than a lap of the 256-slot rings
for i in range(count):
    payload = bytes([i % 251]) * (1 + (i * 37) % 1400)
    s.sendto(payload, ("10.99.0.2", 7))
    data, peer = s.recvfrom(2048)
    assert data == payload and peer == ("10.99.0.2", 7), f"datagram {i} came back wrong"
print(f"UDP echo: {count} datagrams of 1..1400 bytes came back intact")
PY
	rx=$(cat "/sys/class/net/$ifname/statistics/rx_packets")
	tx=$(cat "/sys/class/net/$ifname/statistics/tx_packets")
	echo "interface counters: tx_packets=$tx rx_packets=$rx"
	[ "$rx" -ge 300 ] || fail "rx_packets $rx < 300"
	ip link set "$ifname" down || fail "ip link set down"
	echo "down"
	exit 0
fi

ko=${1:?usage: guest_probe.sh PTNETMAP_KO}
tmp=$(mktemp -d)
python3 "$here/fake_ptnm_host.py" "$tmp/ours.sock" --log "$tmp/ours.log" --mac "$mac" &
python3 "$here/fake_ptnm_host.py" "$tmp/foreign.sock" --log "$tmp/foreign.log" --foreign &
for _ in $(seq 50); do
	[ -S "$tmp/ours.sock" ] && [ -S "$tmp/foreign.sock" ] && break
	sleep 0.1
done

"$here/../lab/lab.py" guest --quiet --module "$ko" \
	--qemu-arg "-chardev socket,id=iv0,path=$tmp/ours.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=3,ioeventfd=on" \
	--qemu-arg "-chardev socket,id=iv1,path=$tmp/foreign.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv1,vectors=3" \
	-- "$here/guest_probe.sh" --inside
rc=$?
kill $(jobs -p) 2>/dev/null
echo "host saw: $(tr '\n' ' ' < "$tmp/ours.log")"
[ "$rc" -eq 0 ] || fail "guest checks failed (status $rc)"
grep -q "request=1 .* status=0" "$tmp/ours.log" || fail "the host never answered START"
grep -q "request=2 .* status=0" "$tmp/ours.log" || fail "the host never answered STOP"
grep -q "echoed=3[0-9][0-9]" "$tmp/ours.log" || fail "the host did not echo the datagrams"
! grep -q "request=" "$tmp/foreign.log" || fail "the driver talked to a foreign ivshmem device"
echo "PASS: guest driver bound our device only, drove START/STOP and moved UDP both ways"
