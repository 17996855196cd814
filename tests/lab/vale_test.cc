// SPDX-License-Identifier: GPL-2.0
// VALE switches, run inside the lab VM with ptnetmap.ko loaded: learning and
// flooding, isolation of the ports' memory, drops at a full receiver,
// concurrent senders, persistent ports, limits, and bad input.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "vale_util.h"

namespace {

using nmtest::Port;
using namespace valetest;

// Opens `name` with the given RX/TX slots (0: default).
int OpenPort(Port &p, const std::string &name, uint32_t slots = 0) {
  return p.Open(name, [&](nmtest::RegisterRequest &r) {
    r.body.nr_tx_slots = r.body.nr_rx_slots = slots;
  });
}

std::set<uint32_t> Tags(const std::vector<std::vector<uint8_t>> &frames) {
  std::set<uint32_t> tags;
  for (const auto &f : frames) tags.insert(TagOf(f));
  return tags;
}

TEST(ValeTest, LearnsAndFloods) {
  Port a, b, c;
  ASSERT_EQ(OpenPort(a, "valeL:a"), 0);
  ASSERT_EQ(OpenPort(b, "valeL:b"), 0);
  ASSERT_EQ(OpenPort(c, "valeL:c"), 0);

  // B is unknown yet: flooded to b and c, never back to a.
  ASSERT_EQ(Send(a, {Frame(MacOf(2), MacOf(1), 1)}), 1u);
  EXPECT_EQ(Tags(Receive(b)), std::set<uint32_t>{1});
  EXPECT_EQ(Tags(Receive(c)), std::set<uint32_t>{1});
  EXPECT_TRUE(Receive(a).empty());

  // a's address was learned: unicast to a only.
  ASSERT_EQ(Send(b, {Frame(MacOf(1), MacOf(2), 2)}), 1u);
  EXPECT_EQ(Tags(Receive(a)), std::set<uint32_t>{2});
  EXPECT_TRUE(Receive(c).empty());
  EXPECT_TRUE(Receive(b).empty());

  // and b's too.
  ASSERT_EQ(Send(a, {Frame(MacOf(2), MacOf(1), 3)}), 1u);
  EXPECT_EQ(Tags(Receive(b)), std::set<uint32_t>{3});
  EXPECT_TRUE(Receive(c).empty());

  // Broadcast reaches everybody else.
  ASSERT_EQ(Send(c, {Frame(kBroadcast, MacOf(3), 4)}), 1u);
  EXPECT_EQ(Tags(Receive(a)), std::set<uint32_t>{4});
  EXPECT_EQ(Tags(Receive(b)), std::set<uint32_t>{4});
  EXPECT_TRUE(Receive(c).empty());

  // A port moves: the address is relearned where it shows up now.
  ASSERT_EQ(Send(c, {Frame(kBroadcast, MacOf(1), 5)}), 1u);
  Receive(a);
  Receive(b);
  ASSERT_EQ(Send(b, {Frame(MacOf(1), MacOf(2), 6)}), 1u);
  EXPECT_EQ(Tags(Receive(c)), std::set<uint32_t>{6});
  EXPECT_TRUE(Receive(a).empty());

  // A batch mixing destinations is split correctly.
  std::vector<std::vector<uint8_t>> mix;
  for (uint32_t i = 0; i < 30; i++)
    mix.push_back(Frame(i % 2 ? MacOf(1) : MacOf(2), MacOf(3), 100 + i));
  ASSERT_EQ(Send(c, mix), 30u);
  auto to_b = Receive(b), to_c_moved = Receive(c);
  EXPECT_EQ(to_b.size(), 15u);
  for (size_t i = 0; i < to_b.size(); i++) EXPECT_EQ(TagOf(to_b[i]), 100 + 2 * i);
  EXPECT_TRUE(to_c_moved.empty());

  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeL:c", &st), 0);
  EXPECT_EQ(st.tx_packets, 32u);
  EXPECT_EQ(st.tx_bytes, 32u * 60);
  EXPECT_EQ(st.rx_packets, 2u);
}

// One sync of more packets than a batch (1024): all forwarded, in order.
TEST(ValeTest, LongSyncsAreForwardedInBatches) {
  Port a, b;
  ASSERT_EQ(OpenPort(a, "valeB:a", 2048), 0);
  ASSERT_EQ(OpenPort(b, "valeB:b", 2048), 0);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 2000; i++)
    frames.push_back(Frame(kBroadcast, MacOf(1), i, 60 + i % 1400));
  ASSERT_EQ(Send(a, frames), 2000u);
  auto got = Receive(b);
  ASSERT_EQ(got.size(), 2000u);
  for (uint32_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(got[i], frames[i]) << i;
    if (got[i] != frames[i]) break;
  }
}

