// SPDX-License-Identifier: GPL-2.0
// Passthrough attachments (kmod/pt_host.c), driven by guests played in
// userspace (guest_emu.h): attach/detach/info, traffic in both directions
// through pipes and VALE, notification suppression, an idle worker, an
// attachment outliving its creator, randomized timing, and the descriptors
// of an attachment handed out again (PT_FDS).
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>

#include <chrono>
#include <functional>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "guest_emu.h"
#include "host_app.h"

namespace {

using ptemu::Guest;
using ptemu::Vm;

constexpr size_t kShm = 8 << 20;
constexpr uint32_t kLen = 60;

class PtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctl_ = nmtest::OpenNetmap();
    ASSERT_GE(ctl_, 0) << strerror(errno);
  }
  void TearDown() override {
    for (auto &n : attached_) ptemu::Detach(ctl_, n);
    close(ctl_);
  }
  // A unique name, detached at the end of the test.
  std::string Name(const char *prefix) {
    attached_.push_back(nmtest::UniqueName(prefix));
    return attached_.back();
  }
  // Setup and START of peer `id` of vm.
  void StartGuest(Vm &vm, unsigned id, Guest *g) {
    std::string err = g->Setup(vm.base, vm.size, id, vm.peers[id - 1]);
    ASSERT_EQ(err, "");
    ASSERT_EQ(g->Start(), 0);
    ASSERT_EQ(ptemu::Load(g->desc()->link), uint32_t(PTNM_LINK_UP));
  }
  // Both ends of a fresh pipe attached as peers 1 and 2 of one shared
  // memfd, each driven by a started guest; *name is the attachment's.
  // Call through ASSERT_NO_FATAL_FAILURE.
  void AttachStartedPipePair(struct PipePair *pp, const std::string &tag,
                             std::string *name);
  int ctl_ = -1;
  std::vector<std::string> attached_;
};

TEST_F(PtTest, AttachRefusesBadRequests) {
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 2), 0);
  std::string pipe = nmtest::UniqueName("ptbad");
  std::string name = Name("bad");

  // A pipe end only in a shared attachment.
  EXPECT_EQ(vm.Attach(ctl_, name, {pipe + "{1"}, 0), EINVAL);
  // Several peers only when shared.
  EXPECT_EQ(vm.Attach(ctl_, name, {"valeptb:a", "valeptb:b"}, 0), EINVAL);
  // Not eventfds.
  {
    Vm v3;
    ASSERT_EQ(v3.Create(kShm, 1), 0);
    v3.peers[0].kick[1] = ctl_;
    EXPECT_EQ(v3.Attach(ctl_, name, {"valeptb:d"}, 0), EBADF);
    v3.peers[0].kick[1] = -1;
  }
  // A size that is not a power of two.
  {
    Vm v4;
    ASSERT_EQ(v4.Create(kShm - 4096, 1), 0);
    EXPECT_EQ(v4.Attach(ctl_, name, {"valeptb:e"}, 0), EINVAL);
  }
  // A mapping of something else.
  {
    Vm v5;
    ASSERT_EQ(v5.Create(kShm, 1), 0);
    void *anon = mmap(nullptr, kShm, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *saved = v5.base;
    v5.base = static_cast<char *>(anon);
    EXPECT_EQ(v5.Attach(ctl_, name, {"valeptb:f"}, 0), EINVAL);
    v5.base = saved;
    munmap(anon, kShm);
  }
  // A port that exists already, in its own region.
  {
    nmtest::Port host;
    ASSERT_EQ(host.Open("valeptb:g"), 0);
    EXPECT_EQ(vm.Attach(ctl_, name, {"valeptb:g"}, 0), EINVAL);
  }
  // Names.
  ASSERT_EQ(vm.Attach(ctl_, name, {"valeptb:h"}, 0), 0);
  Vm vm2;
  ASSERT_EQ(vm2.Create(kShm, 1), 0);
  EXPECT_EQ(vm2.Attach(ctl_, name, {"valeptb:i"}, 0), EEXIST);
  EXPECT_EQ(ptemu::Detach(ctl_, name), 0);
  EXPECT_EQ(ptemu::Detach(ctl_, name), ENOENT);
}

