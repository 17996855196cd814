// SPDX-License-Identifier: GPL-2.0
// Ring semantics in the lab VM: initial state, the one-empty-slot rule,
// tail moving only in a sync, head/cur validation with ring reinit, slot
// validation, and buffer exchange with NS_BUF_CHANGED.
#include <set>

#include <gtest/gtest.h>

#include "nm_test.h"

namespace {

using nmtest::Port;
using nmtest::RegisterRequest;
using nmtest::UniqueName;

// Queue `n` packets of length `len` on a TX ring (no sync).
void Queue(netmap_ring *tx, uint32_t n, uint16_t len = 60) {
  uint32_t i = tx->head;
  for (uint32_t k = 0; k < n; k++) {
    tx->slot[i].len = len;
    i = nm_ring_next(tx, i);
  }
  tx->head = tx->cur = i;
}

class PipeRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName("ring");
    ASSERT_EQ(master_.Open(name_ + "{r",
                           [](RegisterRequest &r) {
                             r.body.nr_tx_slots = 64;
                             r.body.nr_rx_slots = 64;
                           }),
              0);
    ASSERT_EQ(slave_.Open(name_ + "}r"), 0);
    tx_ = master_.tx();
    rx_ = slave_.rx();
    ASSERT_EQ(tx_->num_slots, 64u);
  }
  std::string name_;
  Port master_, slave_;
  netmap_ring *tx_ = nullptr, *rx_ = nullptr;
};

TEST_F(PipeRingTest, InitialStateHasOneEmptySlot) {
  EXPECT_EQ(tx_->head, 0u);
  EXPECT_EQ(tx_->cur, 0u);
  EXPECT_EQ(tx_->tail, tx_->num_slots - 1);
  EXPECT_EQ(nm_ring_space(tx_), tx_->num_slots - 1);
  EXPECT_EQ(rx_->head, 0u);
  EXPECT_EQ(rx_->tail, 0u);
  // Every slot has a distinct buffer, none of the reserved ones.
  std::set<uint32_t> seen;
  for (netmap_ring *r : {tx_, rx_, master_.rx(), slave_.tx()}) {
    for (uint32_t i = 0; i < r->num_slots; i++) {
      EXPECT_GE(r->slot[i].buf_idx, 2u);
      EXPECT_TRUE(seen.insert(r->slot[i].buf_idx).second);
    }
  }
}

TEST_F(PipeRingTest, TailMovesOnlyInASync) {
  Queue(tx_, 5);
  EXPECT_EQ(tx_->tail, tx_->num_slots - 1);  // not before the sync
  ASSERT_EQ(master_.TxSync(), 0);
  EXPECT_EQ(tx_->tail, 4u);  // all five went out: hwcur - 1
  EXPECT_EQ(rx_->tail, 0u);  // the receiver has not synced
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(rx_->tail, 5u);
  // Consuming without a sync changes nothing on the sender side.
  rx_->head = rx_->cur = 5;
  EXPECT_EQ(tx_->tail, 4u);
}

TEST_F(PipeRingTest, FullRingHoldsNumSlotsMinusOne) {
  uint32_t n = tx_->num_slots;
  Queue(tx_, n - 1);
  ASSERT_EQ(master_.TxSync(), 0);
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), n - 1);
  // More packets stay pending on the sender: the receiver ring is full.
  Queue(tx_, 10);
  ASSERT_EQ(master_.TxSync(), 0);
  EXPECT_TRUE(nm_tx_pending(tx_));
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), n - 1);
  // Releasing 10 slots lets exactly the 10 pending packets through.
  rx_->head = rx_->cur = (rx_->head + 10) % n;
  ASSERT_EQ(slave_.RxSync(), 0);
  ASSERT_EQ(master_.TxSync(), 0);
  EXPECT_FALSE(nm_tx_pending(tx_));
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), n - 1);
}

// Each garbage head/cur is refused: the ring is reset to the kernel's state.
TEST_F(PipeRingTest, GarbageHeadOrCurResetsTheRing) {
  Queue(tx_, 3);
  ASSERT_EQ(master_.TxSync(), 0);  // hwcur 3, tail 2
  const uint32_t n = tx_->num_slots;
  struct Case {
    uint32_t head, cur;
  } cases[] = {
      {n, n},           // out of the ring
      {0xffffffff, 3},  // out of the ring
      {3, n + 1},       // cur out of the ring
      {10, 5},          // cur before head
      {3, 3 + 0},       // (valid, control)
  };
  for (const Case &c : cases) {
    tx_->head = c.head;
    tx_->cur = c.cur;
    ASSERT_EQ(master_.TxSync(), 0);
    EXPECT_EQ(tx_->head, 3u) << c.head << "/" << c.cur;
    EXPECT_EQ(tx_->cur, 3u) << c.head << "/" << c.cur;
    EXPECT_EQ(tx_->tail, 2u);
  }
  // The receiver got the three good packets and nothing else.
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), 3u);
}

TEST_F(PipeRingTest, RxHeadPastTailOrBackwardsResetsTheRing) {
  Queue(tx_, 5);
  ASSERT_EQ(master_.TxSync(), 0);
  ASSERT_EQ(slave_.RxSync(), 0);
  ASSERT_EQ(rx_->tail, 5u);
  // The receiver owns [head, tail): head = tail + 1 is garbage.
  rx_->head = rx_->cur = 6;
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(rx_->head, 0u);
  EXPECT_EQ(rx_->cur, 0u);
  EXPECT_EQ(rx_->tail, 5u);
  // Releasing three is fine; taking one back is not.
  rx_->head = rx_->cur = 3;
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(rx_->head, 3u);
  rx_->head = rx_->cur = 1;
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(rx_->head, 3u);
  EXPECT_EQ(nm_ring_space(rx_), 2u);
}

