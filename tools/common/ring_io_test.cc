// SPDX-License-Identifier: BSD-2-Clause
// Ring I/O on netmap rings built in memory, with a stand-in for the kernel's
// pipe sync: whole streams go through FillTxRing -> pipe -> DrainRxRing and
// through ForwardRing, as they will through the real rings.
#include "common/ring_io.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "common/traffic.h"

namespace ptools {
namespace {

// `rings` rings of `slots` slots sharing one pool of buffers, like a region.
class RingArena {
 public:
  RingArena(int rings, uint32_t slots, uint32_t buf_size = 2048)
      : slots_(slots), ring_bytes_(RoundUp(sizeof(netmap_ring) + slots * sizeof(netmap_slot))) {
    size_t bufs = static_cast<size_t>(rings) * slots + 1;  // index 0 stays unused
    size_t total = rings * ring_bytes_ + bufs * buf_size;
    base_ = static_cast<char*>(std::aligned_alloc(NM_CACHE_ALIGN, RoundUp(total)));
    std::memset(base_, 0, total);
    for (int r = 0; r < rings; ++r) {
      netmap_ring* ring = this->ring(r);
      ring->num_slots = slots;
      ring->nr_buf_size = buf_size;
      ring->buf_ofs =
          static_cast<int64_t>(rings * ring_bytes_) - r * static_cast<int64_t>(ring_bytes_);
      for (uint32_t s = 0; s < slots; ++s) ring->slot[s].buf_idx = 1 + r * slots + s;
    }
  }
  ~RingArena() { std::free(base_); }

  netmap_ring* ring(int i) { return reinterpret_cast<netmap_ring*>(base_ + i * ring_bytes_); }

  // As the kernel leaves them after registration.
  netmap_ring* Tx(int i) {
    netmap_ring* r = ring(i);
    r->dir = NR_TX;
    r->head = r->cur = 0;
    r->tail = slots_ - 1;
    return r;
  }
  netmap_ring* Rx(int i) {
    netmap_ring* r = ring(i);
    r->dir = NR_RX;
    r->head = r->cur = r->tail = 0;
    return r;
  }

 private:
  static size_t RoundUp(size_t n) { return (n + NM_CACHE_ALIGN - 1) & ~size_t{NM_CACHE_ALIGN - 1}; }
  uint32_t slots_;
  size_t ring_bytes_;
  char* base_;
};

// What a netmap pipe's sync does: slots the sender handed over ([hwcur,
// head) of tx) move to the free part of rx by swapping buffers; tx->tail
// then returns the sent slots to the sender.
class FakePipe {
 public:
  FakePipe(netmap_ring* tx, netmap_ring* rx) : tx_(tx), rx_(rx) {}

  void Sync() {
    uint32_t n = tx_->num_slots;
    uint32_t to_send = (tx_->head + n - hwcur_) % n;
    uint32_t room = (rx_->head + n - 1 - rx_->tail) % n;
    for (uint32_t k = 0; k < std::min(to_send, room); ++k) {
      netmap_slot* ts = &tx_->slot[hwcur_];
      netmap_slot* rs = &rx_->slot[rx_->tail];
      std::swap(ts->buf_idx, rs->buf_idx);
      rs->len = ts->len;
      hwcur_ = nm_ring_next(tx_, hwcur_);
      rx_->tail = nm_ring_next(rx_, rx_->tail);
    }
    tx_->tail = (hwcur_ + n - 1) % n;
  }

