// SPDX-License-Identifier: GPL-2.0
// Ring index arithmetic: the kernel's (kmod/ptnm_ring_math.h, the same code
// ptnm_next/ptnm_dist and the passthrough sync check run) and what
// applications use (nm_ring_* of include/net/netmap_user.h).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include <net/netmap_user.h>

#include "fake_ring.h"
#include "ptnm_ring_math.h"

namespace {

// Walk a whole ring of n slots with ptnm_rm_next (arg: n).
void BM_RingNext(benchmark::State &state) {
  uint32_t n = state.range(0), i = 0;
  for (auto _ : state) {
    for (uint32_t k = 0; k < n; k++) i = ptnm_rm_next(n, i);
    benchmark::DoNotOptimize(i);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RingNext)->Arg(256)->Arg(1024)->Arg(2048);

// Indexes that are random but fixed for a run.
std::vector<uint32_t> RandomIndexes(uint32_t n, size_t count) {
  std::mt19937 gen(42);
  std::uniform_int_distribution<uint32_t> d(0, n - 1);
  std::vector<uint32_t> v(count);
  for (auto &x : v) x = d(gen);
  return v;
}

// ptnm_rm_dist on random pairs of a ring of n slots (arg: n).
void BM_RingDist(benchmark::State &state) {
  uint32_t n = state.range(0);
  auto idx = RandomIndexes(n, 4096);
  uint64_t sum = 0;
  for (auto _ : state) {
    for (size_t k = 0; k + 1 < idx.size(); k++) sum += ptnm_rm_dist(n, idx[k], idx[k + 1]);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * (idx.size() - 1));
}
BENCHMARK(BM_RingDist)->Arg(256)->Arg(1024);

// The check a passthrough sync applies to a guest's head and cur
// (ptnh_ring_sync), on random values: about half of them are refused.
void BM_SyncCheck(benchmark::State &state) {
  uint32_t n = state.range(0);
  auto idx = RandomIndexes(n + n / 8, 4096);  // some out of range
  uint64_t ok = 0;
  for (auto _ : state) {
    for (size_t k = 0; k + 3 < idx.size(); k += 4)
      ok += ptnm_rm_sync_ok(n, idx[k] % n, idx[k + 1] % n, idx[k + 2], idx[k + 3]);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations() * (idx.size() / 4));
}
BENCHMARK(BM_SyncCheck)->Arg(1024);

// An application's receive loop over a ring: nm_ring_space, then
// nm_ring_next per slot, then head = cur = tail (arg: slots).
void BM_AppRingWalk(benchmark::State &state) {
  microbench::FakeRing fr(state.range(0));
  netmap_ring *r = fr.ring();
  uint64_t bytes = 0;
  for (auto _ : state) {
    r->head = r->cur = 0;
    r->tail = r->num_slots - 1;
    uint32_t h = r->head;
    for (uint32_t n = nm_ring_space(r); n > 0; n--) {
      bytes += r->slot[h].len;
      h = nm_ring_next(r, h);
    }
    r->head = r->cur = h;
    benchmark::DoNotOptimize(bytes);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * (state.range(0) - 1));
}
BENCHMARK(BM_AppRingWalk)->Arg(256)->Arg(1024);

}  // namespace
