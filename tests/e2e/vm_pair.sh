#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# e2e: two level-2 KVM guests connected three ways at once, in one lab run:
#   vale    each guest has a private port on VALE switch vale0 (untrusted:
#           private regions, copies); the host's stack is on vale0 too
#           (veth + ptbridge);
#   pipe    the two ends of netmap pipe pp in one shared region (trusted:
#           zero copy between the guests);
#   virtio  the standard path: virtio-net on a tap each, on a Linux bridge.
# The passthrough attachments are made by ptnm-ivshmem-server; QEMU is the
# stock one with ivshmem-doorbell devices.
#
# Guest B pings guest A (and the host, on vale0), moves verified TCP streams
# (tests/e2e/netcheck.py checks byte count and SHA-256) and measures TCP
# round trips over each path. Then both guests put their ptnetmap interfaces
# in netmap mode and run ptgen on them (the host ports' own rings, zero copy
# from guest to host port): two million verified packets B -> A through the
# pipe (none may be lost), two million B -> A over vale0, as fast as B
# sends them. A switch does not hold its sender back: what finds guest A's
# ring full is dropped and counted, so there every packet must be accounted
# for: received by A verified and in order, or counted by vale0 as a
# ring-full drop at vmA (the host reads that counter right before and after).
# PAIR_VALE_PACKETS=N changes the count (0 skips the step), PAIR_VALE_RATE
# paces guest B (ptgen -r). Results are printed as "RESULT <path> <json>"
# lines, the attachments' counters as "counters <json>"; damage, reordering,
# any loss on the pipe, packets vale0 lost without counting them, or vale0
# delivering under 5% fails the test. Last, ping/pong round trips over the
# pipe, blocking and busy-waiting.
#
#   vm_pair.sh BUILD_DIR [--results DIR]   (DIR gets results.txt, counters.txt)
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=${1:?usage: vm_pair.sh BUILD_DIR [--results DIR]}
netcheck="python3 $here/netcheck.py"
mac_pt_a=02:50:54:4e:4d:0a
mac_pt_b=02:50:54:4e:4d:0b
mac_pp_a=02:50:54:4e:50:0a
mac_pp_b=02:50:54:4e:50:0b
mac_vn_a=02:50:56:00:00:0a
mac_vn_b=02:50:56:00:00:0b
mb=${PAIR_MB:-16}
ptgen=$build/tools/ptgen
pipe_count=${PAIR_PIPE_PACKETS:-2000000}
vale_count=${PAIR_VALE_PACKETS:-2000000}
vale_rate=${PAIR_VALE_RATE:-}
# Both guests share one lab CPU, and an unpaced sender outruns a copying
# switch's receiver (a quarter arrived in earlier runs). 5% separates a
# working path from a broken one (none, or a stall after one ring: 0.03%).
vale_min_pct=5
pings=${PAIR_PINGS:-2000}

fail() { echo "FAIL: $*"; exit 1; }

iface_up() {  # iface_up MAC IP WHAT
	dev=""
	for _ in $(seq 20); do dev=$(ifname_of "$1") && break; sleep 0.2; done
	[ -n "$dev" ] || fail "no $3 interface in the guest"
	ip addr add "$2/24" dev "$dev" && ip link set "$dev" up || fail "$3 interface up"
}

guest_setup() {  # guest_setup A|B
	modprobe virtio_net 2>/dev/null
	# Only our traffic on the links: the netmap phase verifies every frame.
	sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip link set lo up
	case $1 in
	A) iface_up $mac_pt_a 10.99.0.11 "ptnetmap (vale)"
	   iface_up $mac_pp_a 10.97.0.11 "ptnetmap (pipe)"
	   iface_up $mac_vn_a 10.98.0.11 virtio-net ;;
	B) iface_up $mac_pt_b 10.99.0.12 "ptnetmap (vale)"
	   iface_up $mac_pp_b 10.97.0.12 "ptnetmap (pipe)"
	   iface_up $mac_vn_b 10.98.0.12 virtio-net ;;
	esac
}

# result PATH COMMAND...: runs a netcheck client, prints its JSON as a RESULT.
result() {
	path=$1; shift
	out=$($netcheck "$@") || fail "$path: $* ($out)"
	echo "RESULT $path $out"
}

reach() {  # reach IP: wait until it answers a ping (the other guest boots)
	for _ in $(seq 120); do busybox ping -c 1 -W 1 "$1" >/dev/null 2>&1 && return 0; done
	fail "$1 never answered"
}

