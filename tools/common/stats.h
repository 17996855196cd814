// SPDX-License-Identifier: BSD-2-Clause
// Measurements and their reports: packet rates, per-interval meters,
// round-trip time summaries, and the one-line JSON summaries for scripts.
#ifndef PTNETMAP_TOOLS_COMMON_STATS_H_
#define PTNETMAP_TOOLS_COMMON_STATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptools {

// Gbps counts frame bytes (no preamble, gap or FCS).
struct Rate {
  double mpps = 0;
  double gbps = 0;
};

Rate RateOf(uint64_t packets, uint64_t bytes, uint64_t elapsed_ns);
// "1.234 Mpps 0.592 Gbps"
std::string FormatRate(const Rate& rate);

// Reports the rate of a growing counter once per interval.
class IntervalMeter {
 public:
  explicit IntervalMeter(uint64_t interval_ns) : interval_ns_(interval_ns) {}
  // The rate since the previous report, once `interval_ns` has passed.
  std::optional<Rate> Tick(uint64_t now_ns, uint64_t packets, uint64_t bytes);

 private:
  uint64_t interval_ns_;
  bool started_ = false;
  uint64_t last_ns_ = 0;
  uint64_t last_packets_ = 0;
  uint64_t last_bytes_ = 0;
};

struct LatencySummary {
  uint64_t count = 0;
  double min_us = 0;
  double avg_us = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

// Keeps every sample (8 bytes each) for exact percentiles.
class LatencyRecorder {
 public:
  void Add(uint64_t ns) { samples_.push_back(ns); }
  uint64_t count() const { return samples_.size(); }
  // Percentiles by the nearest-rank method; reorders the samples.
  LatencySummary Summarize();

 private:
  std::vector<uint64_t> samples_;
};

// Builds {"key":value,...} on one line.
class JsonLine {
 public:
  JsonLine& Add(std::string_view key, std::string_view value);
  JsonLine& Add(std::string_view key, const char* value) {
    return Add(key, std::string_view(value));
  }
  JsonLine& Add(std::string_view key, uint64_t value);
  JsonLine& Add(std::string_view key, double value);
  JsonLine& Add(std::string_view key, bool value);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_;
};

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_STATS_H_
