// SPDX-License-Identifier: GPL-2.0
// The CSB protocol without a VM: the guest side of tests/pt/guest_emu.h
// (ptemu::Guest, the same code as the driver's: fill slots, publish
// cur/head, look at kern_need_kick) on a ring in ordinary memory, with the
// host's part played inline (the sync check of kmod/ptnm_ring_math.h, then
// hwtail), and the handoff of indexes between two threads through the CSB's
// cache lines, as a guest and the host worker do when neither sleeps.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "../pt/guest_emu.h"
#include "fake_ring.h"
#include "ptnm_ring_math.h"

namespace {

struct alignas(64) Csb {
  nm_csb_atok atok{};
  alignas(64) nm_csb_ktoa ktoa{};
};

// Guest transmit of `batch` frames per publish; the host accepts every
// publish (sync check, new hwtail) without needing a kick.
void BM_CsbGuestSend(benchmark::State &state) {
  const uint32_t batch = state.range(0);
  constexpr uint32_t kSlots = 512;
  microbench::FakeRing fr(kSlots);
  Csb csb;
  ptemu::Guest g;
  g.SetupCsbRing(0, fr.ring(), &csb.atok, &csb.ktoa, -1, -1, fr.mem(), fr.size());
  csb.ktoa.hwtail = kSlots - 1;
  uint32_t rhead = 0;
  uint64_t seq = 0, refused = 0;
  for (auto _ : state) {
    if (!g.Send(seq, batch, batch, 60, 1)) state.SkipWithError("stall");
    seq += batch;
    // The host: read head and cur once, check, consume, publish hwtail.
    uint32_t head = ptemu::Load(csb.atok.head), cur = ptemu::Load(csb.atok.cur);
    uint32_t tail = ptemu::Load(csb.ktoa.hwtail);
    if (!ptnm_rm_sync_ok(kSlots, rhead, tail, head, cur)) refused++;
    rhead = head;
    ptemu::Store(csb.ktoa.hwcur, head);
    ptemu::Store(csb.ktoa.hwtail, ptnm_rm_prev(kSlots, head));
  }
  if (refused) state.SkipWithError("the sync check refused a valid head");
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["kicks_per_packet"] = benchmark::Counter(
      double(g.tx().st.kicks) / (state.iterations() * batch));
}
BENCHMARK(BM_CsbGuestSend)->Arg(1)->Arg(8)->Arg(64)->Arg(256);

// Round trips of an index through the CSB between two spinning threads: the
// "guest" publishes head, the "host" sees it, checks it and answers with
// hwtail. The cost of moving the two cache lines back and forth.
void BM_CsbHandoff(benchmark::State &state) {
  constexpr uint32_t kSlots = 1024;
  Csb csb;
  std::atomic<bool> stop{false};
  std::thread host([&] {
    uint32_t rhead = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t head = std::atomic_ref(csb.atok.head).load(std::memory_order_acquire);
      if (head == rhead) continue;
      if (ptnm_rm_sync_ok(kSlots, rhead, ptnm_rm_prev(kSlots, rhead), head, head))
        rhead = head;
      std::atomic_ref(csb.ktoa.hwtail).store(rhead, std::memory_order_release);
    }
  });
  uint32_t head = 0;
  for (auto _ : state) {
    head = ptnm_rm_next(kSlots, head);
    std::atomic_ref(csb.atok.head).store(head, std::memory_order_release);
    while (std::atomic_ref(csb.ktoa.hwtail).load(std::memory_order_acquire) != head) {
    }
  }
  stop = true;
  host.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CsbHandoff)->UseRealTime();

}  // namespace
