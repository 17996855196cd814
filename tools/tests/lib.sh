# SPDX-License-Identifier: BSD-2-Clause
# Helpers of the tools' lab tests (sourced). Each test gets the directory of
# the ptgen and ptbridge binaries as its first argument.

bin=${1:?usage: $0 BIN_DIR (where ptgen and ptbridge are)}
work=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

fail() {
	echo "FAIL: $*"
	for f in "$work"/*; do
		[ -s "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }
	done
	exit 1
}

# start NAME CMD...: runs CMD in the background, stdout to $work/NAME.out
# and stderr to $work/NAME.err, and waits until it says it is ready.
start() {
	name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids="$pids $!"
	eval "${name}_pid=$!"
	for _ in $(seq 200); do
		grep -q ': ready' "$work/$name.err" && return 0
		kill -0 "$!" 2>/dev/null || fail "$name exited before it was ready"
		sleep 0.1
	done
	fail "$name was not ready after 20 s"
}

# field NAME KEY: a numeric or boolean field of NAME's JSON summary line.
field() {
	tail -n 1 "$work/$1.out" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"
}

# expect NAME KEY VALUE
expect() {
	got=$(field "$1" "$2")
	[ "$got" = "$3" ] || fail "$1: $2 is '$got', want '$3'"
}
