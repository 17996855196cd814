// The kernel datapath without the module: what an operator sees when the
// module is missing, and that requests reach the device and fail cleanly.
// Behaviour with the module loaded is covered by the lab tests (lab.agent).
#include "agent/kernel_datapath.h"

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>
#include <net/ptnetmap_ctl.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qemu/fake_netmap.h"

namespace ptnetmap::agent {
namespace {

using ::testing::HasSubstr;
using ::ptnetmap::test_support::FakeNetmap;
using ::ptnetmap::test_support::NameOf;

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

// The passthrough requests as a module with PT_ATTACH/INFO/FDS/DETACH
// answers them: attachments by name, with the memfd and eventfds they were
// given; PT_FDS installs duplicates of those in the caller.
class FakePassthroughKernel {
 public:
  struct Attachment {
    uint32_t flags = 0;
    std::vector<std::string> ports;
    UniqueFd memfd;
    uint64_t shm_size = 0;
    std::vector<std::vector<UniqueFd>> kicks, irqs;  // per peer
  };

  FakePassthroughKernel() : fake_([this](nmreq_header& h) { return Handle(h); }) {}

  std::map<std::string, Attachment> attachments;
  std::vector<std::pair<uint16_t, std::string>> requests;
  bool has_fds = true;  // a module with PT_FDS

 private:
  static int Dup(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

  int Handle(nmreq_header& h) {
    const std::string name = NameOf(h);
    requests.emplace_back(h.nr_reqtype, name);
    switch (h.nr_reqtype) {
      case PTNETMAP_REQ_PT_ATTACH: {
        if (attachments.contains(name)) return EEXIST;
        auto* a = reinterpret_cast<ptnetmap_pt_attach*>(h.nr_body);
        Attachment att;
        att.flags = a->flags;
        att.memfd.reset(Dup(a->memfd));
        struct stat st {};
        ::fstat(a->memfd, &st);
        att.shm_size = st.st_size;
        auto* peers = reinterpret_cast<ptnetmap_pt_peer*>(a->peers);
        for (uint32_t p = 0; p < a->num_peers; ++p) {
          att.ports.emplace_back(peers[p].port);
          att.kicks.emplace_back();
          att.irqs.emplace_back();
          for (uint32_t v = 0; v < peers[p].num_vectors; ++v) {
            att.kicks.back().emplace_back(Dup(peers[p].kick_fds[v]));
            att.irqs.back().emplace_back(Dup(peers[p].irq_fds[v]));
          }
        }
        attachments.emplace(name, std::move(att));
        return 0;
      }
      case PTNETMAP_REQ_PT_INFO: {
        auto* info = reinterpret_cast<ptnetmap_pt_info*>(h.nr_body);
        auto it = attachments.begin();
        if (name.empty()) {
          if (info->index >= attachments.size()) return ENOENT;
          std::advance(it, info->index);
        } else {
          it = attachments.find(name);
          if (it == attachments.end()) return ENOENT;
        }
        std::strcpy(info->name, it->first.c_str());
        info->num_peers = static_cast<uint32_t>(it->second.ports.size());
        info->flags = it->second.flags;
        if (info->peer) {
          std::strcpy(info->port, it->second.ports[info->peer - 1].c_str());
          info->tx_packets = 100 + info->peer;
          info->kicks = 7;
        }
        return 0;
      }
      case PTNETMAP_REQ_PT_FDS: {
        if (!has_fds) return EOPNOTSUPP;
        auto it = attachments.find(name);
        if (it == attachments.end()) return ENOENT;
        auto* f = reinterpret_cast<ptnetmap_pt_fds*>(h.nr_body);
        if (f->peer == 0 || f->peer > it->second.ports.size()) return EINVAL;
        const size_t p = f->peer - 1;
        f->memfd = Dup(it->second.memfd.get());
        f->shm_size = it->second.shm_size;
        f->flags = it->second.flags;
        f->num_vectors = static_cast<uint32_t>(it->second.kicks[p].size());
        for (uint32_t v = 0; v < PTNETMAP_PT_MAX_VECTORS; ++v) {
          f->kick_fds[v] = v < f->num_vectors ? Dup(it->second.kicks[p][v].get()) : -1;
          f->irq_fds[v] = v < f->num_vectors ? Dup(it->second.irqs[p][v].get()) : -1;
        }
        return 0;
      }
      case PTNETMAP_REQ_PT_DETACH:
        return attachments.erase(name) ? 0 : ENOENT;
      case PTNETMAP_REQ_PORT_STATS_GET:
        return ENXIO;  // pipe ends have no port counters
      case NETMAP_REQ_VALE_LIST:
        return ENOENT;
      default:
        return EOPNOTSUPP;
    }
  }

  FakeNetmap fake_;
};

VmAttachmentSpec UntrustedSpec(std::string name) {
  return {.name = std::move(name), .trust = Trust::kUntrusted, .switch_name = "vale0",
          .rings = 1, .peer_id = 1, .region_bytes = 1 << 20};
}

VmAttachmentSpec TrustedSpec(std::string name, PipeEnd end) {
  return {.name = std::move(name), .trust = Trust::kTrusted, .pipe_name = "pp1",
          .pipe_end = end, .rings = 1, .peer_id = static_cast<uint16_t>(end == PipeEnd::kMaster ? 1 : 2),
          .region_bytes = 1 << 20};
}

ino_t InodeOf(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return st.st_ino;
}

TEST(KernelDatapathTest, UntrustedVmGetsAPrivateAttachmentOfItsOwnPort) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  FakePassthroughKernel kernel;
  auto vm = (*datapath)->CreateVmAttachment(UntrustedSpec("vm1"));
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_TRUE(kernel.attachments.contains("vm1"));
  const auto& att = kernel.attachments.at("vm1");
  EXPECT_EQ(att.flags, 0u);
  EXPECT_THAT(att.ports, ::testing::ElementsAre("vale0:vm1"));
  EXPECT_EQ(att.shm_size, 1u << 20);
  EXPECT_EQ(vm->netmap_name, "vale0:vm1");
  EXPECT_EQ(vm->peer_id, 1);
  EXPECT_EQ(vm->kick_fds.size(), 3u);
  EXPECT_EQ(InodeOf(vm->region.get()), InodeOf(att.memfd.get()));

