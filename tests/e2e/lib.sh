# SPDX-License-Identifier: GPL-2.0
# Shell functions shared by the e2e scripts (sourced, in the lab VM and in
# its level-2 guests alike).

# ifname_of MAC: the name of the interface with that address; fails if none.
ifname_of() {
	for dev in /sys/class/net/*; do
		[ "$(cat "$dev/address")" = "$1" ] && { basename "$dev"; return 0; }
	done
	return 1
}

# ptgen_ready ERRFILE: wait (up to 30 s) until the ptgen (or ptpkt) writing
# ERRFILE says it is ready; fails, with what it said, if it does not.
ptgen_ready() {
	for _ in $(seq 300); do
		grep -q 'ready' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "never ready: $(cat "$1")" >&2
	return 1
}

# await FILE [SECONDS]: wait (default 3 minutes) until FILE exists, polling
# every 0.1 s (a file another VM writes into a shared folder); fails, saying
# so, if it does not.
await() {
	for _ in $(seq $((${2:-180} * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	echo "waited in vain for $1" >&2
	return 1
}

# pt_server BINARY LOG ARG...: starts ptnm-ivshmem-server (BINARY) with ARGs
# in the background, its output in LOG, adds its pid to $servers and waits
# (up to 10 s) until it is ready; fails, with its output, if it is not.
# SIGTERM makes a server print each peer's counters and detach.
pt_server() {
	pts_bin=$1 pts_log=$2
	shift 2
	"$pts_bin" "$@" >"$pts_log" 2>&1 &
	servers="${servers:-} $!"
	for _ in $(seq 100); do
		grep -q '^ready' "$pts_log" && return 0
		sleep 0.1
	done
	cat "$pts_log" >&2
	return 1
}
