// SPDX-License-Identifier: BSD-2-Clause
// The nmport_* API without a kernel: the REGISTER request nmport_parse
// builds, error reporting, the options chain, extmem files, and the mapping
// side (ring intervals, one mapping per region, inject) over a fake region.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnetmap.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" int libnetmap_c_api_compiles(void);

namespace {

std::vector<std::string> errors;

void CaptureError(nmctx*, const char* msg) { errors.emplace_back(msg); }

class NmportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    errors.clear();
    old_cb_ = nmctx_set_error(nmctx_get(), CaptureError);
  }
  void TearDown() override { nmctx_set_error(nmctx_get(), old_cb_); }

  nmctx_error_cb old_cb_ = nullptr;
};

TEST_F(NmportTest, HeaderIsUsableFromC) { EXPECT_EQ(libnetmap_c_api_compiles(), 1); }

TEST_F(NmportTest, PrepareBuildsTheRegisterRequest) {
  nmport_d* d = nmport_prepare("netmap:pp{1-0/xT@3@conf:slots=256,rings=1");
  ASSERT_NE(d, nullptr) << (errors.empty() ? "" : errors.back());
  EXPECT_EQ(d->hdr.nr_version, NETMAP_API);
  EXPECT_EQ(d->hdr.nr_reqtype, NETMAP_REQ_REGISTER);
  EXPECT_STREQ(d->hdr.nr_name, "pp{1");
  EXPECT_EQ(d->hdr.nr_body, reinterpret_cast<uintptr_t>(&d->reg));
  EXPECT_EQ(d->hdr.nr_options, 0u);
  EXPECT_EQ(d->reg.nr_mode, static_cast<uint32_t>(NR_REG_ONE_NIC));
  EXPECT_EQ(d->reg.nr_ringid, 0);
  EXPECT_EQ(d->reg.nr_flags, static_cast<uint64_t>(NR_EXCLUSIVE | NR_TX_RINGS_ONLY));
  EXPECT_EQ(d->reg.nr_mem_id, 3);
  EXPECT_EQ(d->reg.nr_tx_slots, 256u);
  EXPECT_EQ(d->reg.nr_rx_rings, 1);
  EXPECT_EQ(d->fd, -1);
  EXPECT_EQ(d->register_done, 0);
  EXPECT_EQ(d->ctx, nmctx_get());
  EXPECT_TRUE(errors.empty());
  nmport_undo_prepare(d);
}

TEST_F(NmportTest, BadPortspecIsEinvalWithAMessage) {
  errno = 0;
  EXPECT_EQ(nmport_prepare("netmap:pp{"), nullptr);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("pipe id"), std::string::npos) << errors[0];

  errno = 0;
  EXPECT_EQ(nmport_open("eth0/q"), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(errors.size(), 2u);
}

TEST_F(NmportTest, FailedParseLeavesTheDescriptorUnchanged) {
  nmport_d* d = nmport_prepare("vale0:a-1");
  ASSERT_NE(d, nullptr);
  nmreq_header hdr = d->hdr;
  nmreq_register reg = d->reg;
  EXPECT_EQ(nmport_parse(d, "vale0:"), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(std::memcmp(&hdr, &d->hdr, sizeof(hdr)), 0);
  EXPECT_EQ(std::memcmp(&reg, &d->reg, sizeof(reg)), 0);
  // A second successful parse replaces the first.
  EXPECT_EQ(nmport_parse(d, "vale0:b^"), 0);
  EXPECT_STREQ(d->hdr.nr_name, "vale0:b");
  EXPECT_EQ(d->reg.nr_mode, static_cast<uint32_t>(NR_REG_SW));
  nmport_undo_prepare(d);
}

TEST_F(NmportTest, DefaultErrorCallbackIsRestoredByNull) {
  nmctx* ctx = nmctx_get();
  nmctx_error_cb mine = nmctx_set_error(ctx, nullptr);
  EXPECT_EQ(mine, CaptureError);
  EXPECT_NE(ctx->error, nullptr);
  nmctx_set_error(ctx, CaptureError);
  nmctx_ferror(ctx, "x=%d", 42);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "x=42");
}