# netmap_mode MAC...: the guest's interfaces leave the stack to netmap
# applications (ptgen opens netmap:ethX: the host port's own rings); what the
# stack left in their rings is drained first. Drained again right before a
# receiver starts: what arrives while nobody has the port waits in its ring.
netmap_mode() {
	for m in "$@"; do
		dev=$(ifname_of "$m")
		ip link set "$dev" down
		"$ptgen" rx -i "netmap:$dev" -d 2 -q >/dev/null 2>&1
	done
}

# receive LABEL PORT COUNT SIGNAL_PORT: guest A's ptgen rx; once it is
# ready, guest B is told (over virtio-net) to start sending.
receive() {
	"$ptgen" rx -i "$2" -n "$3" --verify --idle 10 -q --json >"/tmp/$1.json" 2>"/tmp/$1.err" &
	rx=$!
	for _ in $(seq 200); do grep -q ': ready' "/tmp/$1.err" && break; sleep 0.1; done
	$netcheck quit 10.98.0.12 --port "$4" --wait 120 || fail "$1: cannot signal guest B"
	wait "$rx"
	[ -s "/tmp/$1.json" ] || { cat "/tmp/$1.err"; fail "$1: ptgen rx"; }
	echo "RESULT $1 $(cat "/tmp/$1.json")"
}

case "${2:-}" in
--server)
	guest_setup A
	$netcheck serve || fail "server"
	# netmap applications in both guests, guest B sending.
	netmap_mode $mac_pp_a $mac_pt_a
	pp=netmap:$(ifname_of $mac_pp_a) vl=netmap:$(ifname_of $mac_pt_a)
	receive netmap-pipe-rx "$pp" "$pipe_count" 5002
	if [ "$vale_count" -gt 0 ]; then
		"$ptgen" rx -i "$vl" -d 2 -q >/dev/null 2>&1
		# The host reads vale0's drop counters, then says so.
		$netcheck quit 10.98.0.2 --port 5005 --wait 60 || fail "cannot signal the host (vale0)"
		$netcheck serve --port 5006 >/dev/null || fail "waiting for the host (vale0)"
		receive netmap-vale-rx "$vl" "$vale_count" 5003
	fi
	"$ptgen" pong -i "$pp" --idle 20 -q >/tmp/pong.log 2>&1 &
	pong=$!
	for _ in $(seq 200); do grep -q ': ready' /tmp/pong.log && break; sleep 0.1; done
	$netcheck quit 10.98.0.12 --port 5004 --wait 120 || fail "cannot signal guest B (pong)"
	wait "$pong"
	exit 0 ;;
--client)
	guest_setup B
	reach 10.99.0.11
	busybox ping -c 5 -W 3 10.99.0.11 || fail "ping guest to guest across vale0"
	result vale-guest-guest transfer 10.99.0.11 --mb "$mb"
	result vale-guest-guest rtt 10.99.0.11 --count 500
	busybox ping -c 3 -W 3 10.99.0.2 || fail "ping guest to host across vale0"
	result vale-guest-host transfer 10.99.0.2 --mb "$mb"
	result vale-guest-host rtt 10.99.0.2 --count 500
	reach 10.97.0.11
	busybox ping -c 5 -W 3 10.97.0.11 || fail "ping guest to guest through pipe pp"
	result pipe-guest-guest transfer 10.97.0.11 --mb "$mb"
	result pipe-guest-guest rtt 10.97.0.11 --count 500
	reach 10.98.0.11
	result virtio-guest-guest transfer 10.98.0.11 --mb "$mb"
	result virtio-guest-guest rtt 10.98.0.11 --count 500
	$netcheck quit 10.98.0.11
	# netmap applications: guest B sends, guest A receives and verifies.
	netmap_mode $mac_pp_b $mac_pt_b
	pp=netmap:$(ifname_of $mac_pp_b) vl=netmap:$(ifname_of $mac_pt_b)
	$netcheck serve --port 5002 >/dev/null || fail "waiting for guest A (pipe)"
	out=$("$ptgen" tx -i "$pp" -n "$pipe_count" -q --json) || fail "ptgen tx over the pipe"
	echo "RESULT netmap-pipe-tx $out"
	if [ "$vale_count" -gt 0 ]; then
		$netcheck serve --port 5003 >/dev/null || fail "waiting for guest A (vale)"
		out=$("$ptgen" tx -i "$vl" -n "$vale_count" ${vale_rate:+-r "$vale_rate"} -b 32 -q --json) ||
			fail "ptgen tx over vale0"
		echo "RESULT netmap-vale-tx $out"
	fi
	$netcheck serve --port 5004 >/dev/null || fail "waiting for guest A (pong)"
	out=$("$ptgen" ping -i "$pp" -n "$pings" --reply-timeout 3 -q --json) ||
		fail "ptgen ping over the pipe"
	echo "RESULT netmap-pipe-ping $out"
	out=$("$ptgen" ping -i "$pp" -n "$pings" --reply-timeout 3 --busy -q --json) ||
		fail "ptgen ping --busy over the pipe"
	echo "RESULT netmap-pipe-ping-busy $out"
	exit 0 ;;
