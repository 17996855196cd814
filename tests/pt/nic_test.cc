// SPDX-License-Identifier: GPL-2.0
// A network interface as the port of a passthrough attachment: a veth pair
// in the lab VM, one end (ptn0) attached and driven by a guest played in
// userspace, the other end (ptn1, in namespace ptnicns) read and written
// with an AF_PACKET socket. Frames cross both ways, the device cannot be
// taken twice, and after detach the stack has the device back.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "../lab/nm_test.h"
#include "guest_emu.h"

namespace {

using ptemu::Guest;
using ptemu::Vm;

constexpr size_t kShm = 8 << 20;
constexpr uint32_t kLen = 60;
constexpr uint16_t kEtherType = 0x88b5;  // ptemu::WriteFrame's

int Sh(const std::string &cmd) {
  int r = system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

int Ping(const std::string &to, bool expect_ok) {
  return Sh(expect_ok ? "busybox ping -c 2 -i 0.2 -W 3 " + to
                      : "busybox ping -c 1 -W 1 " + to);
}

//   ptn0 10.81.0.1 (root namespace) | ptn1 10.81.0.2 (ptnicns)
class VethEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    Sh("modprobe veth");
    ASSERT_EQ(Sh("ip netns add ptnicns"), 0);
    ASSERT_EQ(Sh("ip link add ptn0 type veth peer name ptn1 netns ptnicns"), 0);
    ASSERT_EQ(Sh("ip addr add 10.81.0.1/24 dev ptn0"), 0);
    ASSERT_EQ(Sh("ip link set ptn0 up"), 0);
    ASSERT_EQ(Sh("ip -n ptnicns addr add 10.81.0.2/24 dev ptn1"), 0);
    ASSERT_EQ(Sh("ip -n ptnicns link set ptn1 up"), 0);
  }
  void TearDown() override {
    Sh("ip link del ptn0");
    Sh("ip netns del ptnicns");
  }
};
const auto *const kVethEnv =
    ::testing::AddGlobalTestEnvironment(new VethEnvironment);

// An AF_PACKET socket on ptn1 for our test ethertype only.
class Wire {
 public:
  bool Open() {
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = open("/run/netns/ptnicns", O_RDONLY | O_CLOEXEC);
    bool ok = self >= 0 && ns >= 0 && setns(ns, CLONE_NEWNET) == 0;
    if (ok) {
      fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kEtherType));
      ifindex_ = if_nametoindex("ptn1");
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(kEtherType);
      sll.sll_ifindex = ifindex_;
      ok = fd_ >= 0 && ifindex_ &&
           bind(fd_, reinterpret_cast<sockaddr *>(&sll), sizeof(sll)) == 0;
      int big = 4 << 20;
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
      ok = setns(self, CLONE_NEWNET) == 0 && ok;
    }
    if (self >= 0) close(self);
    if (ns >= 0) close(ns);
    return ok;
  }
  ~Wire() {
    if (fd_ >= 0) close(fd_);
  }
  bool Send(uint32_t flow, uint64_t seq) {
    char b[kLen] = {};
    ptemu::WriteFrame(b, flow, seq);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex_;
    sll.sll_halen = ETH_ALEN;
    memset(sll.sll_addr, 0xff, ETH_ALEN);
    return sendto(fd_, b, sizeof(b), 0, reinterpret_cast<sockaddr *>(&sll),
                  sizeof(sll)) == ssize_t(sizeof(b));
  }
  // Receives `count` frames of `flow` in order from *expect; "" or what
  // went wrong. Frames of other flows are skipped.
  std::string Receive(uint32_t flow, uint64_t *expect, uint64_t count) {
    uint64_t end = *expect + count;
    while (*expect < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0)
        return "wire: nothing for 5 s at " + std::to_string(*expect);
      char b[2048];
      ssize_t n = recv(fd_, b, sizeof(b), 0);
      if (n < 26) continue;
      uint32_t f;
      uint64_t q;
      memcpy(&f, b + 14, 4);
      memcpy(&q, b + 18, 8);
      if (f != flow) continue;
      if (q != *expect)
        return "wire: seq " + std::to_string(q) + ", expected " +
               std::to_string(*expect);
      (*expect)++;
    }
    return "";
  }

 private:
  int fd_ = -1;
  unsigned ifindex_ = 0;
};

