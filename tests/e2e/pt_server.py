#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A minimal ivshmem server over a real kernel passthrough attachment.

Creates a memfd and one eventfd per vector in each direction, asks the
kernel to attach a port to them (PTNETMAP_REQ_PT_ATTACH, see
include/net/ptnetmap_ctl.h), then serves one QEMU ivshmem-doorbell client on
a UNIX socket with QEMU's protocol (../shared/spec/hypervisor.md). From then
on the kernel serves the guest by itself: the mailbox, the rings, the CSB.
Test tooling for the e2e scenarios; the product's server is the agent's.
"""

import argparse
import ctypes
import mmap
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ptkern  # noqa: E402  (nm_ctrl, pt_detach)

REQ_PT_ATTACH = 0x120
MAX_VECTORS = 33


def attach(name, port, mac, rings, memfd, shm, kicks, irqs, flags=0):
    peer = ctypes.create_string_buffer(344)
    struct.pack_into("<64s6sHI", peer, 0, port.encode(), mac, 0, len(kicks))
    fds = lambda l: list(l) + [-1] * (MAX_VECTORS - len(l))
    struct.pack_into(f"<{MAX_VECTORS}i", peer, 76, *fds(kicks))
    struct.pack_into(f"<{MAX_VECTORS}i", peer, 76 + 4 * MAX_VECTORS, *fds(irqs))
    body = ctypes.create_string_buffer(80)
    shm_addr = ctypes.addressof(ctypes.c_char.from_buffer(shm))
    struct.pack_into("<QQiIIHHIII", body, 0, shm_addr, ctypes.addressof(peer), memfd,
                     1, flags, rings, rings, 256, 256, 1500)
    ptkern.nm_ctrl(REQ_PT_ATTACH, name, body)
    return struct.unpack_from("<QQQ", body, 48)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("socket")
    parser.add_argument("--name", required=True, help="attachment name")
    parser.add_argument("--port", required=True, help="e.g. vale0:vm1")
    parser.add_argument("--mac", default="02:50:54:4e:4d:01")
    parser.add_argument("--rings", type=int, default=1)
    parser.add_argument("--shared", action="store_true",
                        help="PTNETMAP_PT_SHARED: needed to attach a pipe end")
    args = parser.parse_args()

    size = 8 << 20
    memfd = os.memfd_create(args.name, 0)
    os.ftruncate(memfd, size)
    shm = mmap.mmap(memfd, size)
    vectors = 1 + 2 * args.rings
    kicks = [os.eventfd(0) for _ in range(vectors)]
    irqs = [os.eventfd(0) for _ in range(vectors)]
    mac = bytes(int(b, 16) for b in args.mac.split(":"))
    shm_size, region_offset, region_size = attach(args.name, args.port, mac, args.rings,
                                                  memfd, shm, kicks, irqs,
                                                  1 if args.shared else 0)
    print(f"attached {args.name} to {args.port}: {shm_size} bytes, region at "
          f"{region_offset} ({region_size} bytes)", flush=True)

    if os.path.exists(args.socket):
        os.unlink(args.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    conn, _ = listener.accept()
    send = lambda value, fd=None: (conn.sendall(struct.pack("<q", value)) if fd is None
                                   else socket.send_fds(conn, [struct.pack("<q", value)], [fd]))
    send(0)                       # protocol version
    send(1)                       # the client's peer id
    send(-1, memfd)               # the shared memory
    for fd in kicks:              # peer 0, the host: the guest's doorbell
        send(0, fd)
    for fd in irqs:               # peer 1, the guest: its interrupts
        send(1, fd)
    conn.recv(1)                  # until QEMU goes away
    # The attachment would outlive us (that is its point); a test cleans up.
    ptkern.pt_detach(args.name)
    print(f"detached {args.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
