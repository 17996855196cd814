#!/usr/bin/env python3
"""lab.agent_vm: VM attachments of ptnetd --datapath=kernel against the module.

Runs inside the lab VM (tests/lab/lab.py), ptnetmap.ko loaded, as root. No
guest is started: this script plays QEMU on the ivshmem sockets, receiving
the greeting with SCM_RIGHTS as QEMU's ivshmem-doorbell does.

  1. untrusted: `ptctl vm attach valeV vm1 --trust untrusted` makes kernel
     attachment "vm1" (PTNETMAP_REQ_PT_INFO: one peer, port valeV:vm1); its
     socket greets a client with version 0, peer id 1, the memfd (power of
     two, page 0 carries PTNM_MAGIC) and 3 + 3 eventfds; a write to the kick
     eventfd of vector 0 is counted by the kernel worker (PT_INFO kicks),
     and shows in ptctl stats.
  2. trusted: `ptctl vm attach ppV vmA/vmB --trust trusted` make ONE shared
     attachment "pipe:ppV" (peers ppV{0 and ppV}0); the two sockets give
     peer ids 1 and 2 and the same memory: a word written through one
     mapping is read through the other.
  3. ptnetd is killed with SIGKILL: the attachments stay in the kernel. An
     attachment made behind the agent's back (ptnm-ivshmem-server --keep)
     is added. After a restart, reconcile adopted the three VM attachments
     (PTNETMAP_REQ_PT_FDS) and reported the stray one (and its VALE port) as
     unmanaged drift, without destroying it; every socket greets a client again with the
     same memory and live kick eventfds.
  4. `ptctl vm detach` removes them: vm1 at once, the pipe's attachment
     with the last of vmA and vmB.
  5. ptnm-ivshmem-server on its own: --shared with both ends of a pipe,
     one socket per peer, detached on SIGTERM.

PTNETMAP_REQ_PT_FDS is needed from step 2 on (the second end of a pipe);
on a module without it those checks fail with "not supported".
Every check prints one line; the exit status is 1 if any failed.
"""
import argparse
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import agent_lab_test as lab  # noqa: E402  (Agent, nm_ctrl, scrape, metric)
import steps  # noqa: E402
from steps import check, log  # noqa: E402

lab.WORK = "/tmp/agentvm"
lab.METRICS = "127.0.0.1:9612"

SWITCH, PIPE = "valeV", "ppV"
PTNM_MAGIC = 0x4d4e5450
PAGE = 4096
MARK_OFFSET = PAGE - 8  # the end of ptnm_global.reserved: nothing reads it

from ptkern import (PTNETMAP_PT_SHARED, pt_detach, pt_detach_all, pt_info,  # noqa: E402,F401
                    pt_names)


