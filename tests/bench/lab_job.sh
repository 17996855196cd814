#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The benchmark suite's job inside the lab VM (started by scripts/bench.sh):
#
#   tests/bench/lab_job.sh BUILD_DIR
#
# Writes one JSON object per measurement to $LAB_RESULTS/results.jsonl,
# each tagged with its series and parameters:
#
#   batch       throughput against batch size: netmap pipe, VALE 1 to 1,
#               and the baseline, AF_PACKET over a veth pair (ptpkt)
#   ring        a fast sender against ring size (pipe and VALE)
#   rtt         round trips, blocking in poll() and busy-waiting: pipe,
#               VALE, AF_PACKET/veth
#   pt_batch    one way through a passthrough attachment (a guest played in
#               userspace on each end of a pipe) against batch size, with the
#               kernel's kicks and interrupts per packet
#   rates       notifications and CPU of an attachment at offered rates from
#               idle to saturation (pt_rates)
#
# BENCH_PROFILE=short (default; about three minutes under TCG) or long
# (about twenty minutes).
set -u
. "$(dirname "$0")/../e2e/lib.sh"
build=${1:?usage: $0 BUILD_DIR}
bin=$build/tools
out=${LAB_RESULTS:-/tmp}
jsonl=$out/results.jsonl
: >"$jsonl"
work=$(mktemp -d)
trap 'rm -rf "$work"; ip link del bva 2>/dev/null' EXIT

if [ "${BENCH_PROFILE:-short}" = long ]; then
	seconds=3 batches="1 2 4 8 16 32 64 128 256 512" slots="64 128 256 512 1024 2048"
	pings=1000 rate_seconds=10 rates="idle,1000,10000,100000,max" pt_packets=500000
	repeat=2
else
	seconds=1 batches="1 64 256" slots="64 1024"
	pings=200 rate_seconds=2 rates="idle,1000,10000,max" pt_packets=50000
	repeat=1
fi
run=0
failures=0

log() { echo "bench: $*" >&2; }

# emit SERIES PARAM... < JSON_LINE: the line with series and parameters in
# front; a PARAM is KEY=NUMBER or already '"key":"value"'.
emit() {
	series=$1
	shift
	pre="\"series\":\"$series\",\"profile\":\"${BENCH_PROFILE:-short}\""
	for kv in "$@"; do
		case $kv in
		\"*) pre="$pre,$kv" ;;  # already "key":value
		*) pre="$pre,\"${kv%%=*}\":${kv#*=}" ;;
		esac
	done
	line=$(tail -n 1)
	case $line in
	"{"*"}") echo "{$pre,${line#\{}" >>"$jsonl" ;;
	*)
		log "$series $*: no summary"
		failures=$((failures + 1))
		;;
	esac
}

# pair TOOL TX_PORT RX_PORT BATCH [TX_OPTS]: one sender/receiver run; leaves
# the summaries in $work/tx and $work/rx.
pair() {
	tool=$1 txp=$2 rxp=$3 b=$4
	shift 4
	: >"$work/rx.err"
	"$bin/$tool" rx -i "$rxp" -b "$b" --idle 1 -d $((seconds + 30)) -q --json \
		>"$work/rx" 2>"$work/rx.err" &
	rxpid=$!
	ptgen_ready "$work/rx.err" || { kill "$rxpid"; wait "$rxpid"; return 1; }
	"$bin/$tool" tx -i "$txp" -b "$b" -d "$seconds" -q --json "$@" \
		>"$work/tx" 2>"$work/tx.err"
	wait "$rxpid"
	[ -s "$work/tx" ] && [ -s "$work/rx" ] ||
		{ log "$tool $txp -> $rxp: $(cat "$work/tx.err" "$work/rx.err")"; return 1; }
}

# best SERIES KEYS... -- TOOL TX RX BATCH [TX_OPTS]: $repeat runs, the one
# with the highest receive rate kept (interference only slows runs down).
best() {
	series=$1
	shift
	keys=""
	while [ "$1" != -- ]; do keys="$keys $1"; shift; done
	shift
	bestr=""
	for _ in $(seq "$repeat"); do
		run=$((run + 1))
		pair "$@" || continue
		r=$(sed -n 's/.*"mpps":\([0-9.e+-]*\).*/\1/p' "$work/rx")
		if [ -z "$bestr" ] || awk -v n="$r" -v o="$bestr" 'BEGIN { exit !(n > o) }'; then
			bestr=$r
			cp "$work/tx" "$work/best.tx"
			cp "$work/rx" "$work/best.rx"
		fi
	done
	if [ -z "$bestr" ]; then
		failures=$((failures + 1))
		return
	fi
	# shellcheck disable=SC2086
	emit "$series" $keys '"side":"tx"' <"$work/best.tx"
	# shellcheck disable=SC2086
	emit "$series" $keys '"side":"rx"' <"$work/best.rx"
}