  // A second create of the same name is ALREADY_EXISTS (the manager adopts).
  EXPECT_EQ((*datapath)->CreateVmAttachment(UntrustedSpec("vm1")).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto adopted = (*datapath)->AdoptVmAttachment(UntrustedSpec("vm1"));
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(InodeOf(adopted->region.get()), InodeOf(att.memfd.get()));

  // Its counters come from the attachment (the guest's view) too.
  auto counters = (*datapath)->ReadCounters("vale0:vm1");
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(counters->tx_packets, 101u);
  EXPECT_EQ(counters->kicks, 7u);

  ASSERT_TRUE((*datapath)->DestroyVmAttachment(UntrustedSpec("vm1")).ok());
  EXPECT_TRUE(kernel.attachments.empty());
  EXPECT_EQ((*datapath)->DestroyVmAttachment(UntrustedSpec("vm1")).code(),
            absl::StatusCode::kNotFound);
}

TEST(KernelDatapathTest, BothEndsOfAPipeShareOneAttachmentUntilTheLastGoes) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  FakePassthroughKernel kernel;
  auto a = (*datapath)->CreateVmAttachment(TrustedSpec("a", PipeEnd::kSlave));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_THAT(kernel.attachments, ::testing::SizeIs(1));
  const auto& att = kernel.attachments.at("pipe:pp1");
  EXPECT_EQ(att.flags, PTNETMAP_PT_SHARED);
  // Peer 1 is the master end, peer 2 the slave: a took the slave.
  EXPECT_THAT(att.ports, ::testing::ElementsAre("pp1{0", "pp1}0"));
  EXPECT_EQ(a->peer_id, 2);
  EXPECT_EQ(a->netmap_name, "pp1}0");

  auto b = (*datapath)->CreateVmAttachment(TrustedSpec("b", PipeEnd::kMaster));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->peer_id, 1);
  EXPECT_EQ(b->netmap_name, "pp1{0");
  EXPECT_THAT(kernel.attachments, ::testing::SizeIs(1));  // no second attachment
  EXPECT_EQ(InodeOf(a->region.get()), InodeOf(b->region.get()));
  EXPECT_EQ((*datapath)->CreateVmAttachment(TrustedSpec("c", PipeEnd::kMaster)).status().code(),
            absl::StatusCode::kAlreadyExists);

  absl::StatusOr<DatapathInventory> inventory = (*datapath)->List();
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_THAT(inventory->vm_pipes, ::testing::ElementsAre("pp1"));
  EXPECT_TRUE(inventory->vm_attachments.empty());