TEST_F(NmportTest, OptionsChain) {
  nmreq_header h{};
  nmreq_option a{}, b{};
  a.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
  b.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
  nmreq_push_option(&h, &a);
  nmreq_push_option(&h, &b);
  EXPECT_EQ(nmreq_find_option(&h, NETMAP_REQ_OPT_EXTMEM), &a);
  EXPECT_EQ(nmreq_find_option(&h, NETMAP_REQ_OPT_OFFSETS), &b);
  EXPECT_EQ(nmreq_find_option(&h, NETMAP_REQ_OPT_CSB), nullptr);
  nmreq_remove_option(&h, &a);
  EXPECT_EQ(nmreq_find_option(&h, NETMAP_REQ_OPT_EXTMEM), nullptr);
  EXPECT_EQ(h.nr_options, reinterpret_cast<uintptr_t>(&b));
  nmreq_remove_option(&h, &b);
  EXPECT_EQ(h.nr_options, 0u);
}

TEST_F(NmportTest, OffsetOptionIsChained) {
  nmport_d* d = nmport_prepare("pp{1@offset:initial=64,bits=16");
  ASSERT_NE(d, nullptr);
  auto* opt =
      reinterpret_cast<nmreq_opt_offsets*>(nmreq_find_option(&d->hdr, NETMAP_REQ_OPT_OFFSETS));
  ASSERT_NE(opt, nullptr);
  EXPECT_EQ(opt->nro_opt.nro_size, sizeof(nmreq_opt_offsets));
  EXPECT_EQ(opt->nro_initial_offset, 64u);
  EXPECT_EQ(opt->nro_max_offset, 64u);
  EXPECT_EQ(opt->nro_offset_bits, 16u);
  EXPECT_EQ(nmport_offset(d, 1, 1, 0, 0), -1);  // only one
  nmport_undo_prepare(d);
}

class TempFile {
 public:
  explicit TempFile(size_t size) {
    char path[] = "/tmp/libnetmap_testXXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
    path_ = path;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(NmportTest, ExtmemMapsTheFileAndPassesTheOption) {
  TempFile file(1 << 20);
  std::string spec = "vale0:e@extmem:file=" + file.path() + ",buf-num=100,buf-size=2048";
  nmport_d* d = nmport_prepare(spec.c_str());
  ASSERT_NE(d, nullptr) << (errors.empty() ? "" : errors.back());
  ASSERT_NE(d->extmem, nullptr);
  EXPECT_EQ(nmreq_find_option(&d->hdr, NETMAP_REQ_OPT_EXTMEM), &d->extmem->nro_opt);
  EXPECT_EQ(d->extmem->nro_opt.nro_size, sizeof(nmreq_opt_extmem));
  EXPECT_NE(d->extmem->nro_usrptr, 0u);
  EXPECT_EQ(d->extmem->nro_info.nr_memsize, 1u << 20);
  EXPECT_EQ(d->extmem->nro_info.nr_buf_pool_objtotal, 100u);
  EXPECT_EQ(d->extmem->nro_info.nr_buf_pool_objsize, 2048u);
  EXPECT_EQ(nmport_extmem_getinfo(d), &d->extmem->nro_info);
  // The mapping is the file's: writes land in it.
  std::memset(reinterpret_cast<void*>(d->extmem->nro_usrptr), 0xab, 16);
  EXPECT_EQ(nmport_extmem(d, nullptr, 0), -1);  // only one extmem
  nmport_undo_prepare(d);
}

TEST_F(NmportTest, ExtmemMissingFileFails) {
  errno = 0;
  EXPECT_EQ(nmport_prepare("vale0:e@extmem=/nonexistent/ptnetmap-extmem"), nullptr);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent/ptnetmap-extmem"), std::string::npos);
}

TEST_F(NmportTest, RegisterWithoutTheModuleFailsCleanly) {
  if (access(NETMAP_DEVICE, F_OK) == 0) GTEST_SKIP() << NETMAP_DEVICE " exists here";
  errno = 0;
  EXPECT_EQ(nmport_open("netmap:pp{1"), nullptr);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(NETMAP_DEVICE), std::string::npos);
}

TEST_F(NmportTest, MmapBeforeRegisterFails) {
  nmport_d* d = nmport_prepare("pp{1");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(nmport_mmap(d), -1);
  EXPECT_EQ(errno, EINVAL);
  nmport_undo_prepare(d);
}

// A memory region as the kernel would lay it out (netmap_if, rings, buffers)
// in a memfd, standing in for /dev/netmap: nmport_mmap maps the "port" from it.
class FakeRegion {
 public:
  static constexpr uint32_t kSlots = 8;
  static constexpr uint32_t kBufSize = 2048;