TEST_F(PtTest, LayoutInfoAndListing) {
  Vm a, b;
  ASSERT_EQ(a.Create(kShm, 1), 0);
  ASSERT_EQ(b.Create(kShm, 2), 0);
  std::string na = Name("lay"), nb = Name("lay");
  std::string pipe = nmtest::UniqueName("ptlay");
  ASSERT_EQ(a.Attach(ctl_, na, {"valeptl:a"}, 0), 0);
  ASSERT_EQ(b.Attach(ctl_, nb, {pipe + "{1", pipe + "}1"}, PTNETMAP_PT_SHARED), 0);

  auto *g = reinterpret_cast<ptnm_global *>(a.base);
  EXPECT_EQ(g->magic, PTNM_MAGIC);
  EXPECT_EQ(g->layout_major, PTNM_LAYOUT_MAJOR);
  EXPECT_EQ(g->bar_size, kShm);
  EXPECT_EQ(g->num_peers, 1u);
  EXPECT_EQ(g->region_offset, a.att.region_offset);
  EXPECT_EQ(g->region_offset % 4096, 0u);
  EXPECT_LE(g->region_offset + g->region_size, kShm);
  EXPECT_EQ(g->host_features & PTNM_F_SHARED_REGION, 0u);
  auto *gb = reinterpret_cast<ptnm_global *>(b.base);
  EXPECT_EQ(gb->num_peers, 2u);
  EXPECT_NE(gb->host_features & PTNM_F_SHARED_REGION, 0u);
  for (unsigned p = 1; p <= 2; p++) {
    auto *d = reinterpret_cast<ptnm_port_desc *>(b.base + p * PTNM_PAGE_SIZE);
    EXPECT_EQ(d->peer_id, p);
    EXPECT_EQ(d->num_tx_rings, 1);
    EXPECT_EQ(d->num_tx_slots, 256u);
    EXPECT_GE(d->nifp_offset, gb->region_offset);
    EXPECT_EQ(d->csb_offset % 64, 0u);
    EXPECT_EQ(d->link, 0u);
    Guest guest;
    EXPECT_EQ(guest.Setup(b.base, b.size, p, b.peers[p - 1]), "");
  }

  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, nb, 2, &info), 0);
  EXPECT_EQ(std::string(info.name), nb);
  EXPECT_EQ(std::string(info.port), pipe + "}1");
  EXPECT_EQ(info.num_peers, 2u);
  EXPECT_GT(info.worker_pid, 0);
  EXPECT_EQ(info.shm_size, kShm);
  // Listing: by index until ENOENT; both of ours are there.
  int found = 0;
  for (uint32_t i = 0;; i++) {
    ptnetmap_pt_info it{};
    it.index = i;
    if (ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_INFO, "", &it)) break;
    EXPECT_EQ(it.index, i);
    found += std::string(it.name) == na || std::string(it.name) == nb;
  }
  EXPECT_EQ(found, 2);
  EXPECT_EQ(ptemu::Info(ctl_, nb, 3, &info), EINVAL);
  EXPECT_EQ(ptemu::Detach(ctl_, na), 0);
  EXPECT_EQ(ptemu::Info(ctl_, na, 0, &info), ENOENT);
}

// Two guests on the two ends of a pipe, one memfd (shared), traffic both ways.
struct PipePair {
  Vm vm;
  Guest g1, g2;
};

void PtTest::AttachStartedPipePair(PipePair *pp, const std::string &tag,
                                   std::string *name) {
  ASSERT_EQ(pp->vm.Create(kShm, 2), 0);
  std::string pipe = nmtest::UniqueName(("pt" + tag).c_str());
  *name = Name(tag.c_str());
  ASSERT_EQ(pp->vm.Attach(ctl_, *name, {pipe + "{1", pipe + "}1"},
                          PTNETMAP_PT_SHARED), 0);
  StartGuest(pp->vm, 1, &pp->g1);
  StartGuest(pp->vm, 2, &pp->g2);
}