esac

results=""
[ "${2:-}" = --results ] && results=$3
server="$build/qemu/ptnm-ivshmem-server"

modprobe veth && modprobe tun && modprobe bridge || fail "host modules (veth, tun, bridge)"
# The lab VM's stack on vale0 speaks IPv4 only: IPv6 would flood router
# solicitations to every port, into the verifying receivers.
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
modprobe vhost_net 2>/dev/null
tmp=$(mktemp -d)
pids=""
cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	for pid in $pids; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$pid" 2>/dev/null
	done
	ip link del v0 2>/dev/null; ip link del br0 2>/dev/null
	ip link del tapA 2>/dev/null; ip link del tapB 2>/dev/null
}
trap cleanup EXIT

# The host's stack on vale0.
ip link add v0 type veth peer name v1 || fail "veth"
ip addr add 10.99.0.2/24 dev v1
ip link set v0 up && ip link set v1 up
"$build/tools/ptbridge" -i netmap:v0 -i vale0:uplink -q >"$tmp/bridge.log" 2>&1 &
pids="$pids $!"
$netcheck serve >"$tmp/hostserver.log" 2>&1 &
hostserver=$!

# The standard path: a Linux bridge with a tap per guest. The host is on it
# too, for guest A to tell it when to read vale0's counters.
ip link add br0 type bridge && ip link set br0 up || fail "bridge"
ip addr add 10.98.0.2/24 dev br0
vhost=off
[ -c /dev/vhost-net ] && vhost=on
for t in tapA tapB; do
	ip tuntap add "$t" mode tap && ip link set "$t" master br0 && ip link set "$t" up ||
		fail "tap $t"
done

# Untrusted: a private VALE port each. Trusted: both ends of pipe pp in one
# shared region, peer 1 (A) on pp-1.sock, peer 2 (B) on pp-2.sock.
"$server" --name vmA --port vale0:vmA --mac $mac_pt_a --dir "$tmp" >"$tmp/serverA.log" 2>&1 &
servers="$!"
"$server" --name vmB --port vale0:vmB --mac $mac_pt_b --dir "$tmp" >"$tmp/serverB.log" 2>&1 &
servers="$servers $!"
"$server" --name pp --shared --port 'pp{1' --mac $mac_pp_a --port 'pp}1' --mac $mac_pp_b \
	--dir "$tmp" >"$tmp/serverP.log" 2>&1 &
servers="$servers $!"
pids="$pids $servers"
for log in serverA serverB serverP; do
	for _ in $(seq 100); do grep -q '^ready' "$tmp/$log.log" && break; sleep 0.1; done
	grep -q '^ready' "$tmp/$log.log" || { cat "$tmp/$log.log"; fail "attachment ($log)"; }
done

# Both guests run on the lab VM's CPU 0 (its kernel workers keep CPU 1): two
# level-2 vCPUs running at once on the lab's emulated SVM have made a guest
# triple-fault while booting, and once taken the lab VM's kernel down with it.
guest() {  # guest A|B ROLE
	vn_mac=$mac_vn_a peer=1
	[ "$1" = B ] && vn_mac=$mac_vn_b peer=2
	taskset -c 0 "$here/../lab/lab.py" guest --quiet --module "$build/kmod/ptnetmap.ko" --timeout 600 \
		--qemu-arg "-chardev socket,id=iv0,path=$tmp/vm$1.sock" \
		--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=3,ioeventfd=on" \
		--qemu-arg "-chardev socket,id=iv1,path=$tmp/pp-$peer.sock" \
		--qemu-arg "-device ivshmem-doorbell,chardev=iv1,vectors=3,ioeventfd=on" \
		--qemu-arg "-netdev tap,id=vn0,ifname=tap$1,script=no,downscript=no,vhost=$vhost" \
		--qemu-arg "-device virtio-net-pci,netdev=vn0,mac=$vn_mac" \
		-- "$here/vm_pair.sh" "$build" "$2"
}