  FakeRegion(uint32_t nic_rings, uint32_t host_rings) {
    uint32_t rings = 2 * (nic_rings + host_rings);
    size_t if_size = sizeof(netmap_if) + rings * sizeof(ssize_t);
    size_t ring_size = sizeof(netmap_ring) + kSlots * sizeof(netmap_slot);
    size_t rings_at = 4096;
    size_t bufs_at = rings_at + rings * ring_size;
    size_ = bufs_at + (rings * kSlots + 2) * kBufSize;
    size_ = (size_ + 4095) & ~size_t{4095};
    fd_ = memfd_create("fake_netmap", MFD_CLOEXEC);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(ftruncate(fd_, static_cast<off_t>(size_)), 0);
    char* base =
        static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    EXPECT_NE(base, MAP_FAILED);
    auto* nifp = reinterpret_cast<netmap_if*>(base);
    std::strcpy(nifp->ni_name, "fake");
    nifp->ni_version = NETMAP_API;
    nifp->ni_tx_rings = nifp->ni_rx_rings = nic_rings;
    nifp->ni_host_tx_rings = nifp->ni_host_rx_rings = host_rings;
    EXPECT_LE(if_size, rings_at);
    for (uint32_t r = 0; r < rings; ++r) {
      char* ring_addr = base + rings_at + r * ring_size;
      nifp->ring_ofs[r] = ring_addr - base;
      auto* ring = reinterpret_cast<netmap_ring*>(ring_addr);
      ring->num_slots = kSlots;
      ring->nr_buf_size = kBufSize;
      ring->buf_ofs = static_cast<int64_t>(bufs_at) - (ring_addr - base);
      ring->dir = r < rings / 2 ? NR_TX : NR_RX;
      ring->tail = ring->dir == NR_TX ? kSlots - 1 : 0;
      for (uint32_t s = 0; s < kSlots; ++s) {
        ring->slot[s].buf_idx = 2 + r * kSlots + s;  // 0 and 1 are reserved
      }
    }
    munmap(base, size_);
  }
  ~FakeRegion() { close(fd_); }

  // Makes d look registered on this region, as nmport_register would.
  void Register(nmport_d* d, uint16_t mem_id) const {
    d->fd = dup(fd_);
    d->register_done = 1;
    d->reg.nr_memsize = size_;
    d->reg.nr_offset = 0;
    d->reg.nr_mem_id = mem_id;
  }