TEST(ValeTest, PortsHaveTheirOwnMemory) {
  Port a, b;
  ASSERT_EQ(OpenPort(a, "valeI:a"), 0);
  ASSERT_EQ(OpenPort(b, "valeI:b"), 0);
  EXPECT_NE(a.reg().nr_mem_id, b.reg().nr_mem_id);
  EXPECT_GT(a.reg().nr_mem_id, 1);
  EXPECT_TRUE(a.nifp()->ni_flags & NI_PRIV_MEM);

  // The mapping is exactly the port's region: nothing past it.
  nmreq_pools_info pi{};
  ASSERT_EQ(Ctrl(NETMAP_REQ_POOLS_INFO_GET, "valeI:a", &pi), 0);
  EXPECT_EQ(pi.nr_mem_id, a.reg().nr_mem_id);
  EXPECT_EQ(pi.nr_memsize, a.reg().nr_memsize);
  void *more = mmap(nullptr, a.reg().nr_memsize + 4096, PROT_READ, MAP_SHARED,
                    a.fd(), 0);
  EXPECT_EQ(more, MAP_FAILED);

  // A buffer index of b's region is outside a's, or a's own: a can never
  // make the switch read b's memory.
  netmap_ring *tx = a.tx();
  const std::vector<uint32_t> bad = {pi.nr_buf_pool_objtotal,
                                     pi.nr_buf_pool_objtotal + 1000,
                                     0xffffffffu};
  for (uint32_t idx : bad) {
    netmap_slot *slot = &tx->slot[tx->cur];
    uint32_t saved = slot->buf_idx;
    slot->buf_idx = idx;
    slot->len = 60;
    tx->head = tx->cur = nm_ring_next(tx, tx->cur);
    ASSERT_EQ(a.TxSync(), 0);
    // The kernel left the slot's index alone; put ours back.
    tx->slot[(tx->cur + tx->num_slots - 1) % tx->num_slots].buf_idx = saved;
  }
  // Runts and lengths past the buffer.
  auto runt = Frame(MacOf(9), MacOf(8), 0, 60);
  for (uint16_t len : {0, 1, 13, 2049, 65535}) {
    netmap_slot *slot = &tx->slot[tx->cur];
    memcpy(NETMAP_BUF(tx, slot->buf_idx), runt.data(), runt.size());
    slot->len = len;
    tx->head = tx->cur = nm_ring_next(tx, tx->cur);
  }
  ASSERT_EQ(a.TxSync(), 0);
  EXPECT_TRUE(Receive(b).empty());

  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeI:a", &st), 0);
  EXPECT_EQ(st.tx_drop_bad_buf, bad.size());
  EXPECT_EQ(st.tx_drop_bad_len, 5u);
  EXPECT_EQ(st.tx_packets, 0u);

  // Multi-slot packets are dropped whole and counted once.
  for (int i = 0; i < 3; i++) {
    netmap_slot *slot = &tx->slot[tx->cur];
    slot->len = 60;
    slot->flags = i < 2 ? NS_MOREFRAG : 0;
    tx->head = tx->cur = nm_ring_next(tx, tx->cur);
  }
  ASSERT_EQ(a.TxSync(), 0);
  ASSERT_EQ(Stats("valeI:a", &st), 0);
  EXPECT_EQ(st.tx_drop_frag, 1u);

  // b spoils its own receive slots: its drop, the sender is unaffected.
  netmap_ring *rx = b.rx();
  std::vector<uint32_t> saved(rx->num_slots);
  for (uint32_t i = 0; i < rx->num_slots; i++) {
    saved[i] = rx->slot[i].buf_idx;
    rx->slot[i].buf_idx = 0xfffffff0u;
  }
  ASSERT_EQ(Send(a, {Frame(kBroadcast, MacOf(1), 7)}), 1u);
  EXPECT_TRUE(Receive(b).empty());
  ASSERT_EQ(Stats("valeI:b", &st), 0);
  EXPECT_EQ(st.rx_drop_bad_buf, 1u);
  for (uint32_t i = 0; i < rx->num_slots; i++) rx->slot[i].buf_idx = saved[i];
  ASSERT_EQ(Send(a, {Frame(kBroadcast, MacOf(1), 8)}), 1u);
  EXPECT_EQ(Tags(Receive(b)), std::set<uint32_t>{8});
}

