// SPDX-License-Identifier: GPL-2.0
// REGISTER, PORT_INFO_GET, POOLS_INFO_GET, mmap and EXTMEM in the lab VM:
// every mode and flag, the memory layout, region isolation, and the errors
// the netmap ABI implies.
#include <sys/mman.h>

#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "nm_test.h"

namespace {

using nmtest::Port;
using nmtest::RegisterRequest;
using nmtest::Request;
using nmtest::UniqueName;

class Fd {
 public:
  Fd() : fd_(nmtest::OpenNetmap()) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int Register(int fd, std::string_view name, uint32_t mode, uint64_t flags = 0,
             uint16_t ringid = 0) {
  RegisterRequest req(NETMAP_REQ_REGISTER, name);
  req.body.nr_mode = mode;
  req.body.nr_flags = flags;
  req.body.nr_ringid = ringid;
  return req.Send(fd);
}

// A pipe end with two ring pairs, for the ring-selection modes.
auto TwoRings = [](RegisterRequest &r) {
  r.body.nr_tx_rings = 2;
  r.body.nr_rx_rings = 2;
  r.body.nr_tx_slots = 32;
  r.body.nr_rx_slots = 32;
};

TEST(RegisterTest, ModesAndFlagsAreChecked) {
  std::string name = UniqueName("reg") + "{1";
  Port keep;
  ASSERT_EQ(keep.Open(name, TwoRings), 0);
  struct Case {
    uint32_t mode;
    uint64_t flags;
    uint16_t ringid;
    int err;
  } cases[] = {
      {NR_REG_PIPE_MASTER, 0, 0, EINVAL},
      {NR_REG_PIPE_SLAVE, 0, 0, EINVAL},
      {9, 0, 0, EINVAL},
      {0xffffffff, 0, 0, EINVAL},
      {NR_REG_SW, 0, 0, EINVAL},       // a pipe has no host rings
      {NR_REG_ONE_SW, 0, 0, EINVAL},
      {NR_REG_ONE_NIC, 0, 2, EINVAL},  // ring 2 of 2
      {NR_REG_ALL_NIC, 0x1, 0, EINVAL},          // unknown flag
      {NR_REG_ALL_NIC, 1ull << 40, 0, EINVAL},   // unknown flag
      {NR_REG_ALL_NIC, NR_TX_RINGS_ONLY | NR_RX_RINGS_ONLY, 0, EINVAL},
      {NR_REG_ALL_NIC, NR_MONITOR_TX, 0, EOPNOTSUPP},
      {NR_REG_ALL_NIC, NR_MONITOR_RX | NR_ZCOPY_MON, 0, EOPNOTSUPP},
      {NR_REG_DEFAULT, 0, 0, 0},
      {NR_REG_ALL_NIC, NR_NO_TX_POLL | NR_DO_RX_POLL, 0, 0},
      {NR_REG_NIC_SW, 0, 0, 0},
      {NR_REG_ONE_NIC, 0, 1, 0},
      {NR_REG_ALL_NIC, NR_TX_RINGS_ONLY, 0, 0},
      {NR_REG_ALL_NIC, NR_RX_RINGS_ONLY | NR_ACCEPT_VNET_HDR, 0, 0},
  };
  for (const Case &c : cases) {
    Fd fd;
    EXPECT_EQ(Register(fd.get(), name, c.mode, c.flags, c.ringid), c.err)
        << "mode " << c.mode << " flags " << c.flags << " ring " << c.ringid;
  }
}

TEST(RegisterTest, SecondRegisterOnAFileIsBusy) {
  std::string name = UniqueName("reg");
  Fd fd;
  ASSERT_EQ(Register(fd.get(), name + "{1", NR_REG_ALL_NIC), 0);
  EXPECT_EQ(Register(fd.get(), name + "{1", NR_REG_ALL_NIC), EBUSY);
  EXPECT_EQ(Register(fd.get(), name + "}1", NR_REG_ALL_NIC), EBUSY);
}

TEST(RegisterTest, UnknownPortsAndBadNames) {
  Fd fd;
  EXPECT_EQ(Register(fd.get(), "nosuchport0", NR_REG_ALL_NIC), ENXIO);
  EXPECT_EQ(Register(fd.get(), "", NR_REG_ALL_NIC), EINVAL);
  EXPECT_EQ(Register(fd.get(), "with space{1", NR_REG_ALL_NIC), EINVAL);
  EXPECT_EQ(Register(fd.get(), "ctl\x01{1", NR_REG_ALL_NIC), EINVAL);
}

TEST(RegisterTest, ExclusiveRingsAreExclusive) {
  std::string name = UniqueName("reg") + "{x";
  Port keep;
  ASSERT_EQ(keep.Open(name, [](RegisterRequest &r) {
    TwoRings(r);
    r.body.nr_mode = NR_REG_ONE_NIC;
    r.body.nr_ringid = 0;
    r.body.nr_flags = NR_EXCLUSIVE;
  }), 0);
  Fd a, b, c, d;
  EXPECT_EQ(Register(a.get(), name, NR_REG_ONE_NIC, 0, 0), EBUSY);
  EXPECT_EQ(Register(b.get(), name, NR_REG_ALL_NIC), EBUSY);
  EXPECT_EQ(Register(c.get(), name, NR_REG_ONE_NIC, 0, 1), 0);
  // Ring 1 is shared now: an exclusive claim on it fails too.
  EXPECT_EQ(Register(d.get(), name, NR_REG_ONE_NIC, NR_EXCLUSIVE, 1), EBUSY);
  keep.Close();
  Fd e;
  EXPECT_EQ(Register(e.get(), name, NR_REG_ONE_NIC, NR_EXCLUSIVE, 0), 0);
}

// Only the bound rings are synced: ring 1 of a ONE_NIC registration.
TEST(RegisterTest, OneNicSyncsOnlyItsRing) {
  std::string name = UniqueName("reg");
  Port all, one, slave;
  ASSERT_EQ(all.Open(name + "{o", TwoRings), 0);
  ASSERT_EQ(one.Open(name + "{o", [](RegisterRequest &r) {
    r.body.nr_mode = NR_REG_ONE_NIC;
    r.body.nr_ringid = 1;
  }), 0);
  ASSERT_EQ(slave.Open(name + "}o"), 0);
  for (unsigned i = 0; i < 2; i++) {
    netmap_ring *tx = one.tx(i);
    tx->slot[0].len = 60;
    tx->head = tx->cur = 1;
  }
  ASSERT_EQ(one.TxSync(), 0);
  ASSERT_EQ(slave.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(slave.rx(0)), 0u);
  EXPECT_EQ(nm_ring_space(slave.rx(1)), 1u);
  // The ALL_NIC file sends ring 0's packet.
  ASSERT_EQ(all.TxSync(), 0);
  ASSERT_EQ(slave.RxSync(), 0);
  EXPECT_EQ(nm_ring_space(slave.rx(0)), 1u);
}

TEST(RegisterTest, TxOnlyRegistrationLeavesRxRingsAlone) {
  std::string name = UniqueName("reg");
  Port master, slave;
  ASSERT_EQ(master.Open(name + "{t"), 0);
  ASSERT_EQ(slave.Open(name + "}t", [](RegisterRequest &r) {
    r.body.nr_flags = NR_TX_RINGS_ONLY;
  }), 0);
  netmap_ring *tx = master.tx();
  tx->slot[0].len = 60;
  tx->head = tx->cur = 1;
  ASSERT_EQ(master.TxSync(), 0);
  ASSERT_EQ(slave.RxSync(), 0);
  EXPECT_EQ(slave.rx()->tail, 0u);
}

TEST(RegisterTest, NullModeNeedsARegionAndGivesHostRings) {
  Fd fd;
  EXPECT_EQ(Register(fd.get(), "nullport", NR_REG_NULL), EINVAL);
  {
    RegisterRequest req(NETMAP_REQ_REGISTER, "nullport");
    req.body.nr_mode = NR_REG_NULL;
    req.body.nr_mem_id = 999;
    EXPECT_EQ(req.Send(fd.get()), EINVAL);
  }
  Port p;
  ASSERT_EQ(p.Open("nullhost", [](RegisterRequest &r) {
    r.body.nr_mode = NR_REG_NULL;
    r.body.nr_mem_id = 1;
    r.body.nr_host_tx_rings = 1;
    r.body.nr_host_rx_rings = 2;
  }), 0);
  EXPECT_EQ(p.reg().nr_host_tx_rings, 1);
  EXPECT_EQ(p.reg().nr_host_rx_rings, 2);
  netmap_if *nifp = p.nifp();
  EXPECT_STREQ(nifp->ni_name, "null:nullhost");
  EXPECT_EQ(nifp->ni_version, static_cast<uint32_t>(NETMAP_API));
  EXPECT_EQ(nifp->ni_host_tx_rings, 1u);
  EXPECT_EQ(nifp->ni_host_rx_rings, 2u);
  // Order: NIC TX, host TX, NIC RX, host RX.
  netmap_ring *host_tx = NETMAP_TXRING(nifp, 1);
  EXPECT_EQ(host_tx->dir, NR_TX);
  EXPECT_EQ(host_tx->ringid, 1);
  netmap_ring *host_rx = NETMAP_RXRING(nifp, 2);
  EXPECT_EQ(host_rx->dir, NR_RX);
  EXPECT_EQ(host_rx->ringid, 2);
}

TEST(RegisterTest, ExtraBuffersAreAValidList) {
  std::string name = UniqueName("reg");
  Port p;
  ASSERT_EQ(p.Open(name + "{e", [](RegisterRequest &r) {
    r.body.nr_extra_bufs = 100;
  }), 0);
  ASSERT_EQ(p.reg().nr_extra_bufs, 100u);
  std::set<uint32_t> in_rings;
  for (netmap_ring *r : {p.tx(), p.rx()})
    for (uint32_t i = 0; i < r->num_slots; i++) in_rings.insert(r->slot[i].buf_idx);
  std::set<uint32_t> extra;
  netmap_ring *ring = p.tx();
  for (uint32_t b = p.nifp()->ni_bufs_head; b; b = *(uint32_t *)NETMAP_BUF(ring, b)) {
    ASSERT_GE(b, 2u);
    ASSERT_TRUE(extra.insert(b).second) << "loop at " << b;
    EXPECT_FALSE(in_rings.count(b));
    ASSERT_LE(extra.size(), 100u);
  }
  EXPECT_EQ(extra.size(), 100u);
  // A list wrecked by the application is not trusted on close.
  *(uint32_t *)NETMAP_BUF(ring, p.nifp()->ni_bufs_head) = p.nifp()->ni_bufs_head;
}

TEST(RegisterTest, PortInfoMatchesRegister) {
  std::string name = UniqueName("reg");
  Port p;
  ASSERT_EQ(p.Open(name + "{i", TwoRings), 0);
  Fd fd;
  Request<nmreq_port_info_get> info(NETMAP_REQ_PORT_INFO_GET, name + "{i");
  ASSERT_EQ(info.Send(fd.get()), 0);
  EXPECT_EQ(info.body.nr_memsize, p.reg().nr_memsize);
  EXPECT_EQ(info.body.nr_tx_slots, 32u);
  EXPECT_EQ(info.body.nr_rx_slots, 32u);
  EXPECT_EQ(info.body.nr_tx_rings, 2);
  EXPECT_EQ(info.body.nr_rx_rings, 2);
  EXPECT_EQ(info.body.nr_host_tx_rings, 0);
  EXPECT_EQ(info.body.nr_mem_id, p.reg().nr_mem_id);

  Request<nmreq_port_info_get> bad(NETMAP_REQ_PORT_INFO_GET, "nosuchport0");
  EXPECT_EQ(bad.Send(fd.get()), ENXIO);
  Request<nmreq_port_info_get> empty(NETMAP_REQ_PORT_INFO_GET, "");
  EXPECT_EQ(empty.Send(fd.get()), EINVAL);
}

TEST(RegisterTest, PoolsInfoDescribesTheRegion) {
  std::string name = UniqueName("reg");
  Port p;
  ASSERT_EQ(p.Open(name + "{p"), 0);
  Fd fd;
  Request<nmreq_pools_info> by_name(NETMAP_REQ_POOLS_INFO_GET, name + "{p");
  ASSERT_EQ(by_name.Send(fd.get()), 0);
  const nmreq_pools_info &i = by_name.body;
  EXPECT_EQ(i.nr_mem_id, p.reg().nr_mem_id);
  EXPECT_EQ(i.nr_memsize, p.reg().nr_memsize);
  EXPECT_EQ(i.nr_buf_pool_objsize, 2048u);
  EXPECT_LT(i.nr_if_pool_offset, i.nr_ring_pool_offset);
  EXPECT_LT(i.nr_ring_pool_offset, i.nr_buf_pool_offset);
  EXPECT_LE(i.nr_buf_pool_offset +
                uint64_t(i.nr_buf_pool_objtotal) * i.nr_buf_pool_objsize,
            i.nr_memsize);
  // Rings and the netmap_if lie in their pools.
  netmap_ring *tx = p.tx();
  uint64_t ring_off = (char *)tx - (char *)p.mem();
  EXPECT_GE(ring_off, i.nr_ring_pool_offset);
  EXPECT_LT(ring_off, i.nr_buf_pool_offset);
  EXPECT_EQ(ring_off + tx->buf_ofs, i.nr_buf_pool_offset);
  EXPECT_GE(p.reg().nr_offset, i.nr_if_pool_offset);
  EXPECT_LT(p.reg().nr_offset, i.nr_ring_pool_offset);

  Request<nmreq_pools_info> by_id(NETMAP_REQ_POOLS_INFO_GET, "");
  by_id.body.nr_mem_id = p.reg().nr_mem_id;
  ASSERT_EQ(by_id.Send(fd.get()), 0);
  EXPECT_EQ(by_id.body.nr_memsize, i.nr_memsize);

  Request<nmreq_pools_info> global(NETMAP_REQ_POOLS_INFO_GET, "");
  ASSERT_EQ(global.Send(fd.get()), 0);
  EXPECT_EQ(global.body.nr_mem_id, 1);

  Request<nmreq_pools_info> none(NETMAP_REQ_POOLS_INFO_GET, "");
  none.body.nr_mem_id = 4242;
  EXPECT_EQ(none.Send(fd.get()), EINVAL);
}

TEST(RegisterTest, MemIdMustMatchThePort) {
  std::string name = UniqueName("reg");
  Port p;
  ASSERT_EQ(p.Open(name + "{m"), 0);
  Fd fd;
  RegisterRequest req(NETMAP_REQ_REGISTER, name + "}m");
  req.body.nr_mem_id = 1;
  EXPECT_EQ(req.Send(fd.get()), EINVAL);
  // A new parent may be put in the global region on purpose.
  Port g;
  ASSERT_EQ(g.Open(UniqueName("glob") + "{1",
                   [](RegisterRequest &r) { r.body.nr_mem_id = 1; }),
            0);
  EXPECT_EQ(g.reg().nr_mem_id, 1);
  EXPECT_EQ(g.nifp()->ni_flags & NI_PRIV_MEM, 0u);
}

TEST(RegisterTest, MmapIsCheckedAndIsolated) {
  Fd fd;
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, ENXIO);

