#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest's part of e2e.libvirt_shmem (virsh_shmem_test.py): runs as the job
# of a level-2 guest that libvirt started. Whenever a ptnetmap interface
# appears (first boot, and after every hot-plug) it gets 10.99.0.1/24 and
# pings the host's stack (10.99.0.2) through the port; the outcome goes to
# $LAB_RESULTS/guest-up-N (N counts appearances). When the device goes away
# (hot-unplug) it writes guest-gone-N. It ends when the host writes
# $LAB_RESULTS/stop.
set -u
results=${LAB_RESULTS:?}
appeared=0
gone=0
present=""

# The interface bound by our guest driver, if any.
pt_interface() {
	for dev in /sys/class/net/*; do
		driver=$(readlink "$dev/device/driver" 2>/dev/null) || continue
		[ "$(basename "$driver")" = ptnetmap ] && { basename "$dev"; return; }
	done
}

# Writes a verdict so that the host never reads a half-written file.
publish() {
	echo "$1" > "$results/.$2.tmp" && mv "$results/.$2.tmp" "$results/$2"
}

deadline=$(($(date +%s) + ${GUEST_SECONDS:-200}))
while [ ! -e "$results/stop" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || { echo "guest: no stop from the host"; exit 1; }
	ifname=$(pt_interface)
	if [ -n "$ifname" ] && [ -z "$present" ]; then
		present=$ifname
		appeared=$((appeared + 1))
		ip addr add 10.99.0.1/24 dev "$ifname"
		ip link set "$ifname" up
		# The first replies may be lost while the host learns the MAC
		# again; a loaded lab can take seconds for that.
		tries=0
		give_up=$(($(date +%s) + 45))
		until busybox ping -c 1 -W 2 10.99.0.2 >/dev/null 2>&1; do
			tries=$((tries + 1))
			[ "$(date +%s)" -lt "$give_up" ] || break
			sleep 0.5
		done
		if busybox ping -c 1 -W 2 10.99.0.2 >/dev/null 2>&1; then
			echo "guest: $ifname up (#$appeared), ping to the host ok ($tries lost)"
			publish ok "guest-up-$appeared"
		else
			echo "guest: $ifname up (#$appeared), ping to the host FAILED ($tries tries)"
			ip -s link show "$ifname"; ip neigh; cat /proc/net/dev
			publish fail "guest-up-$appeared"
		fi
	elif [ -z "$ifname" ] && [ -n "$present" ]; then
		gone=$((gone + 1))
		echo "guest: $present went away (#$gone)"
		publish ok "guest-gone-$gone"
		present=""
	fi
	sleep 0.2
done
echo "guest: stop ($appeared appearances, $gone removals)"
exit 0