double RunJobs(std::vector<std::function<std::string()>> jobs,
           std::vector<std::string> *errors) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  errors->assign(jobs.size(), "");
  for (size_t i = 0; i < jobs.size(); i++)
    threads.emplace_back([&, i] { (*errors)[i] = jobs[i](); });
  for (auto &t : threads) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

TEST_F(PtTest, PipeBothDirectionsAtSeveralBatchSizes) {
  constexpr uint64_t kPackets = 30000;
  for (unsigned batch : {1u, 8u, 64u, 256u}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    PipePair pp;
    std::string name;
    ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "bd", &name));
    uint64_t e12 = 0, e21 = 0;
    std::vector<std::string> errors;
    double secs = RunJobs(
        {[&] { return pp.g1.Send(0, kPackets, batch, kLen, 12) ? "" : "stall 1>"; },
         [&] { return pp.g2.Receive(&e12, kPackets, batch, 12); },
         [&] { return pp.g2.Send(0, kPackets, batch, kLen, 21) ? "" : "stall 2>"; },
         [&] { return pp.g1.Receive(&e21, kPackets, batch, 21); }},
        &errors);
    for (auto &e : errors) EXPECT_EQ(e, "");
    EXPECT_EQ(e12, kPackets);
    EXPECT_EQ(e21, kPackets);
    ptnetmap_pt_info info;
    ASSERT_EQ(ptemu::Info(ctl_, name, 0, &info), 0);
    EXPECT_EQ(info.tx_packets, 2 * kPackets);
    EXPECT_EQ(info.rx_packets, 2 * kPackets);
    EXPECT_EQ(info.tx_bytes, 2 * kPackets * kLen);
    EXPECT_EQ(info.errors, 0u);
    printf("pipe both ways, batch %3u: %.3f Mpps total, kicks/pkt %.4f, "
           "irqs/pkt %.4f, worker wake-ups/pkt %.4f\n",
           batch, 4e-6 * kPackets / secs / 2,
           double(info.kicks) / (2 * kPackets),
           double(info.interrupts) / (2 * kPackets),
           double(info.wakeups) / (2 * kPackets));
    ASSERT_EQ(ptemu::Detach(ctl_, name), 0);
  }
}

TEST_F(PtTest, GuestAndHostAppOverAPipe) {
  constexpr uint64_t kPackets = 20000;
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  std::string pipe = nmtest::UniqueName("ptgh");
  std::string name = Name("gh");
  ASSERT_EQ(vm.Attach(ctl_, name, {pipe + "{1"}, PTNETMAP_PT_SHARED), 0);
  Guest g;
  StartGuest(vm, 1, &g);
  nmtest::Port host;
  ASSERT_EQ(host.Open(pipe + "}1"), 0);
  EXPECT_EQ(host.reg().nr_mem_id, vm.att.mem_id);
  uint64_t eg = 0, eh = 0;
  std::vector<std::string> errors;
  RunJobs({[&] { return g.Send(0, kPackets, 32, kLen, 1) ? "" : "guest send stall"; },
       [&] { return ptemu::HostReceive(host, &eh, kPackets, 32, 1); },
       [&] { return ptemu::HostSend(host, 0, kPackets, 32, kLen, 2); },
       [&] { return g.Receive(&eg, kPackets, 32, 2); }},
      &errors);
  for (auto &e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(eg, kPackets);
  EXPECT_EQ(eh, kPackets);
}

TEST_F(PtTest, GuestAndHostAppOverVale) {
  // VALE copies and drops when a ring is full: go in windows smaller than
  // the rings so that nothing is dropped, and check every frame arrives.
  constexpr unsigned kWindow = 64, kRounds = 150;
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  std::string sw = "valept" + std::to_string(getpid() % 1000);
  std::string name = Name("vale");
  ASSERT_EQ(vm.Attach(ctl_, name, {sw + ":g"}, 0), 0);
  Guest g;
  StartGuest(vm, 1, &g);
  nmtest::Port host;
  ASSERT_EQ(host.Open(sw + ":h"), 0);
  EXPECT_NE(host.reg().nr_mem_id, vm.att.mem_id);  // private: copies only
  uint64_t eg = 0, eh = 0;
  for (unsigned i = 0; i < kRounds; i++) {
    ASSERT_TRUE(g.Send(i * kWindow, kWindow, 16, kLen, 1));
    ASSERT_EQ(ptemu::HostReceive(host, &eh, kWindow, 16, 1), "");
    ASSERT_EQ(ptemu::HostSend(host, i * kWindow, kWindow, 16, kLen, 2), "");
    ASSERT_EQ(g.Receive(&eg, kWindow, 16, 2), "");
  }
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, name, 1, &info), 0);
  EXPECT_EQ(info.tx_packets, uint64_t(kWindow) * kRounds);
  EXPECT_EQ(info.rx_packets, uint64_t(kWindow) * kRounds);
  EXPECT_EQ(std::string(info.port), sw + ":g");
}

