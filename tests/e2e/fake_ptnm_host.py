#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A test double for the host side of a passthrough port's control plane.

It serves one QEMU ivshmem-doorbell client on a UNIX socket with the ivshmem
server protocol (../shared/spec/hypervisor.md): a memfd laid out as
docs/shm-layout.md says (global page, one port descriptor for peer 1), kick
eventfds for peer 0 and interrupt eventfds for peer 1. It answers the control
mailbox (START/STOP) like a host would and logs each request it answered, so
an e2e test can check the guest driver's side of the protocol without the
kernel's host datapath. With --foreign it offers memory without our magic, to
check that the guest driver leaves such devices alone.
"""

import argparse
import mmap
import os
import select
import socket
import struct
import sys

PAGE = 4096
MAGIC = 0x4D4E5450
CTRL_START, CTRL_STOP = 1, 2
PORT_CTRL = 128          # offsetof(struct ptnm_port, ctrl)
PORT_LINK = 192          # offsetof(struct ptnm_port, link)


def write_layout(shm, size, args):
    # struct ptnm_global
    struct.pack_into("<IHHQQII", shm, 0, MAGIC, 1, 0, size, 0, 1, 0)
    struct.pack_into("<QQII", shm, 32, 4 * PAGE, size - 4 * PAGE, 0, 2048)
    # struct ptnm_port of peer 1
    port = PAGE
    mac = bytes(int(b, 16) for b in args.mac.split(":"))
    struct.pack_into("<II6sHHHII", shm, port, 1, args.mtu, mac, 0,
                     args.rings, args.rings, 1024, 1024)
    struct.pack_into("<QQQ", shm, port + 32, 4 * PAGE, 2 * PAGE, 0)
    struct.pack_into("32s", shm, port + 56, b"fake:p0")


def send(conn, value, fd=None):
    data = struct.pack("<q", value)
    if fd is None:
        conn.sendall(data)
    else:
        socket.send_fds(conn, [data], [fd])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("socket")
    parser.add_argument("--log", required=True, help="append answered requests here")
    parser.add_argument("--rings", type=int, default=1)
    parser.add_argument("--mac", default="02:50:54:4e:4d:01")
    parser.add_argument("--mtu", type=int, default=1500)
    parser.add_argument("--foreign", action="store_true", help="no ptnetmap magic")
    args = parser.parse_args()

    size = 1 << 20
    memfd = os.memfd_create("fake-ptnm", 0)
    os.ftruncate(memfd, size)
    shm = mmap.mmap(memfd, size)
    if not args.foreign:
        write_layout(shm, size, args)
    vectors = 1 + 2 * args.rings
    kicks = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(vectors)]
    irqs = [os.eventfd(0) for _ in range(vectors)]

    if os.path.exists(args.socket):
        os.unlink(args.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    print(f"fake host listening on {args.socket}", flush=True)
    conn, _ = listener.accept()
    send(conn, 0)                 # protocol version
    send(conn, 1)                 # the client's peer id
    send(conn, -1, memfd)         # the shared memory
    for fd in kicks:              # peer 0 (us): what the guest's doorbell signals
        send(conn, 0, fd)
    for fd in irqs:               # peer 1 (the guest): what we signal
        send(conn, 1, fd)

    log = open(args.log, "a", buffering=1)
    answered = 0
    while True:
        ready, _, _ = select.select([kicks[0], conn], [], [])
        if conn in ready and not conn.recv(1):
            return 0              # QEMU went away
        if kicks[0] not in ready:
            continue
        os.eventfd_read(kicks[0])
        request, req_seq, _, resp_seq = struct.unpack_from("<IIiI", shm, PAGE + PORT_CTRL)
        if req_seq == resp_seq:
            continue
        if request == CTRL_START:
            status, link = 0, 1
        elif request == CTRL_STOP:
            status, link = 0, 0
        else:
            status, link = -22, None
        if link is not None:
            struct.pack_into("<I", shm, PAGE + PORT_LINK, link)
        struct.pack_into("<i", shm, PAGE + PORT_CTRL + 8, status)
        struct.pack_into("<I", shm, PAGE + PORT_CTRL + 12, req_seq)
        os.eventfd_write(irqs[0], 1)
        answered += 1
        log.write(f"request={request} seq={req_seq} status={status}\n")


if __name__ == "__main__":
    sys.exit(main())