  std::string a = UniqueName("iso"), b = UniqueName("iso");
  Port pa, pb;
  ASSERT_EQ(pa.Open(a + "{1"), 0);
  ASSERT_EQ(pb.Open(b + "{1"), 0);
  EXPECT_NE(pa.reg().nr_mem_id, pb.reg().nr_mem_id);
  size_t size = pa.reg().nr_memsize;
  // Nothing beyond the region, and never a private copy.
  EXPECT_EQ(mmap(nullptr, size + 4096, PROT_READ, MAP_SHARED, pa.fd(), 0),
            MAP_FAILED);
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, pa.fd(), size),
            MAP_FAILED);
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, pa.fd(), 0),
            MAP_FAILED);
  // The two regions are different memory.
  char *ma = (char *)pa.mem(), *mb = (char *)pb.mem();
  ma[size - 1] = 'a';
  mb[size - 1] = 'b';
  EXPECT_EQ(ma[size - 1], 'a');
  // A partial mapping at an offset sees the same pages.
  void *part = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, pa.fd(), size - 8192);
  ASSERT_NE(part, MAP_FAILED);
  EXPECT_EQ(((char *)part)[8191], 'a');
  munmap(part, 8192);
}

// A new region shows nothing but what its ports wrote: every buffer no ring
// holds is zero.
TEST(RegisterTest, NewRegionLeaksNothing) {
  std::string name = UniqueName("zero");
  Port m, s;
  ASSERT_EQ(m.Open(name + "{1"), 0);
  ASSERT_EQ(s.Open(name + "}1"), 0);
  Fd fd;
  Request<nmreq_pools_info> info(NETMAP_REQ_POOLS_INFO_GET, name + "{1");
  ASSERT_EQ(info.Send(fd.get()), 0);
  std::set<uint32_t> used;
  for (Port *p : {&m, &s})
    for (netmap_ring *r : {p->tx(), p->rx()})
      for (uint32_t i = 0; i < r->num_slots; i++) used.insert(r->slot[i].buf_idx);
  const char *bufs = static_cast<const char *>(m.mem()) + info.body.nr_buf_pool_offset;
  const uint32_t size = info.body.nr_buf_pool_objsize;
  uint32_t nonzero = 0;
  for (uint32_t b = 0; b < info.body.nr_buf_pool_objtotal; b++) {
    if (used.count(b)) continue;
    const uint64_t *w = reinterpret_cast<const uint64_t *>(bufs + uint64_t(b) * size);
    for (uint32_t k = 0; k < size / 8; k++)
      if (w[k]) {
        nonzero++;
        break;
      }
  }
  EXPECT_EQ(nonzero, 0u);
}

