// SPDX-License-Identifier: GPL-2.0
// A guest, played in userspace: what a VM's driver does with a passthrough
// port (kmod/pt_guest.c), without a VM. It creates the memfd and the
// eventfds QEMU would get, asks the kernel for an attachment, maps the
// memfd as BAR2, finds its rings through the layout of docs/shm-layout.md,
// and drives them through the CSB with the same notification protocol:
// kick only when kern_need_kick, sleep on the irq eventfd only after
// setting appl_need_kick and looking once more.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <net/netmap.h>
#include <net/netmap_user.h>
#include <net/ptnetmap.h>
#include <net/ptnetmap_ctl.h>

namespace ptemu {

// A test frame: broadcast Ethernet header, then flow id and sequence number.
inline void WriteFrame(char *b, uint32_t flow, uint64_t seq) {
  memset(b, 0xff, 6);
  const uint8_t src[6] = {0x02, 0, 0, 0, uint8_t(flow >> 8), uint8_t(flow)};
  memcpy(b + 6, src, 6);
  b[12] = 0x88;
  b[13] = 0xb5;  // local experimental ethertype
  memcpy(b + 14, &flow, 4);
  memcpy(b + 18, &seq, 8);
}

template <typename T>
inline T Load(T &v) { return std::atomic_ref<T>(v).load(std::memory_order_relaxed); }
template <typename T>
inline void Store(T &v, T x) { std::atomic_ref<T>(v).store(x, std::memory_order_relaxed); }
inline void Mb() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void Wmb() { std::atomic_thread_fence(std::memory_order_release); }
inline void Rmb() { std::atomic_thread_fence(std::memory_order_acquire); }

// A NIOCCTRL request of ours; returns 0 or errno.
template <typename Body>
inline int Ctl(int fd, uint16_t type, const std::string &name, Body *body) {
  nmreq_header hdr{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = type;
  name.copy(hdr.nr_name, sizeof(hdr.nr_name) - 1);
  hdr.nr_body = reinterpret_cast<uintptr_t>(body);
  return ioctl(fd, NIOCCTRL, &hdr) == 0 ? 0 : errno;
}

inline int Detach(int fd, const std::string &name) {
  return Ctl<void>(fd, PTNETMAP_REQ_PT_DETACH, name, nullptr);
}

inline int Info(int fd, const std::string &name, uint32_t peer,
                ptnetmap_pt_info *info) {
  *info = {};
  info->peer = peer;
  return Ctl(fd, PTNETMAP_REQ_PT_INFO, name, info);
}

// The memory and eventfds of a would-be VM, and the attachment over them.
struct Vm {
  int memfd = -1;
  char *base = nullptr;
  size_t size = 0;
  struct Peer {
    std::vector<int> kick, irq;
  };
  std::vector<Peer> peers;
  ptnetmap_pt_attach att{};

  Vm() = default;
  Vm(const Vm &) = delete;
  Vm &operator=(const Vm &) = delete;
  ~Vm() { Close(); }

  void Close() {
    if (base) munmap(base, size);
    base = nullptr;
    if (memfd >= 0) close(memfd);
    memfd = -1;
    for (auto &p : peers) {
      for (int fd : p.kick) close(fd);
      for (int fd : p.irq) close(fd);
    }
    peers.clear();
  }

  // Memory and eventfds for `nports` peers with `rings` rings per direction.
  int Create(size_t shm_size, unsigned nports, unsigned rings = 1) {
    size = shm_size;
    memfd = memfd_create("ptemu", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, size) < 0) return errno;
    void *m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (m == MAP_FAILED) return errno;
    base = static_cast<char *>(m);
    peers.resize(nports);
    for (auto &p : peers) {
      for (unsigned v = 0; v < 1 + 2 * rings; v++) {
        p.kick.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        p.irq.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      }
    }
    return 0;
  }

  // Asks the kernel to attach `ports` (one per peer) under `name`.
  int Attach(int ctlfd, const std::string &name,
             const std::vector<std::string> &ports, uint32_t flags,
             uint32_t slots = 256, unsigned rings = 1) {
    std::vector<ptnetmap_pt_peer> up(ports.size());
    for (size_t i = 0; i < ports.size(); i++) {
      ports[i].copy(up[i].port, sizeof(up[i].port) - 1);
      uint8_t mac[6] = {0x02, 0x50, 0x54, 0x4e, 0x4d, uint8_t(i + 1)};
      memcpy(up[i].mac, mac, 6);
      up[i].num_vectors = 1 + 2 * rings;
      for (unsigned v = 0; v < up[i].num_vectors; v++) {
        up[i].kick_fds[v] = peers[i].kick[v];
        up[i].irq_fds[v] = peers[i].irq[v];
      }
    }
    att = {};
    att.shm_addr = reinterpret_cast<uintptr_t>(base);
    att.peers = reinterpret_cast<uintptr_t>(up.data());
    att.memfd = memfd;
    att.num_peers = ports.size();
    att.flags = flags;
    att.num_tx_rings = att.num_rx_rings = rings;
    att.num_tx_slots = att.num_rx_slots = slots;
    return Ctl(ctlfd, PTNETMAP_REQ_PT_ATTACH, name, &att);
  }
};

// Counters of one guest ring.
struct RingStats {
  uint64_t packets = 0, kicks = 0, irqs = 0, waits = 0, stalls = 0;
};

// One guest peer: the port descriptor, its CSB and ring 0 of each direction.
class Guest {
 public:
  struct Ring {
    netmap_ring *ring = nullptr;
    nm_csb_atok *atok = nullptr;
    nm_csb_ktoa *ktoa = nullptr;
    char *bufs = nullptr;
    uint32_t nbufs = 0, num_slots = 0, head = 0;
    int kick = -1, irq = -1;
    RingStats st;
  };

