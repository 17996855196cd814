#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Lab test: ptgen ping on pp{2 against ptgen pong on pp}2, with blocking
# poll() and with busy waiting: every ping gets its echo, intact.
set -u
. "$(dirname "$0")/lib.sh"
pings=${PINGS:-2000}

for wait in poll busy; do
	flag=""
	[ "$wait" = busy ] && flag=--busy
	start pong "$bin/ptgen" pong -i 'netmap:pp}2' -n "$pings" --idle 10 -d 120 --json $flag
	"$bin/ptgen" ping -i 'netmap:pp{2' -n "$pings" --json $flag >"$work/ping.out" 2>"$work/ping.err" ||
		fail "ping ($wait) exited with $?"
	wait "$pong_pid" || fail "pong ($wait) exited with $?"
	expect ping replies "$pings"
	expect ping lost 0
	expect ping corrupted 0
	expect pong packets "$pings"
	echo "PASS ping/pong ($wait): $pings round trips," \
		"rtt us p50 $(field ping rtt_p50_us) p99 $(field ping rtt_p99_us)"
done