TEST(RegisterTest, MappingOutlivesTheFile) {
  std::string name = UniqueName("live");
  int fd = nmtest::OpenNetmap();
  RegisterRequest req(NETMAP_REQ_REGISTER, name + "{1");
  ASSERT_EQ(req.Send(fd), 0);
  char *mem = (char *)mmap(nullptr, req.body.nr_memsize, PROT_READ | PROT_WRITE,
                           MAP_SHARED, fd, 0);
  ASSERT_NE(mem, MAP_FAILED);
  close(fd);
  mem[req.body.nr_memsize - 1] = 1;  // still mapped, region still alive
  EXPECT_EQ(munmap(mem, req.body.nr_memsize), 0);
}

// EXTMEM: the application's own memory becomes the region.
class ExtmemTest : public ::testing::Test {
 protected:
  static constexpr size_t kSize = 16 << 20;
  void SetUp() override {
    mem_ = mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem_, MAP_FAILED);
    opt_.nro_opt.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
    opt_.nro_opt.nro_size = sizeof(opt_);
    opt_.nro_usrptr = reinterpret_cast<uintptr_t>(mem_);
    opt_.nro_info.nr_memsize = kSize;
  }
  void TearDown() override { munmap(mem_, kSize); }
  void *mem_ = nullptr;
  nmreq_opt_extmem opt_{};
};