 private:
  int fd_ = -1;
  size_t size_ = 0;
};

struct RingCase {
  const char* spec;
  int first_tx, last_tx, first_rx, last_rx;  // last < first: none
};

TEST_F(NmportTest, MmapBindsTheRingsOfTheMode) {
  FakeRegion region(/*nic_rings=*/4, /*host_rings=*/1);
  const RingCase cases[] = {
      {"eth0", 0, 3, 0, 3},     {"eth0-2", 2, 2, 2, 2}, {"eth0^", 4, 4, 4, 4},
      {"eth0^0", 4, 4, 4, 4},   {"eth0*", 0, 4, 0, 4},  {"eth0/R", 1, 0, 0, 3},
      {"eth0-1/T", 1, 1, 1, 0},
  };
  for (const RingCase& c : cases) {
    SCOPED_TRACE(c.spec);
    nmport_d* d = nmport_prepare(c.spec);
    ASSERT_NE(d, nullptr);
    region.Register(d, 9);
    ASSERT_EQ(nmport_mmap(d), 0) << (errors.empty() ? "" : errors.back());
    EXPECT_STREQ(d->nifp->ni_name, "fake");
    EXPECT_EQ(d->first_tx_ring, c.first_tx);
    EXPECT_EQ(d->last_tx_ring, c.last_tx);
    EXPECT_EQ(d->first_rx_ring, c.first_rx);
    EXPECT_EQ(d->last_rx_ring, c.last_rx);
    nmport_close(d);
  }
}

TEST_F(NmportTest, PortsOfOneRegionShareOneMapping) {
  FakeRegion region(1, 0);
  FakeRegion other(1, 0);
  nmport_d* a = nmport_prepare("x{1");
  nmport_d* b = nmport_prepare("x}1");
  nmport_d* c = nmport_prepare("y{1");
  ASSERT_TRUE(a && b && c);
  region.Register(a, 4);
  region.Register(b, 4);
  other.Register(c, 5);
  ASSERT_EQ(nmport_mmap(a), 0);
  ASSERT_EQ(nmport_mmap(b), 0);
  ASSERT_EQ(nmport_mmap(c), 0);
  EXPECT_EQ(a->mem, b->mem);
  EXPECT_NE(a->mem, c->mem);
  EXPECT_EQ(a->mem->refcount, 2);
  EXPECT_EQ(a->mem->mem_id, 4);
  EXPECT_EQ(c->mem->refcount, 1);
  nmport_close(a);
  // b still uses the mapping after a is gone.
  EXPECT_EQ(b->mem->refcount, 1);
  EXPECT_STREQ(b->nifp->ni_name, "fake");
  nmport_close(b);
  nmport_close(c);
  EXPECT_EQ(nmctx_get()->mem_descs, nullptr);
}

TEST_F(NmportTest, InjectFillsTxSlotsAndPendingCountsThem) {
  FakeRegion region(2, 0);
  nmport_d* d = nmport_prepare("pp{1");
  ASSERT_NE(d, nullptr);
  region.Register(d, 1);
  ASSERT_EQ(nmport_mmap(d), 0);
  EXPECT_EQ(nmport_pending(d), 0u);

  const char pkt[60] = "hello";
  // Each ring has kSlots - 1 free slots; inject fills ring 0, then ring 1.
  const int capacity = 2 * (FakeRegion::kSlots - 1);
  for (int i = 0; i < capacity; ++i) {
    ASSERT_EQ(nmport_inject(d, pkt, sizeof(pkt)), static_cast<int>(sizeof(pkt))) << i;
  }
  EXPECT_EQ(nmport_inject(d, pkt, sizeof(pkt)), 0);  // full
  EXPECT_EQ(nmport_pending(d), static_cast<uint32_t>(capacity));

  netmap_ring* ring = NETMAP_TXRING(d->nifp, 0);
  EXPECT_EQ(ring->head, FakeRegion::kSlots - 1);
  EXPECT_EQ(ring->slot[0].len, sizeof(pkt));
  EXPECT_STREQ(NETMAP_BUF(ring, ring->slot[0].buf_idx), "hello");
  // Too big for a buffer.
  std::vector<char> big(FakeRegion::kBufSize + 1);
  // Pretend the kernel sent everything queued on ring 0.
  ring->tail = (ring->head + FakeRegion::kSlots - 1) % FakeRegion::kSlots;
  EXPECT_EQ(nmport_pending(d), FakeRegion::kSlots - 1);  // ring 1 only
  EXPECT_EQ(nmport_inject(d, big.data(), big.size()), 0);
  EXPECT_EQ(nmport_inject(d, pkt, sizeof(pkt)), static_cast<int>(sizeof(pkt)));
  nmport_close(d);
}

TEST_F(NmportTest, CloneCopiesTheRequestWithoutOptions) {
  nmport_d* d = nmport_prepare("pp{1-0@conf=2@offset=8");
  ASSERT_NE(d, nullptr);
  nmport_d* c = nmport_clone(d);
  ASSERT_NE(c, nullptr);
  EXPECT_STREQ(c->hdr.nr_name, "pp{1");
  EXPECT_EQ(c->hdr.nr_body, reinterpret_cast<uintptr_t>(&c->reg));
  EXPECT_EQ(c->hdr.nr_options, 0u);
  EXPECT_EQ(c->reg.nr_mode, d->reg.nr_mode);
  EXPECT_EQ(c->reg.nr_tx_rings, 2);
  nmport_undo_prepare(c);
  nmport_undo_prepare(d);
}

}  // namespace
