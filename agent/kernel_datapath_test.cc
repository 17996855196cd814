// The kernel datapath without the module: what an operator sees when the
// module is missing, and that requests reach the device and fail cleanly.
// Behaviour with the module loaded is covered by the lab tests (lab.agent).
#include "agent/kernel_datapath.h"

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>
#include <net/ptnetmap_ctl.h>

#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

// What the requests look like on the wire, without the module: while a test
// sets `fake_netmap`, NIOCCTRL ioctls from the datapath (linked into this
// binary) go to it instead of the kernel; every other ioctl goes through.
namespace {
std::function<int(nmreq_header&)> fake_netmap;
}  // namespace

extern "C" int ioctl(int fd, unsigned long request, ...) __THROW {
  va_list args;
  va_start(args, request);
  void* arg = va_arg(args, void*);
  va_end(args);
  if (fake_netmap && request == NIOCCTRL) {
    const int err = fake_netmap(*static_cast<nmreq_header*>(arg));
    if (err == 0) return 0;
    errno = err;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_ioctl, fd, request, arg));
}

namespace ptnetmap::agent {
namespace {

using ::testing::HasSubstr;

// Routes NIOCCTRL to `handler` for the life of the object.
class FakeNetmap {
 public:
  explicit FakeNetmap(std::function<int(nmreq_header&)> handler) {
    fake_netmap = std::move(handler);
  }
  ~FakeNetmap() { fake_netmap = nullptr; }
};

std::string NameOf(const nmreq_header& h) {
  return std::string(h.nr_name, strnlen(h.nr_name, sizeof(h.nr_name)));
}

TEST(KernelDatapathTest, MissingDeviceSaysToLoadTheModule) {
  auto datapath = KernelDatapath::Open("/dev/ptnetmap-test-no-such-device");
  ASSERT_FALSE(datapath.ok());
  EXPECT_EQ(datapath.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(datapath.status().message(), HasSubstr("module not loaded: modprobe ptnetmap"));
}

TEST(KernelDatapathTest, DeviceThatIsNotNetmapGivesUnimplemented) {
  // /dev/null accepts open() but no netmap ioctl: ENOTTY.
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok()) << datapath.status();
  absl::Status s = (*datapath)->CreatePort("vale0", "p1");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("/dev/null"));
  EXPECT_EQ((*datapath)->List().status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ((*datapath)->ReadCounters("vale0:p1").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(KernelDatapathTest, CountersAreReadWithPortStatsGet) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  nmreq_header seen{};
  FakeNetmap fake([&](nmreq_header& h) {
    seen = h;
    ptnetmap_port_stats* st = reinterpret_cast<ptnetmap_port_stats*>(h.nr_body);
    st->rx_packets = 10;
    st->rx_bytes = 600;
    st->tx_packets = 20;
    st->tx_bytes = 1200;
    st->rx_drop_ring_full = 3;
    return 0;
  });
  absl::StatusOr<PortCounters> c = (*datapath)->ReadCounters("vale0:p1");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(seen.nr_version, NETMAP_API);
  EXPECT_EQ(seen.nr_reqtype, PTNETMAP_REQ_PORT_STATS_GET);
  EXPECT_EQ(NameOf(seen), "vale0:p1");
  EXPECT_NE(seen.nr_body, 0u);
  EXPECT_EQ(seen.nr_options, 0u);
  EXPECT_EQ(c->rx_packets, 10u);
  EXPECT_EQ(c->rx_bytes, 600u);
  EXPECT_EQ(c->tx_packets, 20u);
  EXPECT_EQ(c->tx_bytes, 1200u);
  EXPECT_EQ(c->drops.ring_full, 3u);
  EXPECT_EQ(c->kicks, 0u);
}

TEST(KernelDatapathTest, CounterErrorsNameThePort) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  int answer = ENXIO;
  FakeNetmap fake([&](nmreq_header&) { return answer; });
  absl::StatusOr<PortCounters> gone = (*datapath)->ReadCounters("vale0:gone");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gone.status().message(), HasSubstr("vale0:gone"));
  answer = EINVAL;  // also what a module without the request says
  absl::StatusOr<PortCounters> old = (*datapath)->ReadCounters("vale0:p1");
  EXPECT_EQ(old.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(old.status().message(), HasSubstr("PTNETMAP_REQ_PORT_STATS_GET"));
  // Too long for nr_name: refused before the kernel sees it.
  answer = 0;
  absl::StatusOr<PortCounters> longname =
      (*datapath)->ReadCounters("vale0:" + std::string(NETMAP_REQ_IFNAMSIZ, 'x'));
  EXPECT_EQ(longname.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KernelDatapathTest, KernelDropCausesFoldIntoTheApiOnesOnce) {
  ptnetmap_port_stats k{};
  k.rx_drop_ring_full = 1;
  k.rx_drop_inactive = 2;
  k.rx_drop_bad_buf = 4;
  k.rx_drop_oversize = 8;
  k.tx_drop_bad_buf = 16;
  k.tx_drop_bad_len = 32;
  k.tx_drop_frag = 64;
  k.tx_drop_xmit = 128;
  const PortCounters c = PortCountersFromKernel(k);
  EXPECT_EQ(c.drops.ring_full, 1u);
  EXPECT_EQ(c.drops.bad_descriptor, 4u + 16 + 32 + 64);
  EXPECT_EQ(c.drops.oversize, 8u);
  EXPECT_EQ(c.drops.no_destination, 2u + 128);
  EXPECT_EQ(c.drops.ring_full + c.drops.bad_descriptor + c.drops.oversize +
                c.drops.no_destination,
            255u);
}

TEST(KernelDatapathTest, PersistentPortsUseSwitchQualifiedNames) {
  // ptnetmap's NEWIF makes "valeX:p" on its switch directly; DELIF frees it.
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  std::vector<std::pair<uint16_t, std::string>> requests;
  std::vector<bool> bodies;
  FakeNetmap fake([&](nmreq_header& h) {
    requests.emplace_back(h.nr_reqtype, NameOf(h));
    bodies.push_back(h.nr_body != 0);
    return 0;
  });
  ASSERT_TRUE((*datapath)->CreatePort("vale0", "p1").ok());
  ASSERT_TRUE((*datapath)->DeletePort("vale0", "p1").ok());
  using R = std::pair<uint16_t, std::string>;
  EXPECT_THAT(requests, ::testing::ElementsAre(R{NETMAP_REQ_VALE_NEWIF, "vale0:p1"},
                                               R{NETMAP_REQ_VALE_DELIF, "vale0:p1"}));
  EXPECT_THAT(bodies, ::testing::ElementsAre(true, false));
}

TEST(KernelDatapathTest, PassthroughIsNotAvailableYet) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  auto vm = (*datapath)->CreateVmAttachment({.name = "vm1", .switch_name = "vale0", .rings = 1});
  EXPECT_EQ(vm.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(vm.status().message(), HasSubstr("passthrough attachments are not available"));
}

}  // namespace
}  // namespace ptnetmap::agent