TEST_F(ExtmemTest, PipeRunsInApplicationMemory) {
  std::string name = UniqueName("ext");
  Fd fm, fs;
  RegisterRequest rm(NETMAP_REQ_REGISTER, name + "{1");
  rm.AddOption(&opt_.nro_opt);
  ASSERT_EQ(rm.Send(fm.get()), 0);
  EXPECT_EQ(opt_.nro_opt.nro_status, 0u);
  EXPECT_GT(rm.body.nr_mem_id, 1);
  EXPECT_EQ(opt_.nro_info.nr_mem_id, rm.body.nr_mem_id);
  EXPECT_EQ(opt_.nro_info.nr_memsize, rm.body.nr_memsize);
  EXPECT_LE(rm.body.nr_memsize, kSize);
  EXPECT_GT(opt_.nro_info.nr_buf_pool_objtotal, 1000u);

  RegisterRequest rs(NETMAP_REQ_REGISTER, name + "}1");
  ASSERT_EQ(rs.Send(fs.get()), 0);
  EXPECT_EQ(rs.body.nr_mem_id, rm.body.nr_mem_id);

  // Both ends are reached through our own pointer, no mmap of /dev/netmap.
  netmap_if *mif = NETMAP_IF(mem_, rm.body.nr_offset);
  netmap_if *sif = NETMAP_IF(mem_, rs.body.nr_offset);
  netmap_ring *tx = NETMAP_TXRING(mif, 0);
  strcpy(NETMAP_BUF(tx, tx->slot[0].buf_idx), "in my memory");
  tx->slot[0].len = 13;
  tx->head = tx->cur = 1;
  ASSERT_EQ(ioctl(fm.get(), NIOCTXSYNC), 0);
  ASSERT_EQ(ioctl(fs.get(), NIOCRXSYNC), 0);
  netmap_ring *rx = NETMAP_RXRING(sif, 0);
  ASSERT_EQ(nm_ring_space(rx), 1u);
  EXPECT_STREQ(NETMAP_BUF(rx, rx->slot[0].buf_idx), "in my memory");

  // The same region is also reachable through mmap of the file.
  void *m = mmap(nullptr, rm.body.nr_memsize, PROT_READ, MAP_SHARED, fm.get(), 0);
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_EQ(memcmp(m, mem_, 4096), 0);
  munmap(m, rm.body.nr_memsize);
}

