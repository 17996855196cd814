#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job, inside the lab VM with ptnetmap.ko loaded (see scripts/demo.sh).
set -eu
build="${PTNETMAP_BUILD:-build}"

echo "== ptnetmap demo: lab VM $(uname -r), $(nproc) vCPUs"
grep '^ptnetmap ' /proc/modules | awk '{print "module loaded: " $1 ", " $2 " bytes"}'
dmesg | grep -m1 'ptnetmap: netmap API' | sed 's/^\[[^]]*\] /kernel: /'
ls -l /dev/netmap

echo "== /dev/netmap handshake (NIOCCTRL version check)"
"$build/tests/lab/lab_ctrl_test" --gtest_brief=1
