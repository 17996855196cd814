#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's control requests, straight from Python (ctypes + NIOCCTRL),
for lab tests that check the kernel without going through the agent.

Layouts follow include/net/netmap.h (struct nmreq_header, nmreq_vale_list)
and include/net/ptnetmap_ctl.h (ptnetmap_port_stats, ptnetmap_pt_info); the
asserts below catch a size drift.

As a command (inside the lab VM, module loaded):
  ptkern.py stats PORT...   one JSON line per port: "port NAME {counters}"
  ptkern.py ports           every VALE port, one per line
"""
import ctypes
import fcntl
import json
import sys

NETMAP_API = 14
NETMAP_REQ_VALE_LIST = 5
PTNETMAP_REQ_PORT_STATS_GET = 0x100
PTNETMAP_REQ_PT_DETACH = 0x121
PTNETMAP_REQ_PT_INFO = 0x122
PTNETMAP_PT_SHARED = 1


class NmreqHeader(ctypes.Structure):
    _fields_ = [("nr_version", ctypes.c_uint16), ("nr_reqtype", ctypes.c_uint16),
                ("nr_reserved", ctypes.c_uint32), ("nr_name", ctypes.c_char * 64),
                ("nr_options", ctypes.c_uint64), ("nr_body", ctypes.c_uint64)]


class NmreqValeList(ctypes.Structure):
    _fields_ = [("nr_bridge_idx", ctypes.c_uint16), ("pad1", ctypes.c_uint16),
                ("nr_port_idx", ctypes.c_uint32)]


STAT_FIELDS = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_drop_ring_full",
               "rx_drop_inactive", "rx_drop_bad_buf", "rx_drop_oversize", "tx_drop_bad_buf",
               "tx_drop_bad_len", "tx_drop_frag", "tx_drop_xmit"]


class PortStats(ctypes.Structure):
    _fields_ = [(f, ctypes.c_uint64) for f in STAT_FIELDS] + [("spare", ctypes.c_uint64 * 4)]


class PtInfo(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("peer", ctypes.c_uint32),
                ("num_peers", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 64), ("port", ctypes.c_char * 64),
                ("state", ctypes.c_uint32), ("worker_pid", ctypes.c_int32),
                ("shm_size", ctypes.c_uint64), ("region_offset", ctypes.c_uint64),
                ("region_size", ctypes.c_uint64), ("tx_packets", ctypes.c_uint64),
                ("tx_bytes", ctypes.c_uint64), ("rx_packets", ctypes.c_uint64),
                ("rx_bytes", ctypes.c_uint64), ("kicks", ctypes.c_uint64),
                ("interrupts", ctypes.c_uint64), ("wakeups", ctypes.c_uint64),
                ("errors", ctypes.c_uint64), ("spare", ctypes.c_uint64 * 4)]


assert ctypes.sizeof(NmreqHeader) == 88
assert ctypes.sizeof(PortStats) == 128
assert ctypes.sizeof(PtInfo) == 272
NIOCCTRL = (3 << 30) | (ctypes.sizeof(NmreqHeader) << 16) | (ord("i") << 8) | 151


def nm_ctrl(reqtype, name, body=None):
    """One NIOCCTRL request; OSError if the kernel refuses it."""
    addr = ctypes.addressof(body) if body is not None else 0
    header = NmreqHeader(NETMAP_API, reqtype, 0, name.encode(), 0, addr)
    with open("/dev/netmap", "rb", buffering=0) as dev:
        fcntl.ioctl(dev.fileno(), NIOCCTRL, header)
    return header


def kernel_ports():
    """Every port of every VALE switch, as "valeX:port"."""
    names, cursor = [], NmreqValeList()
    while True:
        try:
            header = nm_ctrl(NETMAP_REQ_VALE_LIST, "", cursor)
        except OSError:  # ENOENT past the last one
            return names
        names.append(header.nr_name.decode())
        cursor.nr_port_idx += 1


def kernel_stats(name):
    """The counters of one port as a dict; OSError (ENXIO) if there is none."""
    stats = PortStats()
    nm_ctrl(PTNETMAP_REQ_PORT_STATS_GET, name, stats)
    return {f: getattr(stats, f) for f in STAT_FIELDS}


def pt_info(name, peer=0):
    """PT_INFO of attachment `name`, or None if the kernel has none."""
    info = PtInfo(peer=peer)
    try:
        nm_ctrl(PTNETMAP_REQ_PT_INFO, name, info)
    except OSError:
        return None
    return info


def pt_detach(name):
    """PT_DETACH, which takes no body. OSError if there is no such attachment."""
    nm_ctrl(PTNETMAP_REQ_PT_DETACH, name)


def pt_names():
    """The names of every attachment, in the kernel's order."""
    names, index = [], 0
    while True:
        info = PtInfo(index=index)
        try:
            nm_ctrl(PTNETMAP_REQ_PT_INFO, "", info)
        except OSError:
            return names
        names.append(info.name.decode())
        index += 1


def pt_detach_all():
    """Detaches every attachment (what a test leaves so that the module can
    unload); one that goes away meanwhile is no error."""
    for name in pt_names():
        try:
            pt_detach(name)
        except OSError:
            pass


def main(argv):
    if argv[:1] == ["ports"]:
        print("\n".join(kernel_ports()))
        return 0
    if argv[:1] == ["stats"] and len(argv) > 1:
        status = 0
        for name in argv[1:]:
            try:
                print(f"port {name} {json.dumps(kernel_stats(name))}")
            except OSError as err:
                print(f"port {name}: {err.strerror}", file=sys.stderr)
                status = 1
        return status
    print("usage: ptkern.py stats PORT... | ptkern.py ports", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
