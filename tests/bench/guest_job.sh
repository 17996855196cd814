#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The benchmark suite's guest placements (scripts/bench.sh --guests), in the
# lab VM with KVM, after lab_job.sh's host-to-host series:
#
#   tests/bench/guest_job.sh BUILD_DIR
#
# One level-2 KVM guest gets two ptnetmap devices (ptnm-ivshmem-server, stock
# ivshmem-doorbell): end gq{1 of a netmap pipe (trusted: one shared region,
# zero copy) and a private port of VALE switch vale7 (untrusted: copies). The
# host (the lab VM) uses the other end, gq}1, and port vale7:h. With ptgen on
# both sides (in the guest on netmap:ethX, the host port's own rings):
#   placement_batch  guest -> host and host -> guest, for each batch size, a
#                    sender for a fixed time, the receiver's rate kept
#   placement_rtt    round trips, blocking in poll() and busy-waiting, with
#                    the guest pinging the host and the host pinging the guest
#   placement_notify the attachments' kicks, interrupts and worker wake-ups
#                    per packet over the whole run (the server's counters)
# Rows are appended to $LAB_RESULTS/results.jsonl, as lab_job.sh's.
#
# The two sides keep in step through files in a folder they share (the
# guest's results folder): for step K the receiving (or pong) side creates
# K.ready once its ptgen is ready, the other starts on it; whoever measured
# writes K.json, then K.done, and both go on to step K+1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../e2e/lib.sh"
build=${1:?usage: guest_job.sh BUILD_DIR}
ptgen=$build/tools/ptgen
mac_p=02:50:54:4e:47:01
mac_v=02:50:54:4e:47:02
if [ "${BENCH_PROFILE:-short}" = long ]; then
	seconds=3 batches="1 4 16 64 256" pings=1000
else
	seconds=1 batches="1 64 256" pings=200
fi

log() { echo "bench guests: $*" >&2; }

# Every step of the run, one per line: K KIND PATH ARG, where KIND is gh
# (guest sends, host receives), hg (host sends), gping (the guest pings) or
# hping, ARG the batch or the wait (blocking, busy).
steps() {
	k=0
	for path in pipe vale; do
		for b in $batches; do
			for kind in gh hg; do
				k=$((k + 1))
				echo "$k $kind $path $b"
			done
		done
		for kind in gping hping; do
			for wait in blocking busy; do
				k=$((k + 1))
				echo "$k $kind $path $wait"
			done
		done
	done
}

# side ME SYNC PIPE_PORT VALE_PORT: this side's part of every step; ME is
# g (the guest) or h (the host).
side() {
	me=$1 sync=$2 pipe_port=$3 vale_port=$4
	tmp=$(mktemp -d)
	steps | while read -r k kind path arg; do
		port=$pipe_port
		[ "$path" = vale ] && port=$vale_port
		busy=""
		[ "$arg" = busy ] && busy=--busy
		case $kind in
		gh|hg)
			sender=${kind%?}
			if [ "$me" = "$sender" ]; then
				await "$sync/$k.ready" || exit 1
				"$ptgen" tx -i "$port" -b "$arg" -d "$seconds" -q --json >/dev/null 2>"$tmp/err" ||
					log "step $k: ptgen tx: $(cat "$tmp/err")"
			else
				"$ptgen" rx -i "$port" -b "$arg" --idle 2 -d $((seconds + 60)) -q --json \
					>"$tmp/out" 2>"$tmp/err" &
				rx=$!
				ptgen_ready "$tmp/err" || { kill "$rx"; exit 1; }
				: >"$sync/$k.ready"
				wait "$rx"
				cp "$tmp/out" "$sync/$k.json"
				: >"$sync/$k.done"
			fi
			;;
		gping|hping)
			pinger=${kind%ping}
			if [ "$me" = "$pinger" ]; then
				await "$sync/$k.ready" || exit 1
				"$ptgen" ping -i "$port" -n "$pings" --reply-timeout 3 $busy -q --json \
					>"$tmp/out" 2>"$tmp/err" || log "step $k: ptgen ping: $(cat "$tmp/err")"
				cp "$tmp/out" "$sync/$k.json"
				: >"$sync/$k.done"
			else
				"$ptgen" pong -i "$port" --idle 120 $busy -q >/dev/null 2>"$tmp/err" &
				pong=$!
				ptgen_ready "$tmp/err" || { kill "$pong"; exit 1; }
				: >"$sync/$k.ready"
				await "$sync/$k.done"
				kill "$pong" 2>/dev/null
				wait "$pong"
			fi
			;;
		esac
		await "$sync/$k.done" || exit 1
	done
}