  // Returns "" or what is wrong with the layout.
  std::string Setup(char *base, size_t size, unsigned peer,
                    const Vm::Peer &fds) {
    base_ = base;
    size_ = size;
    auto *g = reinterpret_cast<ptnm_global *>(base);
    if (Load(g->magic) != PTNM_MAGIC || Load(g->layout_major) != 1)
      return "bad magic/layout";
    if (Load(g->bar_size) != size) return "bad bar_size";
    if (peer == 0 || peer > Load(g->num_peers)) return "bad peer";
    buf_size_ = Load(g->buf_size);
    desc_ = reinterpret_cast<ptnm_port_desc *>(base + peer * PTNM_PAGE_SIZE);
    if (Load(desc_->peer_id) != peer) return "bad peer id";
    ntx_ = Load(desc_->num_tx_rings);
    nrx_ = Load(desc_->num_rx_rings);
    if (!ntx_ || !nrx_ || ntx_ > 16 || nrx_ > 16) return "bad ring counts";
    fds_ = fds;
    if (fds.kick.size() < 1u + ntx_ + nrx_) return "too few eventfds";
    std::string err = SetupRing(&tx_, 0, 0, Load(desc_->num_tx_slots));
    if (err.empty())
      err = SetupRing(&rx_, ntx_, ntx_, Load(desc_->num_rx_slots));
    return err;
  }

  // A netmap application in CSB mode plays the same protocol on its own
  // rings: point ring r (0 tx, 1 rx) at them. mem/memsize: its mapping.
  void SetupCsbRing(unsigned which, netmap_ring *ring, nm_csb_atok *atok,
                    nm_csb_ktoa *ktoa, int kick, int irq, char *mem,
                    size_t memsize) {
    Ring *r = which ? &rx_ : &tx_;
    r->ring = ring;
    r->atok = atok;
    r->ktoa = ktoa;
    r->kick = kick;
    r->irq = irq;
    r->num_slots = ring->num_slots;
    r->head = ring->head;
    buf_size_ = ring->nr_buf_size;
    r->bufs = reinterpret_cast<char *>(ring) + ring->buf_ofs;
    r->nbufs = (mem + memsize - r->bufs) / buf_size_;
  }

  ptnm_port_desc *desc() { return desc_; }
  Ring &tx() { return tx_; }
  Ring &rx() { return rx_; }
  uint32_t buf_size() const { return buf_size_; }

  // Control mailbox: returns the host's status, or -ETIMEDOUT.
  int Ctrl(uint32_t request, int timeout_ms = 2000) {
    ptnm_ctrl &c = desc_->ctrl;
    uint32_t seq = Load(c.resp_seq) + 1;
    Store(c.request, request);
    Wmb();
    Store(c.req_seq, seq);
    Kick(fds_.kick[PTNM_CTRL_VECTOR]);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
      if (Load(c.resp_seq) == seq) {
        Rmb();
        return Load(c.status);
      }
      pollfd p{fds_.irq[PTNM_CTRL_VECTOR], POLLIN, 0};
      if (poll(&p, 1, 10) > 0) Drain(p.fd);
    }
    return -ETIMEDOUT;
  }

