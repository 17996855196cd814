// SPDX-License-Identifier: GPL-2.0
// The VALE forwarding path in userspace: the learning table code of
// kmod/ptnm_ring_math.h as kmod/vale.c runs it, and the per-batch shape of
// ptnm_vale_forward(): learn and look up every frame of a batch, then visit
// each destination once and copy its frames into its receive ring. Locks,
// RCU and counters of the kernel are left out: what remains is the
// per-packet work that scales with traffic.
#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <vector>

#include "fake_ring.h"
#include "ptnm_ring_math.h"

namespace {

constexpr unsigned kFdbBits = 10;  // PTNM_VALE_FDB_BITS
constexpr uint8_t kFlood = 0xff, kNone = 0xfe;

struct Switch {
  std::array<uint64_t, 1u << kFdbBits> fdb{};

  void Learn(const uint8_t *src, uint8_t idx) {
    if (src[0] & 1) return;  // multicast sources are never learned
    uint64_t mac = ptnm_rm_mac(src);
    uint64_t &e = fdb[ptnm_rm_fdb_slot(mac, kFdbBits)];
    uint64_t entry = ptnm_rm_fdb_entry(mac, idx);
    if (e != entry) e = entry;
  }
  uint8_t Lookup(const uint8_t *dst, uint8_t src_idx) const {
    if (dst[0] & 1) return kFlood;
    uint64_t mac = ptnm_rm_mac(dst);
    return ptnm_rm_fdb_dst(fdb[ptnm_rm_fdb_slot(mac, kFdbBits)], mac, src_idx,
                           kFlood, kNone);
  }
};

void Mac(uint8_t *m, uint32_t host) {
  const uint8_t v[6] = {0x02, 0x00, uint8_t(host >> 24), uint8_t(host >> 16),
                        uint8_t(host >> 8), uint8_t(host)};
  memcpy(m, v, 6);
}

// Lookups of learned addresses in a table holding `arg` of them.
void BM_FdbLookup(benchmark::State &state) {
  Switch sw;
  uint32_t hosts = state.range(0);
  std::vector<std::array<uint8_t, 6>> macs(hosts);
  for (uint32_t h = 0; h < hosts; h++) {
    Mac(macs[h].data(), h + 1);
    sw.Learn(macs[h].data(), h % 200);
  }
  uint64_t found = 0;
  for (auto _ : state) {
    for (auto &m : macs) found += sw.Lookup(m.data(), 250) < kNone;
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations() * hosts);
  state.counters["hit_ratio"] = double(found) / (state.iterations() * hosts);
}
BENCHMARK(BM_FdbLookup)->Arg(16)->Arg(256);

// Learning the source of every frame (the table is written only on change).
void BM_FdbLearn(benchmark::State &state) {
  Switch sw;
  std::vector<std::array<uint8_t, 6>> macs(256);
  for (uint32_t h = 0; h < macs.size(); h++) Mac(macs[h].data(), h + 1);
  benchmark::DoNotOptimize(&sw);  // the table escapes: every write counts
  for (auto _ : state) {
    // Every other round the ports change: half the learns rewrite an entry.
    uint8_t shift = state.iterations() & 1;
    for (uint32_t h = 0; h < macs.size(); h++)
      sw.Learn(macs[h].data(), uint8_t((h + (h & shift)) & 7));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * macs.size());
}
BENCHMARK(BM_FdbLearn);

// One sender's batch forwarded to 2 learned destinations: learn + lookup
// per frame, then per destination a pass that copies its frames into its
// receive ring (args: batch, frame length).
void BM_ForwardBatch(benchmark::State &state) {
  const uint32_t batch = state.range(0), len = state.range(1);
  constexpr uint32_t kSlots = 1024;
  Switch sw;
  microbench::FakeRing tx(kSlots), rx[2] = {microbench::FakeRing(kSlots),
                                            microbench::FakeRing(kSlots)};
  uint8_t dmac[2][6], smac[6];
  Mac(dmac[0], 100);
  Mac(dmac[1], 101);
  Mac(smac, 7);
  sw.Learn(dmac[0], 1);
  sw.Learn(dmac[1], 2);
  for (uint32_t i = 0; i < kSlots; i++) {
    char *b = tx.buf(i);
    memcpy(b, dmac[i & 1], 6);
    memcpy(b + 6, smac, 6);
    tx.ring()->slot[i].len = len;
  }
  struct Pkt {
    const char *buf;
    uint32_t len;
    uint8_t dst;
  };
  std::vector<Pkt> pkts(batch);
  uint32_t cur = 0, rxtail[2] = {0, 0};
  for (auto _ : state) {
    for (uint32_t i = 0; i < batch; i++, cur = ptnm_rm_next(kSlots, cur)) {
      const netmap_slot &s = tx.ring()->slot[cur];
      const char *b = tx.buf(s.buf_idx);
      sw.Learn(reinterpret_cast<const uint8_t *>(b + 6), 0);
      pkts[i] = {b, s.len, sw.Lookup(reinterpret_cast<const uint8_t *>(b), 0)};
    }
    for (uint8_t d = 1; d <= 2; d++) {
      microbench::FakeRing &r = rx[d - 1];
      uint32_t &t = rxtail[d - 1];
      for (const Pkt &p : pkts) {
        if (p.dst != d && p.dst != kFlood) continue;
        netmap_slot &s = r.ring()->slot[t];
        memcpy(r.buf(s.buf_idx), p.buf, p.len);
        s.len = p.len;
        t = ptnm_rm_next(kSlots, t);
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * len);
}
BENCHMARK(BM_ForwardBatch)
    ->ArgNames({"batch", "len"})
    ->Args({1, 60})->Args({64, 60})->Args({512, 60})
    ->Args({64, 1514})->Args({512, 1514});

}  // namespace
