#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Throughput through a passthrough attachment vs a plain pipe, by batch size,
# with the kicks and interrupts per packet the kernel counted; in the lab VM.
#
#   tests/pt/bench.sh [BUILD_DIR] [pt_guest_emu options...]
#   e.g. tests/pt/bench.sh build-pt --packets 300000 --batches 1,8,32,128,256
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
case $build in /*) ;; *) build=$root/$build ;; esac
exec "$root/tests/lab/lab.py" run --timeout 1200 --module "$build/kmod/ptnetmap.ko" -- \
	"$build/tests/pt/pt_guest_emu" bench "$@"