TEST(ValeTest, FullReceiverDropsAndCounts) {
  Port a, b;
  ASSERT_EQ(OpenPort(a, "valeF:a", 256), 0);
  ASSERT_EQ(OpenPort(b, "valeF:b", 64), 0);
  ASSERT_EQ(b.rx()->num_slots, 64u);

  size_t sent = 0;
  for (uint32_t round = 0; round < 4; round++) {
    std::vector<std::vector<uint8_t>> frames;
    for (uint32_t i = 0; i < 50; i++)
      frames.push_back(Frame(kBroadcast, MacOf(1), round * 50 + i));
    sent += Send(a, frames);
    // The sender never waits for the receiver: its ring is free again.
    EXPECT_EQ(nm_ring_space(a.tx()), a.tx()->num_slots - 1);
  }
  ASSERT_EQ(sent, 200u);
  auto got = Receive(b);
  ASSERT_EQ(got.size(), 63u);  // one slot always stays empty
  for (size_t i = 0; i < got.size(); i++) EXPECT_EQ(TagOf(got[i]), i);

  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeF:b", &st), 0);
  EXPECT_EQ(st.rx_packets, 63u);
  EXPECT_EQ(st.rx_drop_ring_full, 200u - 63);
  ASSERT_EQ(Stats("valeF:a", &st), 0);
  EXPECT_EQ(st.tx_packets, 200u);

  // Room again: delivery resumes.
  ASSERT_EQ(Send(a, {Frame(kBroadcast, MacOf(1), 999)}), 1u);
  EXPECT_EQ(Tags(Receive(b)), std::set<uint32_t>{999});
}

TEST(ValeTest, ConcurrentSendersLoseNothingWhenTheReceiverKeepsUp) {
  constexpr int kSenders = 3;
  constexpr uint32_t kPerSender = 4000;
  constexpr uint32_t kWindow = 400;  // in flight, well below the ring size

  Port rx;
  ASSERT_EQ(OpenPort(rx, "valeC:rx"), 0);
  Port tx[kSenders];
  for (int s = 0; s < kSenders; s++)
    ASSERT_EQ(OpenPort(tx[s], "valeC:tx" + std::to_string(s)), 0);
  // Teach the switch where the receiver is.
  ASSERT_EQ(Send(rx, {Frame(kBroadcast, MacOf(100), 0)}), 1u);
  for (int s = 0; s < kSenders; s++) Receive(tx[s]);

  std::atomic<uint32_t> sent{0}, received{0};
  std::atomic<bool> done{false};
  std::map<int, uint32_t> next_seq;
  bool in_order = true;
  std::thread receiver([&] {
    while (received < kSenders * kPerSender && !done) {
      rx.Poll(POLLIN, 100);
      for (const auto &f : Receive(rx)) {
        int s = f[11] - 1;
        uint32_t seq = TagOf(f);
        if (next_seq[s] != seq) in_order = false;
        next_seq[s] = seq + 1;
        received++;
      }
    }
  });
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; s++) {
    senders.emplace_back([&, s] {
      uint32_t seq = 0;
      while (seq < kPerSender) {
        if (int64_t(sent.load()) - int64_t(received.load()) > kWindow) {
          std::this_thread::yield();
          continue;
        }
        std::vector<std::vector<uint8_t>> batch;
        for (uint32_t i = 0; i < 32 && seq + i < kPerSender; i++)
          batch.push_back(Frame(MacOf(100), MacOf(1 + s), seq + i));
        size_t n = Send(tx[s], batch);
        seq += n;
        sent += n;
      }
    });
  }
  for (auto &t : senders) t.join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (received < kSenders * kPerSender &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  done = true;
  receiver.join();

  EXPECT_EQ(received.load(), kSenders * kPerSender);
  EXPECT_TRUE(in_order);
  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeC:rx", &st), 0);
  EXPECT_EQ(st.rx_drop_ring_full, 0u);
  EXPECT_EQ(st.rx_packets, kSenders * kPerSender);
}

