#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The benchmark suite's two-guest series (scripts/bench.sh --guests), in the
# lab VM with KVM, after guest_job.sh:
#
#   tests/bench/pair_job.sh BUILD_DIR
#
# Two level-2 KVM guests, A and B, as in tests/e2e/vm_pair.sh: each has a
# private port of VALE switch vale6 (untrusted), one end of pipe gg (both
# ends in one shared region: trusted, zero copy) and virtio-net on a tap of a
# Linux bridge (the standard path, vhost-net when the lab VM has it). Besides,
# pipes for a chain that starts and ends in the lab VM (the host):
#
#   host -d0- B -d1- host            one bridging VM
#   host -e0- A -e1- B -d1- host     two bridging VMs (e1: one shared region)
#
# Series, rows appended to $LAB_RESULTS/results.jsonl as lab_job.sh's:
#   guest_batch    guest B -> guest A against batch size over the pipe
#                  (ptgen on netmap:ethX: the host port's own rings), over
#                  VALE (ptgen) and over virtio-net (ptpkt: AF_PACKET with
#                  sendmmsg/recvmmsg of the same batch), a sender for a fixed
#                  time; the receiver's rate and what the sender sent (ptgen
#                  receivers verify every frame: lost, reordered, damaged)
#   cascade        the host sends for a fixed time into a chain of 0 (a host
#                  pipe), 1 or 2 VMs, each running ptbridge --copy between its
#                  two pipe ends, and receives at the end (the paper's
#                  cascaded VMs, Figs 10-11); a pipe never drops, so what is
#                  received must be what was sent
#   guest_notify, cascade_notify
#                  each attachment's kicks, interrupts and worker wake-ups per
#                  packet over the whole run (the servers' counters)
#
# The parties (a, b and h, the host) keep in step through marker files: each
# writes into its own folder (a guest's results folder, the host's $sync),
# and the host copies every marker into the other two folders. For step K the
# receiver and the bridges write K.ready.PARTY once their tool is ready, the
# sender starts on all of them; the receiver writes K.rx.json, then K.done,
# the sender K.tx.json; the bridges stop at K.done and everyone goes on.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../e2e/lib.sh"
build=${1:?usage: pair_job.sh BUILD_DIR}
bin=$build/tools
if [ "${BENCH_PROFILE:-short}" = long ]; then
	seconds=3 batches="1 4 16 64 256" chain_batches="64 256"
else
	seconds=1 batches="1 64 256" chain_batches=256
fi

log() { echo "bench pair: $*" >&2; }

# The MAC of each attachment's port (the guest finds its interface by it) and
# of each guest's virtio-net interface (vn.a, vn.b).
mac_of() {
	case $1 in
	vale6:a) echo 02:50:54:4e:56:0a ;;
	vale6:b) echo 02:50:54:4e:56:0b ;;
	'gg{1') echo 02:50:54:4e:57:0a ;;
	'gg}1') echo 02:50:54:4e:57:0b ;;
	'd0}1') echo 02:50:54:4e:58:0b ;;
	'd1{1') echo 02:50:54:4e:59:0b ;;
	'e0}1') echo 02:50:54:4e:5a:0a ;;
	'e1{1') echo 02:50:54:4e:5b:0a ;;
	'e1}1') echo 02:50:54:4e:5b:0b ;;
	vn.a) echo 02:50:56:00:06:0a ;;
	vn.b) echo 02:50:56:00:06:0b ;;
	*) return 1 ;;
	esac
}

# port_of KEY: the port KEY as this party ($me) opens it: the host opens its
# pipe ends by name, a guest the interface with the port's MAC (virtio-net:
# "vn", by interface name, for ptpkt).
port_of() {
	if [ "$me" = h ]; then
		echo "netmap:$1"
	elif [ "$1" = vn ]; then
		ifname_of "$(mac_of "vn.$me")"
	else
		echo "netmap:$(ifname_of "$(mac_of "$1")")"
	fi
}

# Every step, one per line: K SERIES X BATCH TOOL SENDER@KEY RECEIVER@KEY
# [BRIDGE@KEY+KEY...], X the path (guest_batch) or the number of bridging
# VMs (cascade).
steps() {
	k=0
	for path in pipe vale virtio; do
		for b in $batches; do
			k=$((k + 1))
			case $path in
			pipe) echo "$k guest_batch pipe $b ptgen b@gg}1 a@gg{1" ;;
			vale) echo "$k guest_batch vale $b ptgen b@vale6:b a@vale6:a" ;;
			virtio) echo "$k guest_batch virtio $b ptpkt b@vn a@vn" ;;
			esac
		done
	done
	for b in $chain_batches; do
		echo "$((k + 1)) cascade 0 $b ptgen h@cz{$((k + 1)) h@cz}$((k + 1))"
		echo "$((k + 2)) cascade 1 $b ptgen h@d0{1 h@d1}1 b@d0}1+d1{1"
		echo "$((k + 3)) cascade 2 $b ptgen h@e0{1 h@d1}1 a@e0}1+e1{1 b@e1}1+d1{1"
		k=$((k + 3))
	done
}

