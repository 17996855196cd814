#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Sets up, builds and runs every test (unit, lab and e2e). CI runs exactly this.
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         any extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${PTNETMAP_BUILD:-build}"

./scripts/setup.sh
# Debian's libvirt with our patches (libvirt/): built once per patch series and
# cached, about 3 minutes on two idle cores, so that libvirt.unit and
# e2e.libvirt_ptnetmap run. PTNETMAP_LIBVIRT=skip leaves it out: libvirt.unit
# then skips and e2e.libvirt_ptnetmap is not registered.
if [ "${PTNETMAP_LIBVIRT:-build}" != skip ]; then
  ./scripts/setup-libvirt-build.sh
  ./libvirt/build.sh build
fi
cmake -S . -B "$BUILD" -G Ninja -Wno-dev >/dev/null
cmake --build "$BUILD"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
