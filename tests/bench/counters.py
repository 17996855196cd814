#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The attachments' notifications per packet, from the "counters" lines
ptnm-ivshmem-server prints for each peer when it detaches:

    counters.py SERIES PROFILE LOG...

prints one results.jsonl row per peer: its port, path ("vale" for a port of
a VALE switch, "pipe" for a pipe end), packets (tx + rx) and kicks,
interrupts and worker wake-ups per packet over the whole run."""
import json
import sys


def rows(series, profile, lines):
    for line in lines:
        if not line.startswith("counters "):
            continue
        c = json.loads(line.split(" ", 1)[1])
        n = c["tx_packets"] + c["rx_packets"]
        per = {k + "_per_packet": c[k] / n if n else None
               for k in ("kicks", "interrupts", "wakeups")}
        yield {"series": series, "profile": profile,
               "path": "vale" if ":" in c["port"] else "pipe",
               "port": c["port"], "packets": n, **per}


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    series, profile = sys.argv[1:3]
    for log in sys.argv[3:]:
        with open(log) as f:
            for r in rows(series, profile, f):
                print(json.dumps(r))


if __name__ == "__main__":
    main()
