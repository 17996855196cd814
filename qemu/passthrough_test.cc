// The passthrough requests without the module: NIOCCTRL ioctls issued by the
// library (linked into this binary) go to a fake kernel that checks what a
// real one would see. The real module is exercised by lab.agent_vm and
// e2e.vm_vale.
#include "qemu/passthrough.h"

// <net/netmap.h> wants these first, as every netmap application does.
#include <stdint.h>
#include <net/if.h>
#include <net/netmap.h>
#include <net/ptnetmap_ctl.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qemu/fake_netmap.h"

namespace ptnetmap::ivshmem {
namespace {

using ::testing::HasSubstr;
using ::ptnetmap::test_support::FakeNetmap;
using ::ptnetmap::test_support::NameOf;

bool IsEventfd(int fd) {
  char link[64] = {};
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  return ::readlink(proc.c_str(), link, sizeof(link) - 1) > 0 &&
         std::string(link) == "anon_inode:[eventfd]";
}

TEST(PassthroughTest, AttachSendsOneSharedMemfdAndEventfdsPerPeer) {
  nmreq_header seen{};
  ptnetmap_pt_attach attach{};
  std::vector<ptnetmap_pt_peer> peers;
  uint64_t memfd_size = 0;
  FakeNetmap fake([&](nmreq_header& h) {
    seen = h;
    attach = *reinterpret_cast<ptnetmap_pt_attach*>(h.nr_body);
    auto* p = reinterpret_cast<ptnetmap_pt_peer*>(attach.peers);
    peers.assign(p, p + attach.num_peers);
    struct stat st {};
    ::fstat(attach.memfd, &st);
    memfd_size = st.st_size;
    // The kernel checks the mapping is of the memfd; here it must be live.
    std::memset(reinterpret_cast<void*>(attach.shm_addr), 0x5a, 4096);
    return 0;
  });
  auto made = Attach(3, {.name = "pipe:pp1",
                         .peers = {{.port = "pp1{0", .mac = MacFor("pp1{0")},
                                   {.port = "pp1}0", .mac = MacFor("pp1}0")}},
                         .shared = true, .rings = 2, .region_bytes = 1 << 20});
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(seen.nr_reqtype, PTNETMAP_REQ_PT_ATTACH);
  EXPECT_EQ(NameOf(seen), "pipe:pp1");
  EXPECT_EQ(attach.flags, PTNETMAP_PT_SHARED);
  EXPECT_EQ(attach.num_tx_rings, 2);
  EXPECT_EQ(attach.num_rx_rings, 2);
  EXPECT_EQ(memfd_size, 1u << 20);
  EXPECT_EQ(attach.shm_addr % 4096, 0u);
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_STREQ(peers[0].port, "pp1{0");
  EXPECT_STREQ(peers[1].port, "pp1}0");
  EXPECT_EQ(peers[0].num_vectors, 5u);  // mailbox + 2 TX + 2 RX
  EXPECT_EQ(peers[0].kick_fds[5], -1);
  EXPECT_EQ(std::memcmp(peers[1].mac, MacFor("pp1}0").data(), 6), 0);

  ASSERT_EQ(made->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const PeerFds& p = (*made)[i];
    EXPECT_EQ(p.peer_id, i + 1);
    EXPECT_EQ(p.region_bytes, 1u << 20);
    ASSERT_EQ(p.kick_fds.size(), 5u);
    ASSERT_EQ(p.irq_fds.size(), 5u);
    // Handed out are the very eventfds the kernel was given.
    EXPECT_EQ(p.kick_fds[0].get(), peers[i].kick_fds[0]);
    EXPECT_EQ(p.irq_fds[4].get(), peers[i].irq_fds[4]);
    EXPECT_TRUE(IsEventfd(p.kick_fds[4].get()));
  }
  // Both peers have the same memory, sealed at its size.
  struct stat a {}, b {};
  ::fstat((*made)[0].region.get(), &a);
  ::fstat((*made)[1].region.get(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_NE(::ftruncate((*made)[0].region.get(), 4096), 0);
  char byte = 0;
  ASSERT_EQ(::pread((*made)[1].region.get(), &byte, 1, 100), 1);
  EXPECT_EQ(byte, 0x5a);
}

TEST(PassthroughTest, AttachRefusesWhatTheKernelOrQemuWould) {
  int calls = 0;
  FakeNetmap fake([&](nmreq_header&) { return ++calls, 0; });
  EXPECT_EQ(Attach(3, {.name = "a", .peers = {{.port = "vale0:a"}}, .region_bytes = 3 << 20})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Attach(3, {.name = "a", .peers = {}, .region_bytes = 1 << 20}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Attach(3, {.name = "a", .peers = {{.port = std::string(64, 'p')}},
                       .region_bytes = 1 << 20})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 0);
}

TEST(PassthroughTest, KernelErrorsBecomeStatusCodes) {
  int answer = EEXIST;
  FakeNetmap fake([&](nmreq_header&) { return answer; });
  auto made = Attach(3, {.name = "vm1", .peers = {{.port = "vale0:vm1"}}, .region_bytes = 1 << 20});
  EXPECT_EQ(made.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(made.status().message(), HasSubstr("vm1"));
  answer = EOPNOTSUPP;
  absl::StatusOr<PeerFds> fds = FdsOf(3, "vm1", 1);
  EXPECT_EQ(fds.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(fds.status().message(), HasSubstr("update the ptnetmap module"));
  answer = ENOENT;
  EXPECT_EQ(Detach(3, "vm1").code(), absl::StatusCode::kNotFound);
}

TEST(PassthroughTest, FdsOfOwnsWhatTheKernelInstalled) {
  int memfd = -1;
  std::vector<int> installed;
  FakeNetmap fake([&](nmreq_header& h) {
    EXPECT_EQ(h.nr_reqtype, PTNETMAP_REQ_PT_FDS);
    auto* f = reinterpret_cast<ptnetmap_pt_fds*>(h.nr_body);
    EXPECT_EQ(f->peer, 2u);
    f->memfd = memfd = ::memfd_create("k", MFD_CLOEXEC);
    EXPECT_EQ(::ftruncate(memfd, 65536), 0);
    f->shm_size = 65536;
    f->num_vectors = 3;
    for (int v = 0; v < PTNETMAP_PT_MAX_VECTORS; ++v) {
      f->kick_fds[v] = v < 3 ? ::eventfd(0, EFD_CLOEXEC) : -1;
      f->irq_fds[v] = v < 3 ? ::eventfd(0, EFD_CLOEXEC) : -1;
      if (v < 3) installed.insert(installed.end(), {f->kick_fds[v], f->irq_fds[v]});
    }
    return 0;
  });
  {
    absl::StatusOr<PeerFds> fds = FdsOf(3, "pipe:pp1", 2);
    ASSERT_TRUE(fds.ok()) << fds.status();
    EXPECT_EQ(fds->peer_id, 2);
    EXPECT_EQ(fds->region.get(), memfd);
    EXPECT_EQ(fds->region_bytes, 65536u);
    EXPECT_EQ(fds->kick_fds.size(), 3u);
    EXPECT_EQ(fds->irq_fds.size(), 3u);
  }
  // Gone with the PeerFds: nothing leaks.
  EXPECT_EQ(::fcntl(memfd, F_GETFD), -1);
  for (int fd : installed) EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << fd;
}

TEST(PassthroughTest, ListWalksIndexesUntilENOENT) {
  std::vector<std::string> names = {"vm1", "pipe:pp1"};
  FakeNetmap fake([&](nmreq_header& h) {
    auto* info = reinterpret_cast<ptnetmap_pt_info*>(h.nr_body);
    EXPECT_EQ(NameOf(h), "");
    if (info->index >= names.size()) return ENOENT;
    std::strcpy(info->name, names[info->index].c_str());
    return 0;
  });
  absl::StatusOr<std::vector<std::string>> list = ListAttachments(3);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, names);
}

TEST(PassthroughTest, MacsAreStableLocalUnicastAndDistinct) {
  const Mac a = MacFor("vale0:vm1");
  EXPECT_EQ(a, MacFor("vale0:vm1"));
  EXPECT_NE(a, MacFor("vale0:vm2"));
  EXPECT_EQ(a[0], 0x02);
  absl::StatusOr<Mac> parsed = ParseMac(MacString(a));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, a);
  EXPECT_FALSE(ParseMac("02:50:54:4e:4d").ok());
  EXPECT_FALSE(ParseMac("02:50:54:4e:4d:zz").ok());
  EXPECT_EQ(VectorsForRings(1), 3u);
}

}  // namespace
}  // namespace ptnetmap::ivshmem