# vale0's counters right before the two million packets over it.
if [ "$vale_count" -gt 0 ]; then
	(
		$netcheck serve --port 5005 >/dev/null
		python3 "$here/../lib/ptkern.py" stats vale0:vmA >"$tmp/vale-before.txt"
		$netcheck quit 10.98.0.11 --port 5006 --wait 60
	) &
	pids="$pids $!"
fi

guest A --server >"$tmp/guestA.log" 2>&1 &
guestA=$!
sleep 5
guest B --client 2>&1 | tee "$tmp/guestB.log"
wait "$guestA"
rcA=$?
$netcheck quit 10.99.0.2 >/dev/null 2>&1
wait "$hostserver"
# What vale0's ports saw (received, sent, dropped by cause): the switch's
# side of whatever the guests report.
python3 "$here/../lib/ptkern.py" stats vale0:vmA vale0:vmB vale0:uplink | tee "$tmp/vale-after.txt"
# The servers print each peer's counters and detach on SIGTERM.
for pid in $servers; do kill -TERM "$pid"; wait "$pid"; done
grep -h '^counters ' "$tmp"/server?.log

grep -q '^FAIL' "$tmp/guestA.log" && { cat "$tmp/guestA.log"; fail "guest A"; }
[ "$rcA" -eq 0 ] || { cat "$tmp/guestA.log"; fail "guest A (status $rcA)"; }
grep -q '^FAIL' "$tmp/guestB.log" && fail "guest B"
want=11
[ "$vale_count" -gt 0 ] && want=12
n=$(grep -c '^RESULT ' "$tmp/guestB.log")
[ "$n" -eq "$want" ] || fail "guest B reported $n of $want results"
grep '^RESULT ' "$tmp/guestA.log"
json_of() {  # json_of LABEL KEY
	grep -h "^RESULT $1 " "$tmp"/guest?.log | cut -d' ' -f3- |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$2"
}
# A pipe never drops: a full ring holds the sender back.
[ "$(json_of netmap-pipe-rx packets)" = "$pipe_count" ] &&
	[ "$(json_of netmap-pipe-rx lost)" = 0 ] || fail "netmap applications lost packets on the pipe"
paths=pipe
[ "$vale_count" -gt 0 ] && paths="pipe vale"
for path in $paths; do
	[ "$(json_of netmap-$path-rx corrupted)" = 0 ] && [ "$(json_of netmap-$path-rx out_of_order)" = 0 ] ||
		fail "netmap applications: damaged or reordered packets over $path"
done
[ "$(json_of netmap-pipe-ping lost)" = 0 ] || fail "ping/pong lost round trips over the pipe"
# A switch drops what finds the receiver's ring full: bounded, never all.
if [ "$vale_count" -gt 0 ]; then
	got=$(json_of netmap-vale-rx packets)
	drops=$(python3 - "$tmp/vale-before.txt" "$tmp/vale-after.txt" <<-'EOF'
		import json, sys
		def ring_full(path):
		    for line in open(path):
		        if line.startswith("port vale0:vmA "):
		            return json.loads(line.split(" ", 2)[2])["rx_drop_ring_full"]
		    sys.exit(f"no counters of vale0:vmA in {path}")
		print(ring_full(sys.argv[2]) - ring_full(sys.argv[1]))
	EOF
	) || fail "vale0's counters"
	echo "vale0: $got of $vale_count packets arrived (${vale_rate:-unpaced}), $drops dropped at vmA's full ring"
	[ $((got + drops)) -eq "$vale_count" ] ||
		fail "vale0 lost $((vale_count - got - drops)) packets without counting them"
	[ $((got * 100)) -ge $((vale_count * vale_min_pct)) ] ||
		fail "netmap applications over vale0: $got of $vale_count packets arrived (less than $vale_min_pct%)"
fi
for log in serverA serverB serverP; do
	grep -q '^detached ' "$tmp/$log.log" || { cat "$tmp/$log.log"; fail "$log did not detach"; }
	grep '^counters ' "$tmp/$log.log" | grep -qv '"errors": 0}' &&
		{ cat "$tmp/$log.log"; fail "$log: a guest broke the ring protocol"; }
done
if [ -n "$results" ]; then
	mkdir -p "$results"
	grep -h '^RESULT ' "$tmp/guestB.log" "$tmp/guestA.log" >"$results/results.txt"
	grep -h '^counters ' "$tmp"/server?.log >"$results/counters.txt"
fi
echo "PASS: two KVM guests over vale0 and pipe pp (ping, verified TCP, round trips) and over virtio-net (vhost=$vhost)"
