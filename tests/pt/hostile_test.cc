// SPDX-License-Identifier: GPL-2.0
// A hostile guest: random and racing writes to every byte a guest can
// write (global and port pages, the mailbox, the CSB, rings, slots,
// buffers), random doorbells and control requests, while traffic flows
// through its attachment and through others. The kernel must stay up
// without a warning (the lab checks the log and unloads the module), count
// the violations, and other ports must deliver every frame in order.
#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "guest_emu.h"
#include "host_app.h"

namespace {

using ptemu::Guest;
using ptemu::Vm;

constexpr size_t kShm = 8 << 20;
constexpr uint32_t kLen = 60;
constexpr auto kHostileTime = std::chrono::seconds(15);

// Scribbles over vm until stop: what a malicious guest driver can do.
void Scribble(Vm &vm, unsigned seed, const std::atomic<bool> &stop) {
  std::mt19937_64 rng(seed);
  const auto *g = reinterpret_cast<ptnm_global *>(vm.base);
  const uint64_t region = ptemu::Load(const_cast<ptnm_global *>(g)->region_offset);
  const unsigned peers = vm.peers.size();
  const uint32_t specials[] = {0, 1, 2, 63, 64, 255, 256, 257, 1023, 0x7fffffff,
                               0x80000000u, 0xfffffffeu, 0xffffffffu};
  auto value = [&]() -> uint32_t {
    return rng() % 2 ? specials[rng() % std::size(specials)] : uint32_t(rng());
  };
  while (!stop.load(std::memory_order_relaxed)) {
    // Bursts of varying density, so that restarts and traffic get through
    // between them and the datapath meets the garbage mid-flight.
    const int writes = rng() % 4 ? 1 + rng() % 4 : 64;
    for (int i = 0; i < writes; i++) {
      uint64_t off;
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2:  // a CSB (atok and ktoa of every ring)
          off = (1 + peers + rng() % peers) * PTNM_PAGE_SIZE + (rng() % 256) * 4;
          break;
        case 3:  // a mailbox, or anything in a port page
          off = (1 + rng() % peers) * PTNM_PAGE_SIZE +
                (rng() % 2 ? 128 + (rng() % 4) * 4 : rng() % PTNM_PAGE_SIZE);
          break;
        case 4:  // the global page
          off = rng() % PTNM_PAGE_SIZE;
          break;
        case 5:
        case 6:  // ring headers and slots (the region's first pages)
          off = region + rng() % (256 * 1024);
          break;
        default:  // anywhere
          off = rng() % vm.size;
          break;
      }
      off &= ~uint64_t(3);
      ptemu::Store(*reinterpret_cast<uint32_t *>(vm.base + off), value());
    }
    // Doorbells, and now and then a well-formed START or STOP.
    auto &p = vm.peers[rng() % peers];
    Guest::Kick(p.kick[rng() % p.kick.size()]);
    if (rng() % 16 == 0) {
      auto *d = reinterpret_cast<ptnm_port_desc *>(vm.base + (1 + rng() % peers) *
                                                            PTNM_PAGE_SIZE);
      ptemu::Store(d->ctrl.request, uint32_t(1 + rng() % 2));
      ptemu::Store(d->ctrl.req_seq, uint32_t(rng()));
      Guest::Kick(p.kick[PTNM_CTRL_VECTOR]);
    }
    if (rng() % 4)
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    else
      std::this_thread::yield();
  }
}

// The bad guest's own driver, trying to work in the middle of the mess:
// restarts (STOP, then START with the heads the host left in the rings) and
// short bursts of traffic, all errors ignored.
void TryHard(std::vector<Guest *> guests, const std::atomic<bool> &stop) {
  uint64_t seq = 0;
  while (!stop) {
    for (Guest *g : guests) {
      g->Ctrl(PTNM_CTRL_STOP, 20);
      g->Start();
    }
    for (int i = 0; i < 8 && !stop; i++) {
      for (Guest *g : guests) {
        uint64_t e = 0;
        g->Send(seq, 32, 8, kLen, 1, 5);
        g->Receive(&e, 32, 8, 1, 5);
      }
      seq += 32;
    }
  }
}

// Frames counted as sent that the receiver has not taken yet. The sender
// counts a batch after it returns, and the receiver may take some of it
// before then: received can run ahead of sent, which is not a deficit.
uint64_t Unreceived(const std::atomic<uint64_t> &sent, uint64_t received) {
  uint64_t s = sent.load();
  return s > received ? s - received : 0;
}

