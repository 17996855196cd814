#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Sets up, builds and runs every test (unit, lab and e2e). CI runs exactly this.
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         any extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${PTNETMAP_BUILD:-build}"

./scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -Wno-dev >/dev/null
cmake --build "$BUILD"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
