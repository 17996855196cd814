// SPDX-License-Identifier: BSD-2-Clause
#include "common/stats.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace ptools {
namespace {

TEST(StatsTest, RateOf) {
  Rate r = RateOf(2'000'000, 2'000'000 * 60, 2 * kNsPerSec);
  EXPECT_DOUBLE_EQ(r.mpps, 1.0);
  EXPECT_DOUBLE_EQ(r.gbps, 0.48);
  EXPECT_EQ(RateOf(5, 5, 0).mpps, 0);  // no time, no rate
  EXPECT_EQ(FormatRate({1.23456, 0.5}), "1.235 Mpps 0.500 Gbps");
}

TEST(StatsTest, IntervalMeterReportsOncePerInterval) {
  IntervalMeter m(kNsPerSec);
  EXPECT_FALSE(m.Tick(0, 0, 0).has_value());
  EXPECT_FALSE(m.Tick(kNsPerSec / 2, 500, 500).has_value());
  auto r = m.Tick(kNsPerSec, 1'000'000, 125'000'000);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->mpps, 1.0);
  EXPECT_DOUBLE_EQ(r->gbps, 1.0);
  auto r2 = m.Tick(3 * kNsPerSec, 2'000'000, 125'000'000);
  ASSERT_TRUE(r2.has_value());
  EXPECT_DOUBLE_EQ(r2->mpps, 0.5);  // a million more over two seconds
}

TEST(StatsTest, LatencyPercentiles) {
  LatencyRecorder rec;
  EXPECT_EQ(rec.Summarize().count, 0u);
  for (uint64_t us = 100; us >= 1; --us) rec.Add(us * 1000);  // 1..100 us, reversed
  LatencySummary s = rec.Summarize();
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.min_us, 1);
  EXPECT_DOUBLE_EQ(s.max_us, 100);
  EXPECT_DOUBLE_EQ(s.avg_us, 50.5);
  EXPECT_DOUBLE_EQ(s.p50_us, 50);
  EXPECT_DOUBLE_EQ(s.p99_us, 99);

  LatencyRecorder one;
  one.Add(7000);
  EXPECT_DOUBLE_EQ(one.Summarize().p99_us, 7);
}

TEST(StatsTest, JsonLine) {
  JsonLine j;
  j.Add("mode", "rx").Add("port", "pp}1 \"q\"\\").Add("packets", uint64_t{42});
  j.Add("mpps", 1.5).Add("ok", true);
  EXPECT_EQ(j.str(),
            "{\"mode\":\"rx\",\"port\":\"pp}1 \\\"q\\\"\\\\\",\"packets\":42,"
            "\"mpps\":1.5,\"ok\":true}");
}

}  // namespace
}  // namespace ptools
