// SPDX-License-Identifier: GPL-2.0
// netmap's CSB mode, as existing netmap applications use it: the CSB option
// of REGISTER and CSB_ENABLE (exclusive registration, aligned arrays,
// initial values), NIOC*SYNC and poll refused, SYNC_KLOOP_START/STOP with
// and without eventfds, SYNC_KLOOP_MODE, traffic through a pipe whose other
// end is a plain netmap application.
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "guest_emu.h"
#include "host_app.h"

namespace {

constexpr uint32_t kLen = 60;

struct alignas(64) Csb {
  nm_csb_atok atok[2];
  nm_csb_ktoa ktoa[2];
};

struct CsbOption {
  nmreq_opt_csb opt{};
  explicit CsbOption(Csb *csb) {
    opt.nro_opt.nro_reqtype = NETMAP_REQ_OPT_CSB;
    opt.nro_opt.nro_size = sizeof(opt);
    opt.csb_atok = reinterpret_cast<uintptr_t>(csb->atok);
    opt.csb_ktoa = reinterpret_cast<uintptr_t>(csb->ktoa);
  }
};

// Registers `name` exclusively in CSB mode.
int OpenCsb(nmtest::Port &p, const std::string &name, Csb *csb,
            uint64_t flags = NR_EXCLUSIVE) {
  CsbOption o(csb);
  return p.Open(name, [&](nmtest::RegisterRequest &r) {
    r.body.nr_flags = flags;
    r.AddOption(&o.opt.nro_opt);
  });
}

TEST(CsbTest, RegisterWithCsbOption) {
  std::string pipe = nmtest::UniqueName("csbreg");
  Csb csb;
  memset(&csb, 0xab, sizeof(csb));
  nmtest::Port p;
  // Exclusive registration only.
  EXPECT_EQ(OpenCsb(p, pipe + "{1", &csb, 0), EINVAL);
  ASSERT_EQ(OpenCsb(p, pipe + "{1", &csb), 0);
  uint32_t n = p.reg().nr_tx_slots;
  EXPECT_EQ(csb.atok[0].head, 0u);
  EXPECT_EQ(csb.atok[0].cur, 0u);
  EXPECT_EQ(csb.atok[0].appl_need_kick, 1u);
  EXPECT_EQ(csb.ktoa[0].hwcur, 0u);
  EXPECT_EQ(csb.ktoa[0].hwtail, n - 1);
  EXPECT_EQ(csb.ktoa[0].kern_need_kick, 1u);
  EXPECT_EQ(csb.ktoa[1].hwtail, 0u);
  EXPECT_EQ(csb.ktoa[0].pad[0], 0u);  // the ktoa arrays are cleared
  // The kloop owns the rings.
  EXPECT_EQ(p.TxSync(), EBUSY);
  EXPECT_EQ(p.RxSync(), EBUSY);
  EXPECT_EQ(p.Poll(POLLIN, 0), POLLERR);

  // Misaligned arrays.
  nmtest::Port q;
  Csb *bad = reinterpret_cast<Csb *>(reinterpret_cast<char *>(&csb) + 8);
  CsbOption o(bad);
  EXPECT_EQ(q.Open(pipe + "}1", [&](nmtest::RegisterRequest &r) {
    r.body.nr_flags = NR_EXCLUSIVE;
    r.AddOption(&o.opt.nro_opt);
  }), EINVAL);
  EXPECT_EQ(o.opt.nro_opt.nro_status, uint32_t(EINVAL));
}

TEST(CsbTest, CsbEnableAndKloopPreconditions) {
  std::string pipe = nmtest::UniqueName("csben");
  nmtest::Port p;
  ASSERT_EQ(p.Open(pipe + "{1", [](nmtest::RegisterRequest &r) {
    r.body.nr_flags = NR_EXCLUSIVE;
  }), 0);
  // No CSB yet: a kloop has nothing to serve.
  nmtest::Request<nmreq_sync_kloop_start> start(NETMAP_REQ_SYNC_KLOOP_START, "");
  EXPECT_EQ(start.Send(p.fd()), EINVAL);
  EXPECT_EQ(p.TxSync(), 0);
  // CSB_ENABLE needs the option.
  nmreq_header hdr{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = NETMAP_REQ_CSB_ENABLE;
  EXPECT_NE(ioctl(p.fd(), NIOCCTRL, &hdr), 0);
  Csb csb;
  CsbOption o(&csb);
  hdr.nr_options = reinterpret_cast<uintptr_t>(&o.opt);
  ASSERT_EQ(ioctl(p.fd(), NIOCCTRL, &hdr), 0) << strerror(errno);
  EXPECT_EQ(o.opt.nro_opt.nro_status, 0u);
  EXPECT_EQ(csb.ktoa[0].kern_need_kick, 1u);
  EXPECT_EQ(p.TxSync(), EBUSY);
  // A sleep beyond a second is refused.
  start.body.sleep_us = 2000000;
  EXPECT_EQ(start.Send(p.fd()), EINVAL);
  // Stop with no loop running is harmless.
  nmreq_header stop{};
  stop.nr_version = NETMAP_API;
  stop.nr_reqtype = NETMAP_REQ_SYNC_KLOOP_STOP;
  EXPECT_EQ(ioctl(p.fd(), NIOCCTRL, &stop), 0);
}

// Times thread `tid` of this process went to sleep (voluntary context
// switches): a kloop thread sleeps once for each time it is woken.
uint64_t Sleeps(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
      return std::stoull(line.substr(line.find(':') + 1));
  return 0;
}

// An application in CSB mode on one end of a pipe, a plain one on the other,
// frames both ways; the kloop runs in a thread of its own until STOP.
// *loop_sleeps: how often the kloop thread slept while the traffic flowed.
void KloopTraffic(bool eventfds, uint32_t mode,
                  uint64_t *loop_sleeps = nullptr) {
  constexpr uint64_t kPackets = 20000;
  std::string pipe = nmtest::UniqueName("csbk");
  Csb csb;
  nmtest::Port app, host;
  ASSERT_EQ(OpenCsb(app, pipe + "{1", &csb), 0);
  ASSERT_EQ(host.Open(pipe + "}1"), 0);

  int kick[2] = {-1, -1}, irq[2] = {-1, -1};
  struct {
    nmreq_option opt;
    int32_t fds[2][2];
  } efds{};
  if (eventfds) {
    for (int i = 0; i < 2; i++) {
      kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      irq[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      efds.fds[i][0] = kick[i];
      efds.fds[i][1] = irq[i];
    }
    efds.opt.nro_reqtype = NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS;
    efds.opt.nro_size = sizeof(efds);
  }
  nmreq_opt_sync_kloop_mode mopt{};
  mopt.nro_opt.nro_reqtype = NETMAP_REQ_OPT_SYNC_KLOOP_MODE;
  mopt.nro_opt.nro_size = sizeof(mopt);
  mopt.mode = mode;

  int loop_err = -1;
  std::atomic<pid_t> loop_tid{0};
  std::thread loop([&] {
    loop_tid = gettid();
    nmtest::Request<nmreq_sync_kloop_start> start(NETMAP_REQ_SYNC_KLOOP_START, "");
    start.body.sleep_us = 50;
    if (eventfds) start.AddOption(&efds.opt);
    if (mode) start.AddOption(&mopt.nro_opt);
    loop_err = start.Send(app.fd());
  });

  ptemu::Guest g;
  char *mem = static_cast<char *>(app.mem());
  g.SetupCsbRing(0, app.tx(), &csb.atok[0], &csb.ktoa[0], kick[0], irq[0], mem,
                 app.reg().nr_memsize);
  g.SetupCsbRing(1, app.rx(), &csb.atok[1], &csb.ktoa[1], kick[1], irq[1], mem,
                 app.reg().nr_memsize);
  while (!loop_tid) std::this_thread::yield();
  // The loop is in the kernel once the CSB shows it asleep on its rings
  // (or, busy-waiting, soon enough); count from there.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  uint64_t sleeps0 = Sleeps(loop_tid);
  uint64_t eg = 0, eh = 0;
  std::string e1, e2, e3;
  bool sent = false;
  std::thread t1([&] { sent = g.Send(0, kPackets, 32, kLen, 1); });
  std::thread t2([&] { e1 = ptemu::HostReceive(host, &eh, kPackets, 32, 1); });
  std::thread t3([&] { e2 = ptemu::HostSend(host, 0, kPackets, 32, kLen, 2); });
  std::thread t4([&] { e3 = g.Receive(&eg, kPackets, 32, 2); });
  for (auto *t : {&t1, &t2, &t3, &t4}) t->join();
  EXPECT_TRUE(sent);
  EXPECT_EQ(e1, "");
  EXPECT_EQ(e2, "");
  EXPECT_EQ(e3, "");
  EXPECT_EQ(eg, kPackets);
  EXPECT_EQ(eh, kPackets);
  uint64_t sleeps = Sleeps(loop_tid) - sleeps0;
  if (loop_sleeps) *loop_sleeps = sleeps;
  printf("kloop (eventfds %d, mode %u): the loop thread slept %lu times for "
         "%lu packets\n", eventfds, mode, sleeps, 2 * kPackets);

  nmreq_header stop{};
  stop.nr_version = NETMAP_API;
  stop.nr_reqtype = NETMAP_REQ_SYNC_KLOOP_STOP;
  EXPECT_EQ(ioctl(app.fd(), NIOCCTRL, &stop), 0);
  loop.join();
  EXPECT_EQ(loop_err, 0);
  if (eventfds) {
    EXPECT_EQ(efds.opt.nro_status, 0u);
    printf("kloop with eventfds: app kicks %lu, interrupts %lu for %lu packets\n",
           g.tx().st.kicks + g.rx().st.kicks, g.tx().st.irqs + g.rx().st.irqs,
           2 * kPackets);
  }
  if (mode) {
    EXPECT_EQ(mopt.nro_opt.nro_status, 0u);
  }
  for (int fd : {kick[0], kick[1], irq[0], irq[1]}) {
    if (fd >= 0) close(fd);
  }
}

TEST(CsbTest, KloopWithEventfds) { KloopTraffic(true, 0); }
TEST(CsbTest, KloopBusyWait) { KloopTraffic(false, 0); }
// In the direct modes the rings are synced where their events arrive, not
// by the loop: the loop thread is not woken by the traffic at all, while
// without them it wakes (and sleeps again) over and over.
TEST(CsbTest, KloopDirectModes) {
  uint64_t loop_sleeps = 0, direct_sleeps = 0, tx_only_sleeps = 0;
  ASSERT_NO_FATAL_FAILURE(KloopTraffic(true, 0, &loop_sleeps));
  ASSERT_NO_FATAL_FAILURE(KloopTraffic(
      true, NM_OPT_SYNC_KLOOP_DIRECT_TX | NM_OPT_SYNC_KLOOP_DIRECT_RX,
      &direct_sleeps));
  EXPECT_LE(direct_sleeps, 2u);
  EXPECT_GT(loop_sleeps, 20u);
  // One direction direct, the other still served by the loop.
  ASSERT_NO_FATAL_FAILURE(
      KloopTraffic(true, NM_OPT_SYNC_KLOOP_DIRECT_TX, &tx_only_sleeps));
  EXPECT_GT(tx_only_sleeps, direct_sleeps);
}

TEST(CsbTest, KloopDirectModeRxOnly) {
  KloopTraffic(true, NM_OPT_SYNC_KLOOP_DIRECT_RX);
}

TEST(CsbTest, KloopDirectModesWithoutEventfdsPoll) {
  KloopTraffic(false, NM_OPT_SYNC_KLOOP_DIRECT_TX | NM_OPT_SYNC_KLOOP_DIRECT_RX);
}

TEST(CsbTest, KloopEventfdCountMustMatch) {
  std::string pipe = nmtest::UniqueName("csbn");
  Csb csb;
  nmtest::Port app;
  ASSERT_EQ(OpenCsb(app, pipe + "{1", &csb), 0);
  struct {
    nmreq_option opt;
    int32_t fds[1][2];
  } efds{};
  efds.opt.nro_reqtype = NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS;
  efds.opt.nro_size = sizeof(efds);
  efds.fds[0][0] = eventfd(0, EFD_CLOEXEC);
  efds.fds[0][1] = eventfd(0, EFD_CLOEXEC);
  nmtest::Request<nmreq_sync_kloop_start> start(NETMAP_REQ_SYNC_KLOOP_START, "");
  start.AddOption(&efds.opt);
  EXPECT_EQ(start.Send(app.fd()), EINVAL);
  close(efds.fds[0][0]);
  close(efds.fds[0][1]);
}

}  // namespace
