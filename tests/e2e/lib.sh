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