  ASSERT_TRUE((*datapath)->DestroyVmAttachment(TrustedSpec("a", PipeEnd::kSlave)).ok());
  EXPECT_THAT(kernel.attachments, ::testing::SizeIs(1)) << "b still uses the pipe";
  ASSERT_TRUE((*datapath)->DestroyVmAttachment(TrustedSpec("b", PipeEnd::kMaster)).ok());
  EXPECT_TRUE(kernel.attachments.empty());
}

TEST(KernelDatapathTest, ARestartedAgentAdoptsThroughPtFds) {
  FakePassthroughKernel kernel;
  {
    auto first = KernelDatapath::Open("/dev/null");
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*first)->CreateVmAttachment(TrustedSpec("a", PipeEnd::kMaster)).ok());
    ASSERT_TRUE((*first)->CreateVmAttachment(TrustedSpec("b", PipeEnd::kSlave)).ok());
    ASSERT_TRUE((*first)->CreateVmAttachment(UntrustedSpec("vm1")).ok());
  }  // the agent dies; the kernel keeps everything
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  absl::StatusOr<DatapathInventory> inventory = (*datapath)->List();
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_THAT(inventory->vm_attachments, ::testing::ElementsAre("vm1"));
  EXPECT_THAT(inventory->vm_pipes, ::testing::ElementsAre("pp1"));

  kernel.requests.clear();
  auto b = (*datapath)->AdoptVmAttachment(TrustedSpec("b", PipeEnd::kSlave));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->peer_id, 2);
  EXPECT_EQ(InodeOf(b->region.get()), InodeOf(kernel.attachments.at("pipe:pp1").memfd.get()));
  using R = std::pair<uint16_t, std::string>;
  EXPECT_THAT(kernel.requests, ::testing::ElementsAre(R{PTNETMAP_REQ_PT_FDS, "pipe:pp1"},
                                                      R{PTNETMAP_REQ_PT_INFO, "pipe:pp1"}));
  auto a = (*datapath)->AdoptVmAttachment(TrustedSpec("a", PipeEnd::kMaster));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->peer_id, 1);

  // Held again by this process: the pipe's attachment goes with the last end.
  ASSERT_TRUE((*datapath)->DestroyVmAttachment(TrustedSpec("b", PipeEnd::kSlave)).ok());
  EXPECT_TRUE(kernel.attachments.contains("pipe:pp1"));
  ASSERT_TRUE((*datapath)->DestroyVmAttachment(TrustedSpec("a", PipeEnd::kMaster)).ok());
  EXPECT_FALSE(kernel.attachments.contains("pipe:pp1"));
}

TEST(KernelDatapathTest, AdoptFailsClearlyOnAModuleWithoutPtFdsOrOtherRings) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  FakePassthroughKernel kernel;
  ASSERT_TRUE((*datapath)->CreateVmAttachment(UntrustedSpec("vm1")).ok());
  VmAttachmentSpec more_rings = UntrustedSpec("vm1");
  more_rings.rings = 2;
  absl::Status s = (*datapath)->AdoptVmAttachment(more_rings).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("3 vectors"));
  kernel.has_fds = false;
  s = (*datapath)->AdoptVmAttachment(UntrustedSpec("vm1")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ((*datapath)->AdoptVmAttachment(UntrustedSpec("nope")).status().code(),
            absl::StatusCode::kUnimplemented);
  kernel.has_fds = true;
  EXPECT_EQ((*datapath)->AdoptVmAttachment(UntrustedSpec("nope")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(KernelDatapathTest, AdoptRefusesAnAttachmentDrivingAnotherPort) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  FakePassthroughKernel kernel;
  ASSERT_TRUE((*datapath)->CreateVmAttachment(UntrustedSpec("vm1")).ok());
  // The agent's database says vm1 is on vale1; the kernel's vm1 is on vale0.
  VmAttachmentSpec moved = UntrustedSpec("vm1");
  moved.switch_name = "vale1";
  absl::Status s = (*datapath)->AdoptVmAttachment(moved).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("drives port vale0:vm1"));
  EXPECT_THAT(s.message(), HasSubstr("configured for vale1:vm1"));
  EXPECT_TRUE(kernel.attachments.contains("vm1"));  // left alone
  EXPECT_TRUE((*datapath)->AdoptVmAttachment(UntrustedSpec("vm1")).ok());
}

TEST(KernelDatapathTest, PipesNeedNoKernelObject) {
  auto datapath = KernelDatapath::Open("/dev/null");
  ASSERT_TRUE(datapath.ok());
  int calls = 0;
  FakeNetmap fake([&](nmreq_header&) { return ++calls, EINVAL; });
  EXPECT_TRUE((*datapath)->CreatePipe("pp1").ok());
  EXPECT_TRUE((*datapath)->DeletePipe("pp1").ok());
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ptnetmap::agent