// Healthy traffic between two guests of `vm` until stop; "" or an error.
std::string GuestTraffic(Vm &vm, const std::atomic<bool> &stop,
                         uint64_t *delivered) {
  Guest g1, g2;
  std::string err = g1.Setup(vm.base, vm.size, 1, vm.peers[0]);
  if (err.empty()) err = g2.Setup(vm.base, vm.size, 2, vm.peers[1]);
  if (!err.empty()) return err;
  if (g1.Start() || g2.Start()) return "start";
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> done{false};
  uint64_t e = 0;
  std::string rerr, serr;
  std::thread rx([&] {
    while (rerr.empty()) {
      bool last = done.load();
      uint64_t avail = Unreceived(sent, e);
      if (!avail) {
        if (last) break;
        std::this_thread::yield();
        continue;
      }
      rerr = g2.Receive(&e, std::min<uint64_t>(avail, 64), 64, 1);
    }
  });
  while (!stop) {
    if (!g1.Send(sent, 256, 64, kLen, 1)) {
      serr = "healthy guest: send stall";
      break;
    }
    sent += 256;
  }
  done = true;
  rx.join();
  *delivered = e;
  if (!serr.empty() || !rerr.empty()) {
    // Where the frames stopped: still in the sender's ring (a kick or a
    // pass of the worker lost), or moved but not announced to the receiver.
    return (serr.empty() ? rerr : serr) + " (sent " + std::to_string(sent.load()) +
           "; sender tx: " + g1.Describe(g1.tx()) + "; receiver rx: " + g2.Describe(g2.rx()) +
           ")";
  }
  return "";
}

// Healthy traffic over a plain pipe between two netmap applications.
std::string PlainTraffic(const std::atomic<bool> &stop, uint64_t *delivered) {
  std::string pipe = nmtest::UniqueName("hplain");
  nmtest::Port a, b;
  if (a.Open(pipe + "{1") || b.Open(pipe + "}1")) return "plain open";
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> done{false};
  uint64_t e = 0;
  std::string rerr, serr;
  std::thread rx([&] {
    while (rerr.empty()) {
      bool last = done.load();
      uint64_t avail = Unreceived(sent, e);
      if (!avail) {
        if (last) break;
        std::this_thread::yield();
        continue;
      }
      rerr = ptemu::HostReceive(b, &e, std::min<uint64_t>(avail, 64), 64, 5);
    }
  });
  while (!stop && serr.empty()) {
    serr = ptemu::HostSend(a, sent, 256, 64, kLen, 5);
    sent += 256;
  }
  done = true;
  rx.join();
  *delivered = e;
  return serr.empty() ? rerr : serr;
}

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctl_ = nmtest::OpenNetmap();
    ASSERT_GE(ctl_, 0);
  }
  void TearDown() override { close(ctl_); }
  int ctl_ = -1;
};