TEST_F(ExtmemTest, BadExtmemIsRefused) {
  std::string name = UniqueName("ext");
  struct Case {
    const char *what;
    void (*mutate)(nmreq_opt_extmem &);
    int err;
  } cases[] = {
      {"unaligned", [](nmreq_opt_extmem &o) { o.nro_usrptr += 8; }, EINVAL},
      {"null", [](nmreq_opt_extmem &o) { o.nro_usrptr = 0; }, EINVAL},
      {"too small", [](nmreq_opt_extmem &o) { o.nro_info.nr_memsize = 100; }, EINVAL},
      {"huge", [](nmreq_opt_extmem &o) { o.nro_info.nr_memsize = 1ull << 40; }, EINVAL},
      {"unmapped", [](nmreq_opt_extmem &o) { o.nro_usrptr = 0x1000; }, EFAULT},
      {"bad buf size", [](nmreq_opt_extmem &o) { o.nro_info.nr_buf_pool_objsize = 7; }, EINVAL},
      {"bad ring size", [](nmreq_opt_extmem &o) { o.nro_info.nr_ring_pool_objsize = 100; }, EINVAL},
      {"too many rings", [](nmreq_opt_extmem &o) { o.nro_info.nr_ring_pool_objtotal = 100000; }, EINVAL},
  };
  for (const Case &c : cases) {
    nmreq_opt_extmem opt = opt_;
    c.mutate(opt);
    Fd fd;
    RegisterRequest req(NETMAP_REQ_REGISTER, name + "{1");
    req.AddOption(&opt.nro_opt);
    EXPECT_EQ(req.Send(fd.get()), c.err) << c.what;
    EXPECT_EQ(opt.nro_opt.nro_status, static_cast<uint32_t>(c.err)) << c.what;
  }
  // Wrong option size.
  nmreq_opt_extmem opt = opt_;
  opt.nro_opt.nro_size = sizeof(opt) - 8;
  Fd fd;
  RegisterRequest req(NETMAP_REQ_REGISTER, name + "{1");
  req.AddOption(&opt.nro_opt);
  EXPECT_EQ(req.Send(fd.get()), EINVAL);
}

