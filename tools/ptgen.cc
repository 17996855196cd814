// SPDX-License-Identifier: BSD-2-Clause
// ptgen: netmap traffic generator and receiver.
//
//   ptgen tx   -i PORT   send numbered test packets
//   ptgen rx   -i PORT   receive them, optionally verifying every one
//   ptgen ping -i PORT   send one packet at a time and time its echo
//   ptgen pong -i PORT   echo everything received
//
// Rates go to stderr once a second; the summary goes to stdout, as text or
// (--json) as one JSON line. Exit status: 0 success, 1 traffic errors (loss,
// reordering, corruption, missing echoes), 2 usage, 3 the port did not open.
#include <getopt.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "common/args.h"
#include "common/clock.h"
#include "common/packet.h"
#include "common/port.h"
#include "common/rate_limiter.h"
#include "common/ring_io.h"
#include "common/signals.h"
#include "common/stats.h"
#include "common/traffic.h"

namespace ptools {
namespace {

constexpr int kExitTrafficError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitPort = 3;
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// Poll timeout of the loops: how late a stop condition may be noticed.
constexpr int kPollMs = 200;

enum class Mode { kTx, kRx, kPing, kPong };

struct Options {
  Mode mode = Mode::kTx;
  std::string mode_name;
  std::string port;
  uint32_t len_min = kMinFrameLen;
  uint32_t len_max = kMinFrameLen;
  uint32_t batch = 512;
  uint64_t count = 0;        // 0: no limit
  uint64_t duration_ns = 0;  // 0: no limit
  uint64_t idle_ns = 0;      // 0: never stop for silence
  uint64_t rate = 0;         // packets per second, 0: unlimited
  uint64_t reply_timeout_ns = kNsPerSec;
  bool verify = false;
  WaitMode wait = WaitMode::kPoll;
  bool json = false;
  bool quiet = false;
};

void Usage(FILE* out) {
  std::fputs(
      "usage: ptgen tx|rx|ping|pong -i PORT [options]\n"
      "  -i, --port SPEC        netmap port, e.g. netmap:pp{1 (see docs/tools.md)\n"
      "  -l, --len N|MIN-MAX    frame length in bytes, or a range (default 60)\n"
      "  -b, --batch N          packets per sync (default 512)\n"
      "  -n, --count N          stop after N packets (ping: N round trips); k/M/G ok\n"
      "  -d, --duration S       stop after S seconds (500ms, 10s, 2m)\n"
      "  -r, --rate PPS         send at most PPS packets per second (tx, ping)\n"
      "  -V, --verify           rx: check checksums and sequence numbers of every packet\n"
      "      --idle S           rx, pong: stop once S seconds pass without packets\n"
      "      --reply-timeout S  ping: wait this long for each echo (default 1s)\n"
      "      --busy             busy-wait with NIOC*SYNC instead of blocking in poll()\n"
      "      --json             print the summary as one JSON line\n"
      "  -q, --quiet            no per-second rates\n"
      "  -h, --help\n",
      out);
}

bool Fail(const char* what, const char* value) {
  std::fprintf(stderr, "ptgen: bad %s \"%s\"\n", what, value);
  return false;
}

bool ParseOptions(int argc, char** argv, Options* o) {
  if (argc < 2) {
    Usage(stderr);
    return false;
  }
  std::string_view mode = argv[1];
  if (mode == "-h" || mode == "--help") {
    Usage(stdout);
    std::exit(0);
  }
  o->mode_name = mode;
  if (mode == "tx")
    o->mode = Mode::kTx;
  else if (mode == "rx")
    o->mode = Mode::kRx;
  else if (mode == "ping")
    o->mode = Mode::kPing;
  else if (mode == "pong")
    o->mode = Mode::kPong;
  else
    return Fail("mode (tx, rx, ping or pong)", argv[1]);

  enum { kIdle = 256, kReplyTimeout, kBusy, kJson };
  const option longopts[] = {
      {"port", required_argument, nullptr, 'i'},
      {"len", required_argument, nullptr, 'l'},
      {"batch", required_argument, nullptr, 'b'},
      {"count", required_argument, nullptr, 'n'},
      {"duration", required_argument, nullptr, 'd'},
      {"rate", required_argument, nullptr, 'r'},
      {"verify", no_argument, nullptr, 'V'},
      {"idle", required_argument, nullptr, kIdle},
      {"reply-timeout", required_argument, nullptr, kReplyTimeout},
      {"busy", no_argument, nullptr, kBusy},
      {"json", no_argument, nullptr, kJson},
      {"quiet", no_argument, nullptr, 'q'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  auto seconds_ns = [](const char* text, uint64_t* out) {
    auto s = ParseSeconds(text);
    if (!s) return false;
    *out = static_cast<uint64_t>(*s * kNsPerSec);
    return true;
  };
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "i:l:b:n:d:r:Vqh", longopts, nullptr)) != -1) {
    switch (c) {
      case 'i':
        o->port = optarg;
        break;
      case 'l': {
        auto r = ParseRange(optarg);
        if (!r || r->first < kMinFrameLen || r->second > kMaxFrameLen) {
          std::fprintf(stderr, "ptgen: frame lengths are %zu..%zu bytes\n", kMinFrameLen,
                       kMaxFrameLen);
          return Fail("length", optarg);
        }
        o->len_min = static_cast<uint32_t>(r->first);
        o->len_max = static_cast<uint32_t>(r->second);
        break;
      }
      case 'b': {
        auto n = ParseCount(optarg);
        if (!n || *n == 0 || *n > 65536) return Fail("batch (1..65536)", optarg);
        o->batch = static_cast<uint32_t>(*n);
        break;
      }
      case 'n': {
        auto n = ParseCount(optarg);
        if (!n) return Fail("count", optarg);
        o->count = *n;
        break;
      }
      case 'd':
        if (!seconds_ns(optarg, &o->duration_ns)) return Fail("duration", optarg);
        break;
      case 'r': {
        auto n = ParseCount(optarg);
        if (!n) return Fail("rate", optarg);
        o->rate = *n;
        break;
      }
      case 'V':
        o->verify = true;
        break;
      case kIdle:
        if (!seconds_ns(optarg, &o->idle_ns)) return Fail("idle time", optarg);
        break;
      case kReplyTimeout:
        if (!seconds_ns(optarg, &o->reply_timeout_ns) || o->reply_timeout_ns == 0) {
          return Fail("reply timeout", optarg);
        }
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
  if (optind != argc) return Fail("argument", argv[optind]);
  if (o->port.empty()) {
    std::fputs("ptgen: -i PORT is required\n", stderr);
    return false;
  }
  return true;
}

// What every mode reports, and the stop conditions they share.
class Run {
 public:
  Run(const Options& o, nmport_d* d) : o_(o), d_(d), meter_(kNsPerSec) {
    start_ns_ = NowNs();
    stop_ns_ = o.duration_ns ? start_ns_ + o.duration_ns : kNever;
  }

  bool TimeIsUp(uint64_t now) const { return now >= stop_ns_ || StopRequested(); }

  // Traffic seen at `now`: remembered for the idle timeout and the rates.
  void Active(uint64_t now) {
    if (first_ns_ == 0) first_ns_ = now;
    last_ns_ = now;
  }
  bool Idle(uint64_t now) const { return o_.idle_ns && first_ns_ && now - last_ns_ >= o_.idle_ns; }

  void Tick(uint64_t now, uint64_t packets, uint64_t bytes) {
    auto rate = meter_.Tick(now, packets, bytes);
    if (rate && !o_.quiet) {
      std::fprintf(stderr, "ptgen %s %s: %s (total %" PRIu64 ")\n", o_.mode_name.c_str(),
                   o_.port.c_str(), FormatRate(*rate).c_str(), packets);
    }
  }

  // The common part of the summary; elapsed is first..last activity.
  JsonLine Summary(uint64_t packets, uint64_t bytes, uint64_t elapsed_ns) const {
    Rate r = RateOf(packets, bytes, elapsed_ns);
    JsonLine j;
    j.Add("tool", "ptgen").Add("mode", o_.mode_name).Add("port", o_.port);
    j.Add("packets", packets).Add("bytes", bytes);
    j.Add("seconds", static_cast<double>(elapsed_ns) / kNsPerSec);
    j.Add("mpps", r.mpps).Add("gbps", r.gbps).Add("batch", static_cast<uint64_t>(o_.batch));
    j.Add("busy", o_.wait == WaitMode::kBusy).Add("syscalls", syscalls_);
    j.Add("packets_per_syscall", syscalls_ ? static_cast<double>(packets) / syscalls_ : 0.0);
    return j;
  }

  void Print(const JsonLine& json, const std::string& text) const {
    if (o_.json) {
      std::fprintf(stderr, "%s\n", text.c_str());
      std::printf("%s\n", json.str().c_str());
    } else {
      std::printf("%s\n", text.c_str());
    }
    std::fflush(stdout);
  }

  std::string Headline(uint64_t packets, uint64_t bytes, uint64_t elapsed_ns) const {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "ptgen %s %s: %" PRIu64 " packets, %" PRIu64 " bytes in %.3f s: %s",
                  o_.mode_name.c_str(), o_.port.c_str(), packets, bytes,
                  static_cast<double>(elapsed_ns) / kNsPerSec,
                  FormatRate(RateOf(packets, bytes, elapsed_ns)).c_str());
    return buf;
  }

  // The datapath system calls, counted: packets per call is the batching
  // actually achieved, a number emulation speed does not change.
  bool Wait(Want want) {
    ++syscalls_;
    return WaitPort(d_, want, o_.wait, kPollMs);
  }
  bool WaitMs(Want want, int timeout_ms) {
    ++syscalls_;
    return WaitPort(d_, want, o_.wait, timeout_ms);
  }
  void Sync() {
    ++syscalls_;
    TxSync(d_);
  }

  uint64_t start_ns() const { return start_ns_; }
  uint64_t first_ns() const { return first_ns_; }
  uint64_t last_ns() const { return last_ns_; }
  const Options& options() const { return o_; }
  nmport_d* port() const { return d_; }

 private:
  const Options& o_;
  nmport_d* d_;
  IntervalMeter meter_;
  uint64_t start_ns_ = 0;
  uint64_t stop_ns_ = kNever;
  uint64_t first_ns_ = 0;
  uint64_t last_ns_ = 0;
  uint64_t syscalls_ = 0;
};

// Fills up to `want` slots across the TX rings, starting at *ring_index.
uint32_t FillTx(nmport_d* d, uint32_t want, uint32_t* ring_index, Generator& gen, uint64_t now) {
  uint32_t filled = 0;
  uint32_t rings = d->last_tx_ring - d->first_tx_ring + 1u;
  for (uint32_t tried = 0; tried < rings && filled < want; ++tried) {
    filled += FillTxRing(TxRing(d, *ring_index), want - filled,
                         [&](uint8_t* buf) { return gen.Next(buf, now); });
    if (filled < want) {
      *ring_index = *ring_index == d->last_tx_ring ? d->first_tx_ring : *ring_index + 1;
    }
  }
  return filled;
}

int RunTx(Run& run) {
  const Options& o = run.options();
  nmport_d* d = run.port();
  Generator gen(LengthSchedule(o.len_min, o.len_max));
  RateLimiter limiter(o.rate, o.batch);
  uint32_t ring_index = d->first_tx_ring;
  uint64_t now = NowNs();
  run.Active(now);
  while (!run.TimeIsUp(now)) {
    uint64_t want = o.batch;
    if (o.count) want = std::min(want, o.count - gen.packets());
    if (want == 0) break;
    want = std::min(want, limiter.Available(now));
    if (want == 0) {
      SleepNs(std::min<uint64_t>(limiter.NsUntilNext(now), 1'000'000));
    } else {
      uint32_t filled = FillTx(d, static_cast<uint32_t>(want), &ring_index, gen, now);
      limiter.Consume(filled);
      // Hands the batch to the kernel and waits for room for the next one.
      if (!run.Wait(Want::kTx)) return kExitTrafficError;
    }
    now = NowNs();
    run.Tick(now, gen.packets(), gen.bytes());
  }
  run.Active(now);
  uint32_t pending = DrainTx(d, 5000);
  uint64_t elapsed = run.last_ns() - run.first_ns();
  JsonLine j = run.Summary(gen.packets(), gen.bytes(), elapsed);
  j.Add("unsent", static_cast<uint64_t>(pending));
  std::string text = run.Headline(gen.packets(), gen.bytes(), elapsed);
  if (pending) text += " (" + std::to_string(pending) + " never left the TX rings)";
  run.Print(j, text);
  // After ^C the unsent packets were dropped on purpose.
  return pending && !StopRequested() ? kExitTrafficError : 0;
}

int RunRx(Run& run) {
  const Options& o = run.options();
  nmport_d* d = run.port();
  Receiver rx(o.verify);
  uint64_t now = NowNs();
  while (!run.TimeIsUp(now) && !run.Idle(now)) {
    if (o.count && rx.packets() >= o.count) break;
    if (!run.Wait(Want::kRx)) return kExitTrafficError;
    now = NowNs();
    uint32_t ours = 0;
    ForEachRxRing(d, [&](netmap_ring* ring) {
      uint64_t limit = o.batch;
      if (o.count) limit = std::min(limit, o.count - rx.packets());
      DrainRxRing(ring, static_cast<uint32_t>(limit), [&](const uint8_t* frame, size_t len) {
        ours += rx.Receive(frame, len);
      });
    });
    // Foreign frames neither start nor extend the idle clock.
    if (ours) run.Active(now);
    run.Tick(now, rx.packets(), rx.bytes());
  }
  uint64_t elapsed = run.last_ns() - run.first_ns();
  JsonLine j = run.Summary(rx.packets(), rx.bytes(), elapsed);
  std::string text = run.Headline(rx.packets(), rx.bytes(), elapsed);
  bool failed = o.count && rx.packets() < o.count;
  j.Add("verified", rx.verify());
  if (rx.verify()) {
    uint64_t lost = rx.sequence().lost(o.count);
    uint64_t ooo = rx.sequence().out_of_order();
    j.Add("lost", lost).Add("out_of_order", ooo).Add("corrupted", rx.corrupted());
    j.Add("foreign", rx.foreign());
    text += "\n  verified: " + std::to_string(lost) + " lost, " + std::to_string(ooo) +
            " out of order, " + std::to_string(rx.corrupted()) + " corrupted, " +
            std::to_string(rx.foreign()) + " foreign frames ignored";
    if (rx.corrupted()) text += "; first corrupted: " + rx.first_error();
    failed = failed || lost || ooo || rx.corrupted();
  }
  if (o.count && rx.packets() < o.count) {
    text += "\n  expected " + std::to_string(o.count) + " packets";
  }
  run.Print(j, text);
  return failed ? kExitTrafficError : 0;
}

int RunPing(Run& run) {
  const Options& o = run.options();
  nmport_d* d = run.port();
  Generator gen(LengthSchedule(o.len_min, o.len_max));
  RateLimiter limiter(o.rate, 1);
  LatencyRecorder rtt;
  uint64_t lost = 0, late = 0, corrupted = 0;
  uint32_t ring_index = d->first_tx_ring;
  uint64_t now = NowNs();
  run.Active(now);
  while (!run.TimeIsUp(now) && (o.count == 0 || gen.packets() < o.count)) {
    if (limiter.Available(now) == 0) {
      SleepNs(std::min<uint64_t>(limiter.NsUntilNext(now), 1'000'000));
      now = NowNs();
      continue;
    }
    if (TxSpace(d) == 0) {
      if (!run.Wait(Want::kTx)) return kExitTrafficError;
      now = NowNs();
      continue;
    }
    uint64_t seq = gen.packets();
    uint64_t sent_ns = NowNs();
    FillTx(d, 1, &ring_index, gen, sent_ns);
    limiter.Consume(1);
    run.Sync();

    bool answered = false;
    uint64_t deadline = sent_ns + o.reply_timeout_ns;
    while (!answered && !StopRequested() && (now = NowNs()) < deadline) {
      int wait_ms = static_cast<int>((deadline - now + 999'999) / 1'000'000);
      if (!run.WaitMs(Want::kRx, wait_ms)) return kExitTrafficError;
      uint64_t arrived = NowNs();
      ForEachRxRing(d, [&](netmap_ring* ring) {
        DrainRxRing(ring, UINT32_MAX, [&](const uint8_t* frame, size_t len) {
          PacketInfo info;
          if (ParsePacket(frame, len, /*verify_checksums=*/true, &info) != PacketError::kNone) {
            ++corrupted;
          } else if (info.seq == seq && !answered) {
            rtt.Add(arrived - info.stamp_ns);
            answered = true;
          } else {
            ++late;  // an echo that came after its timeout, or a stray
          }
        });
      });
    }
    if (!answered) ++lost;
    now = NowNs();
    run.Tick(now, rtt.count(), 0);
  }
  run.Active(now);
  LatencySummary s = rtt.Summarize();
  uint64_t elapsed = run.last_ns() - run.first_ns();
  JsonLine j = run.Summary(gen.packets(), gen.bytes(), elapsed);
  j.Add("replies", s.count).Add("lost", lost).Add("late", late).Add("corrupted", corrupted);
  j.Add("rtt_min_us", s.min_us).Add("rtt_avg_us", s.avg_us).Add("rtt_p50_us", s.p50_us);
  j.Add("rtt_p99_us", s.p99_us).Add("rtt_max_us", s.max_us);
  char text[512];
  std::snprintf(text, sizeof(text),
                "ptgen ping %s: %" PRIu64 " sent, %" PRIu64 " replies, %" PRIu64 " lost, %" PRIu64
                " late, %" PRIu64
                " corrupted\n  rtt us: min %.1f avg %.1f p50 %.1f p99 %.1f "
                "max %.1f",
                o.port.c_str(), gen.packets(), s.count, lost, late, corrupted, s.min_us, s.avg_us,
                s.p50_us, s.p99_us, s.max_us);
  run.Print(j, text);
  return lost || corrupted || s.count == 0 ? kExitTrafficError : 0;
}

int RunPong(Run& run) {
  const Options& o = run.options();
  nmport_d* d = run.port();
  ForwardCounts echoed;
  uint64_t now = NowNs();
  while (!run.TimeIsUp(now) && !run.Idle(now)) {
    if (o.count && echoed.packets >= o.count) break;
    // Wait for packets, or for room to echo those already waiting.
    Want want = RxReady(d) > 0 && TxSpace(d) == 0 ? Want::kTx : Want::kRx;
    if (!run.Wait(want)) return kExitTrafficError;
    now = NowNs();
    // RX and TX rings of one port share its memory region: swap, never copy.
    if (ForwardPort(d, d, o.batch, /*zerocopy=*/true, &echoed) > 0) {
      run.Sync();
      run.Active(now);
    }
    run.Tick(now, echoed.packets, echoed.bytes);
  }
  DrainTx(d, 1000);
  uint64_t elapsed = run.last_ns() - run.first_ns();
  run.Print(run.Summary(echoed.packets, echoed.bytes, elapsed),
            run.Headline(echoed.packets, echoed.bytes, elapsed) + " echoed");
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return kExitUsage;
  InstallStopHandler();
  Port port = OpenPort(o.port);
  if (!port) {
    std::fprintf(stderr, "ptgen: cannot open %s\n", o.port.c_str());
    return kExitPort;
  }
  nmport_d* d = port.get();
  bool sends = o.mode != Mode::kRx;
  bool receives = o.mode != Mode::kTx;
  if ((sends && d->first_tx_ring > d->last_tx_ring) ||
      (receives && d->first_rx_ring > d->last_rx_ring)) {
    std::fprintf(stderr, "ptgen: %s binds no %s rings\n", o.port.c_str(), sends ? "TX" : "RX");
    return kExitUsage;
  }
  if (sends && o.len_max > TxRing(d, d->first_tx_ring)->nr_buf_size) {
    std::fprintf(stderr, "ptgen: %u-byte frames do not fit %u-byte buffers\n", o.len_max,
                 TxRing(d, d->first_tx_ring)->nr_buf_size);
    return kExitUsage;
  }
  // Scripts wait for this line before starting the other side.
  std::fprintf(stderr, "ptgen %s %s: ready, %u tx + %u rx rings of %u slots, memory region %u\n",
               o.mode_name.c_str(), o.port.c_str(), d->last_tx_ring - d->first_tx_ring + 1u,
               d->last_rx_ring - d->first_rx_ring + 1u,
               sends ? d->reg.nr_tx_slots : d->reg.nr_rx_slots, d->reg.nr_mem_id);

  Run run(o, d);
  switch (o.mode) {
    case Mode::kTx:
      return RunTx(run);
    case Mode::kRx:
      return RunRx(run);
    case Mode::kPing:
      return RunPing(run);
    case Mode::kPong:
      return RunPong(run);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace ptools

int main(int argc, char** argv) { return ptools::Main(argc, argv); }
