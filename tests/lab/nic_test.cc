// SPDX-License-Identifier: GPL-2.0
// NIC ports and NICs on VALE switches, run inside the lab VM with
// ptnetmap.ko loaded: real frames between the Linux stack (in network
// namespaces, over veth pairs) and netmap rings. Uses iproute2 and
// busybox ping.
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "vale_util.h"

namespace {

using nmtest::Port;
using namespace valetest;

// Runs a shell command, its output discarded; its exit status.
int Sh(const std::string &cmd) {
  int r = system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

// Runs iproute2 commands, one per line, in one process (each exec is slow
// in the emulated VM); `ns` selects a network namespace.
int IpBatch(const std::string &commands, const std::string &ns = "") {
  std::string file = "/tmp/nic_test_batch";
  FILE *f = fopen(file.c_str(), "w");
  if (!f) return -1;
  fputs(commands.c_str(), f);
  fclose(f);
  return Sh("ip " + (ns.empty() ? "" : "-n " + ns + " ") + "-force -batch " + file);
}

// Veth pairs whose inner ends live in namespaces, made once for the suite:
//   vpa0 | vpa1 10.77.0.1 (vns1)   vpb0 | vpb1 10.77.0.2 (vns2)
//   vpc0 10.78.0.1 | vpc1 10.78.0.2 (vns3)
class VethEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    Sh("modprobe veth");  // a module of the lab kernel
    ASSERT_EQ(IpBatch("netns add vns1\nnetns add vns2\nnetns add vns3\n"
                      "link add vpa0 type veth peer name vpa1 netns vns1\n"
                      "link add vpb0 type veth peer name vpb1 netns vns2\n"
                      "link add vpc0 type veth peer name vpc1 netns vns3\n"
                      "link set vpa0 up\nlink set vpb0 up\nlink set vpc0 up\n"
                      "addr add 10.78.0.1/24 dev vpc0\n"),
              0);
    const char *inner[][3] = {{"vns1", "vpa1", "10.77.0.1"},
                              {"vns2", "vpb1", "10.77.0.2"},
                              {"vns3", "vpc1", "10.78.0.2"}};
    for (auto &i : inner)
      ASSERT_EQ(IpBatch(std::string("addr add ") + i[2] + "/24 dev " + i[1] +
                            "\nlink set " + i[1] + " up\nlink set lo up\n",
                        i[0]),
                0);
  }
  void TearDown() override {
    IpBatch("link del vpa0\nlink del vpb0\nlink del vpc0\n"
            "netns del vns1\nnetns del vns2\nnetns del vns3\n");
  }
};
const auto *const kVethEnv =
    ::testing::AddGlobalTestEnvironment(new VethEnvironment);

// 0 if `to` answers a ping from namespace `ns` ("" for the root one).
int Ping(const std::string &ns, const std::string &to, bool expect_ok = true) {
  std::string cmd = expect_ok ? "busybox ping -c 2 -i 0.2 -W 3 " + to
                              : "busybox ping -c 1 -W 1 " + to;
  return Sh(ns.empty() ? cmd : "ip netns exec " + ns + " " + cmd);
}