// A private VALE attachment scribbled on, while a host application on the
// same switch sends to it and receives from it; healthy traffic elsewhere.
TEST_F(HostileTest, ValeGuestScribblingIsContained) {
  unsigned seed = std::random_device{}();
  printf("seed %u\n", seed);
  std::string sw = "valeh" + std::to_string(getpid() % 1000);
  Vm bad, good;
  ASSERT_EQ(bad.Create(kShm, 1), 0);
  ASSERT_EQ(good.Create(kShm, 2), 0);
  std::string bad_name = nmtest::UniqueName("hbad");
  std::string good_name = nmtest::UniqueName("hgood");
  std::string pipe = nmtest::UniqueName("hgp");
  ASSERT_EQ(bad.Attach(ctl_, bad_name, {sw + ":g"}, 0), 0);
  ASSERT_EQ(good.Attach(ctl_, good_name, {pipe + "{1", pipe + "}1"},
                        PTNETMAP_PT_SHARED), 0);
  Guest g;
  ASSERT_EQ(g.Setup(bad.base, bad.size, 1, bad.peers[0]), "");
  ASSERT_EQ(g.Start(), 0);
  nmtest::Port host;
  ASSERT_EQ(host.Open(sw + ":h"), 0);

  std::atomic<bool> stop{false};
  uint64_t good_delivered = 0, plain_delivered = 0, host_rx = 0;
  std::string good_err, plain_err;
  std::thread t1([&] { good_err = GuestTraffic(good, stop, &good_delivered); });
  std::thread t2([&] { plain_err = PlainTraffic(stop, &plain_delivered); });
  std::thread t3([&] {  // the switch side: send into the guest, drain what comes
    uint64_t seq = 0;
    while (!stop) {
      ptemu::HostSend(host, seq, 64, 16, kLen, 8, 50);
      seq += 64;
      netmap_ring *r = host.rx();
      host.RxSync();
      host_rx += nm_ring_space(r);
      r->head = r->cur = r->tail;
    }
  });
  std::thread t4([&] { Scribble(bad, seed, stop); });
  std::thread t5([&] { Scribble(bad, seed + 1, stop); });  // racing writes
  std::thread t6([&] { TryHard({&g}, stop); });
  std::this_thread::sleep_for(kHostileTime);
  stop = true;
  for (auto *t : {&t1, &t2, &t3, &t4, &t5, &t6}) t->join();

  EXPECT_EQ(good_err, "");
  EXPECT_EQ(plain_err, "");
  EXPECT_GT(good_delivered, 0u);
  EXPECT_GT(plain_delivered, 0u);
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, bad_name, 0, &info), 0);
  printf("hostile VALE guest: %lu violations counted, %lu kicks, guest tx %lu "
         "rx %lu; host got %lu; healthy attachment %lu, plain pipe %lu frames\n",
         info.errors, info.kicks, info.tx_packets, info.rx_packets, host_rx,
         good_delivered, plain_delivered);
  EXPECT_GT(info.errors, 0u);
  ASSERT_EQ(ptemu::Info(ctl_, good_name, 0, &info), 0);
  EXPECT_EQ(info.errors, 0u);
  EXPECT_EQ(ptemu::Detach(ctl_, bad_name), 0);
  EXPECT_EQ(ptemu::Detach(ctl_, good_name), 0);

  // The switch still works: a new, well-behaved guest on it.
  Vm again;
  ASSERT_EQ(again.Create(kShm, 1), 0);
  std::string again_name = nmtest::UniqueName("hagain");
  ASSERT_EQ(again.Attach(ctl_, again_name, {sw + ":g2"}, 0), 0);
  Guest g2;
  ASSERT_EQ(g2.Setup(again.base, again.size, 1, again.peers[0]), "");
  ASSERT_EQ(g2.Start(), 0);
  uint64_t e = 0, eh = 0;
  // Drain what the scribbled guest left in the host's ring first.
  host.RxSync();
  host.rx()->head = host.rx()->cur = host.rx()->tail;
  host.RxSync();
  ASSERT_TRUE(g2.Send(0, 32, 8, kLen, 9));
  ASSERT_EQ(ptemu::HostReceive(host, &eh, 32, 8, 9), "");
  ASSERT_EQ(ptemu::HostSend(host, 0, 32, 8, kLen, 10), "");
  ASSERT_EQ(g2.Receive(&e, 32, 8, 10), "");
  EXPECT_EQ(ptemu::Detach(ctl_, again_name), 0);
}

// Both ends of a pipe in one shared memfd, both guests hostile.
TEST_F(HostileTest, SharedPipeScribblingIsContained) {
  unsigned seed = std::random_device{}();
  printf("seed %u\n", seed);
  Vm bad, good;
  ASSERT_EQ(bad.Create(kShm, 2), 0);
  ASSERT_EQ(good.Create(kShm, 2), 0);
  std::string bad_name = nmtest::UniqueName("hpbad");
  std::string good_name = nmtest::UniqueName("hpgood");
  std::string pipe = nmtest::UniqueName("hbp"), gpipe = nmtest::UniqueName("hgp");
  ASSERT_EQ(bad.Attach(ctl_, bad_name, {pipe + "{1", pipe + "}1"},
                       PTNETMAP_PT_SHARED), 0);
  ASSERT_EQ(good.Attach(ctl_, good_name, {gpipe + "{1", gpipe + "}1"},
                        PTNETMAP_PT_SHARED), 0);
  Guest a, b;
  ASSERT_EQ(a.Setup(bad.base, bad.size, 1, bad.peers[0]), "");
  ASSERT_EQ(b.Setup(bad.base, bad.size, 2, bad.peers[1]), "");
  ASSERT_EQ(a.Start(), 0);
  ASSERT_EQ(b.Start(), 0);
  std::atomic<bool> stop{false};
  uint64_t good_delivered = 0;
  std::string good_err;
  std::thread t1([&] { good_err = GuestTraffic(good, stop, &good_delivered); });
  std::thread t2([&] { TryHard({&a, &b}, stop); });
  std::thread t3([&] { Scribble(bad, seed, stop); });
  std::thread t4([&] { Scribble(bad, seed + 1, stop); });
  std::this_thread::sleep_for(kHostileTime);
  stop = true;
  for (auto *t : {&t1, &t2, &t3, &t4}) t->join();
  EXPECT_EQ(good_err, "");
  EXPECT_GT(good_delivered, 0u);
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, bad_name, 0, &info), 0);
  printf("hostile pipe guests: %lu violations counted, %lu kicks, tx %lu rx %lu; "
         "healthy attachment %lu frames\n",
         info.errors, info.kicks, info.tx_packets, info.rx_packets,
         good_delivered);
  EXPECT_GT(info.errors, 0u);
  EXPECT_EQ(ptemu::Detach(ctl_, bad_name), 0);
  EXPECT_EQ(ptemu::Detach(ctl_, good_name), 0);
}

}  // namespace
