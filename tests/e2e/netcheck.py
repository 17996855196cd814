#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Socket-level checks between lab machines (host VM and level-2 guests).

  netcheck.py serve [--port P]        TCP server: sinks transfers, echoes pings
  netcheck.py transfer HOST --mb N    sends N MiB of a seeded stream; the server
                                      answers with the byte count and SHA-256 it
                                      got, which must match what was sent
  netcheck.py rtt HOST --count N      N request/response round trips of 64 bytes
  netcheck.py quit HOST               stops a server

transfer and rtt print one JSON line (keys: what, bytes, mbps, seconds, or
rtt_us_median/p90) and fail (exit 1) on any mismatch. Whatever the path under
the sockets (ptnetmap netdev, virtio-net, veth), the bytes must arrive intact.
"""

import argparse
import hashlib
import json
import socket
import statistics
import struct
import sys
import time

PORT = 5001
CHUNK = 64 * 1024


def stream_chunks(total):
    """A deterministic, non-repeating byte stream of `total` bytes."""
    block = hashlib.sha256(b"ptnetmap").digest() * (CHUNK // 32)
    sent, n = 0, 0
    while sent < total:
        size = min(CHUNK, total - sent)
        # The counter makes every chunk differ, so reordering is caught.
        chunk = struct.pack("<Q", n) + block[8:size]
        yield chunk[:size]
        sent += size
        n += 1


def recv_exact(conn, size):
    data = b""
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise ConnectionError("peer closed mid-message")
        data += more
    return data


def handle(conn):
    kind = recv_exact(conn, 1)
    if kind == b"T":
        (total,) = struct.unpack("<Q", recv_exact(conn, 8))
        digest, got = hashlib.sha256(), 0
        while got < total:
            data = conn.recv(min(CHUNK * 4, total - got))
            if not data:
                break
            digest.update(data)
            got += len(data)
        conn.sendall(struct.pack("<Q", got) + digest.digest())
    elif kind == b"R":
        while True:
            msg = conn.recv(64)
            if not msg:
                break
            conn.sendall(msg)
    elif kind == b"Q":
        return False
    return True


def serve(args):
    listener = socket.create_server(("0.0.0.0", args.port), reuse_port=True)
    print(f"netcheck: serving on port {args.port}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                if not handle(conn):
                    return 0
            except (ConnectionError, OSError) as err:
                print(f"netcheck: client dropped: {err}", flush=True)


def connect(host, port, kind, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(kind)
    return conn


def transfer(args):
    total = args.mb << 20
    conn = connect(args.host, args.port, b"T", args.wait)
    conn.settimeout(120)
    digest = hashlib.sha256()
    start = time.monotonic()
    conn.sendall(struct.pack("<Q", total))
    for chunk in stream_chunks(total):
        digest.update(chunk)
        conn.sendall(chunk)
    got, their = struct.unpack("<Q32s", recv_exact(conn, 40))
    seconds = time.monotonic() - start
    conn.close()
    result = {"what": "transfer", "host": args.host, "bytes": got, "seconds": round(seconds, 3),
              "mbps": round(got * 8 / seconds / 1e6, 2)}
    print(json.dumps(result), flush=True)
    if got != total or their != digest.digest():
        print(f"netcheck: sent {total} bytes, server got {got}; digests "
              f"{'match' if their == digest.digest() else 'differ'}", file=sys.stderr)
        return 1
    return 0


def rtt(args):
    conn = connect(args.host, args.port, b"R", args.wait)
    conn.settimeout(10)
    samples = []
    for i in range(args.count):
        msg = struct.pack("<Q", i) + bytes(56)
        start = time.perf_counter_ns()
        conn.sendall(msg)
        echo = recv_exact(conn, 64)
        samples.append((time.perf_counter_ns() - start) / 1000)
        if echo != msg:
            print(f"netcheck: round trip {i} came back changed", file=sys.stderr)
            return 1
    conn.close()
    samples.sort()
    print(json.dumps({"what": "rtt", "host": args.host, "count": args.count,
                      "rtt_us_median": round(statistics.median(samples), 1),
                      "rtt_us_p90": round(samples[int(len(samples) * 0.9)], 1)}), flush=True)
    return 0


def quit_server(args):
    connect(args.host, args.port, b"Q", args.wait).close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb in ("serve", "transfer", "rtt", "quit"):
        p = sub.add_parser(verb)
        if verb != "serve":
            p.add_argument("host")
            p.add_argument("--wait", type=float, default=60,
                           help="seconds to keep trying to connect (default 60)")
        p.add_argument("--port", type=int, default=PORT)
        if verb == "transfer":
            p.add_argument("--mb", type=int, default=16)
        if verb == "rtt":
            p.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    return {"serve": serve, "transfer": transfer, "rtt": rtt, "quit": quit_server}[args.verb](args)


if __name__ == "__main__":
    sys.exit(main())