TEST(NicTest, NamespacesPingAcrossAValeSwitch) {
  // Not connected yet.
  EXPECT_NE(Ping("vns1", "10.77.0.2", false), 0);

  uint32_t ia = 999, ib = 999;
  ASSERT_EQ(Attach("vale0:vpa0", NR_REG_ALL_NIC, &ia), 0);
  ASSERT_EQ(Attach("vale0:vpb0", NR_REG_ALL_NIC, &ib), 0);
  EXPECT_NE(ia, ib);
  EXPECT_EQ(Attach("vale0:vpa0"), EBUSY);
  EXPECT_EQ(Attach("vale1:vpa0"), EBUSY);  // the device is taken
  Port p;
  EXPECT_EQ(p.Open("vpa0"), EBUSY);
  EXPECT_TRUE(Listed("vale0:vpa0"));

  EXPECT_EQ(Ping("vns1", "10.77.0.2"), 0);

  // A netmap port on the same switch sees the broadcasts (ARP) too.
  Port v;
  ASSERT_EQ(v.Open("vale0:app"), 0);
  EXPECT_EQ(Sh("ip -n vns2 neigh flush dev vpb1"), 0);
  EXPECT_EQ(Ping("vns2", "10.77.0.1"), 0);
  bool saw_arp = false;
  for (const auto &f : Receive(v))
    if (f.size() >= 14 && f[12] == 0x08 && f[13] == 0x06) saw_arp = true;
  EXPECT_TRUE(saw_arp);

  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("vale0:vpa0", &st), 0);
  EXPECT_GE(st.tx_packets, 4u);  // from the wire into the switch
  EXPECT_GE(st.rx_packets, 4u);  // from the switch out of the device
  EXPECT_GT(st.tx_bytes, 4u * 98);

  ASSERT_EQ(Detach("vale0:vpa0"), 0);
  EXPECT_EQ(Detach("vale0:vpa0"), ENXIO);
  EXPECT_NE(Ping("vns1", "10.77.0.2", false), 0);
  ASSERT_EQ(Detach("vale0:vpb0"), 0);
  EXPECT_FALSE(Listed("vale0:vpb0"));
}

// A transparent bridge between a NIC's rings and its host stack rings: the
// stack of the root namespace reaches the namespace only through us.
TEST(NicTest, NetmapPortCarriesWireAndHostStack) {
  Port p;
  ASSERT_EQ(p.Open("vpc0", [](nmtest::RegisterRequest &r) {
              r.body.nr_mode = NR_REG_NIC_SW;
            }),
            0);
  EXPECT_EQ(p.reg().nr_mem_id, 1);  // NIC ports use the global region
  ASSERT_EQ(p.nifp()->ni_host_tx_rings, 1u);
  ASSERT_EQ(p.nifp()->ni_host_rx_rings, 1u);

  std::atomic<bool> stop{false};
  std::atomic<int> to_wire{0}, to_host{0};
  std::thread bridge([&] {
    while (!stop) {
      p.Poll(POLLIN, 50);
      for (const auto &f : Receive(p, 0))  // from the wire: up the stack
        to_host += Send(p, {f}, 1);
      for (const auto &f : Receive(p, 1))  // from the stack: out
        to_wire += Send(p, {f}, 0);
    }
  });
  int ping = Ping("", "10.78.0.2");
  int ping_back = Ping("vns3", "10.78.0.1");
  stop = true;
  bridge.join();
  EXPECT_EQ(ping, 0);
  EXPECT_EQ(ping_back, 0);
  EXPECT_GE(to_wire.load(), 4);
  EXPECT_GE(to_host.load(), 4);

  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("vpc0", &st), 0);
  EXPECT_GE(st.rx_packets, 8u);
  EXPECT_GE(st.tx_packets, 8u);
  p.Close();

  // Released: the stack talks to the device directly again.
  EXPECT_EQ(Stats("vpc0", &st), ENXIO);
  EXPECT_EQ(Ping("", "10.78.0.2"), 0);
}

TEST(NicTest, HostStackOnASwitch) {
  // vale4 joins the namespace's wire and the root namespace's stack of the
  // same device, as a NIC port and a host port.
  uint32_t idx = 0;
  ASSERT_EQ(Attach("vale4:vpc0", NR_REG_NIC_SW, &idx), 0);
  EXPECT_TRUE(Listed("vale4:vpc0"));
  EXPECT_TRUE(Listed("vale4:vpc0^"));
  EXPECT_EQ(Sh("ip neigh flush dev vpc0"), 0);
  EXPECT_EQ(Ping("", "10.78.0.2"), 0);
  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("vale4:vpc0^", &st), 0);
  EXPECT_GE(st.tx_packets, 2u);
  EXPECT_GE(st.rx_packets, 2u);
  ASSERT_EQ(Detach("vale4:vpc0"), 0);
  EXPECT_FALSE(Listed("vale4:vpc0^"));
  // The stack has the device back.
  EXPECT_EQ(Ping("", "10.78.0.2"), 0);
}

