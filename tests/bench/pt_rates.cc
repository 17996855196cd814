// SPDX-License-Identifier: GPL-2.0
// pt_rates: notifications and CPU of a passthrough attachment at several
// offered rates, from idle to saturation, in the lab VM.
//
//   pt_rates [--rates idle,1000,10000,max] [--seconds S] [--batch B]
//            [--slots N]
//
// Two guests played in userspace (tests/pt/guest_emu.h) on the two ends of
// one pipe, one shared attachment: guest 1 sends, guest 2 receives, both
// with the CSB protocol of the real driver. For each rate a fresh
// attachment; after a warm-up, S seconds of traffic at that rate (1 ms
// ticks, rate/1000 frames per tick; "max": batches back to back; "idle":
// nothing, both guests waiting for interrupts). Prints one JSON line per
// rate: the kernel's counters for the attachment (kicks, interrupts,
// worker wake-ups) per packet, and the CPU the kernel worker and the guests
// used, as a fraction of one CPU (worker: /proc/PID/schedstat; guests:
// getrusage of this process).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "../lab/nm_test.h"
#include "../pt/guest_emu.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> rates = {"idle", "1000", "10000", "max"};
  double seconds = 3;
  unsigned batch = 64;
  uint32_t slots = 256;
};

uint64_t WorkerNs(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/schedstat");
  uint64_t ns = 0;
  f >> ns;
  return ns;
}