TEST(ValeTest, PersistentPortSurvivesItsLastClose) {
  ASSERT_EQ(NewIf("valeP:keep", 128), 0);
  EXPECT_EQ(NewIf("valeP:keep"), EEXIST);
  EXPECT_TRUE(Listed("valeP:keep"));
  {
    Port p;
    ASSERT_EQ(OpenPort(p, "valeP:keep"), 0);
    EXPECT_EQ(p.reg().nr_rx_slots, 128u);
    EXPECT_EQ(DelIf("valeP:keep"), EBUSY);
  }
  EXPECT_TRUE(Listed("valeP:keep"));

  // An ordinary port goes with its last close.
  {
    Port q;
    ASSERT_EQ(OpenPort(q, "valeP:gone"), 0);
    EXPECT_TRUE(Listed("valeP:gone"));
    EXPECT_EQ(DelIf("valeP:gone"), EINVAL);
  }
  EXPECT_FALSE(Listed("valeP:gone"));

  // Frames to a persistent port nobody has open are counted as such.
  {
    Port s;
    ASSERT_EQ(OpenPort(s, "valeP:sender"), 0);
    ASSERT_EQ(Send(s, {Frame(kBroadcast, MacOf(1), 1)}), 1u);
  }
  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeP:keep", &st), 0);
  EXPECT_EQ(st.rx_drop_inactive, 1u);

  ASSERT_EQ(DelIf("valeP:keep"), 0);
  EXPECT_FALSE(Listed("valeP:keep"));
  EXPECT_EQ(DelIf("valeP:keep"), ENXIO);
  EXPECT_EQ(Stats("valeP:keep", &st), ENXIO);
}

TEST(ValeTest, ListNamesEveryPort) {
  Port a, b;
  ASSERT_EQ(OpenPort(a, "valeLa:x"), 0);
  ASSERT_EQ(OpenPort(b, "valeLb:y"), 0);
  auto names = ListAll();
  EXPECT_NE(std::find(names.begin(), names.end(), "valeLa:x"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "valeLb:y"), names.end());

  nmreq_vale_list l{};
  ASSERT_EQ(Ctrl(NETMAP_REQ_VALE_LIST, "valeLb:y", &l), 0);
  nmreq_vale_list l2{};
  ASSERT_EQ(Ctrl(NETMAP_REQ_VALE_LIST, "valeLa:x", &l2), 0);
  EXPECT_NE(l.nr_bridge_idx, l2.nr_bridge_idx);
  EXPECT_EQ(Ctrl(NETMAP_REQ_VALE_LIST, "valeLb:nobody", &l), ENXIO);
}

TEST(ValeTest, LimitsGiveClearErrors) {
  // 16 rings per direction at most.
  Port p;
  EXPECT_EQ(p.Open("valeM:rings", [](nmtest::RegisterRequest &r) {
              r.body.nr_tx_rings = r.body.nr_rx_rings = 17;
            }),
            EINVAL);
  ASSERT_EQ(p.Open("valeM:rings", [](nmtest::RegisterRequest &r) {
              r.body.nr_tx_rings = r.body.nr_rx_rings = 16;
            }),
            0);
  EXPECT_EQ(p.nifp()->ni_rx_rings, 16u);
  p.Close();

  // 254 ports a switch.
  int made = 0;
  for (; made < 254; made++)
    if (NewIf("valeM:p" + std::to_string(made), 16) != 0) break;
  EXPECT_EQ(made, 254);
  EXPECT_EQ(NewIf("valeM:onemore", 16), ENOSPC);
  EXPECT_EQ(OpenPort(p, "valeM:onemore"), ENOSPC);
  for (int i = 0; i < made; i++) EXPECT_EQ(DelIf("valeM:p" + std::to_string(i)), 0);

  // A bounded number of switches (module parameter vale_max_switches).
  int switches = 0;
  int err = 0;
  for (; switches < 300; switches++) {
    err = NewIf("valeS" + std::to_string(switches) + ":p", 16);
    if (err) break;
  }
  EXPECT_EQ(err, ENOSPC);
  EXPECT_GE(switches, 1);
  EXPECT_LE(switches, 256);
  for (int i = 0; i < switches; i++)
    EXPECT_EQ(DelIf("valeS" + std::to_string(i) + ":p"), 0);

  // Names.
  EXPECT_EQ(NewIf("valeM:"), EINVAL);
  EXPECT_EQ(NewIf("valethisnameistoolong:p"), EINVAL);
  EXPECT_EQ(NewIf("notvale"), EINVAL);
}