// A mapping can be the last user of an EXTMEM registration: unmapping it
// releases the file, the region and the pinned pages cleanly.
TEST_F(ExtmemTest, LastReferenceInAMappingIsFreedCleanly) {
  std::string name = UniqueName("ext");
  int fd = nmtest::OpenNetmap();
  RegisterRequest req(NETMAP_REQ_REGISTER, name + "{1");
  req.AddOption(&opt_.nro_opt);
  ASSERT_EQ(req.Send(fd), 0);
  void *m = mmap(nullptr, req.body.nr_memsize, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  close(fd);  // the file stays open through the mapping
  EXPECT_EQ(munmap(m, req.body.nr_memsize), 0);
}

TEST_F(ExtmemTest, ExistingPortKeepsItsRegion) {
  std::string name = UniqueName("ext");
  Port p;
  ASSERT_EQ(p.Open(name + "{1"), 0);
  Fd fd;
  RegisterRequest req(NETMAP_REQ_REGISTER, name + "}1");
  req.AddOption(&opt_.nro_opt);
  EXPECT_EQ(req.Send(fd.get()), EINVAL);
}

}  // namespace

namespace {

// Applications from before API 14: NIOCREGIF and NIOCGINFO with struct nmreq.
TEST(LegacyTest, RegifAndGinfo) {
  std::string name = UniqueName("lg");  // short: legacy names have 16 bytes
  Fd fd;
  nmreq nmr{};
  snprintf(nmr.nr_name, sizeof(nmr.nr_name), "%s{1", name.c_str());
  nmr.nr_version = 11;
  nmr.nr_tx_slots = 256;
  nmr.nr_rx_slots = 256;
  nmr.nr_arg3 = 3;
  ASSERT_EQ(ioctl(fd.get(), NIOCREGIF, &nmr), 0) << strerror(errno);
  EXPECT_GT(nmr.nr_memsize, 0u);
  EXPECT_EQ(nmr.nr_tx_slots, 256u);
  EXPECT_EQ(nmr.nr_arg3, 3u);
  EXPECT_GT(nmr.nr_arg2, 1);
  void *mem = mmap(nullptr, nmr.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd.get(), 0);
  ASSERT_NE(mem, MAP_FAILED);
  netmap_if *nifp = NETMAP_IF(mem, nmr.nr_offset);
  EXPECT_EQ(NETMAP_TXRING(nifp, 0)->num_slots, 256u);
  EXPECT_EQ(ioctl(fd.get(), NIOCREGIF, &nmr), -1);
  EXPECT_EQ(errno, EBUSY);

  Fd other;
  nmreq info{};
  snprintf(info.nr_name, sizeof(info.nr_name), "%s{1", name.c_str());
  info.nr_version = NETMAP_API;
  ASSERT_EQ(ioctl(other.get(), NIOCGINFO, &info), 0);
  EXPECT_EQ(info.nr_memsize, nmr.nr_memsize);
  EXPECT_EQ(info.nr_arg2, nmr.nr_arg2);
  munmap(mem, nmr.nr_memsize);

  nmreq bad{};
  strcpy(bad.nr_name, "x{1");
  bad.nr_version = 10;
  EXPECT_EQ(ioctl(other.get(), NIOCREGIF, &bad), -1);
  EXPECT_EQ(errno, EINVAL);
  memset(bad.nr_name, 'x', sizeof(bad.nr_name));
  bad.nr_version = NETMAP_API;
  EXPECT_EQ(ioctl(other.get(), NIOCREGIF, &bad), -1);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace
