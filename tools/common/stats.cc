// SPDX-License-Identifier: BSD-2-Clause
#include "stats.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "clock.h"

namespace ptools {

Rate RateOf(uint64_t packets, uint64_t bytes, uint64_t elapsed_ns) {
  if (elapsed_ns == 0) return {};
  double seconds = static_cast<double>(elapsed_ns) / kNsPerSec;
  return {static_cast<double>(packets) / seconds / 1e6,
          static_cast<double>(bytes) * 8 / seconds / 1e9};
}

std::string FormatRate(const Rate& rate) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f Mpps %.3f Gbps", rate.mpps, rate.gbps);
  return buf;
}

std::optional<Rate> IntervalMeter::Tick(uint64_t now_ns, uint64_t packets, uint64_t bytes) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
    last_packets_ = packets;
    last_bytes_ = bytes;
    return std::nullopt;
  }
  if (now_ns - last_ns_ < interval_ns_) return std::nullopt;
  Rate r = RateOf(packets - last_packets_, bytes - last_bytes_, now_ns - last_ns_);
  last_ns_ = now_ns;
  last_packets_ = packets;
  last_bytes_ = bytes;
  return r;
}

LatencySummary LatencyRecorder::Summarize() {
  LatencySummary s;
  s.count = samples_.size();
  if (samples_.empty()) return s;
  std::sort(samples_.begin(), samples_.end());
  auto rank = [&](double p) {
    // Nearest rank: the smallest sample with at least p of them at or below it.
    size_t r = static_cast<size_t>(std::ceil(p * static_cast<double>(samples_.size())));
    return static_cast<double>(samples_[std::clamp<size_t>(r, 1, samples_.size()) - 1]) / 1e3;
  };
  long double total = 0;
  for (uint64_t v : samples_) total += v;
  s.min_us = static_cast<double>(samples_.front()) / 1e3;
  s.max_us = static_cast<double>(samples_.back()) / 1e3;
  s.avg_us = static_cast<double>(total / samples_.size()) / 1e3;
  s.p50_us = rank(0.50);
  s.p99_us = rank(0.99);
  return s;
}

void JsonLine::Key(std::string_view key) {
  if (!body_.empty()) body_ += ',';
  body_ += '"';
  body_ += key;
  body_ += "\":";
}

JsonLine& JsonLine::Add(std::string_view key, std::string_view value) {
  Key(key);
  body_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') {
      body_ += '\\';
      body_ += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      body_ += esc;
    } else {
      body_ += c;
    }
  }
  body_ += '"';
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, uint64_t value) {
  Key(key);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, double value) {
  Key(key);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", std::isfinite(value) ? value : 0.0);
  body_ += buf;
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

}  // namespace ptools
