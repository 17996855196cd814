#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# VALE throughput against batch size, next to a pipe measured in the same
# run, inside the lab VM:
#
#   tests/lab/lab.py run --module build/kmod/ptnetmap.ko -- \
#       tools/bench/vale_batch.sh build/tools
#
# For each batch size: a pipe (pp{ -> pp}), VALE 1 to 1 (a -> b), VALE 1 to 3
# (a -> b, c, d: ptgen's destination MAC is never a source on the switch, so
# every frame is flooded, exactly as a broadcast is) and VALE 2 to 1 (a and
# b -> c), with 60-byte frames for SECONDS_PER_RUN seconds (default 2). A switch never
# blocks a sender: what a receiver cannot take is dropped, so the table gives
# what was offered and what arrived (per receiver for 1 to 3).
set -u
. "$(dirname "$0")/../tests/lib.sh"
seconds=${SECONDS_PER_RUN:-2}
batches=${BATCHES:-"1 8 64 512"}
run=0

# receivers BATCH PORT...: start one receiver per port.
receivers() {
	b=$1
	shift
	i=0
	for port in "$@"; do
		start "rx$i" "$bin/ptgen" rx -i "$port" -b "$b" --idle 2 -d $((seconds + 30)) -q --json
		i=$((i + 1))
	done
}

# senders BATCH PORT...: run one sender per port, in parallel, for $seconds.
senders() {
	b=$1
	shift
	i=0
	for port in "$@"; do
		"$bin/ptgen" tx -i "$port" -b "$b" -d "$seconds" -q --json \
			>"$work/tx$i.out" 2>"$work/tx$i.err" &
		eval "tx${i}_pid=$!"
		i=$((i + 1))
	done
	j=0
	while [ "$j" -lt "$i" ]; do
		eval "wait \$tx${j}_pid"
		j=$((j + 1))
	done
}

# total KEY NAME...: sum of a JSON field over runs.
total() {
	key=$1
	shift
	sum=0
	for n in "$@"; do
		sum=$(awk -v a="$sum" -v b="$(field "$n" "$key")" 'BEGIN { print a + b }')
	done
	echo "$sum"
}

wait_receivers() {
	for n in "$@"; do
		eval "wait \$${n}_pid"
	done
}

echo "| batch | pipe Mpps | VALE 1->1 offered / delivered | VALE 1->3 offered / per receiver | VALE 2->1 offered / delivered |"
echo "|------:|----------:|------------------------------:|---------------------------------:|------------------------------:|"
for b in $batches; do
	run=$((run + 1))
	receivers "$b" "netmap:pp}$run"
	senders "$b" "netmap:pp{$run"
	wait_receivers rx0
	pipe=$(field rx0 mpps)

	sw=vale$run
	receivers "$b" "${sw}a:b"
	senders "$b" "${sw}a:a"
	wait_receivers rx0
	one="$(field tx0 mpps) / $(field rx0 mpps)"

	receivers "$b" "${sw}b:b" "${sw}b:c" "${sw}b:d"
	senders "$b" "${sw}b:a"
	wait_receivers rx0 rx1 rx2
	three="$(field tx0 mpps) / $(awk -v t="$(total mpps rx0 rx1 rx2)" 'BEGIN { printf "%.3f", t / 3 }')"

	receivers "$b" "${sw}c:c"
	senders "$b" "${sw}c:a" "${sw}c:b"
	wait_receivers rx0
	two="$(total mpps tx0 tx1) / $(field rx0 mpps)"

	printf "| %5s | %9s | %29s | %32s | %29s |\n" "$b" "$pipe" "$one" "$three" "$two"
done