  // The open sequence of pt_guest.c: heads from the rings, then START.
  int Start() {
    for (Ring *r : {&tx_, &rx_}) {
      uint32_t head = Load(r->ring->head);
      if (head >= r->num_slots) return -EPROTO;  // the host lies
      r->head = head;
      Store(r->atok->head, r->head);
      Store(r->atok->cur, r->head);
      Store(r->atok->appl_need_kick, 0u);
    }
    return Ctrl(PTNM_CTRL_START);
  }
  int Stop() { return Ctrl(PTNM_CTRL_STOP); }

  char *Buf(Ring &r, uint32_t slot) {
    uint32_t idx = Load(r.ring->slot[slot].buf_idx);
    return idx < r.nbufs ? r.bufs + size_t(idx) * buf_size_ : nullptr;
  }
  uint32_t HwTail(Ring &r) {
    uint32_t t = Load(r.ktoa->hwtail);
    Rmb();
    return t;
  }
  uint32_t Dist(const Ring &r, uint32_t a, uint32_t b) const {
    return b >= a ? b - a : b + r.num_slots - a;
  }
  void Publish(Ring &r) {
    Store(r.atok->cur, r.head);
    Wmb();
    Store(r.atok->head, r.head);
    Mb();
    if (Load(r.ktoa->kern_need_kick)) {
      Kick(r.kick);
      r.st.kicks++;
    }
  }

