#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Runs a Google Benchmark binary briefly and checks its JSON output: every
benchmark the binary lists ran, without error, with a positive time and a
positive item rate. Usage: check_json.py BINARY [--min-time SECONDS]"""
import json
import subprocess
import sys
import tempfile


def main():
    binary = sys.argv[1]
    min_time = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--min-time" else "0.01"
    listed = subprocess.run([binary, "--benchmark_list_tests=true"], check=True,
                            capture_output=True, text=True).stdout.split()
    if not listed:
        sys.exit(f"{binary} lists no benchmarks")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_min_time={min_time}",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            doc = json.load(open(out.name))
        except json.JSONDecodeError as e:
            sys.exit(f"output is not JSON: {e}")
    errors = []
    if "context" not in doc or "benchmarks" not in doc:
        errors.append("no context/benchmarks in the output")
    runs = {b.get("name"): b for b in doc.get("benchmarks", [])}
    for name in listed:
        b = runs.get(name)
        if b is None:
            errors.append(f"{name}: missing from the output")
        elif b.get("error_occurred"):
            errors.append(f"{name}: {b.get('error_message')}")
        elif not b.get("real_time", 0) > 0 or not b.get("iterations", 0) > 0:
            errors.append(f"{name}: no time or iterations")
        elif not b.get("items_per_second", 0) > 0:
            errors.append(f"{name}: no items_per_second")
    for e in errors:
        print("microbench:", e, file=sys.stderr)
    print(f"microbench: {len(listed)} benchmarks, {len(errors)} problems")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