// Guest::Receive, but a real wire brings other frames too (IPv6 neighbour
// discovery of ptn1's stack): those are released unchecked.
std::string GuestReceive(Guest &g, uint32_t flow, uint64_t *expect,
                         uint64_t count) {
  Guest::Ring &r = g.rx();
  uint64_t end = *expect + count;
  while (*expect < end) {
    if (g.HwTail(r) == r.head) {
      if (!g.Wait(r, [&] { return g.HwTail(r) != r.head; }, 5000))
        return "guest: nothing for 5 s at " + std::to_string(*expect);
      continue;
    }
    while (g.HwTail(r) != r.head && *expect < end) {
      const char *b = g.Buf(r, r.head);
      if (!b) return "bad buffer index from the host";
      uint16_t type = uint16_t(uint8_t(b[12]) << 8 | uint8_t(b[13]));
      uint32_t f = 0;
      uint64_t q = 0;
      memcpy(&f, b + 14, 4);
      memcpy(&q, b + 18, 8);
      if (type == kEtherType && f == flow) {
        if (q != *expect)
          return "guest: seq " + std::to_string(q) + ", expected " +
                 std::to_string(*expect);
        (*expect)++;
      }
      r.head = r.head + 1 == r.num_slots ? 0 : r.head + 1;
    }
    g.Publish(r);
  }
  return "";
}

class PtNicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctl_ = nmtest::OpenNetmap();
    ASSERT_GE(ctl_, 0) << strerror(errno);
  }
  void TearDown() override {
    ptemu::Detach(ctl_, name_);
    close(ctl_);
  }
  int ctl_ = -1;
  std::string name_ = nmtest::UniqueName("nic");
};

TEST_F(PtNicTest, GuestTalksThroughAVethPair) {
  constexpr unsigned kWindow = 64, kRounds = 10;
  ASSERT_EQ(Ping("10.81.0.2", true), 0) << "the veth pair does not work";
  Wire wire;
  ASSERT_TRUE(wire.Open()) << strerror(errno);

  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  ASSERT_EQ(vm.Attach(ctl_, name_, {"ptn0"}, 0), 0);
  // The rings are in the attachment's memory, not in the global region.
  EXPECT_NE(vm.att.mem_id, 1);
  Guest g;
  ASSERT_EQ(g.Setup(vm.base, vm.size, 1, vm.peers[0]), "");
  ASSERT_EQ(g.Start(), 0);
  EXPECT_EQ(std::string(g.desc()->name), "ptn0");
  // Its netmap_if lists the rings the guest drives, not the host rings
  // (where the stack's frames go meanwhile), as docs/shm-layout.md says.
  auto *nifp = reinterpret_cast<netmap_if *>(vm.base + g.desc()->nifp_offset);
  EXPECT_EQ(nifp->ni_tx_rings, 1u);
  EXPECT_EQ(nifp->ni_rx_rings, 1u);
  EXPECT_EQ(nifp->ni_host_tx_rings, 0u);
  EXPECT_EQ(nifp->ni_host_rx_rings, 0u);

  uint64_t sent_out = 0, got_out = 0, sent_in = 0, got_in = 0;
  for (unsigned round = 0; round < kRounds; round++) {
    // Guest -> ptn0 -> ptn1.
    ASSERT_TRUE(g.Send(sent_out, kWindow, 16, kLen, 1));
    sent_out += kWindow;
    ASSERT_EQ(wire.Receive(1, &got_out, kWindow), "");
    // ptn1 -> ptn0 -> guest.
    for (unsigned i = 0; i < kWindow; i++) ASSERT_TRUE(wire.Send(2, sent_in++));
    ASSERT_EQ(GuestReceive(g, 2, &got_in, kWindow), "");
  }
  EXPECT_EQ(got_out, uint64_t(kWindow) * kRounds);
  EXPECT_EQ(got_in, uint64_t(kWindow) * kRounds);

  ptnetmap_pt_info info;
  ASSERT_EQ(ptemu::Info(ctl_, name_, 1, &info), 0);
  EXPECT_EQ(std::string(info.port), "ptn0");
  EXPECT_EQ(info.tx_packets, uint64_t(kWindow) * kRounds);
  EXPECT_GE(info.rx_packets, uint64_t(kWindow) * kRounds);
  EXPECT_EQ(info.errors, 0u);

  // The guest has the device: the root namespace's stack does not reach it.
  EXPECT_NE(Ping("10.81.0.2", false), 0);

  ASSERT_EQ(ptemu::Detach(ctl_, name_), 0);
  // The stack has the device back.
  EXPECT_EQ(Ping("10.81.0.2", true), 0);
  // And a netmap application can take it again (in the global region).
  nmtest::Port p;
  ASSERT_EQ(p.Open("ptn0"), 0);
  EXPECT_EQ(p.reg().nr_mem_id, 1);
}

