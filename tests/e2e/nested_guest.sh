#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in the lab VM: boots a level-2 KVM guest and checks that it really ran
# under KVM, at level 2, and that its exit status comes back.
set -u
lab=$(dirname "$0")/../lab/lab.py

out=$("$lab" guest --quiet -- sh -c '
	echo "level=$LAB_LEVEL host=$(hostname)"
	grep -qw hypervisor /proc/cpuinfo && echo "cpu=virtual"
	exit 42')
rc=$?
echo "$out"
[ "$rc" -eq 42 ] || { echo "FAIL: guest exit status $rc, want 42"; exit 1; }
echo "$out" | grep -q "level=2 host=lab2" || { echo "FAIL: not a level-2 lab guest"; exit 1; }
echo "$out" | grep -q "cpu=virtual" || { echo "FAIL: guest sees no hypervisor"; exit 1; }
grep -q kvm_amd /proc/modules || grep -q kvm_intel /proc/modules ||
	{ echo "FAIL: KVM not loaded in the lab VM"; exit 1; }
echo "PASS: level-2 KVM guest ran and returned its status"
