// SPDX-License-Identifier: BSD-2-Clause
// libnetmap against the kernel module, inside the lab VM: opening pipe ends,
// sharing one mapping per region, ring intervals of the register modes,
// @conf geometry, inject/pending, and errors reaching the callback.
#include <gtest/gtest.h>
#include <libnetmap.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::vector<std::string> errors;
void CaptureError(nmctx*, const char* msg) { errors.emplace_back(msg); }

class NmportLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    errors.clear();
    old_ = nmctx_set_error(nmctx_get(), CaptureError);
  }
  void TearDown() override { nmctx_set_error(nmctx_get(), old_); }

  static std::string LastError() { return errors.empty() ? "" : errors.back(); }

  nmctx_error_cb old_ = nullptr;
};

TEST_F(NmportLabTest, PipeEndsShareOneMapping) {
  nmport_d* a = nmport_open("netmap:lt{1");
  ASSERT_NE(a, nullptr) << LastError();
  nmport_d* b = nmport_open("netmap:lt}1");
  ASSERT_NE(b, nullptr) << LastError();
  EXPECT_GE(a->fd, 0);
  EXPECT_EQ(a->reg.nr_mem_id, b->reg.nr_mem_id);
  EXPECT_EQ(a->mem, b->mem);
  EXPECT_EQ(a->mem->refcount, 2);
  EXPECT_EQ(a->mem->size, a->reg.nr_memsize);
  EXPECT_EQ(a->first_tx_ring, 0);
  EXPECT_EQ(a->last_tx_ring, a->nifp->ni_tx_rings - 1);
  EXPECT_EQ(b->last_rx_ring, b->nifp->ni_rx_rings - 1);
  nmport_close(a);
  nmport_close(b);
}

TEST_F(NmportLabTest, InjectReachesThePeer) {
  nmport_d* a = nmport_open("netmap:lt{2");
  nmport_d* b = nmport_open("netmap:lt}2");
  ASSERT_TRUE(a && b) << LastError();
  char pkt[60];
  for (size_t i = 0; i < sizeof(pkt); ++i) pkt[i] = static_cast<char>(i);
  ASSERT_EQ(nmport_inject(a, pkt, sizeof(pkt)), static_cast<int>(sizeof(pkt)));
  EXPECT_EQ(nmport_pending(a), 1u);  // not synced yet
  ASSERT_EQ(ioctl(a->fd, NIOCTXSYNC, nullptr), 0) << strerror(errno);
  EXPECT_EQ(nmport_pending(a), 0u);  // the peer had room: all sent
  ASSERT_EQ(ioctl(b->fd, NIOCRXSYNC, nullptr), 0) << strerror(errno);
  netmap_ring* rx = NETMAP_RXRING(b->nifp, b->first_rx_ring);
  ASSERT_EQ(nm_ring_space(rx), 1u);
  netmap_slot* slot = &rx->slot[rx->cur];
  EXPECT_EQ(slot->len, sizeof(pkt));
  EXPECT_EQ(std::memcmp(NETMAP_BUF(rx, slot->buf_idx), pkt, sizeof(pkt)), 0);
  nmport_close(a);
  nmport_close(b);
}

TEST_F(NmportLabTest, ConfGeometryAndOneRing) {
  nmport_d* all = nmport_open("netmap:lc{1@conf:rings=3,slots=256");
  ASSERT_NE(all, nullptr) << LastError();
  EXPECT_EQ(all->reg.nr_tx_rings, 3);
  EXPECT_EQ(all->reg.nr_tx_slots, 256u);
  EXPECT_EQ(all->first_tx_ring, 0);
  EXPECT_EQ(all->last_tx_ring, 2);
  EXPECT_EQ(NETMAP_TXRING(all->nifp, 2)->num_slots, 256u);

  nmport_d* one = nmport_open("netmap:lc}1-2");
  ASSERT_NE(one, nullptr) << LastError();
  EXPECT_EQ(one->first_tx_ring, 2);
  EXPECT_EQ(one->last_tx_ring, 2);
  EXPECT_EQ(one->first_rx_ring, 2);
  EXPECT_EQ(one->last_rx_ring, 2);
  EXPECT_EQ(one->mem, all->mem);

  nmport_d* rx_only = nmport_open("netmap:lc}1-0/R");
  ASSERT_NE(rx_only, nullptr) << LastError();
  EXPECT_GT(rx_only->first_tx_ring, rx_only->last_tx_ring);  // no TX rings
  EXPECT_EQ(rx_only->first_rx_ring, 0);
  nmport_close(rx_only);
  nmport_close(one);
  nmport_close(all);
}

TEST_F(NmportLabTest, KernelRefusalReachesTheCallback) {
  // A ring the port does not have: the library accepts the name, the kernel refuses.
  errno = 0;
  EXPECT_EQ(nmport_open("netmap:lr{1-7"), nullptr);
  EXPECT_NE(errno, 0);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(LastError().find("lr{1"), std::string::npos) << LastError();
}

TEST_F(NmportLabTest, ExtmemFileBacksThePort) {
  char path[] = "/tmp/libnetmap_extmemXXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  constexpr size_t kSize = 16 << 20;
  ASSERT_EQ(ftruncate(fd, kSize), 0);
  close(fd);
  // Both pipe ends' rings take their buffers from this region: 4 x 256 slots.
  std::string spec =
      std::string("netmap:le{1@conf:slots=256@extmem:file=") + path + ",buf-num=2048";
  nmport_d* d = nmport_open(spec.c_str());
  unlink(path);
  ASSERT_NE(d, nullptr) << LastError();
  ASSERT_NE(d->extmem, nullptr);
  EXPECT_TRUE(d->mem->is_extmem);
  char* base = reinterpret_cast<char*>(d->extmem->nro_usrptr);
  EXPECT_EQ(d->mem->mem, base);
  EXPECT_EQ(d->extmem->nro_opt.nro_status, 0u);
  EXPECT_GT(d->extmem->nro_info.nr_buf_pool_objtotal, 0u);
  EXPECT_LE(d->extmem->nro_info.nr_buf_pool_objtotal, 2048u);
  // The rings and buffers the kernel built are in the file's pages.
  char* nifp = reinterpret_cast<char*>(d->nifp);
  EXPECT_GE(nifp, base);
  EXPECT_LT(nifp, base + kSize);
  netmap_ring* tx = NETMAP_TXRING(d->nifp, d->first_tx_ring);
  EXPECT_GT(tx->num_slots, 0u);
  char* buf = NETMAP_BUF(tx, tx->slot[0].buf_idx);
  EXPECT_GE(buf, base);
  EXPECT_LT(buf + tx->nr_buf_size, base + kSize + 1);
  nmport_close(d);
}

TEST_F(NmportLabTest, PrepareThenOpenDescThenClone) {
  nmport_d* d = nmport_prepare("netmap:lp{1");
  ASSERT_NE(d, nullptr) << LastError();
  ASSERT_EQ(nmport_open_desc(d), 0) << LastError();
  nmport_d* c = nmport_clone(d);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(nmport_open_desc(c), 0) << LastError();
  EXPECT_EQ(c->mem, d->mem);  // same region, same mapping
  EXPECT_NE(c->fd, d->fd);
  nmport_close(c);
  nmport_undo_open_desc(d);
  EXPECT_EQ(d->fd, -1);
  EXPECT_EQ(d->nifp, nullptr);
  nmport_undo_prepare(d);
}

}  // namespace
