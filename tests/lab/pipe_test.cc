// SPDX-License-Identifier: GPL-2.0
// Netmap pipes in the lab VM: naming, the shared region, zero-copy buffer
// swaps, and traffic integrity (order, length, payload) across ring and
// batch sizes.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "nm_test.h"

namespace {

using nmtest::Port;
using nmtest::RegisterRequest;
using nmtest::UniqueName;

// Payload of packet `seq`: its length and every byte follow from seq.
uint16_t PacketLen(uint64_t seq, uint32_t max) {
  uint32_t span = std::min<uint32_t>(max, 1514) - 60 + 1;
  return static_cast<uint16_t>(60 + (seq * 2654435761u) % span);
}

void FillPacket(char *buf, uint64_t seq, uint16_t len) {
  memcpy(buf, &seq, sizeof(seq));
  for (uint16_t i = sizeof(seq); i < len; i++)
    buf[i] = static_cast<char>(seq + i);
}

// Empty string if the payload is intact, else what is wrong.
std::string CheckPayload(const char *buf, uint64_t seq, uint16_t len) {
  uint64_t got;
  memcpy(&got, buf, sizeof(got));
  if (got != seq)
    return "expected packet " + std::to_string(seq) + ", got " +
           std::to_string(got);
  for (uint16_t i = sizeof(seq); i < len; i++)
    if (buf[i] != static_cast<char>(seq + i))
      return "packet " + std::to_string(seq) + ": byte " + std::to_string(i);
  return "";
}

// Empty string if packet `seq` has its length and payload, else what is wrong.
std::string CheckPacket(const char *buf, uint64_t seq, uint16_t len,
                        uint32_t max) {
  if (len != PacketLen(seq, max))
    return "packet " + std::to_string(seq) + ": length " + std::to_string(len);
  return CheckPayload(buf, seq, len);
}

TEST(PipeTest, EndsShareOnePrivateRegion) {
  std::string name = UniqueName("pp");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{1"), 0);
  ASSERT_EQ(slave.Open(name + "}1"), 0);
  EXPECT_GT(master.reg().nr_mem_id, 1);
  EXPECT_EQ(master.reg().nr_mem_id, slave.reg().nr_mem_id);
  EXPECT_EQ(master.nifp()->ni_flags & NI_PRIV_MEM, NI_PRIV_MEM);
  EXPECT_EQ(master.nifp()->ni_tx_rings, 1u);
  EXPECT_EQ(master.nifp()->ni_rx_rings, 1u);
  EXPECT_EQ(master.tx()->num_slots, master.reg().nr_tx_slots);
  EXPECT_EQ(master.tx()->nr_buf_size, 2048u);
  EXPECT_EQ(master.tx()->dir, NR_TX);
  EXPECT_EQ(master.rx()->dir, NR_RX);
}

TEST(PipeTest, OnePacketIsSwappedNotCopied) {
  std::string name = UniqueName("pp");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{x"), 0);
  ASSERT_EQ(slave.Open(name + "}x"), 0);

  netmap_ring *tx = master.tx();
  uint32_t i = tx->head;
  uint32_t sent_buf = tx->slot[i].buf_idx;
  FillPacket(NETMAP_BUF(tx, sent_buf), 7, 100);
  tx->slot[i].len = 100;
  tx->head = tx->cur = nm_ring_next(tx, i);
  ASSERT_EQ(master.TxSync(), 0);
  // The sent slot now holds another buffer, and says so.
  EXPECT_NE(tx->slot[i].buf_idx, sent_buf);
  EXPECT_TRUE(tx->slot[i].flags & NS_BUF_CHANGED);

  netmap_ring *rx = slave.rx();
  EXPECT_EQ(rx->tail, rx->head);  // nothing until a sync
  ASSERT_EQ(slave.RxSync(), 0);
  ASSERT_EQ(nm_ring_space(rx), 1u);
  netmap_slot &s = rx->slot[rx->head];
  EXPECT_EQ(s.buf_idx, sent_buf);
  EXPECT_TRUE(s.flags & NS_BUF_CHANGED);
  EXPECT_EQ(s.len, 100);
  EXPECT_EQ(CheckPayload(NETMAP_BUF(rx, s.buf_idx), 7, s.len), "");
}

TEST(PipeTest, PacketsWaitForTheOtherEnd) {
  std::string name = UniqueName("pp");
  Port master;
  ASSERT_EQ(master.Open(name + "{w"), 0);
  netmap_ring *tx = master.tx();
  for (int k = 0; k < 3; k++) {
    tx->slot[tx->head].len = 60 + k;
    tx->head = tx->cur = nm_ring_next(tx, tx->head);
  }
  ASSERT_EQ(master.TxSync(), 0);
  Port slave;
  ASSERT_EQ(slave.Open(name + "}w"), 0);
  ASSERT_EQ(slave.RxSync(), 0);
  netmap_ring *rx = slave.rx();
  ASSERT_EQ(nm_ring_space(rx), 3u);
  for (int k = 0; k < 3; k++)
    EXPECT_EQ(rx->slot[(rx->head + k) % rx->num_slots].len, 60 + k);
}

TEST(PipeTest, ManyPipesOnOneParent) {
  std::string name = UniqueName("pp");
  Port a_m, a_s, b_m, b_s;
  ASSERT_EQ(a_m.Open(name + "{a"), 0);
  ASSERT_EQ(b_m.Open(name + "{b"), 0);
  ASSERT_EQ(a_s.Open(name + "}a"), 0);
  ASSERT_EQ(b_s.Open(name + "}b"), 0);
  EXPECT_EQ(a_m.reg().nr_mem_id, b_m.reg().nr_mem_id);
  netmap_ring *tx = a_m.tx();
  tx->slot[tx->head].len = 99;
  tx->head = tx->cur = nm_ring_next(tx, tx->head);
  ASSERT_EQ(a_m.TxSync(), 0);
  ASSERT_EQ(a_s.RxSync(), 0);
  ASSERT_EQ(b_s.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(a_s.rx()), 1u);
  EXPECT_EQ(nm_ring_space(b_s.rx()), 0u);
  // The slave sends back the other way.
  netmap_ring *stx = b_s.tx();
  stx->slot[stx->head].len = 77;
  stx->head = stx->cur = nm_ring_next(stx, stx->head);
  ASSERT_EQ(b_s.TxSync(), 0);
  ASSERT_EQ(b_m.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(b_m.rx()), 1u);
  EXPECT_EQ(b_m.rx()->slot[b_m.rx()->head].len, 77);
}

TEST(PipeTest, AutoParentGoesAwayWithItsLastPipe) {
  std::string name = UniqueName("pp");
  uint16_t mem_id;
  {
    Port master;
    ASSERT_EQ(master.Open(name + "{1"), 0);
    mem_id = master.reg().nr_mem_id;
  }
  int fd = nmtest::OpenNetmap();
  ASSERT_GE(fd, 0);
  nmtest::Request<nmreq_pools_info> req(NETMAP_REQ_POOLS_INFO_GET, "");
  req.body.nr_mem_id = mem_id;
  EXPECT_EQ(req.Send(fd), EINVAL);
  close(fd);
}

TEST(PipeTest, RingGeometryComesFromTheFirstEnd) {
  std::string name = UniqueName("pp");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{g",
                        [](RegisterRequest &r) {
                          r.body.nr_tx_slots = 64;
                          r.body.nr_rx_slots = 128;
                        }),
            0);
  ASSERT_EQ(slave.Open(name + "}g"), 0);
  EXPECT_EQ(master.reg().nr_tx_slots, 64u);
  EXPECT_EQ(master.reg().nr_rx_slots, 128u);
  EXPECT_EQ(slave.reg().nr_tx_slots, 128u);
  EXPECT_EQ(slave.reg().nr_rx_slots, 64u);
  EXPECT_EQ(slave.rx()->num_slots, 64u);
}

TEST(PipeTest, BadNamesAreRefused) {
  int fd = nmtest::OpenNetmap();
  ASSERT_GE(fd, 0);
  for (const char *bad : {"{1", "}1", "pp{", "pp}", "pp{1{2", "pp{1}2"}) {
    RegisterRequest req(NETMAP_REQ_REGISTER, bad);
    EXPECT_EQ(req.Send(fd), EINVAL) << bad;
  }
  close(fd);
}

TEST(PipeTest, SameEndTwiceSharesRings) {
  std::string name = UniqueName("pp");
  Port m1, m2;
  ASSERT_EQ(m1.Open(name + "{s"), 0);
  ASSERT_EQ(m2.Open(name + "{s"), 0);
  EXPECT_EQ(NETMAP_TXRING(m1.nifp(), 0)->buf_ofs + m1.nifp()->ring_ofs[0] +
                static_cast<int64_t>(m1.reg().nr_offset),
            NETMAP_TXRING(m2.nifp(), 0)->buf_ofs + m2.nifp()->ring_ofs[0] +
                static_cast<int64_t>(m2.reg().nr_offset));
  Port m3;
  EXPECT_EQ(m3.Open(name + "{s",
                    [](RegisterRequest &r) { r.body.nr_flags = NR_EXCLUSIVE; }),
            EBUSY);
}

// Traffic: a sender thread and a receiver thread, poll() to wait.
struct TrafficParam {
  uint32_t slots;
  uint32_t batch;
  uint64_t packets;
};

class PipeTraffic : public ::testing::TestWithParam<TrafficParam> {};

TEST_P(PipeTraffic, ArrivesCompleteInOrderIntact) {
  const TrafficParam p = GetParam();
  std::string name = UniqueName("traffic");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{t",
                        [&](RegisterRequest &r) {
                          r.body.nr_tx_slots = p.slots;
                          r.body.nr_rx_slots = p.slots;
                        }),
            0);
  ASSERT_EQ(slave.Open(name + "}t"), 0);
  ASSERT_EQ(master.tx()->num_slots, p.slots);
  const uint32_t bufsize = master.tx()->nr_buf_size;

  std::atomic<bool> failed{false};
  std::string sender_error;
  std::thread sender([&] {
    netmap_ring *tx = master.tx();
    uint64_t seq = 0;
    while (seq < p.packets && !failed) {
      uint32_t space = nm_ring_space(tx);
      if (space == 0) {
        int rev = master.Poll(POLLOUT, 10000);
        if (rev <= 0 || (rev & POLLERR)) {
          sender_error = "poll(POLLOUT) returned " + std::to_string(rev);
          failed = true;
        }
        continue;
      }
      uint32_t n = std::min<uint64_t>({space, p.batch, p.packets - seq});
      uint32_t i = tx->head;
      for (uint32_t k = 0; k < n; k++, seq++) {
        uint16_t len = PacketLen(seq, bufsize);
        FillPacket(NETMAP_BUF(tx, tx->slot[i].buf_idx), seq, len);
        tx->slot[i].len = len;
        i = nm_ring_next(tx, i);
      }
      tx->head = tx->cur = i;
      if (master.TxSync()) {
        sender_error = "txsync failed";
        failed = true;
      }
    }
    // Flush what is still pending.
    for (int tries = 0; !failed && nm_tx_pending(tx); tries++) {
      if (tries == 100000) {
        sender_error = "pending packets never left";
        failed = true;
      }
      master.Poll(POLLOUT, 1000);
      usleep(100);
    }
  });

  netmap_ring *rx = slave.rx();
  uint64_t expect = 0;
  std::string error;
  while (expect < p.packets && error.empty() && !failed) {
    if (nm_ring_empty(rx)) {
      int rev = slave.Poll(POLLIN, 10000);
      if (rev <= 0 || (rev & POLLERR))
        error = "poll(POLLIN) returned " + std::to_string(rev) + " at packet " +
                std::to_string(expect);
      continue;
    }
    uint32_t i = rx->head;
    uint32_t n = std::min<uint32_t>(nm_ring_space(rx), p.batch);
    for (uint32_t k = 0; k < n && error.empty(); k++, expect++) {
      const netmap_slot &s = rx->slot[i];
      error = CheckPacket(NETMAP_BUF(rx, s.buf_idx), expect, s.len, bufsize);
      i = nm_ring_next(rx, i);
    }
    rx->head = rx->cur = i;
  }
  failed = failed || !error.empty();
  sender.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(sender_error, "");
  EXPECT_EQ(expect, p.packets);
}

// About 1.2 million packets in all, sizes 60..1514, several ring and batch
// sizes (batch larger than the ring included).
INSTANTIATE_TEST_SUITE_P(
    Sizes, PipeTraffic,
    ::testing::Values(TrafficParam{64, 1, 100000}, TrafficParam{64, 63, 200000},
                      TrafficParam{256, 32, 200000},
                      TrafficParam{1024, 256, 300000},
                      TrafficParam{2048, 4096, 400000}),
    [](const ::testing::TestParamInfo<TrafficParam> &info) {
      return "slots" + std::to_string(info.param.slots) + "_batch" +
             std::to_string(info.param.batch);
    });

}  // namespace
