#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Applies the Nova patch series (patches/*.patch) to a copy of Debian's
# installed Nova (python3-nova) and runs Nova's unit tests of what it changes
# there: the whole modules test_os_vif_util, test_vif and test_config, and the
# new tests of test_host, with Nova's own test base and fixtures
# (nova.test.NoDBTestCase, LibvirtFixture), from Debian's packages. Then,
# when the patched libvirt is built (libvirt/build.sh), Nova's parser reads
# the domain capabilities that libvirt formats.
#
# Usage: check_patch.sh [--prepare DIR]
#   --prepare DIR  only copy and patch, into DIR/nova (replaced if there);
#                  no tests. The functional test's setup uses Nova from it.
#
# The installed package is never modified. Exit status: 0 when the series
# applies without fuzz and every test passes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PTNETMAP_DEB_PYTHON3:-/usr/bin/python3}
PREPARE=""
if [ "${1:-}" = "--prepare" ]; then
  PREPARE=${2:?"--prepare needs a directory"}
elif [ $# -gt 0 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi

log() { printf 'check_patch: %s\n' "$*" >&2; }

version=$(dpkg-query -W -f='${Version}' python3-nova 2>/dev/null || true)
if [ -z "$version" ]; then
  log "python3-nova is not installed (scripts/setup.sh installs it)"
  exit 1
fi
case "$version" in
  2:26.*) ;;
  *) log "warning: the series is for Nova 26 (Debian 12); python3-nova is $version" ;;
esac
# Ask from / so that a nova/ in the current directory does not shadow it.
src=$(cd / && "$PY" -c 'import nova, os; print(os.path.dirname(nova.__file__))')

if [ -n "$PREPARE" ]; then
  mkdir -p "$PREPARE"
  work=$(cd "$PREPARE" && pwd)
  rm -rf "$work/nova"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/nova-patch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
cp -a "$src" "$work/nova"
log "python3-nova $version from $src, copied to $work"

shopt -s nullglob
patches=("$HERE"/patches/*.patch)
[ ${#patches[@]} -gt 0 ] || { log "no patches in $HERE/patches"; exit 1; }
for p in "${patches[@]}"; do
  # --fuzz=0: a hunk that only applies with fuzz means the series is stale.
  if ! out=$(patch -p1 -d "$work" --fuzz=0 --no-backup-if-mismatch --batch < "$p" 2>&1); then
    printf '%s\n' "$out" >&2
    log "FAILED to apply $(basename "$p")"
    exit 1
  fi
  log "applied $(basename "$p")"
done

if [ -n "$PREPARE" ]; then
  # The lab VM sees this folder read-only: compile the patched modules now.
  "$PY" -m compileall -q "$work/nova" >/dev/null
  exit 0
fi

cd "$work"
# The copy, not the installed package, must be what the tests import.
got=$("$PY" -c 'import nova.network.model as m, os; print(os.path.dirname(m.__file__), m.VIF_TYPE_PTNETMAP)')
[ "$got" = "$work/nova/network ptnetmap" ] || { log "imports the wrong Nova: $got"; exit 1; }

tests=(
  nova.tests.unit.network.test_os_vif_util
  nova.tests.unit.virt.libvirt.test_vif
  nova.tests.unit.virt.libvirt.test_config
)
host=nova.tests.unit.virt.libvirt.test_host.HostTestCase
for t in __false __no_devices __true; do
  tests+=("$host.test_supports_ptnetmap_interface$t")
done
log "running: ${tests[*]}"
# Nova runs its unit tests with stestr, which discovers the whole unit test
# tree first (minutes); unittest runs the same testtools test cases in one
# process. The full log goes to a file; the new tests' lines are shown.
out="$work/unittest.log"
rc=0
"$PY" -W ignore -m unittest -v "${tests[@]}" > "$out" 2>&1 || rc=$?
new='^nova\..*(ptnetmap|Ptnetmap|Shmem|shmem|InterfaceTypes).* \.\.\. '
grep -E "$new" "$out" || true
if [ $rc -ne 0 ]; then
  grep -E '^(FAIL|ERROR):' "$out" >&2 || true
  sed -n '/^=\{10,\}/,$p' "$out" | tail -n 200 >&2
fi
summary=$(grep -E '^Ran [0-9]+ tests' "$out" || echo "no test ran")
ran_new=$(grep -cE "$new" "$out" || true)
log "$summary, $ran_new of them new; exit $rc"
# A series that lost its tests must not pass: it has 30 new tests.
if [ $rc -eq 0 ] && [ "$ran_new" -lt 30 ]; then
  log "expected at least 30 new tests to run"
  exit 1
fi
[ $rc -eq 0 ] || exit $rc

# The contract with the libvirt series: Nova's parser of the domain
# capabilities, fed what the patched libvirt really formats (the expected
# outputs of its domaincapstest, in the cached build's source), finds
# 'ptnetmap' where QEMU has ivshmem-doorbell and not where it lacks it.
libvirt_root=$("$HERE/../../libvirt/build.sh" path)
caps="$libvirt_root/src/tests/domaincapsdata"
if [ ! -f "$libvirt_root/build/.built" ]; then
  log "libvirt contract: skipped, no patched libvirt build (libvirt/build.sh build)"
  exit 0
fi
"$PY" -W ignore - "$caps" <<'PY' || { log "libvirt contract: FAILED"; exit 1; }
import pathlib
import sys

from nova.virt.libvirt import config

data = pathlib.Path(sys.argv[1])
want = {"qemu_7.2.0.x86_64.xml": True, "qemu_7.2.0-q35.x86_64.xml": True,
        "qemu_7.0.0-virt.aarch64.xml": True, "qemu_6.0.0.s390x.xml": False}
bad = 0
for name, has in want.items():
    caps = config.LibvirtConfigDomainCaps()
    caps.parse_str(data.joinpath(name).read_text())
    iface = caps.devices.interface
    types = iface.types if iface else set()
    ok = iface is not None and iface.supported and "bridge" in types and \
        ("ptnetmap" in types) == has
    print(f"check_patch: libvirt contract: {name}: interface types "
          f"{sorted(types)}: {'ok' if ok else 'WRONG'}", file=sys.stderr)
    bad += not ok
sys.exit(1 if bad else 0)
PY
log "libvirt contract: Nova reads the patched libvirt's interface types"
exit 0
