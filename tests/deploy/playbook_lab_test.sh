#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# lab.deploy.playbook: deploy/ansible/site.yml over a local connection inside
# the lab VM (ptnetmap.ko loaded, KVM on), with the packages just built.
#
# The lab VM's root filesystem is the host's, shared read-only, and its init
# is a busybox script, not systemd: package installs, files under /etc and
# services cannot change there. So the playbook runs in --check mode: every
# preflight assertion (Debian 12, kernel headers, /dev/kvm, /dev/netmap) is
# really evaluated, every template renders, the module task sees the loaded
# module, and the run must end with no failed or unreachable task.
#
#   tests/deploy/playbook_lab_test.sh BUILD_DIR
set -euo pipefail

BUILD=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
ANSIBLE_DIR=$(realpath "$HERE/../../deploy/ansible")
T=$(mktemp -d /tmp/ptnm-playbook.XXXXXX)

# Packages for the roles' *_deb variables, built on the host beforehand
# (`ninja debs`; ctest's fixture deploy.package): the build tree is
# read-only in here. --check copies nothing but wants them to exist.
agent_deb=$(ls "$BUILD"/packages/ptnetmap_*_amd64.deb 2>/dev/null | head -1)
dkms_deb=$(ls "$BUILD"/packages/ptnetmap-dkms_*_all.deb 2>/dev/null | head -1)
if [ -z "$agent_deb" ] || [ -z "$dkms_deb" ]; then
	echo "FAIL  no packages in $BUILD/packages: run 'ninja -C $BUILD debs' first"
	exit 1
fi

# Ansible's workers need POSIX shared memory; the lab's /dev has no /dev/shm.
if [ ! -d /dev/shm ]; then
	mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
fi
export HOME="$T/home" ANSIBLE_CONFIG="$ANSIBLE_DIR/ansible.cfg"
export ANSIBLE_LOCAL_TEMP="$T/ansible-local" ANSIBLE_REMOTE_TEMP="$T/ansible-remote"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
mkdir -p "$HOME"

cd "$ANSIBLE_DIR"
set +e
ansible-playbook --check --diff -i "$HERE/lab-inventory.yml" site.yml \
	-e "ptnetmap_module_deb=$dkms_deb" -e "ptnetmap_agent_deb=$agent_deb" \
	-e ptnetmap_module_install_headers=false 2>&1 | tee "$T/run.log"
rc=${PIPESTATUS[0]}
set -e

status=0
recap=$(grep -E '^lab +:' "$T/run.log" || true)
if [ "$rc" -eq 0 ] && grep -q 'failed=0' <<<"$recap" && grep -q 'unreachable=0' <<<"$recap"; then
	echo "ok    site.yml --check in the lab VM: $recap"
else
	echo "FAIL  site.yml --check in the lab VM (exit $rc): $recap"
	status=1
fi
# The preflight really ran against this host.
for task in "Check the kernel headers" "Check KVM" "Check that /dev/netmap exists"; do
	if grep -A2 "TASK \[ptnetmap_module : $task\]" "$T/run.log" | grep -q '^ok: \[lab\]'; then
		echo "ok    preflight '$task' passed"
	else
		echo "FAIL  preflight '$task' did not pass"
		status=1
	fi
done
# The module is loaded already: `modprobe` is not run again.
if grep -A2 'TASK \[ptnetmap_module : Load the module now\]' "$T/run.log" | grep -q '^ok: \[lab\]'; then
	echo "ok    the loaded module is left alone"
else
	echo "FAIL  'Load the module now' would change a host whose module is loaded"
	status=1
fi
rm -rf "$T"
exit $status