# side ME DIR: this party's part of every step, its markers in DIR.
side() {
	me=$1 dir=$2
	work=$(mktemp -d)
	steps | while read -r k series x b tool snd rcv bridges; do
		bridge="" waitfor=${rcv%%@*}
		for br in $bridges; do
			waitfor="$waitfor ${br%%@*}"
			[ "${br%%@*}" = "$me" ] || continue
			keys=${br#*@}
			"$bin/ptbridge" -i "$(port_of "${keys%+*}")" -i "$(port_of "${keys#*+}")" --copy \
				-b "$b" -q --json >"$work/bridge" 2>"$work/bridge.err" &
			bridge=$!
			ptgen_ready "$work/bridge.err" || { kill "$bridge"; exit 1; }
			: >"$dir/$k.ready.$me"
		done
		rx="" verify=""
		# ptgen checks every frame (sequence, checksums); ptpkt cannot.
		[ "$tool" = ptgen ] && verify=--verify
		if [ "${rcv%%@*}" = "$me" ]; then
			"$bin/$tool" rx -i "$(port_of "${rcv#*@}")" -b "$b" --idle 2 -d $((seconds + 60)) \
				$verify -q --json >"$work/rx" 2>"$work/rx.err" &
			rx=$!
			ptgen_ready "$work/rx.err" || { kill "$rx"; exit 1; }
			: >"$dir/$k.ready.$me"
		fi
		if [ "${snd%%@*}" = "$me" ]; then
			for p in $waitfor; do await "$dir/$k.ready.$p" || exit 1; done
			"$bin/$tool" tx -i "$(port_of "${snd#*@}")" -b "$b" -d "$seconds" -q --json \
				>"$dir/$k.tx.json" 2>"$work/tx.err" || log "step $k: $tool tx: $(cat "$work/tx.err")"
		fi
		if [ -n "$rx" ]; then
			wait "$rx"
			cp "$work/rx" "$dir/$k.rx.json"
			: >"$dir/$k.done"
		fi
		await "$dir/$k.done" || exit 1
		if [ -n "$bridge" ]; then
			kill -TERM "$bridge"
			wait "$bridge"
			cp "$work/bridge" "$dir/$k.bridge.$me.json"
		fi
	done
}

if [ "${2:-}" = --inside ]; then
	me=${3:?}
	sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
	modprobe virtio_net 2>/dev/null
	for _ in $(seq 20); do vn=$(port_of vn) && break; sleep 0.2; done
	ip link set "$vn" up || { echo "FAIL: no virtio-net interface"; exit 1; }
	# The ptnetmap interfaces stay down: only ptgen's frames leave the guest.
	side "$me" "$LAB_RESULTS"
	exit $?
fi

# mirror DIR...: copies every marker that appears in one DIR into the others,
# until the first DIR holds "end".
mirror() {
	while [ ! -e "$1/end" ]; do
		for d in "$@"; do
			for f in "$d"/*.ready.? "$d"/*.done; do
				[ -e "$f" ] || continue
				for e in "$@"; do
					[ -e "$e/${f##*/}" ] || : >"$e/${f##*/}"
				done
			done
		done
		sleep 0.2
	done
}

# guest a|b SOCKET...: a level-2 guest with an ivshmem-doorbell device per
# attachment socket and virtio-net on its tap, running its side. Both guests
# run on the lab VM's CPU 0, as in vm_pair.sh (two level-2 vCPUs at once on
# the emulated SVM have made guests triple-fault).
guest() (
	g=$1
	shift
	n=0
	for sock in "$@"; do
		shift
		set -- "$@" --qemu-arg "-chardev socket,id=iv$n,path=$tmp/$sock" \
			--qemu-arg "-device ivshmem-doorbell,chardev=iv$n,vectors=3,ioeventfd=on"
		n=$((n + 1))
	done
	exec taskset -c 0 "$here/../lab/lab.py" guest --quiet --timeout 600 \
		--module "$build/kmod/ptnetmap.ko" --results "$tmp/$g" "$@" \
		--qemu-arg "-netdev tap,id=vn0,ifname=tap6$g,script=no,downscript=no,vhost=$vhost" \
		--qemu-arg "-device virtio-net-pci,netdev=vn0,mac=$(mac_of "vn.$g")" \
		-- "$here/pair_job.sh" "$build" --inside "$g"
)

jsonl=${LAB_RESULTS:-/tmp}/results.jsonl
profile=${BENCH_PROFILE:-short}
tmp=$(mktemp -d)
sync=$tmp/h
mkdir -p "$sync" "$tmp/a" "$tmp/b"
modprobe tun && modprobe bridge || { log "no tun or bridge module"; exit 1; }
modprobe vhost_net 2>/dev/null
vhost=off
[ -c /dev/vhost-net ] && vhost=on
# The standard path: a Linux bridge with a tap per guest; IPv6 off, so that
# only the guests' frames cross it.
ip link add br6 type bridge && ip link set br6 up || { log "no bridge"; exit 1; }
sysctl -qw net.ipv6.conf.br6.disable_ipv6=1
for t in tap6a tap6b; do
	ip tuntap add "$t" mode tap && sysctl -qw "net.ipv6.conf.$t.disable_ipv6=1" &&
		ip link set "$t" master br6 && ip link set "$t" up || { log "no tap $t"; exit 1; }
done
cleanup() { ip link del tap6a; ip link del tap6b; ip link del br6; } 2>/dev/null
trap cleanup EXIT

server=$build/qemu/ptnm-ivshmem-server
servers=""
mac() { echo --port "$1" --mac "$(mac_of "$1")"; }
# shellcheck disable=SC2046
pt_server "$server" "$tmp/guest-vale-a.log" --name g6a $(mac vale6:a) --dir "$tmp" &&
	pt_server "$server" "$tmp/guest-vale-b.log" --name g6b $(mac vale6:b) --dir "$tmp" &&
	pt_server "$server" "$tmp/guest-pipe.log" --name gg --shared $(mac 'gg{1') $(mac 'gg}1') \
		--dir "$tmp" &&
	pt_server "$server" "$tmp/cascade-d0.log" --name d0 --shared $(mac 'd0}1') --dir "$tmp" &&
	pt_server "$server" "$tmp/cascade-d1.log" --name d1 --shared $(mac 'd1{1') --dir "$tmp" &&
	pt_server "$server" "$tmp/cascade-e0.log" --name e0 --shared $(mac 'e0}1') --dir "$tmp" &&
	pt_server "$server" "$tmp/cascade-e1.log" --name e1 --shared $(mac 'e1{1') $(mac 'e1}1') \
		--dir "$tmp" ||
	{ kill $servers; log "an attachment failed"; exit 1; }

mirror "$sync" "$tmp/a" "$tmp/b" &
mirrored=$!
side h "$sync" &
host=$!
log "two guests: guest to guest over pipe, VALE, virtio-net; cascades of 0-2 bridging VMs"
guest a g6a.sock gg-1.sock e0.sock e1-1.sock >"$tmp/guest-a.out" 2>&1 &
guest_a=$!
# One guest booting at a time (vm_pair.sh's pause).
sleep 5
guest b g6b.sock gg-2.sock d0.sock d1.sock e1-2.sock >"$tmp/guest-b.out" 2>&1 &
guest_b=$!
rc=0
wait "$guest_a" || { log "guest a failed"; cat "$tmp/guest-a.out" >&2; rc=1; }
wait "$guest_b" || { log "guest b failed"; cat "$tmp/guest-b.out" >&2; rc=1; }
# Guests that gave up leave the host's side waiting: end it.
[ "$rc" -eq 0 ] || kill "$host" 2>/dev/null
wait "$host" || rc=1
: >"$sync/end"
wait "$mirrored"
for pid in $servers; do kill -TERM "$pid"; wait "$pid"; done

# last_json FILE: its last line if that is a JSON object.
last_json() { tail -n 1 "$1" 2>/dev/null | grep '^{.*}$'; }
failures=0
steps | {
	while read -r k series x b tool snd rcv bridges; do
		rx=$(last_json "$tmp/${rcv%%@*}/$k.rx.json")
		tx=$(last_json "$tmp/${snd%%@*}/$k.tx.json")
		sent=$(echo "$tx" | sed -n 's/.*"packets":\([0-9]*\).*/\1/p')
		if [ -z "$rx" ] || [ -z "$sent" ]; then
			log "step $k ($series $x batch $b): no result"
			failures=$((failures + 1))
			continue
		fi
		case $series in
		guest_batch) pre="\"series\":\"guest_batch\",\"path\":\"$x\"" ;;
		cascade) pre="\"series\":\"cascade\",\"path\":\"pipe\",\"vms\":$x" ;;
		esac
		echo "{$pre,\"profile\":\"$profile\",\"side\":\"rx\",\"sent\":$sent,${rx#\{}" >>"$jsonl"
	done
	[ "$failures" -eq 0 ]
} || rc=1
python3 "$here/counters.py" guest_notify "$profile" "$tmp"/guest-*.log >>"$jsonl"
python3 "$here/counters.py" cascade_notify "$profile" "$tmp"/cascade-*.log >>"$jsonl"
log "status $rc"
[ "$rc" -eq 0 ]
