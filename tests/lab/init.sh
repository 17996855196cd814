#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the lab initramfs (busybox). Used at both levels: the lab VM under
# TCG (level 1) and KVM guests started inside it (level 2).
#
# It mounts the host's filesystem read-only at /host (9p tag "host") and a
# writable results folder (9p tag "results"), loads the requested modules,
# runs /results/job.sh chrooted into /host, then unloads our modules, saves
# the kernel log and powers off. The harness (tests/lab/lab.py) reads:
#   results/rc       exit status of the job
#   results/status   "ok" or "lab-error: <what went wrong>"
#   results/dmesg    kernel log, for oops and warning detection
# Parameters come from the kernel command line: lab.modules=a.ko,b.ko
# (paths in the host filesystem), lab.kvm=1 (load KVM first), lab.root=switch.
#
# lab.root=switch: before the job, the host's filesystem (with the mounts
# made on it) is moved onto / and this script goes on from a copy in that
# root, as switch_root(8) does, instead of running the job in a chroot.
# Path-based security modules (AppArmor) name a file from the root of the
# mount namespace: under the chroot every path the job touches would be
# /host/..., and no profile written for a real host would match it.

# Where the host's filesystem and the results folder are, seen from here:
# in the initramfs, or after lab.root=switch (run as `init switched MODULES`).
if [ "$1" = switched ]; then
	host="" results=/tmp/lab-results
else
	host=/host results=/results
fi
status_file=$results/status

# busybox's: after lab.root=switch, the host's own poweroff needs systemd.
off() { /bin/busybox poweroff -f; }

fail() {
	echo "LAB-ERROR: $*"
	[ -w "$results" ] && echo "lab-error: $*" > "$status_file"
	dmesg > "$results/dmesg" 2>/dev/null
	sync
	off
}

# The job, then our modules unloaded ($1: their names), the kernel log saved.
run_job() {
	echo "LAB: job start" > /dev/kmsg
	echo "LAB: job start"
	chroot "${host:-/}" /bin/sh /tmp/lab-results/job.sh < /dev/null 2>&1 | tee "$results/output"
	# busybox sh has no PIPESTATUS: the job records its own status.
	rc=$(cat "$results/rc" 2>/dev/null)
	echo "LAB: job end rc=${rc:-?}" > /dev/kmsg
	echo "LAB: job end rc=${rc:-?}"

	# Our modules must always unload: a refcount leak is a bug the test
	# reports. Processes the job killed may still be closing their files:
	# give them a few seconds before calling a module that will not unload
	# a leak.
	for mod in $1; do
		tries=0
		until out=$(rmmod "$mod" 2>&1); do
			tries=$((tries + 1))
			[ "$tries" -lt 20 ] || fail "module unload failed: $mod: $out"
			sleep 0.5
		done
	done

	echo ok > "$status_file"
	dmesg > "$results/dmesg"
	sync
	off
}

if [ "$1" = switched ]; then
	run_job "$2"
fi

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /host /results
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# Boot-time modules for 9p, in dependency order (written by the harness).
while read -r mod; do
	insmod "/lib/modules/$mod" || fail "cannot load boot module $mod"
done < /lib/modules/boot-order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 host /host ||
	fail "cannot mount the host filesystem (9p tag host)"
mount -t 9p -o trans=virtio,version=9p2000.L,rw results /results ||
	fail "cannot mount the results folder (9p tag results)"

param() {
	for arg in $(cat /proc/cmdline); do
		case "$arg" in "$1="*) echo "${arg#*=}" ;; esac
	done
}

# A usable chroot: writable /tmp and /run, the kernel filesystems, and the
# lab kernel's modules in place of whatever the host had.
# Host folders under /tmp or /run that the job needs (a clone in /tmp, say)
# stay visible through the tmpfs mounted over them.
kept=0
for path in $(param lab.keep | tr ',' ' '); do
	mkdir -p "/keep/$kept" && mount --bind "/host$path" "/keep/$kept" ||
		fail "cannot keep $path visible"
	kept=$((kept + 1))
done
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=0755 tmpfs /host/run
kept=0
for path in $(param lab.keep | tr ',' ' '); do
	mkdir -p "/host$path" && mount --bind "/keep/$kept" "/host$path"
	kept=$((kept + 1))
done
mount --bind /dev /host/dev
mount -t devpts devpts /host/dev/pts 2>/dev/null
mount -t tmpfs tmpfs /host/dev/shm 2>/dev/null
mount --bind /proc /host/proc
mount --bind /sys /host/sys
mkdir -p /host/tmp/lab-results
mount --bind /results /host/tmp/lab-results
krel=$(uname -r)
moddir="$(param lab.moddir)"
if [ -n "$moddir" ] && [ -d "/host$moddir/$krel" ]; then
	mount --bind "/host$moddir/$krel" "/host/lib/modules/$krel" 2>/dev/null
fi
ip link set lo up 2>/dev/null
hostname "lab$(param lab.level)"

if [ "$(param lab.kvm)" = 1 ]; then
	chroot /host modprobe kvm_amd 2>/dev/null ||
		chroot /host modprobe kvm_intel 2>/dev/null
	[ -c /dev/kvm ] || fail "KVM requested but /dev/kvm did not appear (no nested virtualisation?)"
fi

echo "LAB: loading modules" > /dev/kmsg
loaded=""
for mod in $(param lab.modules | tr ',' ' '); do
	out=$(chroot /host insmod "$mod" 2>&1) ||
		fail "module load failed: $mod: $out $(dmesg | tail -n 5)"
	loaded="$(basename "$mod" .ko) $loaded"
done

# This boot's text symbols (the modules loaded so far included), for
# lab.py to name where the CPUs were if the VM stops answering.
grep ' [tT] ' /proc/kallsyms > /results/kallsyms 2>/dev/null &

if [ "$(param lab.root)" = switch ]; then
	cp /init /host/tmp/lab-init
	cd /host && mount --move /host / &&
		exec chroot . /bin/busybox sh /tmp/lab-init switched "$loaded"
	fail "cannot move the host's filesystem onto /"
fi
run_job "$loaded"
