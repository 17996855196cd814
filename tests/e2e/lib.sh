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