 private:
  netmap_ring* tx_;
  netmap_ring* rx_;
  uint32_t hwcur_ = 0;
};

TEST(RingIoTest, FillRespectsMaxAndSpace) {
  RingArena arena(1, 8);
  netmap_ring* tx = arena.Tx(0);
  Generator gen(LengthSchedule(60, 60));
  EXPECT_EQ(FillTxRing(tx, 3, [&](uint8_t* b) { return gen.Next(b, 0); }), 3u);
  EXPECT_EQ(tx->head, 3u);
  EXPECT_EQ(tx->cur, 3u);
  EXPECT_EQ(tx->slot[0].len, 60);
  EXPECT_EQ(FillTxRing(tx, 100, [&](uint8_t* b) { return gen.Next(b, 0); }), 4u);  // 7 usable
  EXPECT_EQ(FillTxRing(tx, 100, [&](uint8_t* b) { return gen.Next(b, 0); }), 0u);
  EXPECT_EQ(gen.packets(), 7u);
}

TEST(RingIoTest, StreamThroughAPipeArrivesIntact) {
  std::mt19937 rng(1);
  for (uint32_t slots : {2u, 3u, 64u, 1024u}) {
    SCOPED_TRACE(slots);
    RingArena arena(2, slots);
    netmap_ring* tx = arena.Tx(0);
    netmap_ring* rx = arena.Rx(1);
    FakePipe pipe(tx, rx);
    Generator gen(LengthSchedule(60, 1514));
    Receiver receiver(/*verify=*/true);
    constexpr uint64_t kPackets = 50'000;
    while (receiver.packets() < kPackets) {
      uint32_t want = std::min<uint64_t>(rng() % 600 + 1, kPackets - gen.packets());
      FillTxRing(tx, want, [&](uint8_t* b) { return gen.Next(b, 9); });
      pipe.Sync();
      DrainRxRing(rx, rng() % 600 + 1,
                  [&](const uint8_t* f, size_t len) { receiver.Receive(f, len); });
    }
    EXPECT_EQ(receiver.packets(), kPackets);
    EXPECT_EQ(receiver.sequence().lost(kPackets), 0u);
    EXPECT_EQ(receiver.sequence().out_of_order(), 0u);
    EXPECT_EQ(receiver.corrupted(), 0u);
    EXPECT_EQ(receiver.bytes(), gen.bytes());
  }
}

// Fills rx with n packets as a pipe would deliver them.
void Deliver(RingArena& arena, int tx_index, netmap_ring* rx, uint32_t n, Generator& gen) {
  netmap_ring* tx = arena.Tx(tx_index);
  FakePipe pipe(tx, rx);
  FillTxRing(tx, n, [&](uint8_t* b) { return gen.Next(b, 0); });
  pipe.Sync();
}

TEST(RingIoTest, ZeroCopyForwardSwapsBuffers) {
  RingArena arena(3, 16);
  netmap_ring* rx = arena.Rx(0);
  netmap_ring* out = arena.Tx(1);
  Generator gen(LengthSchedule(60, 200));
  Deliver(arena, 2, rx, 10, gen);
  std::vector<uint32_t> rx_bufs, out_bufs;
  for (uint32_t i = 0; i < 10; ++i) {
    rx_bufs.push_back(rx->slot[i].buf_idx);
    out_bufs.push_back(out->slot[i].buf_idx);
  }
  ForwardCounts counts;
  EXPECT_EQ(ForwardRing(rx, out, 100, /*zerocopy=*/true, &counts), 10u);
  EXPECT_EQ(counts.packets, 10u);
  EXPECT_EQ(counts.bytes, gen.bytes());
  EXPECT_EQ(rx->head, 10u);
  EXPECT_EQ(out->head, 10u);
  Receiver check(true);
  for (uint32_t i = 0; i < 10; ++i) {
    EXPECT_EQ(out->slot[i].buf_idx, rx_bufs[i]);
    EXPECT_EQ(rx->slot[i].buf_idx, out_bufs[i]);
    EXPECT_TRUE(out->slot[i].flags & NS_BUF_CHANGED);
    EXPECT_TRUE(rx->slot[i].flags & NS_BUF_CHANGED);
    check.Receive(reinterpret_cast<uint8_t*>(NETMAP_BUF(out, out->slot[i].buf_idx)),
                  out->slot[i].len);
  }
  EXPECT_EQ(check.corrupted(), 0u);
  EXPECT_EQ(check.sequence().lost(10), 0u);
}

TEST(RingIoTest, CopyForwardCopiesAndDropsWhatDoesNotFit) {
  RingArena in_region(2, 16);
  RingArena out_region(1, 16, /*buf_size=*/128);
  netmap_ring* rx = in_region.Rx(0);
  netmap_ring* out = out_region.Tx(0);
  Generator gen(LengthSchedule(100, 160));
  Deliver(in_region, 1, rx, 12, gen);
  uint32_t fitting = 0;
  for (uint32_t i = 0; i < 12; ++i) fitting += rx->slot[i].len <= 128;
  ASSERT_GT(fitting, 0u);
  ASSERT_LT(fitting, 12u);
  uint32_t out_buf0 = out->slot[0].buf_idx;
  ForwardCounts counts;
  EXPECT_EQ(ForwardRing(rx, out, 100, /*zerocopy=*/false, &counts), 12u);
  EXPECT_EQ(counts.packets, fitting);
  EXPECT_EQ(counts.dropped, 12u - fitting);
  EXPECT_EQ(out->head, fitting);
  EXPECT_EQ(out->slot[0].buf_idx, out_buf0);  // buffers stay where they were
  Receiver check(true);
  for (uint32_t i = 0; i < fitting; ++i) {
    EXPECT_EQ(out->slot[i].flags & NS_BUF_CHANGED, 0);
    check.Receive(reinterpret_cast<uint8_t*>(NETMAP_BUF(out, out->slot[i].buf_idx)),
                  out->slot[i].len);
  }
  EXPECT_EQ(check.corrupted(), 0u);
}

TEST(RingIoTest, ForwardStopsWhenTheTxRingIsFull) {
  RingArena arena(3, 8);
  netmap_ring* rx = arena.Rx(0);
  netmap_ring* out = arena.Tx(1);
  Generator gen(LengthSchedule(60, 60));
  Deliver(arena, 2, rx, 7, gen);
  out->tail = 3;  // only 3 free slots
  ForwardCounts counts;
  EXPECT_EQ(ForwardRing(rx, out, 100, true, &counts), 3u);
  EXPECT_EQ(rx->head, 3u);
  EXPECT_EQ(nm_ring_space(rx), 4u);
  EXPECT_EQ(ForwardRing(rx, out, 100, true, &counts), 0u);
}

}  // namespace
}  // namespace ptools
