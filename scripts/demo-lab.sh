#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job, inside the lab VM with ptnetmap.ko loaded (see scripts/demo.sh):
# shows the module answering netmap API 14, then moves verified traffic with
# our tools through a netmap pipe (zero copy) and a VALE switch (copy), and
# prints a table. Under the lab's emulation compare ratios, not absolutes.
set -eu
build="${PTNETMAP_BUILD:-build}"
bin="$build/tools"
count="${DEMO_PACKETS:-300k}"
work=$(mktemp -d)

echo "== ptnetmap demo: lab VM $(uname -r), $(nproc) vCPUs"
grep '^ptnetmap ' /proc/modules | awk '{print "module loaded: " $1 ", " $2 " bytes"}'
dmesg | grep -m1 'ptnetmap: netmap API' | sed 's/^\[[^]]*\] /kernel: /'

echo "== /dev/netmap handshake (NIOCCTRL version check)"
"$build/tests/lab/lab_ctrl_test" --gtest_brief=1 --gtest_filter='*Version*' | tail -n 1

json() {  # json FILE KEY
	python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

# flow NAME TX_PORT RX_PORT: count verified packets from TX_PORT to RX_PORT.
flow() {
	"$bin/ptgen" rx -i "$3" -n "$count" --verify --idle 5 -q --json >"$work/$1.rx" 2>"$work/$1.rxerr" &
	rx=$!
	for _ in $(seq 100); do
		grep -q ': ready' "$work/$1.rxerr" && break
		sleep 0.1
	done
	"$bin/ptgen" tx -i "$2" -n "$count" -q --json >"$work/$1.tx" 2>"$work/$1.txerr" || true
	# A switch drops when its receiver is full (by design: it never blocks
	# the sender), so loss is reported, not fatal; damage is fatal.
	wait "$rx" || true
	if [ ! -s "$work/$1.rx" ] || [ "$(json "$work/$1.rx" corrupted)" != 0 ] ||
	   [ "$(json "$work/$1.rx" out_of_order)" != 0 ]; then
		echo "FAILED: $1"; cat "$work/$1.rxerr" "$work/$1.txerr"; exit 1
	fi
}

echo "== traffic: $count packets of 60 bytes each way, every one verified"
flow pipe 'netmap:demo{1' 'netmap:demo}1'
flow vale 'vale0:a' 'vale0:b'

base=$(json "$work/pipe.rx" mpps)
printf '\n| path | what moves a packet | delivered Mpps | vs pipe | sent | received | dropped | damaged |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|\n'
for path in pipe vale; do
	case $path in
	pipe) how="buffer index swap (zero copy)" ;;
	vale) how="copy into the receiver's region" ;;
	esac
	mpps=$(json "$work/$path.rx" mpps)
	sent=$(json "$work/$path.tx" packets)
	got=$(json "$work/$path.rx" packets)
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$path" "$how" "$mpps" \
		"$(awk -v a="$mpps" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')" \
		"$sent" "$got" "$((sent - got))" \
		"$(( $(json "$work/$path.rx" out_of_order) + $(json "$work/$path.rx" corrupted) ))"
done
rm -rf "$work"

echo
echo "== two KVM guests through kernel passthrough attachments (stock QEMU ivshmem-doorbell)"
echo "   guest A and guest B: private ports on VALE switch vale0 (untrusted) and the two"
echo "   ends of pipe pp in one shared region (trusted); beside them the standard path,"
echo "   virtio-net on taps of a Linux bridge. Every TCP byte is checked (SHA-256)."
here="$(cd "$(dirname "$0")/.." && pwd)"
pair=$(mktemp -d)
if ! "$here/tests/e2e/vm_pair.sh" "$build" --results "$pair" >"$pair/log" 2>&1; then
	grep -v WRMSR "$pair/log" | tail -n 40
	echo "FAILED: two guests"
	exit 1
fi
grep '^PASS' "$pair/log"
echo
python3 "$here/tests/e2e/pair_report.py" "$pair"
rm -rf "$pair"
