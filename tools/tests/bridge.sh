#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Lab test: ptgen tx -> x{1 = x}1 -> ptbridge -> x}2 = x{2 -> ptgen rx.
# Pipes of one parent share its memory region, so the bridge swaps buffers;
# with --copy it copies. Either way every packet arrives intact.
set -u
. "$(dirname "$0")/lib.sh"
packets=${PACKETS:-300000}

for mode in zero-copy copy; do
	flag=""
	[ "$mode" = copy ] && flag=--copy
	start rx "$bin/ptgen" rx -i 'netmap:x{2' -n "$packets" --verify --idle 10 -d 240 --json -l 60-1514
	start bridge "$bin/ptbridge" -i 'netmap:x}1' -i 'netmap:x}2' --idle 5 -d 240 --json $flag
	"$bin/ptgen" tx -i 'netmap:x{1' -n "$packets" --json -l 60-1514 >"$work/tx.out" 2>"$work/tx.err" ||
		fail "$mode: ptgen tx exited with $?"
	wait "$rx_pid" || fail "$mode: ptgen rx exited with $?"
	wait "$bridge_pid" || fail "$mode: ptbridge exited with $?"
	expect rx packets "$packets"
	expect rx lost 0
	expect rx out_of_order 0
	expect rx corrupted 0
	expect bridge a_to_b_packets "$packets"
	[ "$mode" = copy ] && expect bridge zerocopy false
	echo "PASS bridge ($mode, zerocopy=$(field bridge zerocopy)): $packets packets," \
		"$(field bridge mpps) Mpps"
done