uint64_t SelfCpuNs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval &t) { return uint64_t(t.tv_sec) * 1000000000ull + t.tv_usec * 1000ull; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Guest 2's receive loop: takes what arrives, `batch` at a time, until stop
// is set and nothing more comes. Returns the frames taken.
uint64_t ReceiveUntil(ptemu::Guest &g, unsigned batch, const std::atomic<bool> &stop) {
  auto &r = g.rx();
  uint64_t got = 0;
  for (;;) {
    uint32_t avail = g.Dist(r, r.head, g.HwTail(r));
    if (!avail) {
      bool more = g.Wait(r, [&] { return g.HwTail(r) != r.head; }, 200);
      if (!more && stop.load()) return got;
      continue;
    }
    uint32_t n = std::min(avail, batch);
    for (uint32_t i = 0; i < n; i++) r.head = r.head + 1 == r.num_slots ? 0 : r.head + 1;
    got += n;
    r.st.packets += n;
    g.Publish(r);
  }
}

bool Measure(const Options &o, const std::string &rate) {
  int ctl = nmtest::OpenNetmap();
  if (ctl < 0) return perror("/dev/netmap"), false;
  ptemu::Vm vm;
  std::string pipe = nmtest::UniqueName("rt");
  std::string name = nmtest::UniqueName("rt");
  int err = vm.Create(8 << 20, 2);
  if (!err)
    err = vm.Attach(ctl, name, {pipe + "{1", pipe + "}1"}, PTNETMAP_PT_SHARED, o.slots);
  if (err) {
    fprintf(stderr, "pt_rates: attach: %s\n", strerror(err));
    close(ctl);
    return false;
  }
  ptemu::Guest g1, g2;
  std::string e1 = g1.Setup(vm.base, vm.size, 1, vm.peers[0]);
  std::string e2 = g2.Setup(vm.base, vm.size, 2, vm.peers[1]);
  if (!e1.empty() || !e2.empty() || g1.Start() || g2.Start()) {
    fprintf(stderr, "pt_rates: guest setup: %s %s\n", e1.c_str(), e2.c_str());
    ptemu::Detach(ctl, name);
    close(ctl);
    return false;
  }
  // Warm-up, then let the worker settle as a driver's idle state leaves it.
  uint64_t expect = 0;
  std::thread w([&] { g1.Send(0, 2000, o.batch, 60, 1); });
  g2.Receive(&expect, 2000, o.batch, 1);
  w.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (auto &p : vm.peers)
    for (int fd : p.irq) ptemu::Guest::Drain(fd);

  ptnetmap_pt_info before{}, after{};
  ptemu::Info(ctl, name, 0, &before);
  uint64_t wns0 = WorkerNs(before.worker_pid);
  uint64_t gns0 = SelfCpuNs();
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  uint64_t sent = 0, received = 0;
  bool ok = true;
  double offered = 0;
  if (rate == "idle") {
    for (ptemu::Guest *g : {&g1, &g2})
      for (auto *r : {&g->tx(), &g->rx()}) ptemu::Store(r->atok->appl_need_kick, 1u);
    std::this_thread::sleep_until(end);
  } else {
    std::atomic<bool> stop{false};
    std::thread rx([&] { received = ReceiveUntil(g2, o.batch, stop); });
    uint64_t seq = 2000;
    if (rate == "max") {
      while (Clock::now() < end && ok) {
        ok = g1.Send(seq, o.batch * 16ull, o.batch, 60, 1);
        seq += o.batch * 16ull;
      }
    } else {
      offered = std::stod(rate);
      double per_tick = offered / 1000, due = 0;
      for (auto tick = t0; tick < end && ok; tick += std::chrono::milliseconds(1)) {
        due += per_tick;
        uint64_t n = uint64_t(due);
        due -= n;
        if (n) ok = g1.Send(seq, n, o.batch, 60, 1);
        seq += n;
        std::this_thread::sleep_until(tick + std::chrono::milliseconds(1));
      }
    }
    sent = seq - 2000;
    stop = true;
    rx.join();
  }
  // This process's CPU first: reading the counters below costs some (a
  // system call, a /proc file) that is not the guests'.
  uint64_t gns1 = SelfCpuNs();
  double secs = Seconds(t0, Clock::now());
  ptemu::Info(ctl, name, 0, &after);
  uint64_t wns1 = WorkerNs(before.worker_pid);
  ptemu::Detach(ctl, name);
  close(ctl);

  uint64_t kicks = after.kicks - before.kicks, irqs = after.interrupts - before.interrupts;
  uint64_t wakeups = after.wakeups - before.wakeups;
  auto per = [&](uint64_t v) { return sent ? double(v) / sent : 0.0; };
  printf("{\"series\":\"rates\",\"rate\":\"%s\",\"offered_pps\":%.0f,\"seconds\":%.3f,"
         "\"sent\":%llu,\"received\":%llu,\"pps\":%.1f,\"batch\":%u,\"kicks\":%llu,"
         "\"interrupts\":%llu,\"wakeups\":%llu,\"kicks_per_packet\":%.5f,"
         "\"interrupts_per_packet\":%.5f,\"wakeups_per_packet\":%.5f,"
         "\"notifications_per_packet\":%.5f,\"worker_cpu\":%.5f,\"guest_cpu\":%.5f,"
         "\"worker_cpu_ns\":%llu}\n",
         rate.c_str(), offered, secs, (unsigned long long)sent, (unsigned long long)received,
         sent / secs, o.batch, (unsigned long long)kicks, (unsigned long long)irqs,
         (unsigned long long)wakeups, per(kicks), per(irqs), per(wakeups), per(kicks + irqs),
         (wns1 - wns0) / 1e9 / secs, (gns1 - gns0) / 1e9 / secs,
         (unsigned long long)(wns1 - wns0));
  fflush(stdout);
  if (received != sent) {
    fprintf(stderr, "pt_rates: %s: sent %llu, received %llu\n", rate.c_str(),
            (unsigned long long)sent, (unsigned long long)received);
    ok = false;
  }
  return ok;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) return fprintf(stderr, "pt_rates: %s needs a value\n", a.c_str()), 2;
    std::string v = argv[++i];
    if (a == "--rates") {
      o.rates.clear();
      std::stringstream in(v);
      for (std::string item; std::getline(in, item, ',');) o.rates.push_back(item);
    } else if (a == "--seconds") {
      o.seconds = std::stod(v);
    } else if (a == "--batch") {
      o.batch = std::stoul(v);
    } else if (a == "--slots") {
      o.slots = std::stoul(v);
    } else {
      return fprintf(stderr, "usage: pt_rates [--rates idle,1000,max] [--seconds S] "
                             "[--batch B] [--slots N]\n"), 2;
    }
  }
  bool ok = true;
  for (const auto &r : o.rates) ok = Measure(o, r) && ok;
  return ok ? 0 : 1;
}