TEST(NicTest, DetachUnderTraffic) {
  ASSERT_EQ(Attach("vale3:vpb0"), 0);
  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    while (!stop)
      Sh("ip netns exec vns1 busybox ping -c 30 -i 0.01 -W 1 10.77.0.2");
  });
  for (int i = 0; i < 10; i++) {
    ASSERT_EQ(Attach("vale3:vpa0"), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(Detach("vale3:vpa0"), 0);
  }
  stop = true;
  traffic.join();
  ASSERT_EQ(Attach("vale3:vpa0"), 0);
  EXPECT_EQ(Ping("vns1", "10.77.0.2"), 0);
  EXPECT_EQ(Detach("vale3:vpa0"), 0);
  EXPECT_EQ(Detach("vale3:vpb0"), 0);
}

// TCP from the namespaces' stacks comes as large (GSO) frames with partial
// checksums: the switch segments and checksums them in software.
TEST(NicTest, TcpAcrossAValeSwitch) {
  ASSERT_EQ(Attach("vale5:vpa0"), 0);
  ASSERT_EQ(Attach("vale5:vpb0"), 0);
  ASSERT_EQ(system("head -c 400000 /dev/urandom > /tmp/vale_tcp_send"), 0);
  // The receiver's stdin stays open (busybox nc stops at EOF on either
  // side); it runs in the background, alone in vns2 with its sleep.
  ASSERT_EQ(system("ip netns exec vns2 sh -c '(sleep 60 | busybox nc -l -p "
                   "5001 > /tmp/vale_tcp_recv) >/dev/null 2>&1 &'"),
            0);
  int client = 1;
  for (int tries = 0; tries < 10 && client; tries++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    client = system("timeout 60 ip netns exec vns1 busybox nc 10.77.0.2 5001 "
                    "< /tmp/vale_tcp_send >/dev/null 2>&1");
  }
  Sh("ip netns pids vns2 | xargs -r kill");
  EXPECT_EQ(client, 0);
  EXPECT_EQ(Sh("cmp /tmp/vale_tcp_send /tmp/vale_tcp_recv"), 0);
  ptnetmap_port_stats st;
  ASSERT_EQ(Stats("vale5:vpb0", &st), 0);
  EXPECT_GE(st.rx_bytes, 400000u);
  EXPECT_EQ(st.tx_drop_xmit, 0u);
  EXPECT_EQ(Detach("vale5:vpa0"), 0);
  EXPECT_EQ(Detach("vale5:vpb0"), 0);
}

TEST(NicTest, DeviceRemovedWhileHeld) {
  ASSERT_EQ(IpBatch("link add vpd0 type veth peer name vpd1\n"
                    "link add vpe0 type veth peer name vpe1\n"
                    "link set vpd0 up\nlink set vpe0 up\n"),
            0);
  ASSERT_EQ(Attach("vale2:vpd0"), 0);
  Port p;
  ASSERT_EQ(p.Open("vpe0"), 0);
  // Must not hang: the switch and the port let go of their devices.
  ASSERT_EQ(IpBatch("link del vpd0\nlink del vpe0\n"), 0);
  EXPECT_EQ(Detach("vale2:vpd0"), 0);
  // The rings stay usable; what is sent has nowhere to go.
  EXPECT_EQ(Send(p, {Frame(kBroadcast, MacOf(1), 1)}), 1u);
  EXPECT_TRUE(Receive(p).empty());
  ptnetmap_port_stats st;
  EXPECT_EQ(Stats("vpe0", &st), ENXIO);  // no device of that name any more
  p.Close();
}

}  // namespace
