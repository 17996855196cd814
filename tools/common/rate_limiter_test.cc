// SPDX-License-Identifier: BSD-2-Clause
#include "common/rate_limiter.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace ptools {
namespace {

constexpr uint64_t kMs = 1'000'000;

TEST(RateLimiterTest, UnlimitedNeverWaits) {
  RateLimiter l(0, 1);
  EXPECT_TRUE(l.unlimited());
  EXPECT_GT(l.Available(0), 1'000'000'000u);
  EXPECT_EQ(l.NsUntilNext(0), 0u);
}

TEST(RateLimiterTest, HoldsTheRateOverTime) {
  // 1000 pps, bursts of 10: simulate a sender that sends whatever it may
  // every 100 us for 10 s.
  RateLimiter l(1000, 10);
  uint64_t sent = 0;
  for (uint64_t now = 0; now <= 10 * kNsPerSec; now += 100'000) {
    uint64_t n = l.Available(now);
    l.Consume(n);
    sent += n;
  }
  EXPECT_NEAR(static_cast<double>(sent), 10'000, 11);
}

TEST(RateLimiterTest, BurstCapsWhatIdleTimeEarns) {
  RateLimiter l(1000, 8);
  l.Available(0);
  EXPECT_EQ(l.Available(10 * kNsPerSec), 8u);  // not 10000
  l.Consume(8);
  EXPECT_EQ(l.Available(10 * kNsPerSec), 0u);
}

TEST(RateLimiterTest, TellsHowLongToWait) {
  RateLimiter l(100, 1);  // one packet every 10 ms
  EXPECT_EQ(l.Available(0), 1u);
  l.Consume(1);
  EXPECT_EQ(l.Available(0), 0u);
  EXPECT_EQ(l.NsUntilNext(0), 10 * kMs);
  EXPECT_EQ(l.NsUntilNext(4 * kMs), 6 * kMs);
  EXPECT_EQ(l.Available(10 * kMs), 1u);
  EXPECT_EQ(l.NsUntilNext(10 * kMs), 0u);
}

}  // namespace
}  // namespace ptools
