#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# e2e: a level-2 KVM guest on a VALE switch through a real passthrough
# attachment. The lab VM (the host) attaches port vale0:vm1 to a memfd
# (ptnm-ivshmem-server), QEMU's stock ivshmem-doorbell maps it, the guest driver
# binds it; a veth pair bridged onto vale0 with ptbridge puts the host's
# stack on the switch. The guest pings the host and sends it UDP; then its
# module is unloaded under traffic and loaded again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=${1:?usage: vm_vale.sh BUILD_DIR}
mac=02:50:54:4e:4d:07

fail() { echo "FAIL: $*"; exit 1; }

if [ "${2:-}" = --inside ]; then
	ifname=$(ifname_of "$mac") || fail "no ptnetmap interface in the guest"
	ip addr add 10.99.0.1/24 dev "$ifname"
	ip link set "$ifname" up || fail "START refused"
	busybox ping -c 5 -W 3 10.99.0.2 || fail "ping across the switch"
	python3 - <<'PY' || fail "UDP to the host"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200):
    s.sendto(b"ptnetmap %d" % i + bytes(i * 7), ("10.99.0.2", 9999))
print("sent 200 datagrams")
PY
	# The module goes away under traffic both ways (pings back to back, and
	# UDP to a closed port, which the host answers with ICMP), then loads
	# again: the device binds again and the interface works. lab.py fails
	# the run on any oops or warning in this guest's log.
	busybox ping -A -q -w 120 10.99.0.2 >/dev/null 2>&1 &
	pinger=$!
	python3 - <<'PY' &
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 120
while time.monotonic() < end:
    try:
        s.sendto(bytes(512), ("10.99.0.2", 9998))
    except OSError:
        time.sleep(0.01)  # no route while the interface is gone
PY
	sender=$!
	sleep 3
	rmmod ptnetmap || fail "rmmod under traffic"
	[ -z "$(ifname_of "$mac")" ] || fail "the interface outlived the module"
	insmod "$build/kmod/ptnetmap.ko" || fail "insmod after rmmod"
	ifname=""
	for _ in $(seq 50); do ifname=$(ifname_of "$mac") && break; sleep 0.1; done
	[ -n "$ifname" ] || fail "no interface after loading the module again"
	kill "$pinger" "$sender"
	wait "$pinger" "$sender" 2>/dev/null
	ip addr add 10.99.0.1/24 dev "$ifname"
	ip link set "$ifname" up || fail "START refused after reloading"
	busybox ping -c 5 -W 3 10.99.0.2 || fail "ping after reloading the module"
	echo "guest: module unloaded under traffic and loaded again; $ifname works"
	exit 0
fi

modprobe veth || fail "no veth"
ip link add v0 type veth peer name v1 || fail "veth"
ip addr add 10.99.0.2/24 dev v1
ip link set v0 up && ip link set v1 up
tmp=$(mktemp -d)
"$build/qemu/ptnm-ivshmem-server" --name vm1 --port vale0:vm1 --mac "$mac" --dir "$tmp" \
	>"$tmp/server.log" 2>&1 &
server=$!
"$build/tools/ptbridge" -i netmap:v0 -i vale0:uplink -q >"$tmp/bridge.log" 2>&1 &
bridge=$!
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999)); s.settimeout(300)
print("udp receiver ready", flush=True)
n = 0
try:
    while n < 200:
        s.recv(4096); n += 1
        s.settimeout(10)  # the rest come right after the first
except socket.timeout:
    pass
open(sys.argv[1], "w").write(str(n))
' "$tmp/udp.count" &
udp=$!
for _ in $(seq 100); do [ -S "$tmp/vm1.sock" ] && break; sleep 0.1; done
[ -S "$tmp/vm1.sock" ] || fail "the attachment was not created"

"$here/../lab/lab.py" guest --quiet --module "$build/kmod/ptnetmap.ko" \
	--qemu-arg "-chardev socket,id=iv0,path=$tmp/vm1.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=3,ioeventfd=on" \
	-- "$here/vm_vale.sh" "$build" --inside
rc=$?
# The guest is gone; on SIGTERM the server detaches the attachment.
kill -TERM "$server"
wait "$server"
ip -s link show v1 | sed -n '3,4p'
wait "$udp"
got=$(cat "$tmp/udp.count" 2>/dev/null || echo 0)
grep -q "detached vm1" "$tmp/server.log" || { cat "$tmp/server.log"; fail "the attachment was not detached"; }
# ptbridge must let go of its ports before the module can unload.
kill "$bridge" 2>/dev/null
for _ in $(seq 50); do kill -0 "$bridge" 2>/dev/null || break; sleep 0.2; done
kill -0 "$bridge" 2>/dev/null && { echo "ptbridge ignored SIGTERM"; kill -9 "$bridge"; }
echo "host received $got of 200 UDP datagrams"
[ "$rc" -eq 0 ] || fail "guest side (status $rc)"
[ "$got" -ge 190 ] || fail "too few datagrams reached the host"
echo "PASS: KVM guest on vale0 through a kernel passthrough attachment"