// With the guest keeping the port busy, notifications are rare.
TEST_F(PtTest, SaturatedPortNeedsFewNotifications) {
  constexpr uint64_t kPackets = 100000;
  for (unsigned batch : {32u, 128u}) {
    PipePair pp;
    std::string name;
    ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "sat", &name));
    uint64_t e = 0;
    std::vector<std::string> errors;
    double secs = RunJobs(
        {[&] { return pp.g1.Send(0, kPackets, batch, kLen, 7) ? "" : "stall"; },
         [&] { return pp.g2.Receive(&e, kPackets, batch, 7); }},
        &errors);
    for (auto &err : errors) EXPECT_EQ(err, "");
    ptnetmap_pt_info info;
    ASSERT_EQ(ptemu::Info(ctl_, name, 0, &info), 0);
    double kpp = double(info.kicks) / kPackets;
    double ipp = double(info.interrupts) / kPackets;
    printf("one way, batch %u: %.3f Mpps, kicks/pkt %.4f, irqs/pkt %.4f "
           "(guest side: tx kicks %lu, rx kicks %lu, tx irqs %lu, rx irqs %lu)\n",
           batch, 1e-6 * kPackets / secs, kpp, ipp, pp.g1.tx().st.kicks,
           pp.g2.rx().st.kicks, pp.g1.tx().st.irqs, pp.g2.rx().st.irqs);
    EXPECT_LT(kpp, 0.2);
    EXPECT_LT(ipp, 0.2);
    ASSERT_EQ(ptemu::Detach(ctl_, name), 0);
  }
}

// schedstat of a task: nanoseconds on the CPU.
uint64_t CpuNs(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/schedstat");
  uint64_t run = 0;
  f >> run;
  return run;
}

// utime + stime, in clock ticks.
uint64_t CpuTicks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  std::istringstream in(line.substr(line.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; i++) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

TEST_F(PtTest, IdleWorkerUsesNoCpuAndSignalsNothing) {
  PipePair pp;
  std::string name;
  ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "idle", &name));
  uint64_t e = 0;
  std::vector<std::string> errors;
  RunJobs({[&] { return pp.g1.Send(0, 5000, 64, kLen, 3) ? "" : "stall"; },
           [&] { return pp.g2.Receive(&e, 5000, 64, 3); }},
          &errors);
  for (auto &err : errors) ASSERT_EQ(err, "");
  // Let everything settle, then leave the guests idle, as drivers with
  // their interrupts enabled.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (auto &p : pp.vm.peers)
    for (int fd : p.irq) Guest::Drain(fd);
  for (Guest *g : {&pp.g1, &pp.g2})
    for (auto *r : {&g->tx(), &g->rx()}) ptemu::Store(r->atok->appl_need_kick, 1u);

  ptnetmap_pt_info before, after;
  ASSERT_EQ(ptemu::Info(ctl_, name, 0, &before), 0);
  int pid = before.worker_pid;
  uint64_t ns0 = CpuNs(pid), t0 = CpuTicks(pid);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  uint64_t ns1 = CpuNs(pid), t1 = CpuTicks(pid);
  ASSERT_EQ(ptemu::Info(ctl_, name, 0, &after), 0);
  printf("idle 10 s: worker %d ran %lu ns, %lu ticks; wake-ups %lu -> %lu, "
         "interrupts %lu -> %lu, kicks %lu -> %lu\n",
         pid, ns1 - ns0, t1 - t0, before.wakeups, after.wakeups,
         before.interrupts, after.interrupts, before.kicks, after.kicks);
  EXPECT_EQ(ns1, ns0);
  EXPECT_EQ(t1, t0);
  EXPECT_EQ(after.wakeups, before.wakeups);
  EXPECT_EQ(after.interrupts, before.interrupts);
  for (auto &p : pp.vm.peers)
    for (int fd : p.irq) EXPECT_EQ(Guest::Drain(fd), 0u) << "an irq eventfd fired";
}

