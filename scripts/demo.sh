#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Sets up, builds and runs the main job: boots the lab VM (this machine cannot
# load modules itself), loads ptnetmap.ko there with KVM for level-2 guests,
# and runs scripts/demo-lab.sh inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${PTNETMAP_BUILD:-build}"

./scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -Wno-dev >/dev/null
cmake --build "$BUILD"
exec tests/lab/lab.py run --kvm --timeout 1800 --module "$BUILD/kmod/ptnetmap.ko" \
  --env PTNETMAP_BUILD="$PWD/$BUILD" -- "$PWD/scripts/demo-lab.sh"
