// SPDX-License-Identifier: GPL-2.0
// Randomized requests against the live module in the lab VM: thousands of
// NIOCCTRL requests with random headers, bodies and option chains, syncs
// and polls on rings scribbled with random indexes, random mmaps, files
// closed at random. Passing means: every call returns, and the lab finds no
// oops or warning and unloads the module (no leaked reference).
//
// The seed is printed; PTNM_FUZZ_SEED=<n> replays a run, PTNM_FUZZ_ITERS
// sets its length.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pthread.h>

#include "nm_test.h"

namespace {

using nmtest::Port;
using nmtest::RegisterRequest;

uint64_t EnvOr(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  return v && *v ? strtoull(v, nullptr, 0) : fallback;
}

class Fuzzer {
 public:
  explicit Fuzzer(uint64_t seed) : rng_(seed) {
    extmem_ = mmap(nullptr, kExtmemSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  ~Fuzzer() {
    for (Slot &s : slots_) Close(s);
    munmap(extmem_, kExtmemSize);
  }

  void Step() {
    Slot &s = slots_[Pick(slots_.size())];
    switch (Pick(10)) {
      case 0: case 1: case 2: case 3:
        Ctrl(s);
        break;
      case 4:
        Scribble(s);
        [[fallthrough]];
      case 5:
        Sync(s);
        break;
      case 6:
        Poll(s);
        break;
      case 7:
        Mmap(s);
        break;
      case 8:
        if (Pick(4) == 0) Close(s);
        break;
      default:
        Register(s);
        break;
    }
  }
  uint64_t calls() const { return calls_; }

 private:
  static constexpr size_t kExtmemSize = 4 << 20;
  struct Slot {
    int fd = -1;
    void *mem = nullptr;
    uint64_t memsize = 0;
    uint64_t offset = 0;
  };

  uint32_t Pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  bool OneIn(uint32_t n) { return Pick(n) == 0; }
  uint64_t Any() { return rng_(); }

  int Fd(Slot &s) {
    if (s.fd < 0) s.fd = nmtest::OpenNetmap();
    return s.fd;
  }
  void Close(Slot &s) {
    if (s.mem) munmap(s.mem, s.memsize);
    if (s.fd >= 0) close(s.fd);
    s = Slot{};
  }

  // Names: a few parents and ids so pipes are found again, plus bad ones.
  std::string Name() {
    static const char *const names[] = {
        "fz{0", "fz}0", "fz{1", "fz}1", "fz{2", "fz}2", "fz{3", "fz}3",
        "fy{a", "fy}a", "", "nosuch", "{1", "fz{", "fz}", "fz{1{2", "fz{1}",
        "a b{1", "vale0:fz", "vale1:fz{1", "lo", "null"};
    if (OneIn(20)) {
      std::string junk(Pick(70), 'x');
      for (char &c : junk) c = static_cast<char>(Any());
      return junk;
    }
    return names[Pick(sizeof(names) / sizeof(names[0]))];
  }

  void RandomRegister(nmreq_register *r) {
    static const uint64_t flags[] = {NR_EXCLUSIVE, NR_RX_RINGS_ONLY, NR_TX_RINGS_ONLY,
                                     NR_ACCEPT_VNET_HDR, NR_DO_RX_POLL, NR_NO_TX_POLL,
                                     NR_MONITOR_TX};
    *r = {};
    r->nr_mode = OneIn(10) ? static_cast<uint32_t>(Any()) : Pick(10);
    for (uint64_t f : flags)
      if (OneIn(6)) r->nr_flags |= f;
    if (OneIn(20)) r->nr_flags = Any();
    r->nr_ringid = OneIn(10) ? static_cast<uint16_t>(Any()) : Pick(4);
    r->nr_tx_rings = Pick(4);
    r->nr_rx_rings = Pick(4);
    r->nr_host_tx_rings = OneIn(4) ? Pick(3) : 0;
    r->nr_host_rx_rings = OneIn(4) ? Pick(3) : 0;
    r->nr_tx_slots = OneIn(5) ? static_cast<uint32_t>(Any()) : 4u << Pick(8);
    r->nr_rx_slots = OneIn(5) ? static_cast<uint32_t>(Any()) : 4u << Pick(8);
    r->nr_mem_id = OneIn(3) ? (OneIn(10) ? static_cast<uint16_t>(Any()) : Pick(4)) : 0;
    r->nr_extra_bufs = OneIn(4) ? (OneIn(10) ? static_cast<uint32_t>(Any()) : Pick(64)) : 0;
  }

  // An option chain of up to four links, sometimes broken on purpose.
  uint64_t Options() {
    if (!OneIn(3)) return 0;
    unsigned n = 1 + Pick(4);
    for (unsigned i = 0; i < n; i++) {
      uint8_t *o = opt_buf_[i];
      memset(o, 0, sizeof(opt_buf_[i]));
      auto *hdr = reinterpret_cast<nmreq_option *>(o);
      hdr->nro_reqtype = OneIn(8) ? static_cast<uint32_t>(Any()) : Pick(7);
      switch (hdr->nro_reqtype) {
        case NETMAP_REQ_OPT_EXTMEM: {
          auto *e = reinterpret_cast<nmreq_opt_extmem *>(o);
          hdr->nro_size = sizeof(*e);
          e->nro_usrptr = reinterpret_cast<uintptr_t>(extmem_) +
                          (OneIn(4) ? Pick(8192) : 0);
          e->nro_info.nr_memsize = OneIn(4) ? Any() : (1 + Pick(4)) << 20;
          if (OneIn(3)) e->nro_info.nr_buf_pool_objsize = Pick(4096);
          if (OneIn(3)) e->nro_info.nr_ring_pool_objtotal = Pick(100);
          break;
        }
        case NETMAP_REQ_OPT_CSB:
          hdr->nro_size = sizeof(nmreq_opt_csb);
          break;
        case NETMAP_REQ_OPT_OFFSETS:
          hdr->nro_size = sizeof(nmreq_opt_offsets);
          break;
        default:
          hdr->nro_size = sizeof(nmreq_option) + 8 * Pick(8);
      }
      if (OneIn(10)) hdr->nro_size = OneIn(2) ? Pick(64) : Any();
      hdr->nro_next = i + 1 < n ? reinterpret_cast<uintptr_t>(opt_buf_[i + 1]) : 0;
      if (OneIn(30)) hdr->nro_next = reinterpret_cast<uintptr_t>(opt_buf_[Pick(i + 1)]);
      if (OneIn(50)) hdr->nro_next = Any();
      for (int k = 0; k < 4 && OneIn(20); k++)  // random payload bytes
        o[sizeof(nmreq_option) + Pick(sizeof(opt_buf_[i]) - sizeof(nmreq_option))] =
            static_cast<uint8_t>(Any());
    }
    return OneIn(50) ? Any() : reinterpret_cast<uintptr_t>(opt_buf_[0]);
  }

  void Ctrl(Slot &s) {
    nmreq_header hdr{};
    hdr.nr_version = OneIn(10) ? static_cast<uint16_t>(Any()) : NETMAP_API;
    hdr.nr_reqtype = OneIn(5) ? static_cast<uint16_t>(Pick(20)) : 1 + Pick(15);
    if (OneIn(10)) hdr.nr_reqtype = static_cast<uint16_t>(Any());
    hdr.nr_reserved = OneIn(20) ? static_cast<uint32_t>(Any()) : 0;
    std::string name = Name();
    memcpy(hdr.nr_name, name.data(), std::min(name.size(), sizeof(hdr.nr_name)));
    memset(body_, 0, sizeof(body_));
    if (hdr.nr_reqtype == NETMAP_REQ_REGISTER && !OneIn(10))
      RandomRegister(reinterpret_cast<nmreq_register *>(body_));
    else
      for (int k = 0; k < 8; k++) body_[Pick(64)] = static_cast<uint8_t>(Any());
    hdr.nr_body = OneIn(10) ? 0 : (OneIn(30) ? Any() : reinterpret_cast<uintptr_t>(body_));
    hdr.nr_options = Options();
    calls_++;
    if (ioctl(Fd(s), NIOCCTRL, &hdr) == 0 && hdr.nr_reqtype == NETMAP_REQ_REGISTER) {
      auto *r = reinterpret_cast<nmreq_register *>(body_);
      MapAfterRegister(s, r->nr_memsize, r->nr_offset);
    }
  }

  void Register(Slot &s) {
    if (s.mem) return;
    RegisterRequest req(NETMAP_REQ_REGISTER, OneIn(2) ? "fz{1" : "fz}1");
    RandomRegister(&req.body);
    if (!OneIn(3)) req.body.nr_mode = NR_REG_ALL_NIC, req.body.nr_flags = 0;
    calls_++;
    if (req.Send(Fd(s)) == 0) MapAfterRegister(s, req.body.nr_memsize, req.body.nr_offset);
  }

  void MapAfterRegister(Slot &s, uint64_t memsize, uint64_t offset) {
    void *m = mmap(nullptr, memsize, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, 0);
    if (m == MAP_FAILED) return;
    if (s.mem) munmap(s.mem, s.memsize);
    s.mem = m;
    s.memsize = memsize;
    s.offset = offset;
  }

  // Random writes to the indexes and slots of a random ring, and now and
  // then to the netmap_if and the constant fields.
  void Scribble(Slot &s) {
    if (!s.mem) return;
    netmap_if *nifp = NETMAP_IF(s.mem, s.offset);
    uint32_t nrings = nifp->ni_tx_rings + nifp->ni_host_tx_rings +
                      nifp->ni_rx_rings + nifp->ni_host_rx_rings;
    if (nrings == 0 || nrings > 64) return;
    int64_t ofs = nifp->ring_ofs[Pick(nrings)];
    if (ofs <= 0 || s.offset + ofs + sizeof(netmap_ring) > s.memsize) return;
    auto *ring = reinterpret_cast<netmap_ring *>(reinterpret_cast<char *>(nifp) + ofs);
    uint32_t n = ring->num_slots;
    if (n == 0 || s.offset + ofs + sizeof(netmap_ring) + 16ull * n > s.memsize) return;
    switch (Pick(8)) {
      case 0: ring->head = OneIn(2) ? Pick(n + 2) : static_cast<uint32_t>(Any()); break;
      case 1: ring->cur = OneIn(2) ? Pick(n + 2) : static_cast<uint32_t>(Any()); break;
      case 2: ring->head = ring->cur = ring->tail; break;
      case 3: ring->head = ring->cur = (ring->head + Pick(n)) % n; break;
      case 4: ring->slot[Pick(n)].buf_idx = OneIn(2) ? Pick(100000) : static_cast<uint32_t>(Any()); break;
      case 5: ring->slot[Pick(n)].len = static_cast<uint16_t>(Any()); break;
      case 6: ring->slot[Pick(n)].flags = static_cast<uint16_t>(Any()); break;
      default:
        if (OneIn(4)) nifp->ni_bufs_head = static_cast<uint32_t>(Any());
        if (OneIn(8)) ring->flags = static_cast<uint32_t>(Any());
        break;
    }
  }

  void Sync(Slot &s) {
    calls_++;
    ioctl(Fd(s), OneIn(2) ? NIOCTXSYNC : NIOCRXSYNC);
  }

  void Poll(Slot &s) {
    pollfd p{Fd(s), static_cast<short>(OneIn(3) ? POLLIN : (OneIn(2) ? POLLOUT : POLLIN | POLLOUT)), 0};
    calls_++;
    poll(&p, 1, 0);
  }

  void Mmap(Slot &s) {
    size_t len = 4096 * (1 + Pick(4096));
    off_t off = 4096 * static_cast<off_t>(OneIn(2) ? 0 : Pick(20000));
    int flags = OneIn(5) ? MAP_PRIVATE : MAP_SHARED;
    calls_++;
    void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, flags, Fd(s), off);
    if (m == MAP_FAILED) return;
    static_cast<volatile char *>(m)[0] = 1;
    static_cast<volatile char *>(m)[len - 1] = 1;
    munmap(m, len);
  }

  std::mt19937_64 rng_;
  std::vector<Slot> slots_ = std::vector<Slot>(8);
  void *extmem_ = nullptr;
  alignas(8) uint8_t body_[4096];
  alignas(8) uint8_t opt_buf_[4][256];
  uint64_t calls_ = 0;
};

TEST(FuzzTest, RandomRequestsLeaveTheKernelSound) {
  uint64_t seed = EnvOr("PTNM_FUZZ_SEED", std::random_device{}());
  uint64_t iters = EnvOr("PTNM_FUZZ_ITERS", 6000);
  printf("fuzz seed %llu, %llu steps (replay: PTNM_FUZZ_SEED=%llu)\n",
         static_cast<unsigned long long>(seed), static_cast<unsigned long long>(iters),
         static_cast<unsigned long long>(seed));
  fflush(stdout);
  RecordProperty("seed", std::to_string(seed));

  // Anchors keep the fuzzed pipe parent and the global region alive, so the
  // run is not dominated by region creation.
  Port anchor_pipe, anchor_global;
  ASSERT_EQ(anchor_pipe.Open("fz{0"), 0);
  ASSERT_EQ(anchor_global.Open("fzanchor", [](RegisterRequest &r) {
    r.body.nr_mode = NR_REG_NULL;
    r.body.nr_mem_id = 1;
  }), 0);

  uint64_t calls;
  {
    Fuzzer fuzzer(seed);
    for (uint64_t i = 0; i < iters; i++) fuzzer.Step();
    calls = fuzzer.calls();
  }
  printf("fuzz: %llu calls\n", static_cast<unsigned long long>(calls));

  // The module still works: a fresh pipe carries a packet.
  Port m, s;
  ASSERT_EQ(m.Open("fzafter{1"), 0);
  ASSERT_EQ(s.Open("fzafter}1"), 0);
  netmap_ring *tx = m.tx();
  tx->slot[tx->head].len = 60;
  tx->head = tx->cur = nm_ring_next(tx, tx->head);
  ASSERT_EQ(m.TxSync(), 0);
  ASSERT_EQ(s.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(s.rx()), 1u);
}

// Several threads at once: traffic on one end while the other end, sibling
// pipes and info requests come and go; syncs racing on one shared file.
TEST(FuzzTest, ConcurrentOpenCloseAndTraffic) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ops{0};
  Port sender;
  ASSERT_EQ(sender.Open("fzc{1"), 0);

  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // sender, sharing its file with the next thread
    netmap_ring *tx = sender.tx();
    while (!stop) {
      uint32_t n = nm_ring_space(tx);
      uint32_t i = tx->head;
      for (uint32_t k = 0; k < n; k++, i = nm_ring_next(tx, i)) tx->slot[i].len = 60;
      tx->head = tx->cur = i;
      sender.TxSync();
      sender.Poll(POLLOUT, 1);
      ops++;
    }
  });
  threads.emplace_back([&] {  // same file: syncs and polls race with the sender
    while (!stop) {
      ioctl(sender.fd(), NIOCRXSYNC);
      sender.Poll(POLLIN | POLLOUT, 0);
      ops++;
    }
  });
  threads.emplace_back([&] {  // the peer end, opened and closed
    while (!stop) {
      Port rx;
      if (rx.Open("fzc}1") == 0) {
        for (int k = 0; k < 5; k++) {
          rx.Poll(POLLIN, 1);
          netmap_ring *r = rx.rx();
          r->head = r->cur = r->tail;
        }
      }
      ops++;
    }
  });
  threads.emplace_back([&] {  // siblings and info requests on the parent
    for (int k = 0; !stop; k++) {
      Port p;
      p.Open("fzc{" + std::to_string(2 + k % 3));
      int fd = nmtest::OpenNetmap();
      nmtest::Request<nmreq_port_info_get> info(NETMAP_REQ_PORT_INFO_GET, "fzc}1");
      info.Send(fd);
      nmtest::Request<nmreq_pools_info> pools(NETMAP_REQ_POOLS_INFO_GET, "fzc{1");
      pools.Send(fd);
      close(fd);
      ops++;
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(EnvOr("PTNM_STRESS_SECONDS", 5)));
  stop = true;
  for (std::thread &t : threads) t.join();
  printf("stress: %llu operations\n", static_cast<unsigned long long>(ops.load()));
  EXPECT_GT(ops.load(), 0u);
}

}  // namespace