TEST_F(PtTest, KeepsForwardingAfterItsCreatorExits) {
  constexpr uint64_t kPackets = 20000;
  PipePair pp;
  ASSERT_EQ(pp.vm.Create(kShm, 2), 0);
  std::string pipe = nmtest::UniqueName("ptorph");
  std::string name = Name("orph");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The management process: its own /dev/netmap fd and mapping, gone
    // when it exits.
    int fd = nmtest::OpenNetmap();
    int err = pp.vm.Attach(fd, name, {pipe + "{1", pipe + "}1"},
                           PTNETMAP_PT_SHARED);
    _exit(err);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  StartGuest(pp.vm, 1, &pp.g1);
  StartGuest(pp.vm, 2, &pp.g2);
  uint64_t e = 0;
  std::vector<std::string> errors;
  RunJobs({[&] { return pp.g1.Send(0, kPackets, 64, kLen, 5) ? "" : "stall"; },
       [&] { return pp.g2.Receive(&e, kPackets, 64, 5); }},
      &errors);
  for (auto &err : errors) EXPECT_EQ(err, "");
  EXPECT_EQ(e, kPackets);
  // Another process finds it by name and takes it down.
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, name, 0, &info), 0);
  EXPECT_EQ(info.tx_packets, kPackets);
}

// Random batches, random pauses on both sides, small rings: every way for a
// wake-up to get lost gets many chances; a lost one shows as a stall.
TEST_F(PtTest, RandomTimingLosesNoWakeUp) {
  constexpr uint64_t kPackets = 500000;
  PipePair pp;
  ASSERT_EQ(pp.vm.Create(kShm, 2), 0);
  std::string pipe = nmtest::UniqueName("ptrnd");
  std::string name = Name("rnd");
  ASSERT_EQ(pp.vm.Attach(ctl_, name, {pipe + "{1", pipe + "}1"},
                         PTNETMAP_PT_SHARED, 64), 0);
  StartGuest(pp.vm, 1, &pp.g1);
  StartGuest(pp.vm, 2, &pp.g2);
  unsigned seed = std::random_device{}();
  printf("seed %u\n", seed);
  auto sender = [&](Guest &g, uint32_t flow, unsigned s) {
    std::mt19937 rng(s);
    uint64_t done = 0;
    while (done < kPackets) {
      uint64_t n = std::min<uint64_t>(kPackets - done, 1 + rng() % 200);
      if (!g.Send(done, n, 1 + rng() % 80, kLen, flow, 5000)) return std::string("stall");
      done += n;
      if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
      else if (rng() % 4 == 0) std::this_thread::yield();
    }
    return std::string();
  };
  auto receiver = [&](Guest &g, uint64_t *e, uint32_t flow, unsigned s) {
    std::mt19937 rng(s);
    while (*e < kPackets) {
      uint64_t n = std::min<uint64_t>(kPackets - *e, 1 + rng() % 200);
      std::string err = g.Receive(e, n, 1 + rng() % 80, flow, 5000);
      if (!err.empty()) return err;
      if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
      else if (rng() % 4 == 0) std::this_thread::yield();
    }
    return std::string();
  };
  uint64_t e12 = 0, e21 = 0;
  std::vector<std::string> errors;
  double secs = RunJobs({[&] { return sender(pp.g1, 1, seed); },
                     [&] { return receiver(pp.g2, &e12, 1, seed + 1); },
                     [&] { return sender(pp.g2, 2, seed + 2); },
                     [&] { return receiver(pp.g1, &e21, 2, seed + 3); }},
                    &errors);
  for (auto &err : errors) EXPECT_EQ(err, "");
  EXPECT_EQ(e12, kPackets);
  EXPECT_EQ(e21, kPackets);
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, name, 0, &info), 0);
  printf("random timing: %lu packets in %.1f s, kicks %lu, interrupts %lu, "
         "guest waits %lu\n", 2 * kPackets, secs, info.kicks, info.interrupts,
         pp.g1.tx().st.waits + pp.g1.rx().st.waits + pp.g2.tx().st.waits +
             pp.g2.rx().st.waits);
  EXPECT_EQ(info.errors, 0u);
}

