#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Tables from a vm_pair.sh results folder (results.txt, counters.txt).

Prints, as Markdown: TCP throughput and round trip per path with the ratio to
virtio-net measured in the same run; netmap applications' packet rates over
the pipe and VALE and their round trips; and per attachment peer the kicks
and interrupts per packet. Under the lab's nested emulation only the ratios and
the per-packet event counts mean something.
"""

import json
import sys
from pathlib import Path

LABELS = {
    "vale-guest-guest": "guest → guest, VALE (untrusted, copy)",
    "vale-guest-host": "guest → host stack, VALE + veth",
    "pipe-guest-guest": "guest → guest, pipe (trusted, zero copy)",
    "virtio-guest-guest": "guest → guest, virtio-net + tap + bridge",
}


def load(folder):
    results = {}
    for line in (folder / "results.txt").read_text().splitlines():
        _, path, payload = line.split(" ", 2)
        results.setdefault(path, {}).update(json.loads(payload))
    counters = [json.loads(line.split(" ", 1)[1])
                for line in (folder / "counters.txt").read_text().splitlines()]
    return results, counters


def main():
    folder = Path(sys.argv[1])
    results, counters = load(folder)
    base = results.get("virtio-guest-guest", {})
    print("| path | TCP Mbit/s | vs virtio-net | TCP round trip, median µs | vs virtio-net |")
    print("|---|---:|---:|---:|---:|")
    for path, label in LABELS.items():
        r = results.get(path)
        if not r:
            continue
        speed = (f"{r['mbps'] / base['mbps']:.2f}x" if base.get("mbps") else "-")
        rtt = (f"{r['rtt_us_median'] / base['rtt_us_median']:.2f}x"
               if base.get("rtt_us_median") else "-")
        print(f"| {label} | {r['mbps']} | {speed} | {r['rtt_us_median']} | {rtt} |")
    if "netmap-pipe-rx" in results:
        print()
        print("netmap applications in both guests (ptgen on netmap:ethX, 60-byte frames, B -> A):")
        print()
        # Over the pipe nothing may be missing; over VALE what is missing was
        # dropped at the receiver's full ring and counted (vm_pair.sh checks).
        print("| path | sent | received | not received | received Mpps | vs VALE |")
        print("|---|---:|---:|---:|---:|---:|")
        vale = results.get("netmap-vale-rx", {}).get("mpps")
        for path, label in (("pipe", "pipe (trusted, zero copy)"), ("vale", "VALE (untrusted, copy)")):
            tx, rx = results.get(f"netmap-{path}-tx", {}), results.get(f"netmap-{path}-rx", {})
            if not rx:
                continue
            ratio = f"{rx['mpps'] / vale:.2f}x" if vale else "-"
            print(f"| {label} | {tx.get('packets', '-')} | {rx['packets']} | "
                  f"{tx.get('packets', rx['packets']) - rx['packets']} | {rx['mpps']:.3f} | {ratio} |")
        print()
        print("| round trip over the pipe (ptgen ping/pong) | p50 µs | avg µs | p99 µs |")
        print("|---|---:|---:|---:|")
        for key, label in (("netmap-pipe-ping", "blocking in poll()"),
                           ("netmap-pipe-ping-busy", "busy-waiting (NIOC*SYNC)")):
            r = results.get(key)
            if r:
                print(f"| {label} | {r['rtt_p50_us']:.1f} | {r['rtt_avg_us']:.1f} | {r['rtt_p99_us']:.1f} |")
    print()
    print("| attachment | port | packets (tx+rx) | kicks/packet | interrupts/packet | wake-ups/packet |")
    print("|---|---|---:|---:|---:|---:|")
    for c in counters:
        packets = c["tx_packets"] + c["rx_packets"]
        per = (lambda n: f"{n / packets:.3f}") if packets else (lambda n: "-")
        print(f"| {c['attachment']} (peer {c['peer']}) | {c['port']} | {packets} | "
              f"{per(c['kicks'])} | {per(c['interrupts'])} | {per(c['wakeups'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