modprobe veth 2>/dev/null
ip link add bva type veth peer name bvb || exit 1
ip link set bva up && ip link set bvb up
# IPv6 autoconfiguration would add its own frames to the veth pair.
sysctl -qw net.ipv6.conf.bva.disable_ipv6=1 net.ipv6.conf.bvb.disable_ipv6=1 2>/dev/null

log "throughput against batch size: $batches"
for b in $batches; do
	run=$((run + 1))
	best batch batch="$b" '"path":"pipe"' -- ptgen "netmap:bp{$run" "netmap:bp}$run" "$b"
	best batch batch="$b" '"path":"vale"' -- ptgen "vale$run:a" "vale$run:b" "$b"
	best batch batch="$b" '"path":"afpacket_veth"' -- ptpkt bva bvb "$b"
done

log "fast sender against ring size: $slots"
for s in $slots; do
	b=$((s < 256 ? s : 256))  # a batch the baseline was measured with too
	run=$((run + 1))
	best ring slots="$s" batch="$b" '"path":"pipe"' -- \
		ptgen "netmap:rp{$run@conf:slots=$s" "netmap:rp}$run@conf:slots=$s" "$b"
	best ring slots="$s" batch="$b" '"path":"vale"' -- \
		ptgen "vale9$run:a@conf:slots=$s" "vale9$run:b@conf:slots=$s" "$b"
done

log "round trips"
rtt() {  # rtt PATH MODE TOOL PING_PORT PONG_PORT [--busy]
	path=$1 mode=$2 tool=$3 pi=$4 po=$5
	shift 5
	: >"$work/pong.err"
	# The pong outlives any scheduling hiccup of the loaded lab (an idle pong
	# would leave every later ping to time out) and is stopped afterwards.
	"$bin/$tool" pong -i "$po" --idle 60 "$@" -q --json >"$work/pong" 2>"$work/pong.err" &
	pong=$!
	ptgen_ready "$work/pong.err" || { kill "$pong"; wait "$pong"; failures=$((failures + 1)); return; }
	"$bin/$tool" ping -i "$pi" -n "$pings" "$@" -q --json >"$work/ping" 2>"$work/ping.err"
	kill "$pong" 2>/dev/null
	wait "$pong"
	emit rtt "\"path\":\"$path\"" "\"wait\":\"$mode\"" <"$work/ping"
}
run=$((run + 1))
rtt pipe blocking ptgen "netmap:tp{$run" "netmap:tp}$run"
rtt pipe busy ptgen "netmap:tp{$run" "netmap:tp}$run" --busy
rtt vale blocking ptgen "vale8$run:a" "vale8$run:b"
rtt vale busy ptgen "vale8$run:a" "vale8$run:b" --busy
rtt afpacket_veth blocking ptpkt bva bvb
rtt afpacket_veth busy ptpkt bva bvb --busy

log "passthrough attachment against batch size"
for b in $batches; do
	"$build/tests/pt/pt_guest_emu" pair --packets "$pt_packets" --batch "$b" \
		>"$work/pt" 2>"$work/pt.err"
	# "attachment one way, batch B: X Mpps, kicks/pkt K, irqs/pkt I"
	sed -n 's/.*batch \([0-9]*\): \([0-9.]*\) Mpps, kicks\/pkt \([0-9.]*\), irqs\/pkt \([0-9.]*\).*/{"mpps":\2,"kicks_per_packet":\3,"interrupts_per_packet":\4}/p' \
		"$work/pt" | emit pt_batch batch="$b" '"path":"pt_pipe"' "packets=$pt_packets"
done

log "notifications and CPU at offered rates: $rates"
"$build/tests/bench/pt_rates" --rates "$rates" --seconds "$rate_seconds" >"$work/rates" ||
	failures=$((failures + 1))
grep '^{' "$work/rates" | sed "s/^{\"series\":\"rates\",/{\"series\":\"rates\",\"profile\":\"${BENCH_PROFILE:-short}\",/" >>"$jsonl"

log "done: $(wc -l <"$jsonl") results, $failures failures"
[ "$failures" -eq 0 ]