// One device, one region: whoever holds it first keeps it.
TEST_F(PtNicTest, ADeviceIsInOneRegionOnly) {
  {
    // Held by a netmap application (global region): no attachment.
    nmtest::Port p;
    ASSERT_EQ(p.Open("ptn0"), 0);
    Vm vm;
    ASSERT_EQ(vm.Create(kShm, 1), 0);
    EXPECT_EQ(vm.Attach(ctl_, name_, {"ptn0"}, 0), EBUSY);
    ptnetmap_pt_info info;
    EXPECT_EQ(ptemu::Info(ctl_, name_, 0, &info), ENOENT);
  }
  // Held by an attachment: applications cannot open it, not even its host
  // rings, and a second attachment cannot take it.
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  ASSERT_EQ(vm.Attach(ctl_, name_, {"ptn0"}, 0), 0);
  nmtest::Port p;
  EXPECT_EQ(p.Open("ptn0"), EBUSY);
  EXPECT_EQ(p.Open("ptn0", [](nmtest::RegisterRequest &r) {
    r.body.nr_mode = NR_REG_SW;
  }), EBUSY);
  Vm vm2;
  ASSERT_EQ(vm2.Create(kShm, 1), 0);
  std::string other = nmtest::UniqueName("nic2");
  EXPECT_EQ(vm2.Attach(ctl_, other, {"ptn0"}, 0), EBUSY);
  ptemu::Detach(ctl_, other);
  ASSERT_EQ(ptemu::Detach(ctl_, name_), 0);
  EXPECT_EQ(p.Open("ptn0"), 0);
}

// The device goes away under the guest: the attachment lets go of it and
// stays until detached; what the guest sends then is dropped.
TEST_F(PtNicTest, DeviceRemovedWhileAttached) {
  ASSERT_EQ(Sh("ip link add ptn2 type veth peer name ptn3"), 0);
  ASSERT_EQ(Sh("ip link set ptn2 up"), 0);
  Vm vm;
  ASSERT_EQ(vm.Create(kShm, 1), 0);
  ASSERT_EQ(vm.Attach(ctl_, name_, {"ptn2"}, 0), 0);
  Guest g;
  ASSERT_EQ(g.Setup(vm.base, vm.size, 1, vm.peers[0]), "");
  ASSERT_EQ(g.Start(), 0);
  ASSERT_TRUE(g.Send(0, 100, 16, kLen, 1));
  // Must not hang.
  ASSERT_EQ(Sh("ip link del ptn2"), 0);
  ASSERT_TRUE(g.Send(100, 300, 16, kLen, 1));
  ptnetmap_pt_info info;
  for (int i = 0; i < 100; i++) {
    ASSERT_EQ(ptemu::Info(ctl_, name_, 1, &info), 0);
    if (info.tx_packets == 400) break;
    usleep(10000);
  }
  EXPECT_EQ(info.tx_packets, 400u);
  EXPECT_EQ(info.errors, 0u);
  EXPECT_EQ(ptemu::Detach(ctl_, name_), 0);
}

}  // namespace
