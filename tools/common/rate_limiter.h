// SPDX-License-Identifier: BSD-2-Clause
// A token bucket for packet rates: tokens accrue at `pps` per second up to
// `burst`; a sender takes what is available and sleeps until the next one.
// Time is passed in, so the limiter is deterministic under test.
#ifndef PTNETMAP_TOOLS_COMMON_RATE_LIMITER_H_
#define PTNETMAP_TOOLS_COMMON_RATE_LIMITER_H_

#include <cstdint>

namespace ptools {

class RateLimiter {
 public:
  // pps == 0 means no limit. The bucket starts with one token.
  RateLimiter(uint64_t pps, uint64_t burst);

  bool unlimited() const { return pps_ == 0; }
  // Whole packets that may be sent at now_ns.
  uint64_t Available(uint64_t now_ns);
  // Records that n packets were sent (n <= Available()).
  void Consume(uint64_t n);
  // Nanoseconds from now_ns until one more packet may be sent (0: now).
  uint64_t NsUntilNext(uint64_t now_ns);

 private:
  void Refill(uint64_t now_ns);

  uint64_t pps_;
  double burst_;
  double tokens_ = 1;
  uint64_t last_ns_ = 0;
  bool started_ = false;
};

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_RATE_LIMITER_H_