TEST(ValeTest, VirtioNetHeaderLength) {
  Port a, b;
  ASSERT_EQ(OpenPort(a, "valeH:a"), 0);
  ASSERT_EQ(OpenPort(b, "valeH:b"), 0);
  nmreq_port_hdr h{};
  h.nr_hdr_len = 7;
  EXPECT_EQ(Ctrl(NETMAP_REQ_PORT_HDR_SET, "valeH:a", &h), EINVAL);
  h.nr_hdr_len = 12;
  ASSERT_EQ(Ctrl(NETMAP_REQ_PORT_HDR_SET, "valeH:a", &h), 0);
  h = {};
  ASSERT_EQ(Ctrl(NETMAP_REQ_PORT_HDR_GET, "valeH:a", &h), 0);
  EXPECT_EQ(h.nr_hdr_len, 12u);

  // a sends header + frame; b (no header) receives the frame alone.
  auto f = Frame(kBroadcast, MacOf(1), 42);
  std::vector<uint8_t> with_hdr(12 + f.size(), 0xaa);
  std::copy(f.begin(), f.end(), with_hdr.begin() + 12);
  ASSERT_EQ(Send(a, {with_hdr}), 1u);
  auto got = Receive(b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], f);

  // b's frames reach a behind an empty header (one buffer).
  ASSERT_EQ(Send(b, {Frame(kBroadcast, MacOf(2), 43)}), 1u);
  got = Receive(a);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].size(), 72u);
  EXPECT_EQ(got[0][10], 1);
  EXPECT_EQ(TagOf(got[0], 12), 43u);
}

TEST(ValeTest, PortsComeAndGoUnderTraffic) {
  Port sender;
  ASSERT_EQ(OpenPort(sender, "valeT:s"), 0);
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    uint32_t tag = 0;
    while (!stop) {
      std::vector<std::vector<uint8_t>> batch;
      for (int i = 0; i < 64; i++)
        batch.push_back(Frame(i % 4 ? kBroadcast : MacOf(7), MacOf(1), tag++));
      Send(sender, batch);
    }
  });
  for (int i = 0; i < 40; i++) {
    Port p;
    ASSERT_EQ(OpenPort(p, "valeT:p" + std::to_string(i % 3), 64), 0);
    Send(p, {Frame(kBroadcast, MacOf(7), 0)});  // learn MAC 7 here
    Receive(p);
    if (i % 5 == 0) {
      ASSERT_EQ(NewIf("valeT:pers"), 0);
      ASSERT_EQ(DelIf("valeT:pers"), 0);
    }
  }
  stop = true;
  flood.join();
  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("valeT:s", &st), 0);
  EXPECT_GT(st.tx_packets, 0u);
}

TEST(ValeTest, UnprivilegedUsersCannotTakeDevicesOrKeepPorts) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) || setuid(65534)) _exit(10);
    if (Attach("valeU:lo") != EPERM) _exit(1);
    if (NewIf("valeU:p") != EPERM) _exit(2);
    {
      Port dev;
      if (dev.Open("lo") != EPERM) _exit(3);
      Port eph;  // ordinary VALE ports need no privilege
      if (eph.Open("valeU:eph") != 0) _exit(4);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ValeTest, UnknownNamesAndRequests) {
  ptnetmap_port_stats st;
  EXPECT_EQ(Stats("valeX:nobody", &st), ENXIO);
  EXPECT_EQ(Stats("nosuchdev0", &st), ENXIO);
  EXPECT_EQ(Detach("valeX:nobody"), ENXIO);
  {
    Port p;
    ASSERT_EQ(OpenPort(p, "valeX:virt"), 0);
    EXPECT_EQ(Detach("valeX:virt"), EINVAL);  // not a NIC
  }
  EXPECT_EQ(Attach("valeX:nosuchdev0"), ENXIO);
  EXPECT_FALSE(Listed("valeX:nosuchdev0"));
}

// Last: leaves a persistent port, a NIC and its host stack attached, and a
// persistent port on its own switch; the module must clean them up when it
// is unloaded after the job (the lab fails the run otherwise).
TEST(ValeTest, ZLeftoversAreCleanedUpAtUnload) {
  ASSERT_EQ(system("modprobe veth && ip link add vpz0 type veth peer name vpz1 "
                   "&& ip link set vpz0 up"),
            0);
  ASSERT_EQ(NewIf("valeZ:left"), 0);
  ASSERT_EQ(Attach("valeZ:vpz0", NR_REG_NIC_SW), 0);
  ASSERT_EQ(NewIf("valeZ2:alone"), 0);
  Port p;
  ASSERT_EQ(OpenPort(p, "valeZ:left"), 0);
  ASSERT_EQ(Send(p, {Frame(kBroadcast, MacOf(1), 1)}), 1u);
}

}  // namespace