if [ "${2:-}" = --inside ]; then
	sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
	ifp=$(ifname_of "$mac_p") && ifv=$(ifname_of "$mac_v") ||
		{ echo "FAIL: the guest lacks a ptnetmap interface"; exit 1; }
	# The interfaces stay down: only ptgen's frames leave the guest.
	side g "$LAB_RESULTS" "netmap:$ifp" "netmap:$ifv"
	exit $?
fi

jsonl=${LAB_RESULTS:-/tmp}/results.jsonl
tmp=$(mktemp -d)
sync=$tmp/sync
mkdir -p "$sync"
server=$build/qemu/ptnm-ivshmem-server
servers=""
pt_server "$server" "$tmp/server-pipe.log" --name gq --shared --port 'gq{1' --mac "$mac_p" \
	--dir "$tmp" &&
	pt_server "$server" "$tmp/server-vale.log" --name gv --port vale7:g --mac "$mac_v" \
		--dir "$tmp" ||
	{ kill $servers; log "no attachment"; exit 1; }

side h "$sync" 'netmap:gq}1' vale7:h &
host=$!
"$here/../lab/lab.py" guest --quiet --timeout 900 --module "$build/kmod/ptnetmap.ko" \
	--results "$sync" \
	--qemu-arg "-chardev socket,id=iv0,path=$tmp/gq.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv0,vectors=3,ioeventfd=on" \
	--qemu-arg "-chardev socket,id=iv1,path=$tmp/gv.sock" \
	--qemu-arg "-device ivshmem-doorbell,chardev=iv1,vectors=3,ioeventfd=on" \
	-- "$0" "$build" --inside
rc=$?
# A guest that gave up leaves the host's side waiting: end it.
[ "$rc" -eq 0 ] || kill "$host" 2>/dev/null
wait "$host"
hrc=$?
for pid in $servers; do kill -TERM "$pid"; wait "$pid"; done

profile=${BENCH_PROFILE:-short}
failures=0
steps | {
	while read -r k kind path arg; do
		if ! grep -q '^{.*}$' "$sync/$k.json" 2>/dev/null; then
			log "step $k ($kind $path $arg): no result"
			failures=$((failures + 1))
			continue
		fi
		# The side that starts the step names the placement.
		placement=guest-host
		case $kind in h*) placement=host-guest ;; esac
		case $kind in
		gh|hg)
			# ptgen's summary has the batch (the receiver's, the same).
			pre="\"series\":\"placement_batch\",\"placement\":\"$placement\",\"side\":\"rx\""
			;;
		*)
			pre="\"series\":\"placement_rtt\",\"placement\":\"$placement\",\"wait\":\"$arg\""
			;;
		esac
		line=$(tail -n 1 "$sync/$k.json")
		echo "{$pre,\"profile\":\"$profile\",\"path\":\"$path\",${line#\{}" >>"$jsonl"
	done
	[ "$failures" -eq 0 ]
} || rc=1
# The attachments' notifications over the whole run, per packet.
python3 "$here/counters.py" placement_notify "$profile" "$tmp"/server-*.log >>"$jsonl"
log "guest status $rc, host side status $hrc"
[ "$rc" -eq 0 ] && [ "$hrc" -eq 0 ]
