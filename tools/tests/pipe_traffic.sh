#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Lab test: ptgen tx on pp{1 and ptgen rx on pp}1 move PACKETS packets (2M
# by default), varied sizes included; the receiver checks every one: nothing
# lost, reordered or corrupted.
set -u
. "$(dirname "$0")/lib.sh"
packets=${PACKETS:-2000000}

run() {  # run LABEL PTGEN-OPTIONS...
	label=$1
	shift
	start rx "$bin/ptgen" rx -i 'netmap:pp}1' -n "$packets" --verify --idle 10 -d 240 --json "$@"
	"$bin/ptgen" tx -i 'netmap:pp{1' -n "$packets" --json "$@" >"$work/tx.out" 2>"$work/tx.err" ||
		fail "$label: ptgen tx exited with $?"
	wait "$rx_pid" || fail "$label: ptgen rx exited with $?"
	expect tx packets "$packets"
	expect rx packets "$packets"
	expect rx lost 0
	expect rx out_of_order 0
	expect rx corrupted 0
	echo "PASS $label: $packets packets, tx $(field tx mpps) Mpps, rx $(field rx mpps) Mpps"
}

run "60-byte frames, batch 512"
packets=$((packets / 10))
run "60..1514-byte frames, batch 64" -l 60-1514 -b 64
