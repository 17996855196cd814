// SPDX-License-Identifier: BSD-2-Clause
// ptbridge: forward packets both ways between two netmap ports.
//
// When both ports live in one memory region (libnetmap gives them the same
// nmem_d), packets move by swapping buffer indexes between the RX slot and
// the TX slot: no byte is copied. Otherwise each packet is copied.
//
// Exit status: 0 success, 2 usage, 3 a port did not open.
#include <getopt.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "common/args.h"
#include "common/clock.h"
#include "common/port.h"
#include "common/ring_io.h"
#include "common/signals.h"
#include "common/stats.h"

namespace ptools {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitPort = 3;
constexpr int kPollMs = 200;

struct Options {
  std::string port_a;
  std::string port_b;
  uint32_t batch = 512;
  uint64_t duration_ns = 0;
  uint64_t idle_ns = 0;
  bool force_copy = false;
  WaitMode wait = WaitMode::kPoll;
  bool json = false;
  bool quiet = false;
};

void Usage(FILE* out) {
  std::fputs(
      "usage: ptbridge -i PORT_A -i PORT_B [options]\n"
      "  -i, --port SPEC     a port; give exactly two\n"
      "  -b, --batch N       packets moved per ring and direction per round (default 512)\n"
      "  -d, --duration S    stop after S seconds\n"
      "      --idle S        stop once S seconds pass without packets\n"
      "      --copy          copy packets even when zero-copy is possible\n"
      "      --busy          busy-wait with NIOC*SYNC instead of blocking in poll()\n"
      "      --json          print the summary as one JSON line\n"
      "  -q, --quiet         no per-second rates\n"
      "  -h, --help\n",
      out);
}

bool ParseOptions(int argc, char** argv, Options* o) {
  enum { kIdle = 256, kCopy, kBusy, kJson };
  const option longopts[] = {
      {"port", required_argument, nullptr, 'i'},     {"batch", required_argument, nullptr, 'b'},
      {"duration", required_argument, nullptr, 'd'}, {"idle", required_argument, nullptr, kIdle},
      {"copy", no_argument, nullptr, kCopy},         {"busy", no_argument, nullptr, kBusy},
      {"json", no_argument, nullptr, kJson},         {"quiet", no_argument, nullptr, 'q'},
      {"help", no_argument, nullptr, 'h'},           {nullptr, 0, nullptr, 0},
  };
  int ports = 0;
  int c;
  while ((c = getopt_long(argc, argv, "i:b:d:qh", longopts, nullptr)) != -1) {
    switch (c) {
      case 'i':
        if (ports == 2) {
          std::fputs("ptbridge: give exactly two ports\n", stderr);
          return false;
        }
        (ports++ == 0 ? o->port_a : o->port_b) = optarg;
        break;
      case 'b': {
        auto n = ParseCount(optarg);
        if (!n || *n == 0 || *n > 65536) {
          std::fprintf(stderr, "ptbridge: bad batch \"%s\" (1..65536)\n", optarg);
          return false;
        }
        o->batch = static_cast<uint32_t>(*n);
        break;
      }
      case 'd':
      case kIdle: {
        auto s = ParseSeconds(optarg);
        if (!s) {
          std::fprintf(stderr, "ptbridge: bad time \"%s\"\n", optarg);
          return false;
        }
        (c == 'd' ? o->duration_ns : o->idle_ns) = static_cast<uint64_t>(*s * kNsPerSec);
        break;
      }
      case kCopy:
        o->force_copy = true;
        break;
      case kBusy:
        o->wait = WaitMode::kBusy;
        break;
      case kJson:
        o->json = true;
        break;
      case 'q':
        o->quiet = true;
        break;
      case 'h':
        Usage(stdout);
        std::exit(0);
      default:
        Usage(stderr);
        return false;
    }
  }
  if (ports != 2 || optind != argc) {
    Usage(stderr);
    return false;
  }
  return true;
}

// Syncs both ports and waits until either can move a packet.
bool Wait(nmport_d* a, nmport_d* b, WaitMode mode) {
  if (mode == WaitMode::kBusy) {
    for (nmport_d* d : {a, b}) {
      ioctl(d->fd, NIOCTXSYNC, nullptr);
      ioctl(d->fd, NIOCRXSYNC, nullptr);
    }
    return true;
  }
  // Packets waiting on one side need room on the other; otherwise wait for
  // packets. Either way poll() syncs the rings it waits on.
  pollfd fds[2] = {{a->fd, 0, 0}, {b->fd, 0, 0}};
  if (RxReady(a) > 0)
    fds[1].events |= POLLOUT;
  else
    fds[0].events |= POLLIN;
  if (RxReady(b) > 0)
    fds[0].events |= POLLOUT;
  else
    fds[1].events |= POLLIN;
  if (poll(fds, 2, kPollMs) < 0 && errno != EINTR) {
    std::fprintf(stderr, "ptbridge: poll: %s\n", std::strerror(errno));
    return false;
  }
  for (const pollfd& p : fds) {
    if (p.revents & (POLLERR | POLLNVAL)) {
      std::fprintf(stderr, "ptbridge: poll: error condition (revents 0x%x)\n", p.revents);
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return kExitUsage;
  InstallStopHandler();
  Port a = OpenPort(o.port_a);
  if (!a) {
    std::fprintf(stderr, "ptbridge: cannot open %s\n", o.port_a.c_str());
    return kExitPort;
  }
  Port b = OpenPort(o.port_b);
  if (!b) {
    std::fprintf(stderr, "ptbridge: cannot open %s\n", o.port_b.c_str());
    return kExitPort;
  }
  bool zerocopy = !o.force_copy && a->mem == b->mem;
  std::fprintf(stderr, "ptbridge %s <-> %s: ready, %s (memory regions %u and %u)\n",
               o.port_a.c_str(), o.port_b.c_str(), zerocopy ? "zero-copy" : "copying",
               a->reg.nr_mem_id, b->reg.nr_mem_id);

  ForwardCounts ab, ba;
  IntervalMeter meter(kNsPerSec);
  uint64_t start = NowNs(), now = start, first = 0, last = 0;
  uint64_t stop_at = o.duration_ns ? start + o.duration_ns : std::numeric_limits<uint64_t>::max();
  bool ok = true;
  while (!StopRequested() && now < stop_at) {
    if (o.idle_ns && first && now - last >= o.idle_ns) break;
    if (!(ok = Wait(a.get(), b.get(), o.wait))) break;
    now = NowNs();
    uint32_t to_b = ForwardPort(a.get(), b.get(), o.batch, zerocopy, &ab);
    uint32_t to_a = ForwardPort(b.get(), a.get(), o.batch, zerocopy, &ba);
    if (to_b) TxSync(b.get());
    if (to_a) TxSync(a.get());
    if (to_b || to_a) {
      if (!first) first = now;
      last = now;
    }
    auto rate = meter.Tick(now, ab.packets + ba.packets, ab.bytes + ba.bytes);
    if (rate && !o.quiet) {
      std::fprintf(stderr, "ptbridge: %s (a->b %" PRIu64 ", b->a %" PRIu64 ")\n",
                   FormatRate(*rate).c_str(), ab.packets, ba.packets);
    }
  }
  DrainTx(a.get(), 1000);
  DrainTx(b.get(), 1000);

  uint64_t elapsed = last - first;
  Rate r = RateOf(ab.packets + ba.packets, ab.bytes + ba.bytes, elapsed);
  JsonLine j;
  j.Add("tool", "ptbridge").Add("port_a", o.port_a).Add("port_b", o.port_b);
  j.Add("zerocopy", zerocopy).Add("a_to_b_packets", ab.packets).Add("a_to_b_bytes", ab.bytes);
  j.Add("b_to_a_packets", ba.packets).Add("b_to_a_bytes", ba.bytes);
  j.Add("dropped", ab.dropped + ba.dropped);
  j.Add("seconds", static_cast<double>(elapsed) / kNsPerSec)
      .Add("mpps", r.mpps)
      .Add("gbps", r.gbps);
  char text[512];
  std::snprintf(text, sizeof(text),
                "ptbridge %s <-> %s (%s): a->b %" PRIu64 " packets %" PRIu64 " bytes, b->a %" PRIu64
                " packets %" PRIu64 " bytes, %" PRIu64 " dropped, %.3f s: %s",
                o.port_a.c_str(), o.port_b.c_str(), zerocopy ? "zero-copy" : "copy", ab.packets,
                ab.bytes, ba.packets, ba.bytes, ab.dropped + ba.dropped,
                static_cast<double>(elapsed) / kNsPerSec, FormatRate(r).c_str());
  if (o.json) {
    std::fprintf(stderr, "%s\n", text);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%s\n", text);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ptools

int main(int argc, char** argv) { return ptools::Main(argc, argv); }