def wait_for(cond, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


class QemuClient:
    """The client side of QEMU's ivshmem protocol: what ivshmem-doorbell receives."""

    def __init__(self, path, vectors):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.version = self._recv()[0]
        self.peer_id = self._recv()[0]
        marker, self.memfd = self._recv()
        self.kicks = [self._recv() for _ in range(vectors)]
        self.irqs = [self._recv() for _ in range(vectors)]
        self.ok = (marker == -1 and self.memfd is not None
                   and all(v == 0 and fd is not None for v, fd in self.kicks)
                   and all(v == self.peer_id and fd is not None for v, fd in self.irqs))
        self.map = mmap.mmap(self.memfd, PAGE) if self.memfd is not None else None

    def _recv(self):
        msg, fds, _, _ = socket.recv_fds(self.sock, 8, 1)
        value = struct.unpack("<q", msg)[0] if len(msg) == 8 else None
        return value, (fds[0] if fds else None)

    def size(self):
        return os.fstat(self.memfd).st_size

    def inode(self):
        return os.fstat(self.memfd).st_ino

    def magic(self):
        return struct.unpack_from("<I", self.map, 0)[0]

    def kick(self, vector=0):
        os.eventfd_write(self.kicks[vector][1], 1)

    def close(self):
        if self.map is not None:
            self.map.close()
        for fd in [self.memfd] + [fd for _, fd in self.kicks + self.irqs]:
            if fd is not None:
                os.close(fd)
        self.sock.close()


def start_server(*cmd):
    """ptnm-ivshmem-server in the background, until it says "ready"."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, text=True)
    steps.CHILDREN.append(proc)
    proc.lines = []
    for line in proc.stdout:
        proc.lines.append(line.rstrip())
        if line.strip() == "ready":
            break
    log("ptnm-ivshmem-server: " + " | ".join(proc.lines))
    return proc


def is_eventfd(fd):
    return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"


def socket_of(agent, vm):
    return agent.json("vm", "get", vm).get("socket_path", "")


def greet(agent, vm, peer_id, what):
    """Connects to vm's socket as QEMU; checks the greeting."""
    path = socket_of(agent, vm)
    try:
        c = QemuClient(path, 3)
    except (OSError, ValueError) as e:
        check(False, f"{what}: {vm}'s socket greets a client", f"{path}: {e}")
        return None
    check(c.ok and c.version == 0 and c.peer_id == peer_id,
          f"{what}: {vm}'s socket sends version 0, peer id {peer_id}, memory, 3+3 eventfds",
          f"version {c.version}, peer {c.peer_id}, complete {c.ok}")
    check(c.magic() == PTNM_MAGIC and c.size() == 4 << 20,
          f"{what}: {vm}'s memory is the 4 MiB BAR2 with PTNM_MAGIC at offset 0",
          f"magic {c.magic():#x}, size {c.size()}")
    return c


def kick_reaches_kernel(c, attachment, peer, what):
    before = pt_info(attachment, peer).kicks
    c.kick(0)
    check(wait_for(lambda: pt_info(attachment, peer).kicks > before),
          f"{what}: a kick on the received eventfd wakes the kernel worker of {attachment}",
          f"kicks stayed {before}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptnetd", required=True)
    ap.add_argument("--ptctl", required=True)
    ap.add_argument("--server", required=True, help="ptnm-ivshmem-server")
    args = ap.parse_args()

    subprocess.run(["rm", "-rf", lab.WORK], check=False)
    os.makedirs(lab.WORK)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    agent = lab.Agent(args.ptnetd, args.ptctl)
    if not agent.start():
        return 1
    clients = []

    # 1. An untrusted VM: a private attachment of its own VALE port.
    agent.ok("switch", "create", SWITCH)
    agent.ok("vm", "attach", SWITCH, "vm1", "--trust", "untrusted")
    info = pt_info("vm1", 1)
    check(info is not None and info.num_peers == 1 and info.port == f"{SWITCH}:vm1".encode()
          and not info.flags & PTNETMAP_PT_SHARED,
          "the kernel has attachment vm1: one private peer on valeV:vm1",
          info and (info.num_peers, info.port, info.flags))
    check(f"{SWITCH}:vm1" in lab.kernel_ports(), "VALE_LIST shows the VM's port valeV:vm1")
    vm1 = greet(agent, "vm1", 1, "untrusted")
    if vm1 is None:
        return 1
    clients.append(vm1)
    check(all(is_eventfd(fd) for _, fd in vm1.kicks + vm1.irqs), "every vector fd is an eventfd")
    kick_reaches_kernel(vm1, "vm1", 1, "untrusted")
    stats = agent.json("stats")
    vm_stats = {v.get("name"): v.get("counters", {}) for v in stats.get("vm_attachments", [])}
    check(int(vm_stats.get("vm1", {}).get("kicks", 0)) >= 1,
          "ptctl stats counts vm1's kicks (PT_INFO)", vm_stats)

    # 2. Two trusted VMs on a pipe: one shared attachment, two peers.
    agent.ok("pipe", "create", PIPE)
    agent.ok("vm", "attach", PIPE, "vmA", "--trust", "trusted", "--peer", "vmB")
    agent.ok("vm", "attach", PIPE, "vmB", "--trust", "trusted", "--peer", "vmA")
    shared = pt_info(f"pipe:{PIPE}")
    ports = [pt_info(f"pipe:{PIPE}", p) for p in (1, 2)]
    check(shared is not None and shared.num_peers == 2 and shared.flags & PTNETMAP_PT_SHARED
          and [p.port.decode() for p in ports if p] == [f"{PIPE}{{0", f"{PIPE}}}0"],
          "the kernel has ONE shared attachment pipe:ppV with peers ppV{0 and ppV}0",
          shared and (shared.num_peers, shared.flags, [p and p.port for p in ports]))
    check(sorted(pt_names()) == sorted(["vm1", f"pipe:{PIPE}"]),
          "and no other attachment", pt_names())
    va = greet(agent, "vmA", 1, "trusted")
    vb = greet(agent, "vmB", 2, "trusted")
    if va is None or vb is None:
        return 1
    clients += [va, vb]
    struct.pack_into("<Q", va.map, MARK_OFFSET, 0x5054_4e4d_0000_0001)
    check(va.inode() == vb.inode() and
          struct.unpack_from("<Q", vb.map, MARK_OFFSET)[0] == 0x5054_4e4d_0000_0001,
          "vmA and vmB share the memory: written through one mapping, read through the other")
    check(va.inode() != vm1.inode(), "the untrusted VM's memory is not theirs")
    kick_reaches_kernel(vb, f"pipe:{PIPE}", 2, "trusted vmB")

    # 3. SIGKILL, a stray attachment, restart: adopt, report, serve again.
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    check(sorted(pt_names()) == sorted(["vm1", f"pipe:{PIPE}"]),
          "the attachments stay in the kernel while the agent is down", pt_names())
    stray = start_server(args.server, "--name", "stray", "--port", f"{SWITCH}:stray",
                         "--size", "2M", "--dir", f"{lab.WORK}/stray", "--keep")
    stray.send_signal(signal.SIGTERM)
    rest = stray.stdout.read()
    check(stray.wait(30) == 0 and "kept stray" in rest and pt_info("stray") is not None,
          "ptnm-ivshmem-server --keep left attachment stray in the kernel", rest)
    if not agent.start():
        return 1
    text = lab.scrape()
    adopted = lab.metric(text, "ptnetmap_reconcile_objects", result="adopted")
    unmanaged = lab.metric(text, "ptnetmap_reconcile_objects", result="unmanaged")
    failed = lab.metric(text, "ptnetmap_reconcile_objects", result="failed")
    check(adopted is not None and adopted >= 3 and failed == 0,
          "reconcile adopted vm1, vmA and vmB (PT_FDS), none failed",
          f"adopted {adopted}, failed {failed}; log:\n{agent.log()}")
    # Two objects the configuration does not know: the attachment and its port.
    check(unmanaged == 2 and "VM attachment stray exists in the kernel" in agent.log()
          and f"port {SWITCH}:stray exists in the kernel" in agent.log(),
          "the stray attachment (and its VALE port) are reported as unmanaged drift",
          f"unmanaged {unmanaged}; log:\n{agent.log()}")
    check(pt_info("stray") is not None, "and left in the kernel")
    for vm, peer, attachment, old in (("vm1", 1, "vm1", vm1), ("vmA", 1, f"pipe:{PIPE}", va),
                                      ("vmB", 2, f"pipe:{PIPE}", vb)):
        again = greet(agent, vm, peer, "after restart")
        if again is None:
            continue
        clients.append(again)
        check(again.inode() == old.inode(), f"after restart: {vm} gets the same memory")
        kick_reaches_kernel(again, attachment, peer, f"after restart: {vm}")
    if pt_info("stray") is not None:
        pt_detach("stray")

    # 4. Detach through the agent.
    agent.ok("vm", "detach", "vm1")
    check(pt_info("vm1") is None and f"{SWITCH}:vm1" not in lab.kernel_ports(),
          "ptctl vm detach vm1 removed its attachment and port from the kernel")
    agent.ok("vm", "detach", "vmA")
    check(pt_info(f"pipe:{PIPE}") is not None, "the pipe's attachment stays while vmB holds it")
    agent.ok("vm", "detach", "vmB")
    check(pt_names() == [], "detaching vmB, the last end, removed it", pt_names())
    agent.ok("pipe", "delete", PIPE)
    agent.ok("switch", "delete", SWITCH)
    for c in clients:
        c.close()
    agent.proc.send_signal(signal.SIGTERM)
    check(agent.proc.wait(30) == 0, "ptnetd exits 0 on SIGTERM")

    # 5. The standalone command: both ends of a pipe, a socket per peer.
    server = start_server(args.server, "--name", "pq", "--shared", "--port", "pq{1",
                          "--port", "pq}1", "--size", "4M", "--dir", f"{lab.WORK}/cmd",
                          "--print-xml")
    lines = server.lines
    check(any("<shmem name='pq-2'>" in l for l in lines),
          "ptnm-ivshmem-server --print-xml prints each peer's libvirt device", lines)
    peers = [QemuClient(f"{lab.WORK}/cmd/pq-{p}.sock", 3) for p in (1, 2)]
    check([p.peer_id for p in peers] == [1, 2] and peers[0].inode() == peers[1].inode()
          and peers[0].magic() == PTNM_MAGIC and peers[0].size() == 4 << 20,
          "ptnm-ivshmem-server --shared: peers 1 and 2 on their own sockets, one 4 MiB memory")
    for p in peers:
        p.close()
    server.send_signal(signal.SIGTERM)
    rest = server.stdout.read()
    check(server.wait(30) == 0 and "detached pq" in rest and pt_names() == [],
          "on SIGTERM it detaches the attachment", rest)

    return steps.verdict()


def cleanup():
    """What a lab test with attachments leaves behind: its processes, then
    every attachment, so that the module can unload (also used by
    e2e.libvirt_shmem and plugins.vif_functional)."""
    steps.stop_children()
    pt_detach_all()


if __name__ == "__main__":
    steps.run_main("lab.agent_vm", main, cleanup)
