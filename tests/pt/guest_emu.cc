// SPDX-License-Identifier: GPL-2.0
// pt_guest_emu: guests played in userspace over a passthrough attachment.
//
//   pt_guest_emu pair  [--packets N] [--batch B] [--slots S] [--both]
//       Two guests on the two ends of a pipe, one shared memfd: guest 1
//       sends N frames to guest 2 (and back with --both). Exit status 0 when
//       every frame arrived in order; prints Mpps and the kicks and
//       interrupts per packet the kernel counted.
//   pt_guest_emu bench [--packets N] [--batches 1,8,...] [--slots S]
//       For each batch size: one way through an attachment (as above) and
//       through a plain pipe between two netmap applications, as a
//       markdown table.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <thread>

#include "guest_emu.h"
#include "host_app.h"

namespace {

struct Options {
  uint64_t packets = 1000000;
  unsigned batch = 64;
  std::vector<unsigned> batches = {1, 8, 32, 128, 256};
  uint32_t slots = 256;
  bool both = false;
};

struct Result {
  bool ok = false;
  double mpps = 0, kicks_pp = 0, irqs_pp = 0;
};

double Elapsed(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Result Pair(const Options &o, unsigned batch, bool both) {
  Result res;
  int ctl = nmtest::OpenNetmap();
  if (ctl < 0) return perror("/dev/netmap"), res;
  ptemu::Vm vm;
  std::string pipe = nmtest::UniqueName("emu");
  std::string name = nmtest::UniqueName("emu");
  int err = vm.Create(8 << 20, 2);
  if (!err) err = vm.Attach(ctl, name, {pipe + "{1", pipe + "}1"},
                            PTNETMAP_PT_SHARED, o.slots);
  if (err) {
    fprintf(stderr, "attach: %s\n", strerror(err));
    close(ctl);
    return res;
  }
  ptemu::Guest g1, g2;
  std::string e1 = g1.Setup(vm.base, vm.size, 1, vm.peers[0]);
  std::string e2 = g2.Setup(vm.base, vm.size, 2, vm.peers[1]);
  if (!e1.empty() || !e2.empty() || g1.Start() || g2.Start()) {
    fprintf(stderr, "guest setup: %s %s\n", e1.c_str(), e2.c_str());
    ptemu::Detach(ctl, name);
    close(ctl);
    return res;
  }
  std::vector<std::string> errors(4);
  uint64_t e12 = 0, e21 = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> t;
  t.emplace_back([&] { if (!g1.Send(0, o.packets, batch, 60, 1)) errors[0] = "stall"; });
  t.emplace_back([&] { errors[1] = g2.Receive(&e12, o.packets, batch, 1); });
  if (both) {
    t.emplace_back([&] { if (!g2.Send(0, o.packets, batch, 60, 2)) errors[2] = "stall"; });
    t.emplace_back([&] { errors[3] = g1.Receive(&e21, o.packets, batch, 2); });
  }
  for (auto &th : t) th.join();
  double secs = Elapsed(t0);
  uint64_t total = o.packets * (both ? 2 : 1);
  ptnetmap_pt_info info;
  ptemu::Info(ctl, name, 0, &info);
  res.ok = true;
  for (auto &e : errors)
    if (!e.empty()) fprintf(stderr, "error: %s\n", e.c_str()), res.ok = false;
  res.mpps = total / secs / 1e6;
  res.kicks_pp = double(info.kicks) / total;
  res.irqs_pp = double(info.interrupts) / total;
  ptemu::Detach(ctl, name);
  close(ctl);
  return res;
}

Result Plain(const Options &o, unsigned batch) {
  Result res;
  std::string pipe = nmtest::UniqueName("plain");
  nmtest::Port a, b;
  auto slots = [&](nmtest::RegisterRequest &r) {
    r.body.nr_tx_slots = r.body.nr_rx_slots = o.slots;
  };
  if (a.Open(pipe + "{1", slots) || b.Open(pipe + "}1", slots)) {
    fprintf(stderr, "plain pipe: cannot open\n");
    return res;
  }
  std::string es, er;
  uint64_t e = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::thread ts([&] { es = ptemu::HostSend(a, 0, o.packets, batch, 60, 1); });
  std::thread tr([&] { er = ptemu::HostReceive(b, &e, o.packets, batch, 1); });
  ts.join();
  tr.join();
  double secs = Elapsed(t0);
  res.ok = es.empty() && er.empty();
  if (!res.ok) fprintf(stderr, "plain: %s %s\n", es.c_str(), er.c_str());
  res.mpps = o.packets / secs / 1e6;
  return res;
}

std::vector<unsigned> ParseList(const char *s) {
  std::vector<unsigned> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::stoul(item));
  return v;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s pair|bench [options]\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  Options o;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "0";
    if (a == "--packets") o.packets = std::stoull(v), i++;
    else if (a == "--batch") o.batch = std::stoul(v), i++;
    else if (a == "--batches") o.batches = ParseList(v), i++;
    else if (a == "--slots") o.slots = std::stoul(v), i++;
    else if (a == "--both") o.both = true;
    else return fprintf(stderr, "unknown option %s\n", a.c_str()), 2;
  }
  if (mode == "pair") {
    Result r = Pair(o, o.batch, o.both);
    printf("attachment %s, batch %u: %.3f Mpps, kicks/pkt %.4f, irqs/pkt %.4f\n",
           o.both ? "both ways" : "one way", o.batch, r.mpps, r.kicks_pp,
           r.irqs_pp);
    return r.ok ? 0 : 1;
  }
  if (mode == "bench") {
    bool ok = true;
    printf("| batch | attachment Mpps | kicks/pkt | irqs/pkt | plain pipe Mpps |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (unsigned b : o.batches) {
      Result r = Pair(o, b, false);
      Result p = Plain(o, b);
      ok = ok && r.ok && p.ok;
      printf("| %u | %.3f | %.4f | %.4f | %.3f |\n", b, r.mpps, r.kicks_pp,
             r.irqs_pp, p.mpps);
      fflush(stdout);
    }
    return ok ? 0 : 1;
  }
  fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
