#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The benchmark suite: one command, results and plots.
#
#   scripts/bench.sh [--profile short|long] [--guests] [--out DIR] [--build DIR]
#                    [--no-build]
#
# Builds what it needs (module, ptgen, ptpkt, pt_guest_emu, pt_rates,
# ptnm-ivshmem-server) unless --no-build, boots the lab VM once and runs
# tests/bench/lab_job.sh in it; with --guests the lab VM loads KVM and then
# runs tests/bench/guest_job.sh (a level-2 guest: host-guest and guest-host
# placements) and tests/bench/pair_job.sh (two level-2 guests: guest to guest
# next to virtio-net, and cascades of bridging VMs) too. Then it writes
# DIR/results.json, DIR/results.csv and DIR/plots/*.png (tests/bench/report.py)
# and checks the run (tests/bench/check_results.py: every series present,
# fewer than one notification per packet at saturation, an idle attachment
# using no CPU). The short profile takes about three minutes under TCG (five
# with --guests), the long one about twenty (more with --guests). Defaults:
# --profile short, --build build, --out BUILD/bench-PROFILE.
# Under the lab's emulation only ratios within a run and per-packet counts
# mean something; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=short build="${PTNETMAP_BUILD:-build}" out="" do_build=1 guests=0
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --guests) guests=1; shift ;;
    *) echo "usage: $0 [--profile short|long] [--guests] [--out DIR] [--build DIR] [--no-build]" >&2
       exit 2 ;;
  esac
done
case $profile in short) timeout=600 ;; long) timeout=3600 ;;
  *) echo "bench: profile is short or long" >&2; exit 2 ;; esac
job=(tests/bench/lab_job.sh "$build") lab_opts=() check_opts=()
if [ "$guests" = 1 ]; then
  timeout=$((timeout + 600))
  # Both jobs in one lab VM, so that the placements' ratios to host to host
  # are measured in the same run.
  job=(sh -c 'tests/bench/lab_job.sh "$1"; s=$?
              tests/bench/guest_job.sh "$1" || s=1
              tests/bench/pair_job.sh "$1" || s=1
              exit $s'
       guests "$build")
  lab_opts=(--kvm) check_opts=(--guests)
fi
case $build in /*) ;; *) build=$PWD/$build ;; esac
out=${out:-$build/bench-$profile}
case $out in /*) ;; *) out=$PWD/$out ;; esac

if [ "$do_build" = 1 ]; then
  ./scripts/setup.sh
  cmake -S . -B "$build" -G Ninja -Wno-dev >/dev/null
  cmake --build "$build" --target kmod ptgen ptpkt pt_guest_emu pt_rates ptnm-ivshmem-server
fi
mkdir -p "$out"
rm -f "$out/results.jsonl" "$out/results.json" "$out/results.csv"
start=$(date +%s)
status=0
tests/lab/lab.py run --quiet --timeout "$timeout" --module "$build/kmod/ptnetmap.ko" \
  "${lab_opts[@]}" --results "$out/lab" --env "BENCH_PROFILE=$profile" -- \
  "${job[@]}" || status=$?
[ -s "$out/lab/results.jsonl" ] || { echo "bench: the lab job left no results" >&2; exit 1; }
cp "$out/lab/results.jsonl" "$out/results.jsonl"
echo "bench: lab run took $(( $(date +%s) - start )) s (status $status)"
/usr/bin/python3 tests/bench/report.py "$out"
/usr/bin/python3 tests/bench/check_results.py "${check_opts[@]}" "$out" || status=1
exit "$status"