TEST_F(PtTest, StopAndStartAgain) {
  PipePair pp;
  std::string name;
  ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "ss", &name));
  EXPECT_EQ(pp.g1.Start(), -EBUSY);
  uint64_t e = 0;
  ASSERT_TRUE(pp.g1.Send(0, 200, 16, kLen, 9));
  ASSERT_EQ(pp.g2.Receive(&e, 200, 16, 9), "");
  for (int round = 0; round < 3; round++) {
    ASSERT_EQ(pp.g1.Stop(), 0);
    ASSERT_EQ(pp.g2.Stop(), 0);
    EXPECT_EQ(ptemu::Load(pp.g1.desc()->link), 0u);
    StartGuest(pp.vm, 1, &pp.g1);
    StartGuest(pp.vm, 2, &pp.g2);
    ASSERT_TRUE(pp.g1.Send(e, 200, 16, kLen, 9));
    ASSERT_EQ(pp.g2.Receive(&e, 200, 16, 9), "");
  }
  EXPECT_EQ(pp.g1.Ctrl(77), -EINVAL);
}

// A receiver alone stops and starts again (a guest application closes its
// netmap port and another opens it): it goes on after the last frame it
// took, even when its last releases never reached the host before the STOP
// (releasing RX slots needs no kick while the ring has room). Nothing is
// delivered twice.
TEST_F(PtTest, ReceiverRestartsAfterWhatItTook) {
  PipePair pp;
  std::string name;
  ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "rr", &name));
  Guest &rx = pp.g2;
  uint64_t sent = 0, e = 0;
  for (int round = 0; round < 3; round++) {
    ASSERT_TRUE(pp.g1.Send(sent, 100, 16, kLen, 5));
    sent += 100;
    // Everything in the ring and the worker idle: the releases below are
    // news to the host only at the STOP.
    for (int i = 0; i < 500 && rx.Dist(rx.rx(), rx.rx().head, rx.HwTail(rx.rx())) < 100; i++)
      usleep(1000);
    ASSERT_EQ(rx.Dist(rx.rx(), rx.rx().head, rx.HwTail(rx.rx())), 100u);
    usleep(20000);
    ASSERT_EQ(rx.Receive(&e, 100, 16, 5), "");
    uint32_t took = rx.rx().head;
    ASSERT_EQ(rx.Stop(), 0);
    EXPECT_EQ(ptemu::Load(rx.rx().ring->head), took);
    StartGuest(pp.vm, 2, &rx);
    ASSERT_EQ(rx.rx().head, took);
  }
  // What comes next follows on.
  ASSERT_TRUE(pp.g1.Send(sent, 100, 16, kLen, 5));
  ASSERT_EQ(rx.Receive(&e, 100, 16, 5), "");
  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, name, 2, &info), 0);
  EXPECT_EQ(info.rx_packets, sent + 100);
  EXPECT_EQ(info.errors, 0u);
}

