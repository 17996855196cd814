// SPDX-License-Identifier: BSD-2-Clause
#include "rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "clock.h"

namespace ptools {

RateLimiter::RateLimiter(uint64_t pps, uint64_t burst)
    : pps_(pps), burst_(static_cast<double>(std::max<uint64_t>(burst, 1))) {}

void RateLimiter::Refill(uint64_t now_ns) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
    return;
  }
  if (now_ns <= last_ns_) return;
  double earned = static_cast<double>(now_ns - last_ns_) * static_cast<double>(pps_) / kNsPerSec;
  tokens_ = std::min(burst_, tokens_ + earned);
  last_ns_ = now_ns;
}

uint64_t RateLimiter::Available(uint64_t now_ns) {
  if (unlimited()) return std::numeric_limits<uint64_t>::max();
  Refill(now_ns);
  return static_cast<uint64_t>(tokens_);
}

void RateLimiter::Consume(uint64_t n) {
  if (unlimited()) return;
  tokens_ = std::max(0.0, tokens_ - static_cast<double>(n));
}

uint64_t RateLimiter::NsUntilNext(uint64_t now_ns) {
  if (unlimited()) return 0;
  Refill(now_ns);
  if (tokens_ >= 1) return 0;
  return static_cast<uint64_t>(std::ceil((1 - tokens_) * kNsPerSec / static_cast<double>(pps_)));
}

}  // namespace ptools
