#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A test double for the host side of a passthrough port.

It serves one QEMU ivshmem-doorbell client on a UNIX socket with the ivshmem
server protocol (../shared/spec/hypervisor.md): a memfd laid out as
docs/shm-layout.md says (global page, one port descriptor for peer 1, a CSB,
a netmap region with one TX and one RX ring), kick eventfds for peer 0 and
interrupt eventfds for peer 1. It answers the control mailbox (START/STOP),
and while started it plays a tiny host datapath through the CSB: every IPv4
UDP datagram the guest sends is echoed back (addresses and ports swapped),
everything else is consumed and counted. It logs what it did, so an e2e test
can check the guest driver's side of the protocol without the kernel's host
datapath. With --foreign it offers memory without our magic, to check that
the guest driver leaves such devices alone.
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
PORT_CTRL = 128          # offsetof(struct ptnm_port_desc, ctrl)
PORT_LINK = 192          # offsetof(struct ptnm_port_desc, link)
SLOTS = 256              # per ring
BUF_SIZE = 2048
CSB = 2 * PAGE           # atok[2] then ktoa[2], TX ring first
REGION = 4 * PAGE        # netmap_if, then the rings, then the buffers
TX_RING = REGION + PAGE
RX_RING = REGION + 3 * PAGE
BUFS = REGION + 8 * PAGE


def write_layout(shm, size, args):
    # struct ptnm_global
    struct.pack_into("<IHHQQII", shm, 0, MAGIC, 1, 0, size, 0, 1, 0)
    struct.pack_into("<QQII", shm, 32, REGION, size - REGION, 0, BUF_SIZE)
    # struct ptnm_port_desc of peer 1
    port = PAGE
    mac = bytes(int(b, 16) for b in args.mac.split(":"))
    struct.pack_into("<II6sHHHII", shm, port, 1, args.mtu, mac, 0,
                     args.rings, args.rings, SLOTS, SLOTS)
    struct.pack_into("<QQQ", shm, port + 32, REGION, CSB, 0)
    struct.pack_into("32s", shm, port + 56, b"fake:p0")
    # struct netmap_if: one TX and one RX ring (more rings share them: the
    # guest interface only uses ring 0 of each direction).
    struct.pack_into("<16sIIIIIII", shm, REGION, b"fake:p0", 14, 0, 1, 1, 0, 0, 0)
    struct.pack_into("<qq", shm, REGION + 56, TX_RING - REGION, RX_RING - REGION)
    for ring, first_buf, tail, direction in ((TX_RING, 2, SLOTS - 1, 0),
                                             (RX_RING, 2 + SLOTS, 0, 1)):
        struct.pack_into("<qIIHHIII", shm, ring, BUFS - ring, SLOTS, BUF_SIZE, 0,
                         direction, 0, 0, tail)
        for i in range(SLOTS):
            struct.pack_into("<IHHQ", shm, ring + 256 + 16 * i, first_buf + i, 0, 0, 0)
    # ktoa: the host wants kicks; TX slots all belong to the guest.
    struct.pack_into("<III", shm, CSB + 128, 0, SLOTS - 1, 1)
    struct.pack_into("<III", shm, CSB + 192, 0, 0, 1)


def echo_of(frame):
    """The reply to an IPv4 UDP datagram (addresses and ports swapped), or None.
    Swapping keeps both checksums valid."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    return (frame[6:12] + frame[0:6] + frame[12:26] + frame[30:34] + frame[26:30]
            + frame[34:udp] + frame[udp + 2:udp + 4] + frame[udp:udp + 2] + frame[udp + 4:])


class Datapath:
    """The host's half of the CSB protocol for ring 0 of each direction."""

    def __init__(self, shm, irqs, log):
        self.shm, self.irqs, self.log = shm, irqs, log
        self.tx_cur = 0               # next guest TX slot to consume
        self.rx_tail = 0              # next guest RX slot to fill
        self.echoed = self.consumed = 0

    def u32(self, off):
        return struct.unpack_from("<I", self.shm, off)[0]

    def slot(self, ring, i):
        return struct.unpack_from("<IH", self.shm, ring + 256 + 16 * i)

    def run(self):
        tx_head = self.u32(CSB + 0)
        rx_head = self.u32(CSB + 64)
        if tx_head >= SLOTS or rx_head >= SLOTS:
            self.log.write("guest wrote a bad head\n")
            return
        while self.tx_cur != tx_head:
            buf_idx, length = self.slot(TX_RING, self.tx_cur)
            start = BUFS + buf_idx * BUF_SIZE
            frame = self.shm[start:start + min(length, BUF_SIZE)]
            self.tx_cur = (self.tx_cur + 1) % SLOTS
            reply = echo_of(frame)
            # One slot stays empty: fill while rx_tail + 1 != the guest's head.
            if reply is None or (self.rx_tail + 1) % SLOTS == rx_head:
                self.consumed += 1
                continue
            buf_idx, _ = self.slot(RX_RING, self.rx_tail)
            start = BUFS + buf_idx * BUF_SIZE
            self.shm[start:start + len(reply)] = reply
            struct.pack_into("<H", self.shm, RX_RING + 256 + 16 * self.rx_tail + 4, len(reply))
            self.rx_tail = (self.rx_tail + 1) % SLOTS
            self.echoed += 1
        # Publish: hwcur, then hwtail (one slot always stays with the host).
        struct.pack_into("<I", self.shm, CSB + 128, self.tx_cur)
        struct.pack_into("<I", self.shm, CSB + 132, (self.tx_cur - 1) % SLOTS)
        struct.pack_into("<I", self.shm, CSB + 192, rx_head)
        struct.pack_into("<I", self.shm, CSB + 196, self.rx_tail)
        for vector, atok in ((1, CSB), (2, CSB + 64)):
            if self.u32(atok + 8):    # appl_need_kick
                os.eventfd_write(self.irqs[vector], 1)


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

    size = 4 << 20
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
    datapath = Datapath(shm, irqs, log)
    started = False
    while True:
        # Kicks wake us; the short timeout only guards the test double
        # against its own mistakes, the guest driver must not rely on it.
        ready, _, _ = select.select([*kicks, conn], [], [], 0.2)
        if conn in ready and not conn.recv(1):
            log.write(f"echoed={datapath.echoed} consumed={datapath.consumed}\n")
            return 0              # QEMU went away
        for fd in kicks[1:]:
            if fd in ready:
                os.eventfd_read(fd)
        if started:
            datapath.run()
        if kicks[0] not in ready:
            continue
        os.eventfd_read(kicks[0])
        request, req_seq, _, resp_seq = struct.unpack_from("<IIiI", shm, PAGE + PORT_CTRL)
        if req_seq == resp_seq:
            continue
        if request == CTRL_START:
            status, link, started = 0, 1, True
        elif request == CTRL_STOP:
            status, link, started = 0, 0, False
        else:
            status, link = -22, None
        if link is not None:
            struct.pack_into("<I", shm, PAGE + PORT_LINK, link)
        struct.pack_into("<i", shm, PAGE + PORT_CTRL + 8, status)
        struct.pack_into("<I", shm, PAGE + PORT_CTRL + 12, req_seq)
        os.eventfd_write(irqs[0], 1)
        log.write(f"request={request} seq={req_seq} status={status}\n")


if __name__ == "__main__":
    sys.exit(main())