// Descriptors of peer `peer` of attachment `name`, taken over by `vm` (which
// must be empty) as if it had created them: the memfd mapped again.
int AdoptFds(int ctl, const std::string &name, uint32_t peer, Vm *vm,
             ptnetmap_pt_fds *fds) {
  *fds = {};
  fds->peer = peer;
  int err = ptemu::Ctl(ctl, PTNETMAP_REQ_PT_FDS, name, fds);
  if (err) return err;
  if (vm->memfd < 0) {
    vm->memfd = fds->memfd;
    vm->size = fds->shm_size;
    void *m = mmap(nullptr, vm->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   vm->memfd, 0);
    if (m == MAP_FAILED) return errno;
    vm->base = static_cast<char *>(m);
  } else {
    close(fds->memfd);
  }
  if (vm->peers.size() < peer) vm->peers.resize(peer);
  for (uint32_t v = 0; v < fds->num_vectors; v++) {
    vm->peers[peer - 1].kick.push_back(fds->kick_fds[v]);
    vm->peers[peer - 1].irq.push_back(fds->irq_fds[v]);
  }
  return 0;
}

int CountOpenFds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

// A management process restarts: the guests stop using what it had made,
// it asks for the descriptors again, and guests using only those go on.
TEST_F(PtTest, FdsOfAnAttachmentServeItAgain) {
  constexpr uint64_t kPackets = 5000;
  PipePair pp;
  std::string name;
  ASSERT_NO_FATAL_FAILURE(AttachStartedPipePair(&pp, "fds", &name));
  uint64_t e12 = 0;
  ASSERT_TRUE(pp.g1.Send(0, 200, 16, kLen, 4));
  ASSERT_EQ(pp.g2.Receive(&e12, 200, 16, 4), "");
  ASSERT_EQ(pp.g1.Stop(), 0);
  ASSERT_EQ(pp.g2.Stop(), 0);
  // Everything the creator had is gone.
  pp.vm.Close();

  Vm vm;
  ptnetmap_pt_fds fds[2];
  ASSERT_EQ(AdoptFds(ctl_, name, 1, &vm, &fds[0]), 0);
  ASSERT_EQ(AdoptFds(ctl_, name, 2, &vm, &fds[1]), 0);
  EXPECT_EQ(fds[0].shm_size, kShm);
  EXPECT_EQ(fds[0].flags, uint32_t(PTNETMAP_PT_SHARED));
  EXPECT_EQ(fds[0].num_vectors, 3u);
  EXPECT_EQ(std::string(fds[1].port).back(), '1');
  EXPECT_NE(std::string(fds[0].port), std::string(fds[1].port));
  const uint8_t mac2[6] = {0x02, 0x50, 0x54, 0x4e, 0x4d, 2};
  EXPECT_EQ(memcmp(fds[1].mac, mac2, 6), 0);
  for (uint32_t v = fds[0].num_vectors; v < PTNETMAP_PT_MAX_VECTORS; v++) {
    EXPECT_EQ(fds[0].kick_fds[v], -1);
    EXPECT_EQ(fds[0].irq_fds[v], -1);
  }
  for (int fd : {fds[0].memfd, fds[0].kick_fds[1], fds[0].irq_fds[2]})
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC) << fd;

  // The same memory: the layout and the descriptors the kernel wrote.
  auto *g = reinterpret_cast<ptnm_global *>(vm.base);
  EXPECT_EQ(g->magic, PTNM_MAGIC);
  EXPECT_EQ(g->num_peers, 2u);
  auto *d2 = reinterpret_cast<ptnm_port_desc *>(vm.base + 2 * PTNM_PAGE_SIZE);
  EXPECT_EQ(d2->peer_id, 2u);
  EXPECT_EQ(std::string(d2->name), std::string(fds[1].port));

  // A kick on a returned kick eventfd reaches the worker.
  ptnetmap_pt_info before, after;
  ASSERT_EQ(ptemu::Info(ctl_, name, 1, &before), 0);
  Guest::Kick(vm.peers[0].kick[1]);
  for (int i = 0; i < 200; i++) {
    ASSERT_EQ(ptemu::Info(ctl_, name, 1, &after), 0);
    if (after.kicks > before.kicks && after.wakeups > before.wakeups) break;
    usleep(10000);
  }
  EXPECT_GT(after.kicks, before.kicks);
  EXPECT_GT(after.wakeups, before.wakeups);

  // Guests on the new mapping and eventfds only; the rings go on where
  // they stopped.
  Guest g1, g2;
  StartGuest(vm, 1, &g1);
  StartGuest(vm, 2, &g2);
  uint64_t e21 = 0;
  std::vector<std::string> errors;
  RunJobs({[&] { return g1.Send(200, kPackets, 32, kLen, 4) ? "" : "stall 1>"; },
           [&] { return g2.Receive(&e12, kPackets, 32, 4); },
           [&] { return g2.Send(0, kPackets, 32, kLen, 5) ? "" : "stall 2>"; },
           [&] { return g1.Receive(&e21, kPackets, 32, 5); }},
          &errors);
  for (auto &e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(e12, 200 + kPackets);
  EXPECT_EQ(e21, kPackets);

  // Bad requests.
  ptnetmap_pt_fds bad;
  int open_before = CountOpenFds();
  for (uint32_t peer : {0u, 3u, 0xffffffffu}) {
    bad = {};
    bad.peer = peer;
    EXPECT_EQ(ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, name, &bad), EINVAL) << peer;
  }
  bad = {};
  bad.peer = 1;
  EXPECT_EQ(ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, name + "x", &bad), ENOENT);
  EXPECT_EQ(ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, "", &bad), ENOENT);
  EXPECT_EQ(CountOpenFds(), open_before);
}