TEST_F(PipeRingTest, BadSlotStopsTheSyncAndIsCleaned) {
  Queue(tx_, 4, 100);
  tx_->slot[2].buf_idx = 0x7fffffff;  // outside the region
  ASSERT_EQ(master_.TxSync(), 0);
  // Two packets left; the ring was reset at the bad slot, which now holds
  // the reserved buffer 0 with no data.
  EXPECT_EQ(tx_->head, 2u);
  EXPECT_EQ(tx_->slot[2].buf_idx, 0u);
  EXPECT_EQ(tx_->slot[2].len, 0u);
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), 2u);

  // A length beyond the buffer size is refused the same way.
  tx_->slot[2].buf_idx = tx_->slot[10].buf_idx;
  tx_->slot[10].buf_idx = 0;
  tx_->slot[2].len = 4096;
  tx_->head = tx_->cur = 3;
  ASSERT_EQ(master_.TxSync(), 0);
  EXPECT_EQ(tx_->head, 2u);
  EXPECT_EQ(tx_->slot[2].len, 0u);
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(rx_), 2u);
}

TEST_F(PipeRingTest, PollReportsABadRing) {
  tx_->head = 12345;
  EXPECT_TRUE(master_.Poll(POLLOUT, 0) & POLLERR);
  EXPECT_EQ(tx_->head, 0u);
  EXPECT_EQ(master_.Poll(POLLOUT, 0), POLLOUT);
}

// An application swaps its own (extra) buffer into a TX slot: with
// NS_BUF_CHANGED, that buffer is what the receiver gets.
TEST(RingTest, BufChangedSendsTheNewBuffer) {
  std::string name = UniqueName("ring");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{b",
                        [](RegisterRequest &r) { r.body.nr_extra_bufs = 4; }),
            0);
  ASSERT_EQ(master.reg().nr_extra_bufs, 4u);
  ASSERT_EQ(slave.Open(name + "}b"), 0);
  netmap_ring *tx = master.tx();
  uint32_t extra = master.nifp()->ni_bufs_head;
  ASSERT_GE(extra, 2u);
  char *buf = NETMAP_BUF(tx, extra);
  uint32_t next_extra = *reinterpret_cast<uint32_t *>(buf);
  strcpy(buf, "zero-copy hello");

  uint32_t i = tx->head;
  uint32_t old = tx->slot[i].buf_idx;
  tx->slot[i].buf_idx = extra;
  tx->slot[i].len = 16;
  tx->slot[i].flags = NS_BUF_CHANGED;
  tx->head = tx->cur = nm_ring_next(tx, i);
  ASSERT_EQ(master.TxSync(), 0);
  // Keep the extra list intact: the old slot buffer replaces the sent one.
  *reinterpret_cast<uint32_t *>(NETMAP_BUF(tx, old)) = next_extra;
  master.nifp()->ni_bufs_head = old;

  ASSERT_EQ(slave.RxSync(), 0);
  netmap_ring *rx = slave.rx();
  ASSERT_EQ(nm_ring_space(rx), 1u);
  EXPECT_EQ(rx->slot[rx->head].buf_idx, extra);
  EXPECT_TRUE(rx->slot[rx->head].flags & NS_BUF_CHANGED);
  EXPECT_STREQ(NETMAP_BUF(rx, rx->slot[rx->head].buf_idx), "zero-copy hello");
}

// Null ports: rings laid out in a region, no traffic, same validation.
TEST(RingTest, NullPortValidatesButNeverMoves) {
  Port p;
  ASSERT_EQ(p.Open("nullring",
                   [](RegisterRequest &r) {
                     r.body.nr_mode = NR_REG_NULL;
                     r.body.nr_mem_id = 1;
                     r.body.nr_tx_rings = 2;
                     r.body.nr_rx_rings = 3;
                     r.body.nr_tx_slots = 128;
                     r.body.nr_rx_slots = 256;
                   }),
            0);
  EXPECT_EQ(p.reg().nr_mem_id, 1);
  EXPECT_EQ(p.nifp()->ni_tx_rings, 2u);
  EXPECT_EQ(p.nifp()->ni_rx_rings, 3u);
  EXPECT_EQ(p.nifp()->ni_flags & NI_PRIV_MEM, 0u);
  netmap_ring *tx = p.tx(1);
  EXPECT_EQ(tx->num_slots, 128u);
  EXPECT_EQ(tx->ringid, 1);
  EXPECT_EQ(p.rx(2)->num_slots, 256u);
  EXPECT_EQ(p.rx(2)->ringid, 2);
  Queue(tx, 5);
  ASSERT_EQ(p.TxSync(), 0);
  EXPECT_EQ(tx->head, 5u);
  EXPECT_EQ(tx->tail, 127u);
  tx->head = 200;
  ASSERT_EQ(p.TxSync(), 0);
  EXPECT_EQ(tx->head, 0u);  // reset to hwcur
  netmap_ring *rx = p.rx(0);
  rx->head = 1;
  ASSERT_EQ(p.RxSync(), 0);
  EXPECT_EQ(rx->head, 0u);
  EXPECT_EQ(rx->tail, 0u);
}

// Userspace may scribble over the constant ring fields: the kernel keeps
// its own copies and goes on working.
TEST_F(PipeRingTest, ScribbledConstantsAreNotTrusted) {
  tx_->num_slots = 1 << 30;
  tx_->buf_ofs = -1;
  tx_->nr_buf_size = 1;
  Queue(tx_, 1);
  tx_->head = tx_->cur = 1;
  ASSERT_EQ(master_.TxSync(), 0);
  ASSERT_EQ(slave_.RxSync(), 0);
  EXPECT_EQ(rx_->tail, 1u);
}

}  // namespace