  // Waits for an interrupt on r after asking for one, unless `ready` turns
  // true after the request (the double check). false: nothing within
  // timeout_ms (a lost wake-up, or a dead host).
  template <typename Ready>
  bool Wait(Ring &r, Ready ready, int timeout_ms) {
    Store(r.atok->appl_need_kick, 1u);
    Mb();
    if (ready()) {
      Store(r.atok->appl_need_kick, 0u);
      return true;
    }
    r.st.waits++;
    if (r.irq < 0) {  // nobody will interrupt us: poll the CSB
      for (int waited = 0; waited < timeout_ms * 10; waited++) {
        if (ready()) break;
        usleep(100);
      }
      Store(r.atok->appl_need_kick, 0u);
      return ready() || (r.st.stalls++, false);
    }
    pollfd p{r.irq, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    Store(r.atok->appl_need_kick, 0u);
    if (n <= 0) {
      if (ready()) return true;
      r.st.stalls++;
      return false;
    }
    r.st.irqs += Drain(r.irq);
    return true;
  }

  // Sends `count` frames of `len` bytes in batches; frame k carries
  // (flow, first + k). Returns false on a stall.
  bool Send(uint64_t first, uint64_t count, unsigned batch, uint32_t len,
            uint32_t flow, int timeout_ms = 5000) {
    Ring &r = tx_;
    uint64_t seq = first, end = first + count;
    while (seq < end) {
      uint32_t space = Dist(r, r.head, HwTail(r));
      if (!space) {
        if (!Wait(r, [&] { return Dist(r, r.head, HwTail(r)) > 0; },
                  timeout_ms))
          return false;
        continue;
      }
      uint64_t n = std::min<uint64_t>({space, batch, end - seq});
      for (uint64_t i = 0; i < n; i++) {
        char *b = Buf(r, r.head);
        if (b) WriteFrame(b, flow, seq);
        Store(r.ring->slot[r.head].len, uint16_t(len));
        Store(r.ring->slot[r.head].flags, uint16_t(0));
        r.head = r.head + 1 == r.num_slots ? 0 : r.head + 1;
        seq++;
      }
      r.st.packets += n;
      Publish(r);
    }
    return true;
  }

  // Receives `count` frames of flow `flow`, checking their order (next
  // expected in *expect). Returns "" or what went wrong.
  std::string Receive(uint64_t *expect, uint64_t count, unsigned batch,
                      uint32_t flow, int timeout_ms = 5000) {
    Ring &r = rx_;
    uint64_t end = *expect + count;
    while (*expect < end) {
      uint32_t avail = Dist(r, r.head, HwTail(r));
      if (!avail) {
        if (!Wait(r, [&] { return HwTail(r) != r.head; }, timeout_ms))
          return "stall: nothing received for " + std::to_string(timeout_ms) +
                 " ms at " + std::to_string(*expect);
        continue;
      }
      uint32_t n = std::min<uint32_t>(avail, batch);
      for (uint32_t i = 0; i < n; i++) {
        char *b = Buf(r, r.head);
        uint32_t f = 0;
        uint64_t s = 0;
        if (!b) return "bad buffer index from the host";
        memcpy(&f, b + 14, 4);
        memcpy(&s, b + 18, 8);
        if (f != flow || s != *expect)
          return "got flow " + std::to_string(f) + " seq " + std::to_string(s) +
                 ", expected " + std::to_string(*expect);
        (*expect)++;
        r.head = r.head + 1 == r.num_slots ? 0 : r.head + 1;
      }
      r.st.packets += n;
      Publish(r);
    }
    return "";
  }

  // Both sides' view of ring r, for a report after a stall: the guest's
  // head, what it published (atok) and what the host published (ktoa).
  std::string Describe(Ring &r) {
    return "head " + std::to_string(r.head) + ", atok head " +
           std::to_string(Load(r.atok->head)) + " cur " + std::to_string(Load(r.atok->cur)) +
           " appl_need_kick " + std::to_string(Load(r.atok->appl_need_kick)) +
           ", ktoa hwcur " + std::to_string(Load(r.ktoa->hwcur)) + " hwtail " +
           std::to_string(Load(r.ktoa->hwtail)) + " kern_need_kick " +
           std::to_string(Load(r.ktoa->kern_need_kick)) + "; " +
           std::to_string(r.st.kicks) + " kicks, " + std::to_string(r.st.irqs) + " irqs, " +
           std::to_string(r.st.waits) + " waits";
  }

  static uint64_t Drain(int fd) {
    uint64_t v = 0;
    return read(fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
  }
  static void Kick(int fd) {
    uint64_t one = 1;
    if (fd < 0) return;  // a kloop without eventfds polls
    if (write(fd, &one, sizeof(one)) != sizeof(one)) perror("kick");
  }

 private:
  std::string SetupRing(Ring *r, unsigned index, unsigned csb_index,
                        uint32_t num_slots) {
    uint64_t nifp_off = Load(desc_->nifp_offset);
    uint64_t csb_off = Load(desc_->csb_offset);
    unsigned rings = ntx_ + nrx_;
    if (nifp_off + sizeof(netmap_if) + rings * 8 > size_) return "bad nifp";
    auto *nifp = reinterpret_cast<netmap_if *>(base_ + nifp_off);
    int64_t ofs = Load(nifp->ring_ofs[index]);
    uint64_t ring_off = nifp_off + ofs;
    if (ofs <= 0 || ring_off + sizeof(netmap_ring) + num_slots * 16ull > size_)
      return "bad ring offset";
    r->ring = reinterpret_cast<netmap_ring *>(base_ + ring_off);
    if (Load(r->ring->num_slots) != num_slots) return "bad num_slots";
    int64_t bofs = Load(r->ring->buf_ofs);
    uint64_t bufs_off = ring_off + bofs;
    if (bufs_off >= size_) return "bad buf_ofs";
    r->bufs = base_ + bufs_off;
    r->nbufs = (size_ - bufs_off) / buf_size_;
    r->num_slots = num_slots;
    if (csb_off % 64 || csb_off + rings * 128ull > size_) return "bad csb";
    r->atok = reinterpret_cast<nm_csb_atok *>(base_ + csb_off) + csb_index;
    r->ktoa = reinterpret_cast<nm_csb_ktoa *>(base_ + csb_off + rings * 64) +
              csb_index;
    r->kick = fds_.kick[PTNM_RING_VECTOR(csb_index)];
    r->irq = fds_.irq[PTNM_RING_VECTOR(csb_index)];
    return "";
  }

  char *base_ = nullptr;
  size_t size_ = 0;
  uint32_t buf_size_ = 0;
  ptnm_port_desc *desc_ = nullptr;
  unsigned ntx_ = 0, nrx_ = 0;
  Vm::Peer fds_;
  Ring tx_, rx_;
};

}  // namespace ptemu