// All or nothing: with room for fewer descriptors than needed, none is
// installed. And only for CAP_NET_ADMIN.
TEST_F(PtTest, FdsAllOrNothingAndPrivileged) {
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  std::string name = Name("fdsl");
  ASSERT_EQ(vm.Attach(ctl_, name, {"valeptf:a"}, 0), 0);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Room for 3 more descriptors; the request needs 1 + 2 * 3.
    int highest = 0;
    for (int fd = 0; fd < 4096; fd++)
      if (fcntl(fd, F_GETFD) >= 0) highest = fd;
    rlimit rl{rlim_t(highest + 4), rlim_t(highest + 4)};
    if (setrlimit(RLIMIT_NOFILE, &rl)) _exit(10);
    // Fill the holes below the limit, leaving exactly 3 free slots.
    std::vector<int> fill;
    for (;;) {
      int fd = dup(ctl_);
      if (fd < 0) break;
      fill.push_back(fd);
    }
    for (int i = 0; i < 3 && !fill.empty(); i++) {
      close(fill.back());
      fill.pop_back();
    }
    int before = CountOpenFds();
    ptnetmap_pt_fds f{};
    f.peer = 1;
    int err = ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, name, &f);
    if (err != EMFILE) _exit(11);
    if (CountOpenFds() != before) _exit(12);
    for (int fd : fill) close(fd);
    // Enough room again: it works.
    if (ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, name, &f)) _exit(13);
    // Without CAP_NET_ADMIN: refused.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &hdr, data)) _exit(14);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    if (syscall(SYS_capset, &hdr, data)) _exit(15);
    if (ptemu::Ctl(ctl_, PTNETMAP_REQ_PT_FDS, name, &f) != EPERM) _exit(16);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10-11: EMFILE not returned, 12: descriptors leaked, 13: retry "
         "failed, 14-15: capset, 16: EPERM not returned";
}

// Unknown request numbers of ours are EOPNOTSUPP (a newer module's), like
// the agent expects; netmap's own unknown numbers stay EINVAL.
TEST_F(PtTest, UnknownRequestsOfOursAreNotSupported) {
  uint64_t body[64] = {};
  for (uint16_t type : {uint16_t(0x1f0), uint16_t(0x1ff)}) {
    EXPECT_EQ(ptemu::Ctl(ctl_, type, "x", &body), EOPNOTSUPP) << type;
  }
  EXPECT_EQ(ptemu::Ctl(ctl_, 0x200, "x", &body), EINVAL);
}

}  // namespace
